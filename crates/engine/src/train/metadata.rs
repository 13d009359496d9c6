//! Metadata stored in every checkpoint, so `fairtat eval` can rebuild the model from the file
//! alone. Keys are plain strings (safetensors metadata is string -> string).

use std::collections::BTreeMap;

use fairtat_core::config::{Arch, DatasetKind, RunSpec};

/// The mean/std layer a run's model has (`data.normalize`): part of the function its weights
/// compute, so it is stored in every checkpoint and checked against an initial checkpoint.
pub fn normalization(spec: &RunSpec) -> Option<(Vec<f64>, Vec<f64>)> {
    spec.data
        .normalize
        .then(|| spec.data.dataset.normalization())
}

/// What a checkpoint says about itself.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckpointInfo {
    pub arch: Arch,
    pub dataset: DatasetKind,
    pub in_channels: usize,
    pub num_classes: usize,
    pub image_size: usize,
    pub normalization: Option<(Vec<f64>, Vec<f64>)>,
    pub class_names: Vec<String>,
    pub epoch: usize,
    pub run_id: String,
    pub kind: String,
}

impl CheckpointInfo {
    pub fn for_run(
        spec: &RunSpec,
        in_channels: usize,
        image_size: usize,
        class_names: &[String],
        run_id: &str,
    ) -> Self {
        CheckpointInfo {
            arch: spec.model.arch,
            dataset: spec.data.dataset,
            in_channels,
            num_classes: class_names.len(),
            image_size,
            normalization: normalization(spec),
            class_names: class_names.to_vec(),
            epoch: 0,
            run_id: run_id.to_string(),
            kind: String::new(),
        }
    }

    pub fn to_metadata(&self) -> BTreeMap<String, String> {
        let mut m = BTreeMap::new();
        m.insert("format".into(), "fairtat-checkpoint-v1".into());
        m.insert("arch".into(), self.arch.as_str().into());
        m.insert("dataset".into(), self.dataset.as_str().into());
        m.insert("in_channels".into(), self.in_channels.to_string());
        m.insert("num_classes".into(), self.num_classes.to_string());
        m.insert("image_size".into(), self.image_size.to_string());
        if let Some((mean, std)) = &self.normalization {
            m.insert(
                "normalization".into(),
                serde_json::json!({"mean": mean, "std": std}).to_string(),
            );
        }
        m.insert(
            "class_names".into(),
            serde_json::to_string(&self.class_names).unwrap_or_default(),
        );
        m.insert("epoch".into(), self.epoch.to_string());
        m.insert("run_id".into(), self.run_id.clone());
        m.insert("kind".into(), self.kind.clone());
        m
    }

    /// Parse metadata written by [`CheckpointInfo::to_metadata`]; the error names the key.
    pub fn from_metadata(m: &BTreeMap<String, String>) -> Result<Self, String> {
        let get = |k: &str| {
            m.get(k).ok_or_else(|| {
                format!("checkpoint metadata has no `{k}` (not written by fairtat?)")
            })
        };
        let num = |k: &str| {
            get(k).and_then(|v| {
                v.parse::<usize>()
                    .map_err(|_| format!("checkpoint metadata `{k}` = {v:?} is not a number"))
            })
        };
        let arch = Arch::parse(get("arch")?).ok_or_else(|| {
            format!(
                "checkpoint metadata `arch` = {:?}; allowed: {}",
                m["arch"],
                Arch::NAMES.join(", ")
            )
        })?;
        let dataset = DatasetKind::parse(get("dataset")?)
            .ok_or_else(|| format!("checkpoint metadata `dataset` = {:?}", m["dataset"]))?;
        let normalization = match m.get("normalization") {
            None => None,
            Some(s) => {
                let v: serde_json::Value = serde_json::from_str(s)
                    .map_err(|e| format!("checkpoint metadata `normalization`: {e}"))?;
                let vec = |k: &str| -> Option<Vec<f64>> {
                    v.get(k)?.as_array()?.iter().map(|x| x.as_f64()).collect()
                };
                Some((
                    vec("mean").ok_or("normalization.mean")?,
                    vec("std").ok_or("normalization.std")?,
                ))
            }
        };
        let num_classes = num("num_classes")?;
        let class_names: Vec<String> = m
            .get("class_names")
            .and_then(|s| serde_json::from_str(s).ok())
            .filter(|v: &Vec<String>| v.len() == num_classes)
            .unwrap_or_else(|| (0..num_classes).map(|i| format!("class_{i}")).collect());
        Ok(CheckpointInfo {
            arch,
            dataset,
            in_channels: num("in_channels")?,
            num_classes,
            image_size: num("image_size")?,
            normalization,
            class_names,
            epoch: num("epoch").unwrap_or(0),
            run_id: m.get("run_id").cloned().unwrap_or_default(),
            kind: m.get("kind").cloned().unwrap_or_default(),
        })
    }
}
