//! Class-wise calibration from the previous epoch's training robust accuracy r_k (plain Rust, no
//! tch): epsilon eps_k = (lambda1 + r_k) * eps (CFA's CCM, Wei et al. CVPR 2023; FAIR-TAT
//! Algorithm 1 line 27, `--adaptive_eps G-rob`) and the TRADES beta of CFA's CCR
//! (PKU-ML/CFA `train.py`, algorithms.md §2.3).
//!
//! r_k is the previous epoch's class-wise accuracy on the training adversarial examples (train
//! mode, before the SGD step). The reference computes it as `tp_k * K / N`, which equals the
//! per-class recall used here when training classes are balanced (they are: the validation split
//! and `train_subset` are class-balanced). Before `start` every class gets the base epsilon.

/// One epoch's class-wise value `(lambda + r_k) * base` once calibrating (an epoch after the
/// first, from `start` on, with one accuracy per class), `base` for every class otherwise.
///
/// Epsilon: `class_scaled(eps, lambda1, ..)` (CCM). CCR's TRADES beta before normalisation:
/// `class_scaled(beta, lambda2, ..)`; normalised as TRADES is (`kl::trades_weights`), the KL
/// weight is CFA's beta_k = (lambda2 + r_k) beta / (1 + (lambda2 + r_k) beta).
pub fn class_scaled(
    base: f64,
    lambda: f64,
    prev_class_acc: Option<&[f64]>,
    k: usize,
    epoch: usize,
    start: usize,
) -> Vec<f64> {
    match prev_class_acc {
        Some(r) if epoch >= start && epoch > 0 && r.len() == k => r
            .iter()
            .map(|rk| (lambda + rk.clamp(0.0, 1.0)) * base)
            .collect(),
        _ => vec![base; k],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ccr_beta_matches_cfa_formula() {
        let r = [0.8, 0.1, 0.0];
        let b = class_scaled(6.0, 0.5, Some(&r), 3, 2, 1);
        for (bk, rk) in b.iter().zip(r) {
            let want = (0.5 + rk) * 6.0;
            assert!((bk - want).abs() < 1e-12);
            // Normalised KL weight, CFA's beta_k.
            let (w_ce, w_kl) = crate::methods::kl::trades_weights(*bk, true);
            let cfa = (0.5 + rk) * 6.0 / (1.0 + (0.5 + rk) * 6.0);
            assert!((w_kl - cfa).abs() < 1e-12 && (w_ce - (1.0 - cfa)).abs() < 1e-12);
        }
        // r = (0.8, 0.1, 0): beta_k = 7.8/8.8, 3.6/4.6, 3/4.
        let (_, w0) = crate::methods::kl::trades_weights(b[0], true);
        assert!((w0 - 7.8 / 8.8).abs() < 1e-12);
        assert_eq!(class_scaled(6.0, 0.5, Some(&r), 3, 0, 0), vec![6.0; 3]);
        assert_eq!(class_scaled(6.0, 0.5, Some(&r), 3, 4, 10), vec![6.0; 3]);
        assert_eq!(class_scaled(6.0, 0.5, None, 3, 4, 1), vec![6.0; 3]);
    }

    #[test]
    fn calibration_formula_and_start() {
        let eps = 8.0 / 255.0;
        let r = [0.7, 0.2];
        let e = class_scaled(eps, 0.5, Some(&r), 2, 1, 1);
        assert!((e[0] - 1.2 * eps).abs() < 1e-12);
        assert!((e[1] - 0.7 * eps).abs() < 1e-12);
        assert_eq!(
            class_scaled(eps, 0.5, Some(&r), 2, 0, 0),
            vec![eps; 2],
            "epoch 0 has no previous epoch"
        );
        assert_eq!(
            class_scaled(eps, 0.5, Some(&r), 2, 3, 10),
            vec![eps; 2],
            "before start"
        );
        assert_eq!(class_scaled(eps, 0.5, None, 2, 3, 1), vec![eps; 2]);
    }
}
