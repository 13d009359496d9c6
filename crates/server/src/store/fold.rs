//! The pure fold of a run's event lines into the compact state pages, charts and APIs read.
//!
//! One pass, one line at a time, in file order: the same [`Metrics`] as
//! [`metrics::metrics`](crate::metrics::metrics) over the whole log (a property test
//! checks it), plus what the views need beyond it: the last epoch's clean and robust evaluations
//! with their confusion matrices, the byte offset of every epoch record (an older epoch's matrices
//! are read back from the file on demand, not kept: 100 x 100 x 7 counts per epoch would be
//! 100 MB for a CIFAR-100 run), the `(seq, offset)` of every line (SSE replay) and, per series,
//! the seq of the line that last changed it (chart versions, so a chart is re-rendered and
//! re-fetched only when its data changed).
//!
//! A resumed run re-does epochs: an epoch record replaces the records of that epoch and later
//! ones (like [`epoch_records`](crate::metrics::epoch_records)).

use std::collections::BTreeMap;
use std::sync::Arc;

use super::step::StepProgress;
use crate::metrics::{clean_eval, robust_eval, Metrics};
use fairtat_core::runs::{EpochRecord, EvalRecord, EventLine, RunEvent};

/// What the confusion charts and the tables need of one epoch.
#[derive(Clone, Debug, PartialEq)]
pub struct EpochDetail {
    pub epoch: usize,
    pub clean: Option<EvalRecord>,
    pub robust: Option<EvalRecord>,
}

impl EpochDetail {
    pub fn of(rec: &EpochRecord) -> EpochDetail {
        EpochDetail {
            epoch: rec.epoch,
            clean: clean_eval(rec).cloned(),
            robust: robust_eval(rec).cloned(),
        }
    }

    fn bytes(&self) -> usize {
        let eval = |e: &Option<EvalRecord>| {
            e.as_ref().map_or(0, |e| {
                e.confusion.iter().map(|r| r.len() * 8 + 24).sum::<usize>()
                    + e.metrics.class_acc.len() * 48
            })
        };
        eval(&self.clean) + eval(&self.robust)
    }
}

/// Per epoch row: what the full parse would recompute.
#[derive(Clone, Debug)]
struct Row {
    /// Classes this record speaks of (longest class-accuracy or epsilon vector).
    k: usize,
    seq: u64,
    /// Byte offset of the epoch line in `events.jsonl`.
    offset: u64,
    state_keys: Vec<String>,
}

/// Series names used as chart dependencies (see [`RunFold::version`]).
pub mod dep {
    pub const LOSS: &str = "train_loss";
    pub const ACCURACY: &str = "accuracy";
    pub const CLASS_ACC_CLEAN: &str = "class_acc_clean";
    pub const CLASS_ACC_ROBUST: &str = "class_acc_robust";
    pub const CFPS: &str = "cfps";
    pub const CLASS_EPS: &str = "class_eps";
    pub const TARGETS: &str = "target_probs";
    /// Any series of [`Metrics::more`](crate::metrics::Metrics::more).
    pub const MORE: &str = "more";
}

#[derive(Clone, Debug, Default)]
pub struct RunFold {
    m: Metrics,
    rows: Vec<Row>,
    /// Class names of the latest `started` line that had any.
    started_names: Option<Vec<String>>,
    last: Option<Arc<EpochDetail>>,
    last_seq: Option<u64>,
    /// `(seq, byte offset)` of every line folded, in file order.
    lines: Vec<(u64, u64)>,
    /// Series name (or `state-<key>`) -> seq of the line that last changed it.
    changed: BTreeMap<String, u64>,
    /// Seq of the last change that touches every chart (a resume replacing epochs, new names).
    reset_seq: u64,
    /// Checkpoint kind -> the epoch its latest `checkpoint` line says it holds.
    checkpoints: BTreeMap<String, usize>,
    /// Epoch -> validation worst-class accuracy under the PGD-k attack (what picks
    /// `best-worst-robust`).
    val_worst: BTreeMap<usize, f64>,
    /// Progress inside the current epoch (the run page's step panel).
    step: StepProgress,
}

impl RunFold {
    /// Fold one line that starts at byte `offset`. Lines at or below the last seq folded are
    /// skipped (the follower and a request may both hand over the same lines).
    pub fn apply(&mut self, offset: u64, line: &EventLine) -> bool {
        if self.last_seq.is_some_and(|s| line.seq <= s) {
            return false;
        }
        self.last_seq = Some(line.seq);
        self.lines.push((line.seq, offset));
        self.step.apply(&line.event);
        match &line.event {
            RunEvent::Started { class_names, .. } if !class_names.is_empty() => {
                self.started_names = Some(class_names.clone());
                self.refresh_names(line.seq);
            }
            RunEvent::Epoch(rec) => {
                if let Some(v) = rec
                    .evals
                    .iter()
                    .rfind(|e| e.split == "val" && e.attack != "clean")
                {
                    self.val_worst.insert(rec.epoch, v.metrics.worst);
                }
                self.push_epoch(line.seq, offset, rec)
            }
            RunEvent::Checkpoint { epoch, kind, .. } => {
                self.checkpoints.insert(kind.clone(), *epoch);
            }
            _ => {}
        }
        true
    }

    pub fn metrics(&self) -> &Metrics {
        &self.m
    }

    /// The epoch checkpoint `kind` holds, and for `best-worst-robust` the validation
    /// worst-class accuracy it was chosen by.
    pub fn checkpoint(&self, kind: &str) -> Option<(usize, Option<f64>)> {
        let epoch = *self.checkpoints.get(kind)?;
        Some((epoch, self.val_worst.get(&epoch).copied()))
    }

    pub fn last_seq(&self) -> Option<u64> {
        self.last_seq
    }

    /// Progress inside the current epoch.
    pub fn step(&self) -> &StepProgress {
        &self.step
    }

    /// The latest epoch's detail.
    pub fn last_detail(&self) -> Option<Arc<EpochDetail>> {
        self.last.clone()
    }

    /// Row index of `epoch` (default: the latest).
    pub fn row_of(&self, epoch: Option<usize>) -> Option<usize> {
        match epoch {
            Some(e) => self.m.epochs.iter().position(|x| *x == e),
            None => self.m.epochs.len().checked_sub(1),
        }
    }

    /// Byte offset of the epoch line of row `i`.
    pub fn epoch_offset(&self, i: usize) -> Option<u64> {
        self.rows.get(i).map(|r| r.offset)
    }

    /// `(seq, offset)` of every line folded.
    pub fn lines(&self) -> &[(u64, u64)] {
        &self.lines
    }

    /// Class names for `k` classes as the old per-request code chose them: the latest started
    /// line's when it has at least `k`, else "0", "1", ...
    pub fn class_names_for(&self, k: usize) -> Vec<String> {
        match &self.started_names {
            Some(n) if n.len() >= k => n.clone(),
            _ => (0..k).map(|i| i.to_string()).collect(),
        }
    }

    /// Data version of a chart that depends on `deps` (series names of [`dep`], or
    /// `state-<key>`): the seq of the last line that changed any of them. Epoch-bound charts
    /// (C_FPS bars, confusion matrices) use [`RunFold::epoch_version`].
    pub fn version(&self, deps: &[&str]) -> u64 {
        deps.iter()
            .filter_map(|d| self.changed.get(*d).copied())
            .fold(self.reset_seq, u64::max)
    }

    /// Data version of a chart of one epoch: the seq of that epoch's record.
    pub fn epoch_version(&self, epoch: Option<usize>) -> u64 {
        self.row_of(epoch)
            .map_or(0, |i| self.rows[i].seq)
            .max(self.reset_seq)
    }

    /// Approximate heap bytes (the store's LRU bound).
    pub fn bytes(&self) -> usize {
        let m = &self.m;
        let rows = |r: &Vec<Vec<f64>>| r.iter().map(|v| v.len() * 8 + 24).sum::<usize>();
        let series = rows(&m.class_acc_clean)
            + rows(&m.class_acc_robust)
            + rows(&m.cfps)
            + rows(&m.class_eps)
            + rows(&m.target_probs)
            + m.method_state.values().map(rows).sum::<usize>()
            + m.more.values().map(|v| v.len() * 16 + 48).sum::<usize>();
        series
            + m.epochs.len() * (9 * 16 + 64)
            + self.lines.len() * 16
            + m.class_names.iter().map(|n| n.len() + 24).sum::<usize>()
            + self.last.as_ref().map_or(0, |d| d.bytes())
            + self.step.bytes()
            + 1024
    }

    fn mark(&mut self, dep: &str, seq: u64) {
        match self.changed.get_mut(dep) {
            Some(v) => *v = seq,
            None => {
                self.changed.insert(dep.to_string(), seq);
            }
        }
    }

    fn push_epoch(&mut self, seq: u64, offset: u64, rec: &EpochRecord) {
        let keep = self.m.epochs.partition_point(|e| *e < rec.epoch);
        if keep < self.m.epochs.len() {
            self.truncate(keep);
            self.reset_seq = seq;
        }
        let clean = clean_eval(rec);
        let robust = robust_eval(rec);
        self.m.push_epoch(rec);
        self.mark_epoch(seq, rec, clean.is_some() || robust.is_some());
        let k = rec
            .evals
            .iter()
            .map(|e| e.metrics.class_acc.len())
            .chain([rec.class_eps.len()])
            .max()
            .unwrap_or(0);
        self.rows.push(Row {
            k,
            seq,
            offset,
            state_keys: rec.method_state.keys().cloned().collect(),
        });
        self.last = Some(Arc::new(EpochDetail::of(rec)));
        self.refresh_names(seq);
    }

    /// Which series this epoch added a drawable value to.
    fn mark_epoch(&mut self, seq: u64, rec: &EpochRecord, any_eval: bool) {
        self.mark(dep::LOSS, seq);
        if any_eval {
            self.mark(dep::ACCURACY, seq);
        }
        let last = |rows: &Vec<Vec<f64>>| rows.last().is_some_and(|r| !r.is_empty());
        let flags = [
            (dep::CLASS_ACC_CLEAN, last(&self.m.class_acc_clean)),
            (dep::CLASS_ACC_ROBUST, last(&self.m.class_acc_robust)),
            (dep::CFPS, last(&self.m.cfps)),
            (dep::CLASS_EPS, last(&self.m.class_eps)),
            (dep::TARGETS, last(&self.m.target_probs)),
        ];
        for (d, changed) in flags {
            if changed {
                self.mark(d, seq);
            }
        }
        for key in rec.method_state.keys() {
            self.mark(&format!("state-{key}"), seq);
        }
        if !crate::metrics::more_of(rec).is_empty() {
            self.mark(dep::MORE, seq);
        }
    }

    /// Drop rows `keep..` (a resumed run re-does them).
    fn truncate(&mut self, keep: usize) {
        let m = &mut self.m;
        m.epochs.truncate(keep);
        m.train_loss.truncate(keep);
        m.lr.truncate(keep);
        for v in [
            &mut m.clean_overall,
            &mut m.clean_worst,
            &mut m.clean_worst10,
            &mut m.robust_overall,
            &mut m.robust_worst,
            &mut m.robust_worst10,
        ] {
            v.truncate(keep);
        }
        for v in [
            &mut m.class_acc_clean,
            &mut m.class_acc_robust,
            &mut m.cfps,
            &mut m.class_eps,
            &mut m.target_probs,
        ] {
            v.truncate(keep);
        }
        m.cfps_test_top.truncate(keep);
        self.rows.truncate(keep);
        let alive: std::collections::BTreeSet<&String> =
            self.rows.iter().flat_map(|r| &r.state_keys).collect();
        m.method_state.retain(|k, _| alive.contains(k));
        for rows in m.method_state.values_mut() {
            rows.truncate(keep);
        }
        for rows in m.more.values_mut() {
            rows.truncate(keep);
        }
        m.more.retain(|_, rows| rows.iter().any(Option::is_some));
    }

    fn refresh_names(&mut self, seq: u64) {
        let k = self.rows.iter().map(|r| r.k).max().unwrap_or(0);
        let names = self.class_names_for(k);
        if names != self.m.class_names {
            self.m.class_names = names;
            self.reset_seq = seq;
        }
    }
}

/// Fold a whole log (tests, and the check that the fold equals a full parse).
pub fn fold_all(lines: &[EventLine]) -> RunFold {
    let mut f = RunFold::default();
    for (i, l) in lines.iter().enumerate() {
        f.apply(i as u64, l);
    }
    f
}
