//! Errors of model construction, forward input checks and checkpoint I/O. Every variant names
//! the file or tensor concerned.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("invalid model configuration: {0}")]
    Config(String),
    #[error("input of shape {shape:?} does not fit the model: {reason}")]
    Input { shape: Vec<i64>, reason: String },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: not a valid safetensors checkpoint: {reason}", path.display())]
    Format { path: PathBuf, reason: String },
    #[error("{}: checkpoint has no tensor `{name}` (wrong architecture?)", path.display())]
    Missing { path: PathBuf, name: String },
    #[error("{}: tensor `{name}` has shape {found:?}, the model expects {expected:?}", path.display())]
    Shape {
        path: PathBuf,
        name: String,
        expected: Vec<i64>,
        found: Vec<usize>,
    },
    #[error("{}: tensor `{name}` has dtype {dtype}, expected a float type", path.display())]
    Dtype {
        path: PathBuf,
        name: String,
        dtype: String,
    },
    #[error("{}: unexpected tensor `{name}` (not a variable of this model)", path.display())]
    Unexpected { path: PathBuf, name: String },
    #[error("torch: {0}")]
    Torch(#[from] tch::TchError),
}
