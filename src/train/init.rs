//! `train.init_checkpoint`: start a run from another run's weights (FRL fine-tunes a
//! pre-trained robust model, algorithms.md §3.4). The checkpoint's own metadata must describe
//! the same architecture and input/output shapes, so a mismatch is a clear error rather than a
//! shape failure deep inside the loader.

use std::path::Path;

use super::metadata::CheckpointInfo;
use super::TrainError;
use crate::config::RunSpec;
use crate::models::{read_metadata, Model};

/// Load `spec.train.init_checkpoint` into `model` (a no-op when it is empty); `channels`,
/// `image_size` are the data's.
pub fn load_init_checkpoint(
    spec: &RunSpec,
    model: &mut Model,
    channels: usize,
    image_size: usize,
) -> Result<(), TrainError> {
    let p = spec.train.init_checkpoint.trim();
    if p.is_empty() {
        return Ok(());
    }
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
    model.load(path).map_err(|e| bad(e.to_string()))
}
