//! Learning-rate schedules, evaluated per iteration at the fractional epoch
//! t = epoch + (i + 1) / n_batches as in Rice et al. (locuslab/robust_overfitting `train_cifar.py`).

use fairtat_core::config::LrSchedule;

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
        // yaodongyu/TRADES `adjust_learning_rate`, also WAT's and BAT's: per epoch, x0.1 from
        // (1-based) epoch 75, x0.01 from 90, x0.001 from 100, whatever the run's length.
        LrSchedule::Step75_90_100 => drops(t, &[75.0, 90.0, 100.0], lr_max),
        // rucy74/DAFA `adjust_learning_rate`, `bag_of_tricks` (TRIX's too): per 1-based
        // epoch, x0.1 from `epochs - 10`, x0.01 from `epochs - 5`.
        LrSchedule::DropLast10_5 => {
            let e = epochs as f64;
            drops(t, &[e - 10.0, e - 5.0], lr_max)
        }
        // TrustAI/FAAL `ft_prn.py`: MultiStepLR(milestones=[epochs / 2]) stepped per epoch.
        LrSchedule::StepHalf => drops(t, &[epochs as f64 / 2.0 + 1.0], lr_max),
        // Reference `step4`: /10 at 25%, 50% and 75%.
        LrSchedule::Step4 => {
            let drops = [0.25, 0.5, 0.75].iter().filter(|&&b| f >= b).count();
            lr_max * 0.1f64.powi(drops as i32)
        }
    }
}

/// `lr_max` divided by 10 for each of `from` (1-based epochs) the epoch of `t` has reached; the
/// epoch of `t` is `ceil(t)`, so the rate is constant within an epoch.
fn drops(t: f64, from: &[f64], lr_max: f64) -> f64 {
    let epoch_1based = t.ceil().max(1.0);
    let n = from.iter().filter(|&&b| epoch_1based >= b).count();
    lr_max * 0.1f64.powi(n as i32)
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
            // Epoch 74 (0-based) is TRADES' 75th: its batches run at 0.01.
            (LrSchedule::Step75_90_100, 73.99, 0.1),
            (LrSchedule::Step75_90_100, 74.0, 0.1),
            (LrSchedule::Step75_90_100, 74.01, 0.01),
            (LrSchedule::Step75_90_100, 89.5, 0.001),
            (LrSchedule::Step75_90_100, 99.5, 0.0001),
            (LrSchedule::Step75_90_100, 199.0, 0.0001),
        ];
        for (s, t, want) in cases {
            let got = lr_at(s, 0.1, t, 200);
            assert!((got - want).abs() < 1e-12, "{s:?} t={t}: {got} != {want}");
        }
        // DAFA's 110 epochs: 0-based epoch 99 is its 100th, the first at 0.01; 104 its 105th.
        // FAAL's 2 epochs: the second at a tenth.
        let short = [
            (LrSchedule::DropLast10_5, 110, 98.9, 0.1),
            (LrSchedule::DropLast10_5, 110, 99.1, 0.01),
            (LrSchedule::DropLast10_5, 110, 103.9, 0.01),
            (LrSchedule::DropLast10_5, 110, 104.1, 0.001),
            (LrSchedule::StepHalf, 2, 0.5, 0.1),
            (LrSchedule::StepHalf, 2, 1.0, 0.1),
            (LrSchedule::StepHalf, 2, 1.5, 0.01),
            (LrSchedule::StepHalf, 4, 1.9, 0.1),
            (LrSchedule::StepHalf, 4, 2.1, 0.01),
        ];
        for (s, epochs, t, want) in short {
            let got = lr_at(s, 0.1, t, epochs);
            assert!((got - want).abs() < 1e-12, "{s:?} t={t}: {got} != {want}");
        }
    }
}
