//! The epoch loop: batches -> method step -> SGD, training bookkeeping from the logits the step
//! already computed, then per-epoch evaluation, checkpoints, events and CSV reports. The loop
//! only orders the processors (one file each); the events it writes keep their order: progress
//! lines, then on a cancel the resume point's checkpoints and a log line, else the epoch, the
//! `best-worst-robust` checkpoint, the resume point's checkpoints.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tch::Device;

use super::epoch_start::EpochStart;
use super::meter::ProgressMeter;
use super::session::Session;
use super::state::PendingEval;
use super::{ema, epoch_eval, resume_point, selection, step, TrainError};
use crate::data::Splits;
use fairtat_core::config::{EvalBatch, RunSpec};
use fairtat_core::runs::{reports, EventSink, RunDir, RunEvent};

pub struct TrainOptions {
    pub device: Device,
    /// Set by the signal handler; checked after every training batch and before every
    /// evaluation batch.
    pub stop: Arc<AtomicBool>,
    /// Continue from `checkpoints/state.json`.
    pub resume: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Finished { epochs_done: usize },
    Cancelled { epochs_done: usize },
}

/// Train `spec` into `run`. The caller emits the final `Finished` event (it also knows failures).
pub fn train(
    spec: &RunSpec,
    run: &RunDir,
    opts: &TrainOptions,
    sink: &mut dyn EventSink,
) -> Result<Outcome, TrainError> {
    let splits = crate::data::load(&spec.data)?;
    train_on(spec, splits, run, opts, sink)
}

/// [`train`] on splits already in memory (tests train on synthetic data this way).
pub fn train_on(
    spec: &RunSpec,
    splits: Splits,
    run: &RunDir,
    opts: &TrainOptions,
    sink: &mut dyn EventSink,
) -> Result<Outcome, TrainError> {
    let mut s = Session::new(spec, splits, run, opts.device, opts.resume)?;
    sink.emit(&RunEvent::Started {
        run_id: run.id(),
        spec: serde_json::to_value(spec).unwrap_or_default(),
        class_names: s.splits.train.class_names.clone(),
        device: super::device::describe(opts.device),
        train_size: s.splits.train.len(),
        val_size: s.splits.val.len(),
        test_size: s.splits.test.len(),
        start_epoch: s.state.epochs_done,
        pid: std::process::id(),
    });
    log_eval_batch(spec, s.model.device().is_cuda(), sink);
    if s.splits.val.is_empty() {
        // Selecting on the test set would overstate the selected model: without a validation
        // split nothing is selected at all.
        let off = if spec.train.fawa_decay > 0.0 {
            "FAWA and the best-worst-robust checkpoint are"
        } else {
            "the best-worst-robust checkpoint is"
        };
        sink.emit(&RunEvent::Log {
            level: "warn".into(),
            message: format!(
                "no validation split (data.val_per_class = 0): {off} off; nothing is \
                 selected on the test set"
            ),
        });
    }
    for epoch in s.state.epochs_done..spec.train.epochs {
        // A stop during an epoch's last batch ends here: that epoch's state is already saved
        // (a stop during its evaluation saves it from there).
        let stopped = opts.stop.load(Ordering::SeqCst);
        if stopped || !run_epoch(&mut s, epoch, &opts.stop, sink)? {
            return Ok(Outcome::Cancelled {
                epochs_done: s.state.epochs_done,
            });
        }
    }
    Ok(Outcome::Finished {
        epochs_done: s.state.epochs_done,
    })
}

/// Which batch `eval.batch_size = auto` chose on this device: the run's one record of it.
fn log_eval_batch(spec: &RunSpec, on_gpu: bool, sink: &mut dyn EventSink) {
    if spec.eval.batch_size == EvalBatch::Auto {
        let on = if on_gpu { "the GPU" } else { "the CPU" };
        sink.emit(&RunEvent::Log {
            level: "info".into(),
            message: format!(
                "eval.batch_size = auto: batches of {} on {on}",
                spec.eval_batch(on_gpu)
            ),
        });
    }
}

/// One epoch; `Ok(false)` when cancelled mid-way (state saved). Each job is a processor of its
/// own: the start ([`EpochStart`]), the step ([`step`]), the book-keeping ([`EpochTally`]),
/// progress and ETA ([`ProgressMeter`]), the EMA, the evaluation ([`epoch_eval`]), best-model
/// selection ([`selection`]) and resume points ([`resume_point`]).
fn run_epoch(
    s: &mut Session,
    epoch: usize,
    stop: &AtomicBool,
    sink: &mut dyn EventSink,
) -> Result<bool, TrainError> {
    let mut start = EpochStart::begin(s, epoch)?;
    let n = start.batches.len();
    let mut meter = ProgressMeter::start(s, epoch, (start.first, n));
    for b in start.first..n {
        let idx = start.images(s, epoch, b);
        let batch = step::train_batch(s, epoch, (b, n), &idx)?;
        start.tally.add(&batch);
        if let Some(progress) = meter.after_batch(b + 1, &start.tally) {
            sink.emit(&progress);
        }
        if stop.load(Ordering::SeqCst) && b + 1 < n {
            let partial = start.tally.pause(meter.elapsed());
            resume_point::pause(s, epoch, (b + 1, n), partial, sink)?;
            return Ok(false);
        }
    }
    let secs_here = meter.elapsed();
    // A resumed evaluation continues what the stopped process left (its EMA update included).
    let mut done = match s.state.pending_eval.take() {
        Some(p) => p,
        None => PendingEval::new(ema::update(s)),
    };
    let train_record = start.tally.train_record();
    let evals = match epoch_eval::evaluate_epoch(s, epoch, train_record, &mut done, stop) {
        Err(TrainError::Stopped) => {
            // The epoch is trained: keep it, with the evaluation done so far.
            let partial = start.tally.pause(secs_here);
            s.state.pending_eval = Some(done);
            resume_point::pause(s, epoch, (n, n), partial, sink)?;
            return Ok(false);
        }
        other => other?,
    };
    let train_metrics = start.tally.metrics();
    let val_worst = evals.val_worst;
    let targeted = s.method.target_probs().is_some();
    let record = start.record((epoch, s.spec.train.epochs), secs_here, targeted, evals);
    let val_clean = record
        .eval("val", "clean", "live")
        .map(|e| e.metrics.overall);
    sink.emit(&RunEvent::Epoch(Box::new(record.clone())));
    s.records.retain(|r| r.epoch != epoch);
    s.records.push(record);
    s.state.close_epoch(epoch, train_metrics);
    selection::select_best(s, epoch, (val_worst, val_clean), sink)?;
    resume_point::save(s, epoch, sink)?;
    reports::write_reports(&s.run, &s.splits.train.class_names, &s.records)?;
    Ok(true)
}
