//! One run at a glance (the dashboard's runs table), derived purely from its events.
//!
//! `from_events` folds `apply` over the lines, so the server can keep a summary current by
//! applying each tailed line, and rebuild it from `events.jsonl` after a restart with the same
//! result. Interrupted (a trainer that vanished without a `Finished` line) needs process
//! knowledge and is decided by the server, not here.

use serde::{Deserialize, Serialize};

use super::events::{EpochRecord, EvalRecord, EventLine, RunEvent, RunStatus};
use super::layout::{CheckpointKind, RunDir};
use super::provenance::BestCheckpoint;

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
    /// The worst-class figure the paper reports for a run on `dataset`: the worst class, or
    /// the mean of the worst 10% on CIFAR-100.
    pub fn paper_worst(&self, dataset: &str) -> f64 {
        if dataset == "cifar100" {
            self.worst10
        } else {
            self.worst
        }
    }

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
    /// Latest validation robust evaluation of the live model (the strongest `pgd-<k>`): the
    /// figure that picks `best-worst-robust`. Absent from summaries of older builds.
    #[serde(default)]
    pub val_robust: Option<Headline>,
    /// The latest `best-worst-robust` checkpoint the trainer announced (None: not saved yet,
    /// no validation split, or an older summary).
    #[serde(default)]
    pub best: Option<BestCheckpoint>,
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
            val_robust: None,
            best: None,
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
            RunEvent::Progress(p) => {
                let within = if p.batches > 0 {
                    (p.batch as f64 / p.batches as f64).clamp(0.0, 1.0)
                } else {
                    0.0
                };
                self.update_progress(p.epoch as f64 + within);
                self.eta_secs = p.eta_secs.is_finite().then_some(p.eta_secs.max(0.0));
            }
            RunEvent::Epoch(rec) => self.apply_epoch(rec),
            RunEvent::Checkpoint { epoch, kind, .. } => self.apply_checkpoint(*epoch, kind),
            RunEvent::Log { .. } => {}
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
        if let Some(e) = rec.strongest_pgd("val", "live") {
            self.val_robust = Some(Headline::of(rec.epoch, e));
        }
    }

    /// Remember the `best-worst-robust` checkpoint with the validation figure that chose it:
    /// the trainer announces it right after the epoch's record, whose validation we hold.
    fn apply_checkpoint(&mut self, epoch: usize, kind: &str) {
        if CheckpointKind::parse(kind) != Some(CheckpointKind::BestWorstRobust) {
            return;
        }
        let val_worst_robust = self
            .val_robust
            .as_ref()
            .filter(|h| h.epoch == epoch && h.worst.is_finite())
            .map(|h| h.worst);
        self.best = Some(BestCheckpoint {
            epoch,
            val_worst_robust,
        });
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runs::synthetic::Synth;

    fn line(seq: u64, event: RunEvent) -> EventLine {
        EventLine {
            v: 1,
            seq,
            time: 0.0,
            event,
        }
    }

    fn checkpoint(epoch: usize, kind: &str) -> RunEvent {
        RunEvent::Checkpoint {
            epoch,
            kind: kind.into(),
            file: format!("checkpoints/{kind}.safetensors"),
        }
    }

    #[test]
    fn the_best_checkpoint_keeps_its_epoch_and_the_validation_that_chose_it() {
        let synth = Synth {
            classes: 3,
            epochs: 3,
            progress: 0,
            seed: 7,
        };
        let mut s = RunSummary::empty(&RunDir::new("runs/x"));
        s.apply(&line(0, RunEvent::Epoch(Box::new(synth.epoch(0)))));
        s.apply(&line(1, checkpoint(0, "best-worst-robust")));
        s.apply(&line(2, RunEvent::Epoch(Box::new(synth.epoch(1)))));
        s.apply(&line(3, checkpoint(1, "last")));
        let best = s.best.clone().expect("best announced");
        assert_eq!(best.epoch, 0, "a `last` checkpoint does not move the best");
        let val = synth.epoch(0);
        let want = val.strongest_pgd("val", "live").unwrap().metrics.worst;
        assert_eq!(best.val_worst_robust, Some(want));
        // An older summary (no `best`, no `val_robust`) still deserializes.
        let mut json = serde_json::to_value(&s).unwrap();
        let obj = json.as_object_mut().unwrap();
        obj.remove("best");
        obj.remove("val_robust");
        let old: RunSummary = serde_json::from_value(json).unwrap();
        assert_eq!(old.best, None);
    }
}
