//! Metric series for charts and the API, extracted from a run's event lines (pure functions).
//!
//! "Clean" is the live model's clean test evaluation; "robust" the strongest `pgd-<k>` test
//! evaluation of the same epoch (as in `RunSummary`). C_FPS comes from the training-time
//! adversarial predictions (what FAIR-TAT samples targets from) when recorded, else from the
//! robust test evaluation.

use std::collections::BTreeMap;

use serde::Serialize;

use fairtat_core::runs::{EpochRecord, EvalRecord, EventLine, RunEvent};

#[derive(Clone, Debug, Default, Serialize)]
pub struct Metrics {
    pub class_names: Vec<String>,
    /// 0-based epoch of each entry below.
    pub epochs: Vec<usize>,
    pub train_loss: Vec<f64>,
    pub lr: Vec<f64>,
    pub clean_overall: Vec<Option<f64>>,
    pub clean_worst: Vec<Option<f64>>,
    pub clean_worst10: Vec<Option<f64>>,
    pub robust_overall: Vec<Option<f64>>,
    pub robust_worst: Vec<Option<f64>>,
    pub robust_worst10: Vec<Option<f64>>,
    /// `[epoch][class]`; empty rows where the evaluation is missing.
    pub class_acc_clean: Vec<Vec<f64>>,
    pub class_acc_robust: Vec<Vec<f64>>,
    pub cfps: Vec<Vec<f64>>,
    pub class_eps: Vec<Vec<f64>>,
    pub target_probs: Vec<Vec<f64>>,
    /// Each method's own state (CFA's class-wise beta, FRL's multipliers, FAWA decisions ...):
    /// key -> `[epoch][entry]`, an empty row where an epoch did not record the key.
    pub method_state: BTreeMap<String, Vec<Vec<f64>>>,
    /// The evaluations the series above leave out: the averaged models (EMA, FAWA) on the test
    /// set and the live model on the validation split, keyed
    /// `<split> <model> <clean|robust> <overall|worst>` (robust: the strongest PGD of that
    /// split and model); `[epoch]`, None where an epoch did not record it.
    pub more: BTreeMap<String, Vec<Option<f64>>>,
    /// The largest test-set C_FPS of each epoch, clean and under the epoch's strongest PGD:
    /// their maximum is the C_FPS chart's y range for those sources, the same at every epoch of
    /// the slider (see [`Metrics::cfps_test_scale`]).
    pub cfps_test_top: Vec<[f64; 2]>,
}

/// The [`Metrics::more`] entries of one epoch.
pub fn more_of(rec: &EpochRecord) -> Vec<(String, f64)> {
    let mut out = Vec::new();
    for e in &rec.evals {
        let split = e.split.as_str();
        if !matches!(split, "test" | "val") || (split == "test" && e.model == "live") {
            continue;
        }
        let kind = if e.attack == "clean" {
            "clean"
        } else if rec
            .strongest_pgd(split, &e.model)
            .is_some_and(|s| std::ptr::eq(s, e))
        {
            "robust"
        } else {
            continue;
        };
        let key = format!("{split} {} {kind}", e.model);
        out.push((format!("{key} overall"), e.metrics.overall));
        out.push((format!("{key} worst"), e.metrics.worst));
    }
    out
}

/// The epoch records of a run in order; after a resume a re-done epoch replaces the earlier one.
pub fn epoch_records(events: &[EventLine]) -> Vec<&EpochRecord> {
    let mut out: Vec<&EpochRecord> = Vec::new();
    for ev in events {
        if let RunEvent::Epoch(rec) = &ev.event {
            out.retain(|r| r.epoch < rec.epoch);
            out.push(rec);
        }
    }
    out
}

/// Class names from the latest `started` line (falls back to "0", "1", ...).
pub fn class_names(events: &[EventLine], k: usize) -> Vec<String> {
    let names = events.iter().rev().find_map(|e| match &e.event {
        RunEvent::Started { class_names, .. } if !class_names.is_empty() => {
            Some(class_names.clone())
        }
        _ => None,
    });
    match names {
        Some(n) if n.len() >= k => n,
        _ => (0..k).map(|i| i.to_string()).collect(),
    }
}

pub fn clean_eval(rec: &EpochRecord) -> Option<&EvalRecord> {
    rec.eval("test", "clean", "live")
}

pub fn robust_eval(rec: &EpochRecord) -> Option<&EvalRecord> {
    rec.strongest_pgd("test", "live")
}

/// C_FPS of an epoch: the training adversarial predictions when recorded, else robust test.
pub fn cfps_of(rec: &EpochRecord) -> Option<&[f64]> {
    rec.evals
        .iter()
        .find(|e| e.split == "train")
        .or_else(|| robust_eval(rec))
        .map(|e| e.metrics.cfps.as_slice())
}

/// The largest finite value (0 for none).
pub fn finite_max(v: &[f64]) -> f64 {
    v.iter()
        .copied()
        .filter(|x| x.is_finite())
        .fold(0.0, f64::max)
}

pub fn metrics(events: &[EventLine]) -> Metrics {
    let recs = epoch_records(events);
    let k = recs
        .iter()
        .flat_map(|r| r.evals.iter().map(|e| e.metrics.class_acc.len()))
        .chain(recs.iter().map(|r| r.class_eps.len()))
        .max()
        .unwrap_or(0);
    let mut m = Metrics {
        class_names: class_names(events, k),
        ..Metrics::default()
    };
    for r in recs {
        m.push_epoch(r);
    }
    m
}

impl Metrics {
    /// The y range of the test-set C_FPS sources over every epoch: [clean, robust].
    pub fn cfps_test_scale(&self) -> [f64; 2] {
        self.cfps_test_top
            .iter()
            .fold([0.0, 0.0], |a, b| [a[0].max(b[0]), a[1].max(b[1])])
    }

    /// Append one epoch to every series; a method-state key first seen now gets empty rows
    /// for the epochs before it.
    pub fn push_epoch(&mut self, rec: &EpochRecord) {
        let n = self.epochs.len();
        let clean = clean_eval(rec);
        let robust = robust_eval(rec);
        self.epochs.push(rec.epoch);
        self.train_loss.push(rec.train_loss);
        self.lr.push(rec.lr);
        self.clean_overall.push(clean.map(|e| e.metrics.overall));
        self.clean_worst.push(clean.map(|e| e.metrics.worst));
        self.clean_worst10.push(clean.map(|e| e.metrics.worst10));
        self.robust_overall.push(robust.map(|e| e.metrics.overall));
        self.robust_worst.push(robust.map(|e| e.metrics.worst));
        self.robust_worst10.push(robust.map(|e| e.metrics.worst10));
        let acc = |e: Option<&EvalRecord>| e.map(|e| e.metrics.class_acc.clone());
        self.class_acc_clean.push(acc(clean).unwrap_or_default());
        self.class_acc_robust.push(acc(robust).unwrap_or_default());
        self.cfps
            .push(cfps_of(rec).map(<[f64]>::to_vec).unwrap_or_default());
        let most = |e: Option<&EvalRecord>| e.map_or(0.0, |e| finite_max(&e.metrics.cfps));
        self.cfps_test_top.push([most(clean), most(robust)]);
        self.class_eps.push(rec.class_eps.clone());
        self.target_probs
            .push(rec.target_probs.clone().unwrap_or_default());
        for (key, rows) in self.method_state.iter_mut() {
            rows.push(rec.method_state.get(key).cloned().unwrap_or_default());
        }
        for (key, vals) in &rec.method_state {
            if !self.method_state.contains_key(key) {
                let mut rows = vec![vec![]; n];
                rows.push(vals.clone());
                self.method_state.insert(key.clone(), rows);
            }
        }
        let more = more_of(rec);
        for (key, rows) in self.more.iter_mut() {
            rows.push(more.iter().find(|(k, _)| k == key).map(|(_, v)| *v));
        }
        for (key, v) in more {
            self.more.entry(key).or_insert_with(|| {
                let mut rows = vec![None; n];
                rows.push(Some(v));
                rows
            });
        }
    }
}

/// Replace non-finite numbers (which JSON cannot carry) by None.
pub fn finite(v: f64) -> Option<f64> {
    v.is_finite().then_some(v)
}
