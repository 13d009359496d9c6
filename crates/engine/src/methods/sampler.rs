//! FAIR-TAT target sampling from the previous epoch's training C_FPS (plain Rust, no tch).
//!
//! Reference code (TejaswiniMedi/FAIR-TAT `target_train_new.py`, algorithms.md §1.4): weights
//! `softmax(2 * C_FPS)`, one multinomial draw per sample, redrawn while it equals the true class.
//! Redrawing is distributionally identical to zeroing the true class and renormalising, which is
//! what [`sample_targets`] does (one draw, no loop). The paper's wording (weights proportional to
//! C_FPS) and uniform targets (the random-target ablation) are the other two choices.

use fairtat_core::config::TargetWeighting;
use fairtat_core::util::Rng;

/// Sampling distribution over classes (sums to 1) before the per-sample exclusion of the true
/// class. `cfps` is `None` in the first epoch, which is always uniform.
pub fn target_distribution(
    cfps: Option<&[f64]>,
    k: usize,
    weighting: TargetWeighting,
    scale: f64,
) -> Vec<f64> {
    let uniform = vec![1.0 / k.max(1) as f64; k];
    let Some(cfps) = cfps.filter(|c| c.len() == k) else {
        return uniform;
    };
    let w: Vec<f64> = match weighting {
        TargetWeighting::Uniform => return uniform,
        TargetWeighting::Softmax => {
            // Subtract the max before exp for stability with large scales.
            let m = cfps.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            cfps.iter().map(|c| (scale * (c - m)).exp()).collect()
        }
        TargetWeighting::Proportional => cfps.iter().map(|c| c.max(0.0)).collect(),
    };
    let total: f64 = w.iter().filter(|x| x.is_finite()).sum();
    if total.is_nan() || total <= 0.0 {
        return uniform;
    }
    w.iter()
        .map(|x| if x.is_finite() { x / total } else { 0.0 })
        .collect()
}

/// One target per label, never the label itself. When every other class has zero weight (e.g.
/// proportional weighting where all errors went to the true class) the draw falls back to
/// uniform over the other classes. Needs at least two classes; with one class the label is
/// returned (there is no other target).
pub fn sample_targets(labels: &[i64], probs: &[f64], rng: &mut Rng) -> Vec<i64> {
    let k = probs.len();
    let mut w = probs.to_vec();
    labels
        .iter()
        .map(|&y| {
            if k < 2 {
                return y;
            }
            let yi = y.clamp(0, k as i64 - 1) as usize;
            let saved = w[yi];
            w[yi] = 0.0;
            let t = rng.categorical(&w).unwrap_or_else(|| {
                let r = rng.below(k - 1);
                if r >= yi {
                    r + 1
                } else {
                    r
                }
            });
            w[yi] = saved;
            t as i64
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softmax_matches_reference_example() {
        // algorithms.md §1.4: C_FPS (0.30, 0.20, 0.10, ...) gives about (0.147, 0.120, 0.099, ...).
        let cfps = [0.30, 0.20, 0.10, 0.10, 0.10, 0.05, 0.05, 0.05, 0.03, 0.02];
        let p = target_distribution(Some(&cfps), 10, TargetWeighting::Softmax, 2.0);
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert!((p[0] - 0.147).abs() < 0.001, "{p:?}");
        assert!((p[1] - 0.120).abs() < 0.001, "{p:?}");
        assert!((p[2] - 0.099).abs() < 0.001, "{p:?}");
        let ratio = p[0] / p[9];
        assert!((ratio - 1.75).abs() < 0.01, "{ratio}");
    }

    #[test]
    fn proportional_uniform_and_first_epoch() {
        let cfps = [0.5, 0.5, 0.0];
        assert_eq!(
            target_distribution(Some(&cfps), 3, TargetWeighting::Proportional, 2.0),
            vec![0.5, 0.5, 0.0]
        );
        let u = target_distribution(Some(&cfps), 3, TargetWeighting::Uniform, 2.0);
        assert!(u.iter().all(|x| (x - 1.0 / 3.0).abs() < 1e-12));
        let first = target_distribution(None, 4, TargetWeighting::Softmax, 2.0);
        assert!(first.iter().all(|x| (x - 0.25).abs() < 1e-12));
        // No errors at all: proportional falls back to uniform.
        let none = target_distribution(Some(&[0.0, 0.0]), 2, TargetWeighting::Proportional, 2.0);
        assert_eq!(none, vec![0.5, 0.5]);
    }

    #[test]
    fn never_the_true_class() {
        let mut rng = Rng::new(11);
        let probs = [0.7, 0.1, 0.1, 0.1];
        let labels: Vec<i64> = (0..4000).map(|i| i % 4).collect();
        let t = sample_targets(&labels, &probs, &mut rng);
        assert!(labels.iter().zip(&t).all(|(y, t)| y != t));
        // All mass on the true class: falls back to uniform over the others.
        let t = sample_targets(&[0; 300], &[1.0, 0.0, 0.0], &mut rng);
        assert!(t.iter().all(|&x| x == 1 || x == 2));
        assert!(t.iter().filter(|&&x| x == 1).count() > 100);
    }

    /// Frequencies match the renormalised weights within a 5-sigma binomial bound.
    #[test]
    fn frequencies_match_weights() {
        let mut rng = Rng::new(5);
        let probs = target_distribution(
            Some(&[0.4, 0.3, 0.2, 0.1, 0.0]),
            5,
            TargetWeighting::Proportional,
            2.0,
        );
        let n = 20_000;
        let labels = vec![4i64; n];
        let t = sample_targets(&labels, &probs, &mut rng);
        for c in 0..4 {
            let expected = probs[c] / (1.0 - probs[4]);
            let freq = t.iter().filter(|&&x| x == c as i64).count() as f64 / n as f64;
            let sigma = (expected * (1.0 - expected) / n as f64).sqrt();
            assert!(
                (freq - expected).abs() < 5.0 * sigma,
                "class {c}: {freq} vs {expected}"
            );
        }
        // Label 0 excludes class 0; class 1 then has 0.3/0.6.
        let t = sample_targets(&vec![0i64; n], &probs, &mut rng);
        let f1 = t.iter().filter(|&&x| x == 1).count() as f64 / n as f64;
        let sigma = (0.5f64 * 0.5 / n as f64).sqrt();
        assert!((f1 - 0.5).abs() < 5.0 * sigma, "{f1}");
    }
}
