//! What a resumed run needs beyond the weights: `checkpoints/state.json`, written atomically at
//! every epoch end and on cancel, next to `last.safetensors`, `optimizer.safetensors`,
//! `ema.safetensors` and `fawa.safetensors`.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use fairtat_core::fairness::ClassMetrics;
use fairtat_core::runs::EvalRecord;

/// Loop state at a batch boundary.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ResumeState {
    /// Completed epochs.
    pub epochs_done: usize,
    /// Batches already done in epoch `epochs_done` (non-zero only after a cancel mid-epoch).
    pub batches_done: usize,
    /// Training counts of the partial epoch, so a resumed epoch reports the same statistics.
    pub partial: Option<PartialEpoch>,
    /// Training adversarial metrics of the last completed epoch (what calibration reads).
    pub prev_train: Option<ClassMetrics>,
    /// Best validation worst-class robust accuracy so far (for `best-worst-robust`).
    pub best_val_worst_robust: Option<f64>,
    /// Validation clean accuracy of that checkpoint: it breaks ties of the worst class.
    #[serde(default)]
    pub best_val_clean: Option<f64>,
    pub ema_initialized: bool,
    /// FAWA has absorbed at least one epoch (`fawa.safetensors` exists).
    #[serde(default)]
    pub fawa_initialized: bool,
    /// The method's cross-epoch state ([`crate::methods::Method::resume_state`]).
    #[serde(default)]
    pub method: BTreeMap<String, Vec<f64>>,
    /// CFOL's log-weights (`train.class_sampler = "cfol"`).
    #[serde(default)]
    pub cfol_log_weights: Option<Vec<f64>>,
    /// Which save wrote the checkpoint files this state refers to (see `train::commit`).
    #[serde(default)]
    pub save_id: Option<u64>,
    /// The epoch stamped into `last.safetensors` by that save: resume refuses a mismatch.
    #[serde(default)]
    pub checkpoint_epoch: Option<usize>,
    /// SHA-256 (hex) of each file of that save, by file name: a resume refuses a file that
    /// changed since (a flipped bit would otherwise train on silently). Empty in older states.
    #[serde(default)]
    pub checksums: BTreeMap<String, String>,
    /// Set when a stop interrupted epoch `epochs_done`'s evaluation: the epoch is trained
    /// (`batches_done` = all its batches) and its EMA (and FAWA, if recorded here) updated in
    /// the saved checkpoints; resume trains nothing and continues the evaluation.
    #[serde(default)]
    pub pending_eval: Option<PendingEval>,
}

/// An epoch's evaluation so far: what a stop in the middle of it keeps, so resume neither
/// trains the epoch again nor repeats its EMA or FAWA update nor an evaluation it finished.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct PendingEval {
    /// The EMA became an exact copy of the live model in this epoch's update.
    pub ema_is_copy: bool,
    /// FAWA's `method_state` entries once its update was applied (`None`: not yet applied).
    pub fawa: Option<BTreeMap<String, Vec<f64>>>,
    /// FAWA became a copy of the live model in that update.
    pub fawa_is_copy: bool,
    /// The records finished so far (the training record excluded), in evaluation order.
    pub evals: Vec<EvalRecord>,
    /// Seconds spent evaluating before the stop.
    pub secs: f64,
}

impl PendingEval {
    /// A fresh evaluation after this epoch's EMA update.
    pub fn new(ema_is_copy: bool) -> Self {
        PendingEval {
            ema_is_copy,
            ..PendingEval::default()
        }
    }

    /// The finished record of (split, attack, model), if any.
    pub fn find(&self, split: &str, attack: &str, model: &str) -> Option<&EvalRecord> {
        self.evals
            .iter()
            .find(|r| r.split == split && r.attack == attack && r.model == model)
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct PartialEpoch {
    pub confusion: Vec<Vec<u64>>,
    pub loss_sum: f64,
    pub images: usize,
    pub target_counts: Vec<u64>,
    pub train_secs: f64,
}

impl ResumeState {
    /// A cancel after batch `batches_done` of epoch `epochs_done` with these counts.
    pub fn pause_at(&mut self, batches_done: usize, partial: PartialEpoch) {
        self.batches_done = batches_done;
        self.partial = Some(partial);
    }

    /// Epoch `epoch` is complete; `train` is its training metrics (what calibration reads next).
    pub fn close_epoch(&mut self, epoch: usize, train: ClassMetrics) {
        self.epochs_done = epoch + 1;
        self.batches_done = 0;
        self.partial = None;
        self.pending_eval = None;
        self.prev_train = Some(train);
    }

    /// `epochs_done` as the committed checkpoint implies it: the epoch after
    /// `checkpoint_epoch`, or that epoch itself when a stop paused it (batches or its
    /// evaluation pending). A hand-edited count would skip or repeat epochs on resume and show
    /// a progress that no checkpoint holds.
    pub fn check_epochs(&self) -> Result<(), String> {
        let Some(epoch) = self.checkpoint_epoch else {
            return Ok(()); // written before epochs were stamped into the state
        };
        let paused = self.batches_done > 0 || self.pending_eval.is_some();
        let want = if paused { epoch } else { epoch + 1 };
        if self.epochs_done == want {
            return Ok(());
        }
        Err(format!(
            "checkpoints/state.json says epochs_done = {} but its checkpoint holds epoch {epoch}{}, \
             so epochs_done must be {want}; the file was edited or copied incompletely",
            self.epochs_done,
            if paused { " (paused inside it)" } else { " (completed)" },
        ))
    }

    pub fn load(path: &Path) -> std::io::Result<Self> {
        let text = std::fs::read_to_string(path)?;
        serde_json::from_str(&text).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{}: {e}", path.display()),
            )
        })
    }

    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(self)?)?;
        std::fs::File::open(&tmp)?.sync_all()?;
        std::fs::rename(tmp, path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fairtat_core::fairness::ConfusionMatrix;

    #[test]
    fn a_pause_keeps_the_partial_epoch_until_the_epoch_closes() {
        let mut s = ResumeState {
            epochs_done: 2,
            ..ResumeState::default()
        };
        s.pause_at(3, PartialEpoch::default());
        assert_eq!(
            (s.epochs_done, s.batches_done, s.partial.is_some()),
            (2, 3, true)
        );
        let train = ClassMetrics::from_confusion(&ConfusionMatrix::from_pairs(2, &[0, 1], &[0, 0]));
        s.close_epoch(2, train);
        assert_eq!(
            (s.epochs_done, s.batches_done, s.partial.is_none()),
            (3, 0, true)
        );
        assert_eq!(s.prev_train.map(|m| m.overall), Some(0.5));
    }

    #[test]
    fn saves_and_loads_through_a_rename() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let mut s = ResumeState::default();
        s.pause_at(4, PartialEpoch::default());
        s.save(&path).unwrap();
        let back = ResumeState::load(&path).unwrap();
        assert_eq!(back.batches_done, 4);
        assert!(!path.with_extension("json.tmp").exists());
    }
}
