//! Whole training runs of a few seconds, shared by the method and baseline tests: the tiny
//! settings and the in-process training call.

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use fairtat::config::RunSpec;
use fairtat::data::Splits;
use fairtat::runs::{EpochRecord, EventSink, RunDir, RunEvent};
use fairtat::train::{train_on, Outcome, TrainError, TrainOptions};
use tch::Device;

/// Settings that keep a run to a few seconds: batches of 20, 2-step attacks, evaluation in
/// batches of 40, no progress lines.
pub const TINY: [&str; 10] = [
    "device=cpu",
    "train.batch_size=20",
    "train.lr=0.05",
    "train.lr_schedule=constant",
    "attack.steps=2",
    "attack.alpha=0.02",
    "eval.steps=2",
    "eval.final_steps=2",
    "eval.batch_size=40",
    "train.log_every=100",
];

/// Train `spec` on `splits` into `dir` on the CPU (resuming a run there when `resume`).
pub fn train_into(
    spec: &RunSpec,
    splits: Splits,
    dir: &Path,
    resume: bool,
    sink: &mut dyn EventSink,
) -> Result<Outcome, TrainError> {
    std::fs::create_dir_all(dir).unwrap();
    let opts = TrainOptions {
        device: Device::Cpu,
        stop: Arc::new(AtomicBool::new(false)),
        resume,
    };
    train_on(spec, splits, &RunDir::new(dir), &opts, sink)
}

/// The epoch records among `events`.
pub fn epoch_records(events: &[RunEvent]) -> Vec<EpochRecord> {
    events
        .iter()
        .filter_map(|e| match e {
            RunEvent::Epoch(r) => Some((**r).clone()),
            _ => None,
        })
        .collect()
}
