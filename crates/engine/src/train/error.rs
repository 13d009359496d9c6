//! Errors of the training layer.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum TrainError {
    #[error(transparent)]
    Data(#[from] crate::data::DataError),
    #[error(transparent)]
    Model(#[from] crate::models::ModelError),
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("device {0}")]
    Device(String),
    #[error("cannot resume: {0}")]
    Resume(String),
    #[error("{0}")]
    Invalid(String),
    /// A stop request (SIGTERM, the scheduler's SIGUSR1, a cancel) arrived between two
    /// evaluation batches: the caller saves what it can and stops resumably.
    #[error("stopped by a stop request before the evaluation finished")]
    Stopped,
}
