//! CIFAR-10 and CIFAR-100 in the binary format (algorithms.md §6.1, §6.2).
//!
//! A record is label byte(s) followed by 3072 pixel bytes already in CHW plane order
//! (1024 red, 1024 green, 1024 blue, each 32x32 row-major), so pixels are copied as-is.

use std::path::{Path, PathBuf};

use super::error::{read_file, DataError};
use super::Dataset;

/// The standard CIFAR-10 names in label order, used when `batches.meta.txt` is absent.
pub const CIFAR10_CLASSES: [&str; 10] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];

const SIDE: usize = 32;
const PIXELS: usize = 3 * SIDE * SIDE;

/// Where the label sits in a record and how long the record is.
struct Layout {
    label_at: usize,
    record: usize,
}

const CIFAR10: Layout = Layout {
    label_at: 0,
    record: 1 + PIXELS,
};
/// Coarse label first, then the fine label we train on.
const CIFAR100: Layout = Layout {
    label_at: 1,
    record: 2 + PIXELS,
};

/// `(train, test)` from `data_batch_1.bin` .. `data_batch_5.bin` and `test_batch.bin`.
pub fn load_cifar10(dir: &Path) -> Result<(Dataset, Dataset), DataError> {
    let names = read_class_names(&dir.join("batches.meta.txt"), 10)?
        .unwrap_or_else(|| CIFAR10_CLASSES.iter().map(|s| s.to_string()).collect());
    let train_files: Vec<PathBuf> = (1..=5)
        .map(|i| dir.join(format!("data_batch_{i}.bin")))
        .collect();
    let train = read_records(&train_files, &CIFAR10, names.clone())?;
    let test = read_records(&[dir.join("test_batch.bin")], &CIFAR10, names)?;
    Ok((train, test))
}

/// `(train, test)` from `train.bin` and `test.bin`, fine labels.
pub fn load_cifar100(dir: &Path) -> Result<(Dataset, Dataset), DataError> {
    let names = read_class_names(&dir.join("fine_label_names.txt"), 100)?
        .unwrap_or_else(|| (0..100).map(|i| format!("class_{i}")).collect());
    let train = read_records(&[dir.join("train.bin")], &CIFAR100, names.clone())?;
    let test = read_records(&[dir.join("test.bin")], &CIFAR100, names)?;
    Ok((train, test))
}

/// Concatenate the records of `files` in order.
fn read_records(
    files: &[PathBuf],
    layout: &Layout,
    class_names: Vec<String>,
) -> Result<Dataset, DataError> {
    let num_classes = class_names.len();
    let mut images = Vec::new();
    let mut labels = Vec::new();
    for path in files {
        let bytes = read_file(path)?;
        if bytes.is_empty() || bytes.len() % layout.record != 0 {
            return Err(DataError::RecordSize {
                path: path.display().to_string(),
                actual: bytes.len() as u64,
                record: layout.record,
            });
        }
        let n = bytes.len() / layout.record;
        images.reserve(n * PIXELS);
        labels.reserve(n);
        for (index, rec) in bytes.chunks_exact(layout.record).enumerate() {
            let label = rec[layout.label_at];
            if label as usize >= num_classes {
                return Err(DataError::LabelOutOfRange {
                    path: path.display().to_string(),
                    index,
                    label,
                    num_classes,
                });
            }
            labels.push(label);
            images.extend_from_slice(&rec[layout.record - PIXELS..]);
        }
    }
    Ok(Dataset {
        images,
        labels,
        channels: 3,
        height: SIDE,
        width: SIDE,
        class_names,
    })
}

/// One name per non-empty line; `None` when the file does not exist. A file with the wrong
/// number of names is an error rather than silently mislabelling every chart.
fn read_class_names(path: &Path, expected: usize) -> Result<Option<Vec<String>>, DataError> {
    let bytes = match read_file(path) {
        Ok(b) => b,
        Err(DataError::Missing { .. }) => return Ok(None),
        Err(e) => return Err(e),
    };
    let text = String::from_utf8(bytes).map_err(|e| DataError::ClassNames {
        path: path.display().to_string(),
        message: format!("not UTF-8 text: {e}"),
    })?;
    let names: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect();
    if names.len() != expected {
        return Err(DataError::ClassNames {
            path: path.display().to_string(),
            message: format!(
                "expected {expected} class names (one per line), found {}",
                names.len()
            ),
        });
    }
    Ok(Some(names))
}
