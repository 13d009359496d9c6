//! DAFA's rho metric (Lee et al., "DAFA: Distance-Aware Fair Adversarial Training", ICLR 2024):
//! how much a model improves the worst class relative to a base model, minus how much average
//! accuracy it gives up relative to that base:
//!
//! rho(f) = (W(f) - W(base)) / W(base) - (A(base) - A(f)) / A(base)
//!
//! with W the worst-class and A the average accuracy. On robust accuracy it is rho_rob, on
//! clean accuracy rho_nat. Both terms are relative, so the unit (fraction or percent) does not
//! matter as long as both models use the same one.

/// Worst-class and average accuracy of one model, in one unit for both.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WorstAndAverage {
    pub worst: f64,
    pub average: f64,
}

impl WorstAndAverage {
    pub fn new(worst: f64, average: f64) -> Self {
        WorstAndAverage { worst, average }
    }
}

/// rho of `model` against `base`; `None` when it has no value: a base with zero (or
/// non-finite) worst-class or average accuracy would divide by zero, and a table should show
/// "–" rather than inf or NaN.
pub fn rho(model: WorstAndAverage, base: WorstAndAverage) -> Option<f64> {
    let finite = [model.worst, model.average, base.worst, base.average]
        .iter()
        .all(|v| v.is_finite());
    if !finite || base.worst == 0.0 || base.average == 0.0 {
        return None;
    }
    let gain = (model.worst - base.worst) / base.worst;
    let loss = (base.average - model.average) / base.average;
    Some(gain - loss).filter(|r| r.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dafa_against_trades_is_0_42() {
        // DAFA's Table: DAFA W 30.53, A 49.05; TRADES W 21.31, A 49.80.
        let dafa = WorstAndAverage::new(30.53, 49.05);
        let trades = WorstAndAverage::new(21.31, 49.80);
        let r = rho(dafa, trades).unwrap();
        let expected = 30.53 / 21.31 - 1.0 - 0.75 / 49.80;
        assert!((r - expected).abs() < 1e-12, "{r}");
        assert_eq!(format!("{r:.2}"), "0.42");
        // The unit does not matter: fractions give the same value.
        let frac = rho(
            WorstAndAverage::new(0.3053, 0.4905),
            WorstAndAverage::new(0.2131, 0.4980),
        )
        .unwrap();
        assert!((frac - r).abs() < 1e-9);
    }

    #[test]
    fn a_model_against_itself_is_zero() {
        let m = WorstAndAverage::new(0.25, 0.5);
        assert_eq!(rho(m, m), Some(0.0));
    }

    #[test]
    fn no_value_without_a_usable_base() {
        let m = WorstAndAverage::new(0.3, 0.5);
        assert_eq!(rho(m, WorstAndAverage::new(0.0, 0.5)), None);
        assert_eq!(rho(m, WorstAndAverage::new(0.2, 0.0)), None);
        assert_eq!(rho(m, WorstAndAverage::new(f64::NAN, 0.5)), None);
        assert_eq!(rho(WorstAndAverage::new(0.3, f64::INFINITY), m), None);
    }
}
