//! `fairtat eval`: rebuild a model from a checkpoint's metadata and evaluate it on a test set,
//! clean and under the requested attacks, with every class-wise metric.

use std::path::PathBuf;

use tch::Device;

use super::eval::{evaluate, EvalAttack};
use super::metadata::CheckpointInfo;
use super::TrainError;
use crate::config::{from_toml_str, DatasetKind};
use crate::data;
use crate::fairness::ClassMetrics;
use crate::models::{read_metadata, Model};
use crate::runs::EvalRecord;

pub struct EvalOptions {
    pub checkpoint: PathBuf,
    /// Overrides the dataset recorded in the checkpoint.
    pub dataset: Option<DatasetKind>,
    pub data_dir: Option<PathBuf>,
    /// `clean`, `fgsm`, `pgd-<k>`.
    pub attacks: Vec<String>,
    pub eps: f64,
    pub alpha: f64,
    /// Class-balanced test subset; 0 = all.
    pub subset: usize,
    pub batch_size: usize,
    pub device: Device,
}

#[derive(Debug, serde::Serialize)]
pub struct EvalReport {
    pub checkpoint: String,
    pub arch: String,
    pub dataset: String,
    pub epoch: usize,
    pub eps: f64,
    pub images: usize,
    pub class_names: Vec<String>,
    pub evals: Vec<EvalRecord>,
}

/// Evaluate; `on_progress(attack, done, total)` after every batch.
pub fn eval_checkpoint(
    opts: &EvalOptions,
    mut on_progress: impl FnMut(&str, usize, usize),
) -> Result<EvalReport, TrainError> {
    let meta = read_metadata(&opts.checkpoint)?;
    let info = CheckpointInfo::from_metadata(&meta)
        .map_err(|e| TrainError::Invalid(format!("{}: {e}", opts.checkpoint.display())))?;
    let attacks: Vec<Option<EvalAttack>> = opts
        .attacks
        .iter()
        .map(|a| {
            EvalAttack::parse(a, opts.eps, opts.alpha).ok_or_else(|| {
                TrainError::Invalid(format!("--attack {a:?}; allowed: clean, fgsm, pgd-<k>"))
            })
        })
        .collect::<Result<_, _>>()?;
    let dataset = opts.dataset.unwrap_or(info.dataset);
    let mut sets = vec![
        format!("data.dataset={}", dataset.as_str()),
        "data.val_per_class=0".into(),
        format!("data.test_subset={}", opts.subset),
    ];
    if let Some(dir) = &opts.data_dir {
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
        opts.device,
    )?;
    model.load(&opts.checkpoint)?;
    let mut evals = vec![];
    for a in &attacks {
        let name = a
            .as_ref()
            .map(|a| a.name.clone())
            .unwrap_or_else(|| "clean".into());
        let cm = evaluate(&model, &test, a.as_ref(), opts.batch_size, |d, t| {
            on_progress(&name, d, t)
        });
        evals.push(EvalRecord {
            split: "test".into(),
            attack: name,
            model: info.kind.clone(),
            confusion: cm.rows(),
            metrics: ClassMetrics::from_confusion(&cm),
        });
    }
    Ok(EvalReport {
        checkpoint: opts.checkpoint.display().to_string(),
        arch: info.arch.as_str().into(),
        dataset: dataset.as_str().into(),
        epoch: info.epoch,
        eps: opts.eps,
        images: test.len(),
        class_names: test.class_names.clone(),
        evals,
    })
}
