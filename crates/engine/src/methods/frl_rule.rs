//! FRL's multiplier rule (Xu et al. ICML 2021; hannxu123/fair_robust `utils_frl.py`,
//! `utils_frl2.py` `frl_train`, `normalize_lambda`, `cost_sensitive`; algorithms.md §3.4).
//! Plain Rust, no tch.
//!
//! From the validation class clean errors e_k and boundary errors b_k (clean minus robust
//! accuracy) the constraint violations are `gamma0_k = e_k - mean(e) - bound0` and
//! `gamma1_k = b_k - mean(b) - bound1`; then `lambda0 += rate1 gamma0`,
//! `lambda1 += 2 rate1 gamma1` (each projected: clamped at 0 and rescaled to sum `lim` when the
//! sum exceeds it) and, with Remargin, `lambda2 += rate2 gamma1` (not projected). `rate1` is
//! halved at (1-based) epochs 40, 80, ... as the reference does before training those epochs.

/// FRL's hyperparameters (`method.frl_*`).
#[derive(Clone, Debug, PartialEq)]
pub struct FrlRule {
    pub bound0: f64,
    pub bound1: f64,
    pub rate1: f64,
    pub rate2: f64,
    pub lim: f64,
    /// FRL-RWRM: update lambda2 (per-class epsilon); FRL-RW keeps it 0.
    pub remargin: bool,
}

/// The Lagrange multipliers, one entry per class each.
#[derive(Clone, Debug, PartialEq)]
pub struct Multipliers {
    pub lambda0: Vec<f64>,
    pub lambda1: Vec<f64>,
    pub lambda2: Vec<f64>,
}

/// Remargin's epsilon multiplier range (`utils_frl2.py`).
pub const EPS_MULT_RANGE: (f64, f64) = (0.98, 3.0);

impl Multipliers {
    pub fn zeros(k: usize) -> Self {
        Multipliers {
            lambda0: vec![0.0; k],
            lambda1: vec![0.0; k],
            lambda2: vec![0.0; k],
        }
    }

    /// One update before 0-based epoch `epoch` from class clean errors `e` and boundary errors
    /// `b` (all in [0,1]).
    pub fn update(&mut self, rule: &FrlRule, epoch: usize, e: &[f64], b: &[f64]) {
        let halvings = ((epoch + 1) / 40).min(60) as i32;
        let rate1 = rule.rate1 * 0.5f64.powi(halvings);
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
        let (me, mb) = (mean(e), mean(b));
        for k in 0..self.lambda0.len().min(e.len()).min(b.len()) {
            let g0 = e[k] - me - rule.bound0;
            let g1 = b[k] - mb - rule.bound1;
            self.lambda0[k] += rate1 * g0;
            self.lambda1[k] += 2.0 * rate1 * g1;
            if rule.remargin {
                self.lambda2[k] += rule.rate2 * g1;
            }
        }
        project(&mut self.lambda0, rule.lim);
        project(&mut self.lambda1, rule.lim);
    }
}

/// Clamp at 0; if the sum exceeds `lim`, rescale to sum `lim`.
pub fn project(v: &mut [f64], lim: f64) {
    for x in v.iter_mut() {
        *x = x.max(0.0);
    }
    let s: f64 = v.iter().sum();
    if s > lim {
        for x in v.iter_mut() {
            *x *= lim / s;
        }
    }
}

/// Class weights `w_k = 1/K + lambda_k - (1/K) sum_j lambda_j`.
pub fn class_weights(lambda: &[f64]) -> Vec<f64> {
    let k = lambda.len().max(1) as f64;
    let s: f64 = lambda.iter().sum();
    lambda.iter().map(|l| 1.0 / k + l - s / k).collect()
}

/// Remargin's per-class epsilon multipliers `clamp(exp(2 lambda2_k), 0.98, 3)`.
pub fn eps_multipliers(lambda2: &[f64]) -> Vec<f64> {
    lambda2
        .iter()
        .map(|l| (2.0 * l).exp().clamp(EPS_MULT_RANGE.0, EPS_MULT_RANGE.1))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(remargin: bool) -> FrlRule {
        FrlRule {
            bound0: 0.1,
            bound1: 0.1,
            rate1: 0.05,
            rate2: 0.2,
            lim: 0.5,
            remargin,
        }
    }

    #[test]
    fn multiplier_update_and_projection() {
        // Three classes; class 0 is 0.3 worse than the mean in clean error, class 2 in boundary.
        let e = [0.5, 0.1, 0.0]; // mean 0.2
        let b = [0.1, 0.1, 0.4]; // mean 0.2
        let mut m = Multipliers::zeros(3);
        m.update(&rule(true), 0, &e, &b);
        // gamma0 = (0.2, -0.2, -0.3); gamma1 = (-0.2, -0.2, 0.1).
        let close = |a: &[f64], b: &[f64]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-12);
        assert!(close(&m.lambda0, &[0.01, 0.0, 0.0]), "{:?}", m.lambda0);
        assert!(close(&m.lambda1, &[0.0, 0.0, 0.01]), "{:?}", m.lambda1);
        assert!(close(&m.lambda2, &[-0.04, -0.04, 0.02]), "{:?}", m.lambda2);
        // Without Remargin lambda2 stays 0.
        let mut rw = Multipliers::zeros(3);
        rw.update(&rule(false), 0, &e, &b);
        assert_eq!(rw.lambda2, vec![0.0; 3]);
        // rate1 halves from 1-based epoch 40: 0-based 39.
        let mut h = Multipliers::zeros(3);
        h.update(&rule(false), 39, &e, &b);
        assert!((h.lambda0[0] - 0.005).abs() < 1e-12);
        // Projection: negative parts clamp to 0, an over-full sum rescales to lim.
        let mut v = [0.6, -0.1, 0.4];
        project(&mut v, 0.5);
        assert!(close(&v, &[0.3, 0.0, 0.2]), "{v:?}");
        let mut small = [0.1, 0.2];
        project(&mut small, 0.5);
        assert!(close(&small, &[0.1, 0.2]));
    }

    #[test]
    fn weights_and_eps_multipliers() {
        let w = class_weights(&[0.3, 0.0, 0.0]);
        assert!((w[0] - (1.0 / 3.0 + 0.3 - 0.1)).abs() < 1e-12);
        assert!((w[1] - (1.0 / 3.0 - 0.1)).abs() < 1e-12);
        assert!(
            (w.iter().sum::<f64>() - 1.0).abs() < 1e-12,
            "weights sum to 1"
        );
        let m = eps_multipliers(&[0.0, -1.0, 1.0, 0.2]);
        assert_eq!(m[0], 1.0);
        assert_eq!(m[1], 0.98);
        assert_eq!(m[2], 3.0);
        assert!((m[3] - 0.4f64.exp()).abs() < 1e-12);
    }
}
