//! FAWA, CFA's fairness-aware weight averaging (Wei et al. CVPR 2023; PKU-ML/CFA `train.py` +
//! `utils.py` `weight_average`; algorithms.md §1.7, §2.4), for every method.
//!
//! After each epoch the worst class-wise validation accuracy under the per-epoch PGD-k
//! evaluation decides: if it reaches `train.fawa_threshold` the average absorbs the epoch
//! (`avg = decay*avg + (1-decay)*model` over the whole state, BN buffers included), the first
//! such epoch being a plain copy; otherwise FAWA is left unchanged. The validation numbers come
//! from the evaluation the loop runs anyway, so FAWA costs no extra pass; only its test
//! evaluation is extra. The decision is recorded in the epoch's `method_state` as
//! `fawa_updated` (0/1) and `fawa_min_val_acc`.

use std::collections::BTreeMap;

use super::session::Session;

/// What FAWA does with this epoch: `None` = leave the average unchanged, `Some(d)` = update
/// with decay `d` (0 = copy, the first qualifying epoch). `min_acc` is the worst validation
/// class's robust accuracy (`None` when it was not measured: no update).
pub fn fawa_decay_for(
    min_acc: Option<f64>,
    threshold: f64,
    decay: f64,
    initialized: bool,
) -> Option<f64> {
    match min_acc {
        Some(a) if a.is_finite() && a >= threshold => Some(if initialized { decay } else { 0.0 }),
        _ => None,
    }
}

/// Apply the FAWA rule after an epoch and return the `method_state` entries recording it
/// (empty when FAWA is off).
pub(crate) fn update(s: &mut Session, min_acc: Option<f64>) -> BTreeMap<String, Vec<f64>> {
    let mut out = BTreeMap::new();
    let t = &s.spec.train;
    let Some(fawa) = &mut s.fawa else {
        return out;
    };
    let decision = fawa_decay_for(
        min_acc,
        t.fawa_threshold,
        t.fawa_decay,
        s.state.fawa_initialized,
    );
    if let Some(decay) = decision {
        fawa.avg.update(&s.model, decay);
        fawa.avg.copy_into(&mut fawa.model);
        s.state.fawa_initialized = true;
    }
    out.insert(
        "fawa_updated".to_string(),
        vec![if decision.is_some() { 1.0 } else { 0.0 }],
    );
    if let Some(a) = min_acc {
        out.insert("fawa_min_val_acc".to_string(), vec![a]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fawa_waits_for_the_worst_class_then_copies_then_averages() {
        // Under the threshold: unchanged, whether or not FAWA has started.
        assert_eq!(fawa_decay_for(Some(0.19), 0.2, 0.85, false), None);
        assert_eq!(fawa_decay_for(Some(0.19), 0.2, 0.85, true), None);
        // Not measured (no validation PGD): unchanged.
        assert_eq!(fawa_decay_for(None, 0.0, 0.85, true), None);
        assert_eq!(fawa_decay_for(Some(f64::NAN), 0.0, 0.85, true), None);
        // First qualifying epoch: a copy; later ones: the configured decay.
        assert_eq!(fawa_decay_for(Some(0.2), 0.2, 0.85, false), Some(0.0));
        assert_eq!(fawa_decay_for(Some(0.5), 0.2, 0.85, true), Some(0.85));
        // A threshold above 1 never qualifies; 0 always does.
        assert_eq!(fawa_decay_for(Some(1.0), 1.01, 0.85, true), None);
        assert_eq!(fawa_decay_for(Some(0.0), 0.0, 0.88, true), Some(0.88));
    }
}
