//! One run at a glance (the dashboard's runs table), derived purely from its events.
//!
//! `from_events` folds `apply` over the lines, so the server can keep a summary current by
//! applying each tailed line, and rebuild it from `events.jsonl` after a restart with the same
//! result. Interrupted (a trainer that vanished without a `Finished` line) needs process
//! knowledge and is decided by the server, not here.

use serde::{Deserialize, Serialize};

use super::events::{EpochRecord, EvalRecord, EventLine, RunEvent, RunStatus};
use super::layout::RunDir;

/// Headline numbers of one evaluation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Headline {
    /// 0-based epoch the evaluation belongs to.
    pub epoch: usize,
    pub attack: String,
    #[serde(deserialize_with = "crate::util::nonfinite::f64_or_nan")]
    pub overall: f64,
    #[serde(deserialize_with = "crate::util::nonfinite::f64_or_nan")]
    pub worst: f64,
    #[serde(deserialize_with = "crate::util::nonfinite::f64_or_nan")]
    pub worst10: f64,
}

impl Headline {
    fn of(epoch: usize, e: &EvalRecord) -> Self {
        Headline {
            epoch,
            attack: e.attack.clone(),
            overall: e.metrics.overall,
            worst: e.metrics.worst,
            worst10: e.metrics.worst10,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    pub id: String,
    /// `name` from the spec; the id until a `Started` line is seen.
    pub name: String,
    pub method: String,
    pub dataset: String,
    pub arch: String,
    pub tags: Vec<String>,
    pub status: RunStatus,
    /// The `Finished` line's message (error text for failed runs).
    pub message: Option<String>,
    pub device: String,
    pub epochs_done: usize,
    pub epochs_total: usize,
    /// Fraction of all training batches done, in [0, 1].
    #[serde(deserialize_with = "crate::util::nonfinite::f64_or_nan")]
    pub progress: f64,
    pub eta_secs: Option<f64>,
    /// Unix seconds of the first `Started` line (a resume keeps the original start).
    pub started_at: Option<f64>,
    /// Unix seconds of the latest line.
    pub updated_at: Option<f64>,
    /// seq of the latest line applied (the SSE resume point).
    pub last_seq: Option<u64>,
    /// Latest clean test evaluation of the live model.
    pub clean: Option<Headline>,
    /// Latest robust test evaluation of the live model: the strongest `pgd-<k>` (largest k) of
    /// the latest epoch, so the final PGD-20 wins over the per-epoch PGD-10 when both exist.
    pub robust: Option<Headline>,
}

impl RunSummary {
    /// A summary with nothing known but the id.
    pub fn empty(run: &RunDir) -> Self {
        let id = run.id();
        RunSummary {
            name: id.clone(),
            id,
            method: String::new(),
            dataset: String::new(),
            arch: String::new(),
            tags: vec![],
            status: RunStatus::Running,
            message: None,
            device: String::new(),
            epochs_done: 0,
            epochs_total: 0,
            progress: 0.0,
            eta_secs: None,
            started_at: None,
            updated_at: None,
            last_seq: None,
            clean: None,
            robust: None,
        }
    }

    pub fn from_events(run: &RunDir, events: &[EventLine]) -> RunSummary {
        let mut s = RunSummary::empty(run);
        for ev in events {
            s.apply(ev);
        }
        s
    }

    /// Update with one more line (in seq order).
    pub fn apply(&mut self, ev: &EventLine) {
        if ev.time.is_finite() {
            self.updated_at = Some(self.updated_at.map_or(ev.time, |t| t.max(ev.time)));
        }
        self.last_seq = Some(ev.seq);
        match &ev.event {
            RunEvent::Started {
                spec,
                device,
                start_epoch,
                ..
            } => {
                self.apply_spec(spec);
                self.status = RunStatus::Running;
                self.message = None;
                self.device = device.clone();
                // A resume may redo an epoch whose state was not committed: trust the trainer.
                self.epochs_done = *start_epoch;
                if self.started_at.is_none() && ev.time.is_finite() {
                    self.started_at = Some(ev.time);
                }
                self.update_progress(self.epochs_done as f64);
            }
            RunEvent::Progress {
                epoch,
                batch,
                batches,
                eta_secs,
                ..
            } => {
                let within = if *batches > 0 {
                    (*batch as f64 / *batches as f64).clamp(0.0, 1.0)
                } else {
                    0.0
                };
                self.update_progress(*epoch as f64 + within);
                self.eta_secs = eta_secs.is_finite().then_some(eta_secs.max(0.0));
            }
            RunEvent::Epoch(rec) => self.apply_epoch(rec),
            RunEvent::Checkpoint { .. } | RunEvent::Log { .. } => {}
            RunEvent::Finished {
                status,
                epochs_done,
                message,
            } => {
                self.status = *status;
                self.message = message.clone();
                self.epochs_done = *epochs_done;
                self.eta_secs = None;
                self.update_progress(*epochs_done as f64);
            }
        }
    }

    fn apply_spec(&mut self, spec: &serde_json::Value) {
        let text = |ptr: &str| spec.pointer(ptr).map(value_text).filter(|s| !s.is_empty());
        if let Some(name) = text("/name") {
            self.name = name;
        }
        self.method = text("/method/name").unwrap_or_default();
        self.dataset = text("/data/dataset").unwrap_or_default();
        self.arch = text("/model/arch").unwrap_or_default();
        if let Some(tags) = spec.get("tags").and_then(|t| t.as_array()) {
            self.tags = tags.iter().map(value_text).collect();
        }
        if let Some(n) = spec.pointer("/train/epochs").and_then(|v| v.as_u64()) {
            self.epochs_total = n as usize;
        }
    }

    fn apply_epoch(&mut self, rec: &EpochRecord) {
        if rec.epochs > 0 {
            self.epochs_total = rec.epochs;
        }
        self.epochs_done = rec.epoch + 1;
        self.update_progress(self.epochs_done as f64);
        let remaining = self.epochs_total.saturating_sub(self.epochs_done) as f64;
        let per_epoch = rec.train_secs + rec.eval_secs;
        self.eta_secs =
            (per_epoch.is_finite() && per_epoch >= 0.0).then_some(remaining * per_epoch);
        if let Some(e) = rec.eval("test", "clean", "live") {
            self.clean = Some(Headline::of(rec.epoch, e));
        }
        if let Some(e) = rec.strongest_pgd("test", "live") {
            self.robust = Some(Headline::of(rec.epoch, e));
        }
    }

    /// `epochs` = finished epochs plus the fraction of the current one.
    fn update_progress(&mut self, epochs: f64) {
        self.progress = if self.epochs_total > 0 {
            (epochs / self.epochs_total as f64).clamp(0.0, 1.0)
        } else {
            0.0
        };
    }
}

/// A JSON scalar as display text (strings without quotes).
fn value_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}
