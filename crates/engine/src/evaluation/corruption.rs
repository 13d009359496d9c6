//! Accuracy under common corruptions, class by class (the paper's Tables 3 and 4: minimum class
//! accuracy per corruption).
//!
//! Two sources: the released CIFAR-10-C / CIFAR-100-C `.npy` files of a directory the user names
//! (`hendrycks/robustness`; 10,000 images per severity), or the seeded procedural generators of
//! [`crate::corruptions`] applied to the test set (any dataset, Fashion-MNIST included). Each
//! (corruption, severity) gets a confusion matrix; severity 0 in the results is the five
//! severities pooled, which is how the FAIR-TAT code evaluates a whole `.npy` file at once.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use crate::corruptions::{corrupt_dataset, load_cifar_c, CORRUPTIONS};
use crate::data::Dataset;
use crate::models::Model;
use crate::train::{evaluate, TrainError};
use fairtat_core::fairness::{ClassMetrics, ConfusionMatrix};
use fairtat_core::runs::eval_report::CorruptionResult;

/// The 18 corruptions of FAIR-TAT's `corruptions.txt` (algorithms.md §1.7), in the order of the
/// paper's Tables 3 and 4; the default list for a CIFAR-C directory.
pub const CIFAR_C_18: [&str; 18] = [
    "gaussian_noise",
    "shot_noise",
    "speckle_noise",
    "impulse_noise",
    "defocus_blur",
    "gaussian_blur",
    "motion_blur",
    "zoom_blur",
    "snow",
    "fog",
    "brightness",
    "contrast",
    "elastic_transform",
    "pixelate",
    "jpeg_compression",
    "spatter",
    "saturate",
    "frost",
];

/// Where corrupted images come from.
#[derive(Clone, Debug)]
pub enum CorruptionSource {
    /// Procedural generators on the test set, image `i` seeded from `(seed, name, severity, i)`.
    Procedural { seed: u64 },
    /// `<dir>/<corruption>.npy` + `<dir>/labels.npy` (CIFAR-10-C / CIFAR-100-C layout).
    Files { dir: PathBuf },
}

/// The corruptions to run: `names` when given (checked against what the source offers),
/// otherwise every generator, or every one of the 18 whose file exists in the directory.
pub fn resolve_names(
    source: &CorruptionSource,
    names: &[String],
) -> Result<Vec<String>, TrainError> {
    match source {
        CorruptionSource::Procedural { .. } => {
            if names.is_empty() {
                return Ok(CORRUPTIONS.iter().map(|s| s.to_string()).collect());
            }
            for n in names {
                if !CORRUPTIONS.contains(&n.as_str()) {
                    return Err(TrainError::Invalid(format!(
                        "--corruption {n:?} has no procedural generator; allowed: {} \
                         (or name a CIFAR-C directory with --corruptions-dir)",
                        CORRUPTIONS.join(", ")
                    )));
                }
            }
            Ok(names.to_vec())
        }
        CorruptionSource::Files { dir } => {
            if !dir.join("labels.npy").is_file() {
                return Err(TrainError::Invalid(format!(
                    "--corruptions-dir {}: labels.npy not found (expected the CIFAR-10-C layout: \
                     <corruption>.npy files and labels.npy)",
                    dir.display()
                )));
            }
            if !names.is_empty() {
                return Ok(names.to_vec());
            }
            let found: Vec<String> = CIFAR_C_18
                .iter()
                .filter(|n| npy(dir, n).is_file())
                .map(|s| s.to_string())
                .collect();
            if found.is_empty() {
                return Err(TrainError::Invalid(format!(
                    "--corruptions-dir {}: none of the corruption files {}.npy ... was found",
                    dir.display(),
                    CIFAR_C_18[0]
                )));
            }
            Ok(found)
        }
    }
}

fn npy(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.npy"))
}

/// Evaluate `model` under each corruption of `names` at `severities` (1..=5), read or made by
/// `source`, plus the pooled row. `on_progress(label, done, total)` counts (corruption,
/// severity) pairs.
pub fn evaluate_corruptions(
    model: &Model,
    test: &Dataset,
    (source, names, severities): (&CorruptionSource, &[String], &[u8]),
    batch_size: usize,
    stop: &AtomicBool,
    on_progress: &mut dyn FnMut(&str, usize, usize),
) -> Result<Vec<CorruptionResult>, TrainError> {
    let k = test.num_classes();
    let total = names.len() * severities.len();
    let mut done = 0;
    let mut out = Vec::new();
    for name in names {
        let sets: Vec<(u8, Dataset)> = match source {
            CorruptionSource::Procedural { seed } => severities
                .iter()
                .map(|&s| {
                    corrupt_dataset(test, name, s, *seed)
                        .map(|d| (s, d))
                        .map_err(|e| TrainError::Invalid(e.to_string()))
                })
                .collect::<Result<_, _>>()?,
            CorruptionSource::Files { dir } => {
                load_cifar_c(dir, name, Some(test.class_names.clone()))
                    .map_err(|e| TrainError::Invalid(e.to_string()))?
                    .into_iter()
                    .filter(|(s, _)| severities.contains(s))
                    .collect()
            }
        };
        let mut pooled = ConfusionMatrix::new(k);
        for (severity, ds) in sets {
            check_shape(test, &ds, name)?;
            let label = format!("{name} s{severity}");
            on_progress(&label, done, total);
            let cm = evaluate(model, &ds, None, batch_size, stop, |_, _| {})?;
            pooled.merge(&cm);
            out.push(result(name, severity, &cm));
            done += 1;
            on_progress(&label, done, total);
        }
        out.push(result(name, 0, &pooled));
    }
    Ok(out)
}

fn result(name: &str, severity: u8, cm: &ConfusionMatrix) -> CorruptionResult {
    CorruptionResult {
        corruption: name.to_string(),
        severity,
        confusion: cm.rows(),
        metrics: ClassMetrics::from_confusion(cm),
    }
}

/// Corruption files must match the model's input (a CIFAR-100-C file for a CIFAR-10 model is
/// a user error, not a crash inside libtorch).
fn check_shape(test: &Dataset, ds: &Dataset, name: &str) -> Result<(), TrainError> {
    let expect = (test.channels, test.height, test.width);
    let got = (ds.channels, ds.height, ds.width);
    if expect != got {
        return Err(TrainError::Invalid(format!(
            "corruption {name}: images are {got:?} (C, H, W) but the model takes {expect:?}"
        )));
    }
    if ds.num_classes() > test.num_classes()
        || ds.labels.iter().any(|&l| l as usize >= test.num_classes())
    {
        return Err(TrainError::Invalid(format!(
            "corruption {name}: labels exceed the model's {} classes",
            test.num_classes()
        )));
    }
    Ok(())
}
