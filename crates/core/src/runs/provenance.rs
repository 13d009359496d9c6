//! Where a reported number comes from: which checkpoint, at which epoch, and what chose it.
//!
//! fairtat never selects on the test set: `last` is the model at the last epoch, `ema` and
//! `fawa` are weight averages kept every epoch, and `best-worst-robust` is the live model of
//! the epoch with the best worst-class robust accuracy on the validation split. A table that
//! mixes them without saying so invites reading a validation-picked number as a plain one, so
//! every number the compare page reports carries one of these labels.

use serde::{Deserialize, Serialize};

use super::layout::CheckpointKind;

/// The `best-worst-robust` checkpoint as the run's events announce it (folded into the
/// summary, so the server knows it without opening the checkpoint).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BestCheckpoint {
    /// 0-based epoch whose live model was saved.
    pub epoch: usize,
    /// That epoch's validation worst-class robust accuracy (what chose it), when recorded.
    #[serde(default)]
    pub val_worst_robust: Option<f64>,
}

/// One checkpoint as a table labels it; unknown parts (old runs, reports without a kind)
/// print as "unknown" rather than failing.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Provenance {
    pub kind: Option<CheckpointKind>,
    pub epoch: Option<usize>,
    /// The validation figure that chose a `best-worst-robust` checkpoint.
    pub val_worst_robust: Option<f64>,
}

impl Provenance {
    pub fn new(kind: Option<CheckpointKind>, epoch: Option<usize>) -> Self {
        Provenance {
            kind,
            epoch,
            val_worst_robust: None,
        }
    }

    /// The live model as the per-epoch test evaluation saw it: the `last` checkpoint.
    pub fn last(epoch: Option<usize>) -> Self {
        Provenance::new(Some(CheckpointKind::Last), epoch)
    }

    pub fn best(b: &BestCheckpoint) -> Self {
        Provenance {
            kind: Some(CheckpointKind::BestWorstRobust),
            epoch: Some(b.epoch),
            val_worst_robust: b.val_worst_robust,
        }
    }

    /// What picked this checkpoint, in words.
    fn chosen_by(&self) -> String {
        match self.kind {
            Some(CheckpointKind::Last) | None => String::new(),
            Some(CheckpointKind::Ema) => "weight average, ".into(),
            Some(CheckpointKind::Fawa) => "fairness-aware weight average, ".into(),
            Some(CheckpointKind::BestWorstRobust) => match self.val_worst_robust {
                Some(v) if v.is_finite() => format!(
                    "chosen on validation: worst-class robust {:.2}%, ",
                    100.0 * v
                ),
                _ => "chosen on validation: worst-class robust, ".into(),
            },
        }
    }
}

/// `last (epoch 199)`, `best-worst-robust (chosen on validation: worst-class robust, epoch 37)`.
impl std::fmt::Display for Provenance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Some(kind) = self.kind else {
            return f.write_str("unknown");
        };
        let epoch = self
            .epoch
            .map_or_else(|| "epoch unknown".to_string(), |e| format!("epoch {e}"));
        write!(f, "{kind} ({}{epoch})", self.chosen_by())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_name_the_checkpoint_what_chose_it_and_the_epoch() {
        assert_eq!(Provenance::last(Some(199)).to_string(), "last (epoch 199)");
        let best = BestCheckpoint {
            epoch: 37,
            val_worst_robust: None,
        };
        assert_eq!(
            Provenance::best(&best).to_string(),
            "best-worst-robust (chosen on validation: worst-class robust, epoch 37)"
        );
        let best = BestCheckpoint {
            val_worst_robust: Some(0.3125),
            ..best
        };
        assert_eq!(
            Provenance::best(&best).to_string(),
            "best-worst-robust (chosen on validation: worst-class robust 31.25%, epoch 37)"
        );
        let ema = Provenance::new(Some(CheckpointKind::Ema), None);
        assert_eq!(ema.to_string(), "ema (weight average, epoch unknown)");
        assert_eq!(Provenance::default().to_string(), "unknown");
    }
}
