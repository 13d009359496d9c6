//! What a resumed run needs beyond the weights: `checkpoints/state.json`, written atomically at
//! every epoch end and on cancel, next to `last.safetensors`, `optimizer.safetensors`,
//! `ema.safetensors` and `fawa.safetensors`.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use fairtat_core::fairness::ClassMetrics;

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
    /// Which save wrote the checkpoint files this state refers to (see `train::commit`).
    #[serde(default)]
    pub save_id: Option<u64>,
    /// The epoch stamped into `last.safetensors` by that save: resume refuses a mismatch.
    #[serde(default)]
    pub checkpoint_epoch: Option<usize>,
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
