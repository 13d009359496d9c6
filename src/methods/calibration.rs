//! Class-wise epsilon calibration: eps_k = (lambda1 + r_k) * eps (CFA's CCM, Wei et al. CVPR 2023;
//! FAIR-TAT Algorithm 1 line 27, `--adaptive_eps G-rob`). Plain Rust, no tch.
//!
//! r_k is the previous epoch's class-wise accuracy on the training adversarial examples (train
//! mode, before the SGD step). The reference computes it as `tp_k * K / N`, which equals the
//! per-class recall used here when training classes are balanced (they are: the validation split
//! and `train_subset` are class-balanced). Before `start` every class gets the base epsilon.

/// Class-wise epsilon for one epoch.
pub fn class_eps(
    base: f64,
    lambda1: f64,
    prev_class_acc: Option<&[f64]>,
    k: usize,
    epoch: usize,
    start: usize,
) -> Vec<f64> {
    match prev_class_acc {
        Some(r) if epoch >= start && epoch > 0 && r.len() == k => r
            .iter()
            .map(|rk| (lambda1 + rk.clamp(0.0, 1.0)) * base)
            .collect(),
        _ => vec![base; k],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calibration_formula_and_start() {
        let eps = 8.0 / 255.0;
        let r = [0.7, 0.2];
        let e = class_eps(eps, 0.5, Some(&r), 2, 1, 1);
        assert!((e[0] - 1.2 * eps).abs() < 1e-12);
        assert!((e[1] - 0.7 * eps).abs() < 1e-12);
        assert_eq!(
            class_eps(eps, 0.5, Some(&r), 2, 0, 0),
            vec![eps; 2],
            "epoch 0 has no previous epoch"
        );
        assert_eq!(
            class_eps(eps, 0.5, Some(&r), 2, 3, 10),
            vec![eps; 2],
            "before start"
        );
        assert_eq!(class_eps(eps, 0.5, None, 2, 3, 1), vec![eps; 2]);
    }
}
