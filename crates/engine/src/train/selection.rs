//! Best-model selection: the live model of the epoch with the best worst-class robust accuracy
//! on the validation split is saved as `best-worst-robust`. Without a validation split nothing is
//! selected (the test set never picks a checkpoint).

use super::session::Session;
use super::state::ResumeState;
use super::TrainError;
use fairtat_core::runs::{EventSink, RunEvent};

/// Whether this epoch's validation (worst-class robust, clean overall) replaces the best so far
/// as `best-worst-robust`: a strictly better worst class, or the same worst class with a clean
/// accuracy at least as good (the later model wins a full tie). Chance-level epochs tie at 0, so
/// "strictly better" alone would keep the first epoch's model for ever.
pub fn better_worst(now: (f64, Option<f64>), best: Option<(f64, Option<f64>)>) -> bool {
    let Some((bw, bc)) = best else {
        return true;
    };
    let (w, c) = now;
    w > bw || (w == bw && c.unwrap_or(0.0) >= bc.unwrap_or(0.0))
}

/// Record this epoch's validation `(worst robust, clean)` as the best when it is; whether it was.
pub fn improve(state: &mut ResumeState, (worst, clean): (Option<f64>, Option<f64>)) -> bool {
    let Some(w) = worst else {
        return false;
    };
    let best = state
        .best_val_worst_robust
        .map(|b| (b, state.best_val_clean));
    if !better_worst((w, clean), best) {
        return false;
    }
    state.best_val_worst_robust = Some(w);
    state.best_val_clean = clean;
    true
}

/// After epoch `epoch`: save the live model as `best-worst-robust` when its validation is the
/// best so far, and announce the checkpoint.
pub fn select_best(
    s: &mut Session,
    epoch: usize,
    val: (Option<f64>, Option<f64>),
    sink: &mut dyn EventSink,
) -> Result<(), TrainError> {
    if !improve(&mut s.state, val) {
        return Ok(());
    }
    s.save_best(epoch)?;
    sink.emit(&RunEvent::Checkpoint {
        epoch,
        kind: "best-worst-robust".into(),
        file: "checkpoints/best-worst-robust.safetensors".into(),
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn best_worst_robust_needs_a_better_worst_class_or_a_tie_with_better_clean() {
        assert!(
            better_worst((0.0, Some(0.1)), None),
            "the first validation sets it"
        );
        assert!(better_worst((0.2, Some(0.1)), Some((0.1, Some(0.9)))));
        assert!(!better_worst((0.1, Some(0.9)), Some((0.2, Some(0.1)))));
        // Chance-level epochs tie at 0: the later, cleaner model replaces the first one.
        assert!(better_worst((0.0, Some(0.4)), Some((0.0, Some(0.1)))));
        assert!(!better_worst((0.0, Some(0.05)), Some((0.0, Some(0.1)))));
        assert!(
            better_worst((0.0, Some(0.1)), Some((0.0, Some(0.1)))),
            "a full tie keeps the later"
        );
    }

    #[test]
    fn over_epochs_the_state_keeps_the_best_and_no_validation_selects_nothing() {
        let mut state = ResumeState::default();
        let epochs = [
            (Some(0.0), Some(0.3)),
            (Some(0.2), Some(0.5)),
            (Some(0.1), Some(0.9)),
            (None, None),
            (Some(0.2), Some(0.5)),
        ];
        let picked: Vec<bool> = epochs.iter().map(|&v| improve(&mut state, v)).collect();
        assert_eq!(picked, vec![true, true, false, false, true]);
        assert_eq!(state.best_val_worst_robust, Some(0.2));
        assert_eq!(state.best_val_clean, Some(0.5));
    }
}
