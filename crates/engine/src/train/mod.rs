//! The training loop: synchronous, single-threaded per run, no tokio, no HTTP (STYLE.md).
//!
//! [`train`] runs a [`RunSpec`](fairtat_core::config::RunSpec) into a run directory, emitting
//! [`RunEvent`](fairtat_core::runs::RunEvent)s to whatever sinks the caller passes (the JSONL writer, the
//! CLI progress bar, tests). It checks a stop flag after every batch: a cancel finishes the
//! batch, writes a checkpoint and returns [`Outcome::Cancelled`].

mod commit;
pub mod device;
mod epoch_eval;
mod error;
mod eta;
mod eval;
pub mod fawa;
mod init;
mod metadata;
mod progress;
mod runner;
pub mod schedule;
mod session;
mod sgd;
mod state;

pub use error::TrainError;
pub use eval::{evaluate, EvalAttack};
pub use metadata::CheckpointInfo;
pub use progress::ProgressSink;
pub use runner::{train, train_on, Outcome, TrainOptions};
pub use sgd::Sgd;
pub use state::ResumeState;
