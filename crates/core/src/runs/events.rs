//! The event schema of `events.jsonl`: one self-describing JSON object per line.
//!
//! Every line carries the schema version `v`, a sequence number `seq` (0, 1, 2, ... per run; the
//! SSE event id, so a browser reconnecting with `Last-Event-ID` misses nothing), a wall-clock
//! timestamp and a `type` tag. Readers ignore unknown fields; a new field needs no version bump,
//! a changed meaning does.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::fairness::ClassMetrics;

/// Version of the line format written by this build.
pub const SCHEMA_VERSION: u32 = 1;

/// One line of `events.jsonl`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EventLine {
    pub v: u32,
    pub seq: u64,
    /// Seconds since the Unix epoch.
    #[serde(deserialize_with = "crate::util::nonfinite::f64_or_nan")]
    pub time: f64,
    #[serde(flatten)]
    pub event: RunEvent,
}

crate::named_enum! {
    /// Lifecycle of a run, as the dashboard shows it.
    #[derive(Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum RunStatus {
        /// Waiting in the server's queue (never written by the trainer).
        Queued = "queued",
        Running = "running",
        Finished = "finished",
        Failed = "failed",
        Cancelled = "cancelled",
        /// The process vanished without a final event (crash, kill -9, server host reboot).
        Interrupted = "interrupted",
    }
}

impl RunStatus {
    /// True once no more events will come from the trainer.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            RunStatus::Finished | RunStatus::Failed | RunStatus::Cancelled | RunStatus::Interrupted
        )
    }
}

/// What happened.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RunEvent {
    /// The trainer started (or resumed) the run.
    Started {
        run_id: String,
        /// The resolved `RunSpec` as JSON.
        spec: serde_json::Value,
        class_names: Vec<String>,
        device: String,
        train_size: usize,
        val_size: usize,
        test_size: usize,
        /// Epochs already done when this process started (0 for a fresh run).
        start_epoch: usize,
        pid: u32,
    },
    /// Batch progress: after the first batch, every `log_every` batches, after the last and
    /// at least every couple of seconds (see the trainer's `meter`).
    Progress(ProgressRecord),
    /// One finished epoch with every metric.
    Epoch(Box<EpochRecord>),
    /// A checkpoint file was (re)written.
    Checkpoint {
        epoch: usize,
        kind: String,
        file: String,
    },
    /// A free-form message worth showing in the log tail.
    Log { level: String, message: String },
    /// The trainer stopped; nothing follows.
    Finished {
        status: RunStatus,
        epochs_done: usize,
        message: Option<String>,
    },
}

/// One batch-progress line: batch `batch` of `batches` in 0-based `epoch`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProgressRecord {
    pub epoch: usize,
    pub batch: usize,
    pub batches: usize,
    /// The epoch's running mean loss.
    #[serde(deserialize_with = "crate::util::nonfinite::f64_or_nan")]
    pub loss: f64,
    #[serde(deserialize_with = "crate::util::nonfinite::f64_or_nan")]
    pub images_per_sec: f64,
    /// Estimated seconds until the run finishes.
    #[serde(deserialize_with = "crate::util::nonfinite::f64_or_nan")]
    pub eta_secs: f64,
    /// Mean loss over the batches since the previous progress event (the step-level
    /// curve; `loss` is the epoch's running mean). Absent in older logs.
    #[serde(default)]
    pub step_loss: Option<f64>,
    /// Estimated seconds until this epoch's training part ends. Absent in older logs.
    #[serde(default)]
    pub epoch_eta_secs: Option<f64>,
}

/// Everything recorded at the end of one epoch (0-based `epoch`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    pub epoch: usize,
    pub epochs: usize,
    /// Learning rate at the end of the epoch.
    #[serde(deserialize_with = "crate::util::nonfinite::f64_or_nan")]
    pub lr: f64,
    /// Mean training loss over the epoch.
    #[serde(deserialize_with = "crate::util::nonfinite::f64_or_nan")]
    pub train_loss: f64,
    /// Wall-clock seconds of the training part of the epoch.
    #[serde(deserialize_with = "crate::util::nonfinite::f64_or_nan")]
    pub train_secs: f64,
    /// Wall-clock seconds of the evaluation part.
    #[serde(deserialize_with = "crate::util::nonfinite::f64_or_nan")]
    pub eval_secs: f64,
    #[serde(deserialize_with = "crate::util::nonfinite::f64_or_nan")]
    pub images_per_sec: f64,
    /// Per-class training epsilon in force during this epoch (in [0,1] pixel units).
    #[serde(deserialize_with = "crate::util::nonfinite::vec_or_nan")]
    pub class_eps: Vec<f64>,
    /// Target-sampling distribution over classes used this epoch (targeted methods only),
    /// before the true class is excluded per sample.
    #[serde(default, deserialize_with = "crate::util::nonfinite::opt_vec_or_nan")]
    pub target_probs: Option<Vec<f64>>,
    /// How often each class was drawn as a target this epoch.
    pub target_counts: Option<Vec<u64>>,
    /// Evaluations: training adversarial predictions, validation and test, clean and attacked,
    /// live model and EMA.
    pub evals: Vec<EvalRecord>,
    /// Method-specific class-wise state (e.g. CFA's beta_k), keyed by a short name.
    #[serde(default, deserialize_with = "crate::util::nonfinite::map_vec_or_nan")]
    pub method_state: BTreeMap<String, Vec<f64>>,
}

impl EpochRecord {
    /// The evaluation for a (split, attack, model) triple, if recorded.
    pub fn eval(&self, split: &str, attack: &str, model: &str) -> Option<&EvalRecord> {
        self.evals
            .iter()
            .find(|e| e.split == split && e.attack == attack && e.model == model)
    }
}

/// One evaluation of one model on one split under one attack.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalRecord {
    /// `train` (the training-time adversarial predictions), `val` or `test`.
    pub split: String,
    /// `clean`, `pgd-10`, `pgd-20`, `train-attack` ...
    pub attack: String,
    /// `live` or `ema`.
    pub model: String,
    /// Rows = true class, columns = prediction.
    pub confusion: Vec<Vec<u64>>,
    #[serde(flatten)]
    pub metrics: ClassMetrics,
}

/// Receives events from the training loop. The JSONL writer, the CLI progress bar and tests are
/// sinks of the same events (burn-train's event processors).
pub trait EventSink {
    fn emit(&mut self, event: &RunEvent);
}

/// A sink that keeps everything in memory (tests, `fairtat eval`).
#[derive(Default, Debug)]
pub struct MemorySink {
    pub events: Vec<RunEvent>,
}

impl EventSink for MemorySink {
    fn emit(&mut self, event: &RunEvent) {
        self.events.push(event.clone());
    }
}

/// Broadcast to several sinks in order.
impl EventSink for Vec<Box<dyn EventSink>> {
    fn emit(&mut self, event: &RunEvent) {
        for s in self.iter_mut() {
            s.emit(event);
        }
    }
}
