//! Learning-rate schedules, evaluated per iteration at the fractional epoch
//! t = epoch + (i + 1) / n_batches as in Rice et al. (locuslab/robust_overfitting `train_cifar.py`).

use crate::config::LrSchedule;

/// Learning rate at fractional epoch `t` of `epochs`.
pub fn lr_at(schedule: LrSchedule, lr_max: f64, t: f64, epochs: usize) -> f64 {
    let f = t / epochs.max(1) as f64;
    match schedule {
        LrSchedule::Constant => lr_max,
        // Reference `step3`: 0.1 until 50%, 0.01 until 75%, 0.001 after.
        LrSchedule::Piecewise => {
            if f < 0.5 {
                lr_max
            } else if f < 0.75 {
                lr_max * 0.1
            } else {
                lr_max * 0.01
            }
        }
        // Reference `step4`: /10 at 25%, 50% and 75%.
        LrSchedule::Step4 => {
            let drops = [0.25, 0.5, 0.75].iter().filter(|&&b| f >= b).count();
            lr_max * 0.1f64.powi(drops as i32)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_table() {
        let cases = [
            (LrSchedule::Piecewise, 0.0, 0.1),
            (LrSchedule::Piecewise, 99.9, 0.1),
            (LrSchedule::Piecewise, 100.0, 0.01),
            (LrSchedule::Piecewise, 149.0, 0.01),
            (LrSchedule::Piecewise, 150.0, 0.001),
            (LrSchedule::Step4, 49.0, 0.1),
            (LrSchedule::Step4, 50.0, 0.01),
            (LrSchedule::Step4, 120.0, 0.001),
            (LrSchedule::Step4, 190.0, 0.0001),
            (LrSchedule::Constant, 190.0, 0.1),
        ];
        for (s, t, want) in cases {
            let got = lr_at(s, 0.1, t, 200);
            assert!((got - want).abs() < 1e-12, "{s:?} t={t}: {got} != {want}");
        }
    }
}
