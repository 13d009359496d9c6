//! Rebuild a model from a checkpoint's metadata and load the test set it was trained for (or
//! the one the user names), checking that the two fit together.

use std::path::{Path, PathBuf};

use tch::Device;

use crate::data::{self, Dataset};
use crate::models::{read_metadata, Model};
use crate::train::{CheckpointInfo, TrainError};
use fairtat_core::config::{from_toml_str, DatasetKind};

/// A model ready for evaluation and its test set.
pub struct Loaded {
    pub model: Model,
    pub info: CheckpointInfo,
    pub dataset: DatasetKind,
    pub test: Dataset,
}

/// Load `checkpoint`; `dataset`/`data_dir` override what the checkpoint recorded; `subset` is a
/// class-balanced test subset (0 = all).
pub fn load(
    checkpoint: &Path,
    dataset: Option<DatasetKind>,
    data_dir: Option<&PathBuf>,
    subset: usize,
    device: Device,
) -> Result<Loaded, TrainError> {
    let meta = read_metadata(checkpoint)?;
    let info = CheckpointInfo::from_metadata(&meta)
        .map_err(|e| TrainError::Invalid(format!("{}: {e}", checkpoint.display())))?;
    let dataset = dataset.unwrap_or(info.dataset);
    let mut sets = vec![
        format!("data.dataset={}", dataset.as_str()),
        "data.val_per_class=0".into(),
        format!("data.test_subset={subset}"),
    ];
    if let Some(dir) = data_dir {
        sets.push(format!("data.dir={:?}", dir.display().to_string()));
    }
    let spec = from_toml_str("", &sets).map_err(|e| TrainError::Invalid(e.to_string()))?;
    let test = data::load(&spec.data)?.test;
    if test.num_classes() != info.num_classes || test.channels != info.in_channels {
        return Err(TrainError::Invalid(format!(
            "checkpoint expects {} classes and {} channel(s); {} has {} and {}",
            info.num_classes,
            info.in_channels,
            dataset.as_str(),
            test.num_classes(),
            test.channels
        )));
    }
    let mut model = Model::new(
        info.arch,
        info.in_channels,
        info.num_classes,
        info.image_size,
        info.normalization.clone(),
        device,
    )?;
    model.load(checkpoint)?;
    Ok(Loaded {
        model,
        info,
        dataset,
        test,
    })
}
