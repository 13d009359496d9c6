//! [`DataError`]: everything that can go wrong while reading or splitting a dataset.
//!
//! Every variant names the file (or dataset directory) and what was wrong with it, so that a
//! user who points `data.dir` at the wrong folder or has a half-downloaded archive can fix it
//! from the message alone.

use std::io;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{path}: file not found{also}")]
    Missing {
        path: String,
        /// Other names that were tried, e.g. the same file without `.gz`.
        also: String,
    },
    #[error("{path}: cannot read: {message}")]
    Io { path: String, message: String },
    #[error("{path}: corrupt gzip data: {message}")]
    Gzip { path: String, message: String },
    #[error("{path}: bad magic number {found} (expected {expected} for an IDX {what} file)")]
    BadMagic {
        path: String,
        found: u32,
        expected: u32,
        what: &'static str,
    },
    #[error("{path}: bad header: {message}")]
    BadHeader { path: String, message: String },
    #[error(
        "{path}: wrong size (truncated or padded?): expected {expected} bytes, found {actual}"
    )]
    Size {
        path: String,
        expected: u64,
        actual: u64,
    },
    #[error("{path}: size {actual} bytes is not a positive multiple of the {record}-byte record")]
    RecordSize {
        path: String,
        actual: u64,
        record: usize,
    },
    #[error("{images} holds {image_count} images but {labels} holds {label_count} labels")]
    CountMismatch {
        images: String,
        image_count: usize,
        labels: String,
        label_count: usize,
    },
    #[error("{path}: record {index} has label {label}, but the dataset has {num_classes} classes")]
    LabelOutOfRange {
        path: String,
        index: usize,
        label: u8,
        num_classes: usize,
    },
    #[error("{path}: {message}")]
    ClassNames { path: String, message: String },
    #[error(
        "{path}: {what} needs {needed} images of class {class} but only {available} are available"
    )]
    NotEnoughImages {
        path: String,
        what: &'static str,
        class: usize,
        needed: usize,
        available: usize,
    },
}

impl DataError {
    /// Map an I/O error on `path` to [`DataError::Missing`] or [`DataError::Io`].
    pub(crate) fn io(path: &Path, err: io::Error) -> DataError {
        if err.kind() == io::ErrorKind::NotFound {
            DataError::Missing {
                path: path.display().to_string(),
                also: String::new(),
            }
        } else {
            DataError::Io {
                path: path.display().to_string(),
                message: err.to_string(),
            }
        }
    }
}

/// Read a whole file, mapping errors to [`DataError`].
pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>, DataError> {
    std::fs::read(path).map_err(|e| DataError::io(path, e))
}
