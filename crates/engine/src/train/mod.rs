//! The training loop: synchronous, single-threaded per run, no tokio, no HTTP (STYLE.md).
//!
//! [`train`] runs a [`RunSpec`](fairtat_core::config::RunSpec) into a run directory, emitting
//! [`RunEvent`](fairtat_core::runs::RunEvent)s to whatever sinks the caller passes (the JSONL writer, the
//! CLI progress bar, tests). It checks a stop flag after every batch: a cancel finishes the
//! batch, writes a checkpoint and returns [`Outcome::Cancelled`].
//!
//! The epoch loop (`runner`) only orders processors, one file each: `epoch_start` (method
//! preparation, batch order, resumed counts), `step` (one batch), `tally` (training
//! book-keeping), `meter` (progress and ETA), `ema`, `epoch_eval` (evaluation, FAWA via `fawa`),
//! `selection` (`best-worst-robust`) and `resume_point` (checkpoints, `state.json` via `commit`).

pub mod class_sampler;
mod commit;
pub mod device;
mod ema;
mod epoch_eval;
mod epoch_start;
mod error;
mod eta;
mod eval;
pub mod fawa;
mod init;
mod metadata;
mod meter;
mod progress;
mod resume_point;
mod runner;
pub mod schedule;
mod selection;
mod session;
mod sgd;
mod state;
mod step;
mod tally;
pub mod threads;

pub use error::TrainError;
pub use eval::{check_stop, eval_record, evaluate, EvalAttack, NO_STOP};
pub use metadata::CheckpointInfo;
pub use progress::ProgressSink;
pub use runner::{train, train_on, Outcome, TrainOptions};
pub use sgd::Sgd;
pub use state::ResumeState;
