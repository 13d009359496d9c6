//! `train.init_checkpoint` / `train.init_from_run`: start a run from another run's weights (FRL
//! fine-tunes a pre-trained robust model, algorithms.md §3.4; it refuses random weights). The checkpoint's own metadata must describe
//! the same architecture and input/output shapes, so a mismatch is a clear error rather than a
//! shape failure deep inside the loader.

use std::path::Path;

use super::metadata::CheckpointInfo;
use super::TrainError;
use crate::models::{read_metadata, Model};
use fairtat_core::config::RunSpec;
use fairtat_core::runs::deps::{dependency_state, DependencyState};

/// The checkpoint a run starts from: the `last` checkpoint of the grid run
/// `train.init_from_run` (found next to `run_root` or at `train.init_checkpoint`; it must have
/// finished), else `train.init_checkpoint`; `None` = random init, which FRL never gets.
pub fn init_checkpoint_path(spec: &RunSpec, run_root: &Path) -> Result<Option<String>, TrainError> {
    let t = &spec.train;
    if t.init_from_run.trim().is_empty() && !t.init_checkpoint.trim().is_empty() {
        return Ok(Some(t.init_checkpoint.trim().to_string()));
    }
    if t.init_from_run.trim().is_empty() {
        if !t.init_from.trim().is_empty() {
            return Err(TrainError::Invalid(format!(
                "train.init_from = {:?} names a row of a grid: start this config as part of a \
                 grid, or set train.init_checkpoint",
                t.init_from
            )));
        }
        if spec.method.name.def().needs_init_checkpoint {
            return Err(TrainError::Invalid(format!(
                "train.init_checkpoint is empty: {} fine-tunes a trained model (a TRADES run's \
                 checkpoints/last.safetensors) and does not start from random weights",
                spec.method.name.as_str()
            )));
        }
        return Ok(None);
    }
    // A source run must have finished, even when its checkpoint path is already recorded: a
    // cancelled or failed source leaves a `last` checkpoint that is not the trained model.
    let runs_dir = run_root.parent().unwrap_or(Path::new("."));
    match dependency_state(runs_dir, spec) {
        DependencyState::Ready(Some(p)) => Ok(Some(p.display().to_string())),
        DependencyState::Ready(None) => Ok(None),
        DependencyState::Waiting(id) => Err(TrainError::Invalid(format!(
            "train.init_from_run = {:?}: run {id} has not finished yet",
            t.init_from_run
        ))),
        DependencyState::Failed(why) => Err(TrainError::Invalid(format!(
            "train.init_from_run = {:?}: {why}",
            t.init_from_run
        ))),
    }
}

/// Load the run's starting checkpoint ([`init_checkpoint_path`]) into `model` (a no-op for
/// random init); `channels`, `image_size` are the data's.
pub fn load_init_checkpoint(
    spec: &RunSpec,
    run_root: &Path,
    model: &mut Model,
    channels: usize,
    image_size: usize,
) -> Result<(), TrainError> {
    let Some(p) = init_checkpoint_path(spec, run_root)? else {
        return Ok(());
    };
    let p = p.as_str();
    let path = Path::new(p);
    let bad = |why: String| TrainError::Invalid(format!("train.init_checkpoint = {p:?}: {why}"));
    if !path.is_file() {
        return Err(bad("no such file".into()));
    }
    let meta = read_metadata(path).map_err(|e| bad(e.to_string()))?;
    let info = CheckpointInfo::from_metadata(&meta).map_err(bad)?;
    let want = (spec.model.arch, spec.num_classes(), channels, image_size);
    let have = (
        info.arch,
        info.num_classes,
        info.in_channels,
        info.image_size,
    );
    if want != have {
        return Err(bad(format!(
            "checkpoint is {} with {} classes on {}x{}px {}-channel images; this run needs {} with {} classes on {}x{}px {}-channel images",
            have.0.as_str(), have.1, have.3, have.3, have.2,
            want.0.as_str(), want.1, want.3, want.3, want.2,
        )));
    }
    // The normalisation is part of the function the weights compute: weights trained on raw
    // pixels are wrong behind a mean/std layer, and the other way round.
    let norm = super::metadata::normalization(spec);
    if info.normalization.is_some() != norm.is_some() {
        return Err(bad(format!(
            "checkpoint was trained with data.normalize = {}; this run has {}",
            info.normalization.is_some(),
            norm.is_some()
        )));
    }
    model.load(path).map_err(|e| bad(e.to_string()))
}
