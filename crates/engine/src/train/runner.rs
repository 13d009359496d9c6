//! The epoch loop: batches -> method step -> SGD, training bookkeeping from the logits the step
//! already computed, then per-epoch evaluation, checkpoints, events and CSV reports.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use tch::Device;

use super::epoch_eval::{self, Copies};
use super::eta;
use super::fawa;
use super::schedule::lr_at;
use super::session::Session;
use super::state::PartialEpoch;
use super::TrainError;
use fairtat_core::config::{EvalModel, RunSpec};
use crate::data::{batch_indices, make_batch, Splits};
use fairtat_core::fairness::{ClassMetrics, ConfusionMatrix};
use crate::methods::{Batch, EpochCtx};
use fairtat_core::runs::{reports, EpochRecord, EvalRecord, EventSink, RunDir, RunEvent};
use fairtat_core::util::Rng;

/// RNG stream ids: data order, augmentation, method sampling, torch seed.
const STREAM_ORDER: u64 = 1;
const STREAM_AUG: u64 = 2;
const STREAM_METHOD: u64 = 3;
const STREAM_TORCH: u64 = 4;
const STREAM_PREPARE: u64 = 5;

pub struct TrainOptions {
    pub device: Device,
    /// Set by the signal handler; checked after every batch.
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
        // A stop during an epoch's last batch (or its evaluation) ends here: that epoch's
        // state is already saved.
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

/// One epoch; `Ok(false)` when cancelled mid-way (state saved).
fn run_epoch(
    s: &mut Session,
    epoch: usize,
    stop: &AtomicBool,
    sink: &mut dyn EventSink,
) -> Result<bool, TrainError> {
    let spec = s.spec.clone();
    let k = spec.num_classes();
    let device = s.model.device();
    let resuming = epoch == s.state.epochs_done && s.state.batches_done > 0;
    if !resuming {
        // Validation passes of the method (random starts) are seeded so a resumed run redoes
        // them identically.
        tch::manual_seed(
            Rng::derive(spec.seed, &[epoch as u64, STREAM_PREPARE]).next_u64() as i64
                & 0x7fff_ffff_ffff,
        );
        s.method.prepare_epoch(&EpochCtx {
            epoch,
            model: &s.model,
            val: &s.splits.val,
            batch_size: spec.eval.batch_size,
        })?;
    }
    s.method.begin_epoch(epoch, s.state.prev_train.as_ref());
    let class_eps = s.method.class_eps().to_vec();
    let target_probs = s.method.target_probs().map(<[f64]>::to_vec);

    let batches = batch_indices(
        s.splits.train.len(),
        spec.train.batch_size,
        Some(&mut Rng::derive(spec.seed, &[epoch as u64, STREAM_ORDER])),
    );
    let n = batches.len();
    let start = if resuming {
        s.state.batches_done.min(n)
    } else {
        0
    };
    let p = if resuming {
        s.state.partial.take().unwrap_or_default()
    } else {
        PartialEpoch::default()
    };
    let mut cm = ConfusionMatrix::from_rows(&p.confusion)
        .filter(|c| c.classes() == k)
        .unwrap_or_else(|| ConfusionMatrix::new(k));
    let (mut loss_sum, mut images, mut train_secs) = (p.loss_sum, p.images, p.train_secs);
    let mut target_counts = if p.target_counts.len() == k {
        p.target_counts
    } else {
        vec![0u64; k]
    };
    let augment = (!s.augment.is_identity()).then_some(&s.augment);
    let t0 = Instant::now();
    let (mut images_here, mut lr) = (0usize, spec.train.lr);
    // Planned once per epoch: the progress lines only price it.
    let eta_plan = eta::Eta::plan(&spec, epoch, s.records.last(), eval_sizes(s));

    for (b, idx) in batches.iter().enumerate().skip(start) {
        let (e, bb) = (epoch as u64, b as u64);
        tch::manual_seed(
            Rng::derive(spec.seed, &[e, bb, STREAM_TORCH]).next_u64() as i64 & 0x7fff_ffff_ffff,
        );
        let mut aug_rng = Rng::derive(spec.seed, &[e, bb, STREAM_AUG]);
        let (x, y) = make_batch(&s.splits.train, idx, augment.map(|a| (a, &mut aug_rng)));
        let labels: Vec<i64> = idx
            .iter()
            .map(|&i| s.splits.train.labels[i] as i64)
            .collect();
        let batch = Batch {
            x: x.to_device(device),
            y: y.to_device(device),
            labels,
        };
        lr = lr_at(
            spec.train.lr_schedule,
            spec.train.lr,
            epoch as f64 + (b + 1) as f64 / n as f64,
            spec.train.epochs,
        );
        s.opt.lr = lr;
        let out = s.method.step(
            &s.model,
            &batch,
            &mut Rng::derive(spec.seed, &[e, bb, STREAM_METHOD]),
        )?;
        // Read before the step: a non-finite loss would turn every weight into NaN, so the run
        // stops with a clear failure instead of training on garbage.
        let loss = out.loss.double_value(&[]);
        if !loss.is_finite() {
            return Err(TrainError::Invalid(format!(
                "loss became {} at epoch {epoch} batch {} (lower train.lr or train.weight_decay)",
                if loss.is_nan() { "NaN" } else { "infinite" },
                b + 1
            )));
        }
        // The references' extra clean train-mode forwards (`train.clean_forwards`): FAIR-TAT's
        // code runs one before `opt.step()`, CFA's and FAIR-TAT's one after. Only BatchNorm's
        // running statistics see them.
        if spec.train.clean_forwards >= 2 {
            clean_forward(&s.model, &batch);
        }
        s.opt.backward_step(&out.loss);
        if spec.train.clean_forwards >= 1 {
            clean_forward(&s.model, &batch);
        }
        s.method.after_step(&s.model, &batch);

        // Bookkeeping from the step's own logits: one small device->host copy, no extra forward.
        let preds: Vec<i64> = Vec::try_from(&out.logits.argmax(-1, false).to_device(Device::Cpu))?;
        cm.add_batch(&batch.labels, &preds);
        loss_sum += loss * batch.labels.len() as f64;
        images += batch.labels.len();
        images_here += batch.labels.len();
        for t in out.targets.iter().flatten() {
            if let Some(c) = target_counts.get_mut(*t as usize) {
                *c += 1;
            }
        }
        let elapsed = t0.elapsed().as_secs_f64();
        if (b + 1) % spec.train.log_every == 0 || b + 1 == n {
            let per_batch = elapsed / (b + 1 - start) as f64;
            sink.emit(&RunEvent::Progress {
                epoch,
                batch: b + 1,
                batches: n,
                loss: loss_sum / images.max(1) as f64,
                images_per_sec: images_here as f64 / elapsed.max(1e-9),
                eta_secs: eta_plan.secs((b + 1, n), per_batch),
            });
        }
        if stop.load(Ordering::SeqCst) && b + 1 < n {
            s.state.batches_done = b + 1;
            s.state.partial = Some(PartialEpoch {
                confusion: cm.rows(),
                loss_sum,
                images,
                target_counts,
                train_secs: train_secs + elapsed,
            });
            for (kind, file) in s.save_resume_point(epoch)? {
                sink.emit(&RunEvent::Checkpoint { epoch, kind, file });
            }
            sink.emit(&RunEvent::Log {
                level: "info".into(),
                message: format!("cancelled in epoch {epoch} after batch {}/{n}", b + 1),
            });
            return Ok(false);
        }
    }
    let secs_here = t0.elapsed().as_secs_f64();
    train_secs += secs_here;
    let train_metrics = ClassMetrics::from_confusion(&cm);

    // EMA per epoch over the whole state; the first update is a copy (CFA `train.py`).
    let mut copies = Copies::default();
    if let Some(ema) = &mut s.ema {
        let decay = if s.state.ema_initialized {
            spec.train.ema_decay
        } else {
            0.0
        };
        ema.avg.update(&s.model, decay);
        ema.avg.copy_into(&mut ema.model);
        copies.ema = decay == 0.0;
        s.state.ema_initialized = true;
    }

    let t_eval = Instant::now();
    let mut evals = vec![EvalRecord {
        split: "train".into(),
        attack: "train-attack".into(),
        model: "live".into(),
        confusion: cm.rows(),
        metrics: train_metrics.clone(),
    }];
    epoch_eval::test_live_and_ema(s, epoch, copies, &mut evals);
    let val_worst = epoch_eval::validate(s, epoch, &mut evals);
    let mut method_state = s.method.method_state();
    let fawa_was_initialized = s.state.fawa_initialized;
    method_state.extend(fawa::update(s, val_worst));
    copies.fawa = !fawa_was_initialized && s.state.fawa_initialized;
    epoch_eval::test_fawa(s, epoch, copies, &mut evals);
    let eval_secs = t_eval.elapsed().as_secs_f64();

    let record = EpochRecord {
        epoch,
        epochs: spec.train.epochs,
        lr,
        train_loss: loss_sum / images.max(1) as f64,
        train_secs,
        eval_secs,
        images_per_sec: images_here as f64 / secs_here.max(1e-9),
        class_eps,
        target_probs,
        target_counts: s.method.target_probs().map(|_| target_counts),
        evals,
        method_state,
    };
    let val_clean = record
        .eval("val", "clean", "live")
        .map(|e| e.metrics.overall);
    sink.emit(&RunEvent::Epoch(Box::new(record.clone())));
    s.records.retain(|r| r.epoch != epoch);
    s.records.push(record);

    s.state.epochs_done = epoch + 1;
    s.state.batches_done = 0;
    s.state.partial = None;
    s.state.prev_train = Some(train_metrics);
    if let Some(w) = val_worst.filter(|w| {
        better_worst(
            (*w, val_clean),
            s.state
                .best_val_worst_robust
                .map(|b| (b, s.state.best_val_clean)),
        )
    }) {
        s.state.best_val_worst_robust = Some(w);
        s.state.best_val_clean = val_clean;
        s.save_best(epoch)?;
        sink.emit(&RunEvent::Checkpoint {
            epoch,
            kind: "best-worst-robust".into(),
            file: "checkpoints/best-worst-robust.safetensors".into(),
        });
    }
    for (kind, file) in s.save_resume_point(epoch)? {
        sink.emit(&RunEvent::Checkpoint { epoch, kind, file });
    }
    reports::write_reports(&s.run, &s.splits.train.class_names, &s.records)?;
    Ok(true)
}

/// The evaluation sizes the ETA needs: validation and test images, test-evaluated models.
fn eval_sizes(s: &Session) -> eta::EvalSizes {
    let wanted = |m: EvalModel| s.spec.eval.models.contains(&m);
    let test_models = usize::from(wanted(EvalModel::Live))
        + usize::from(s.ema.is_some() && wanted(EvalModel::Ema))
        // FAWA is evaluated once it has absorbed an epoch (it may start late).
        + usize::from(s.fawa.is_some() && s.state.fawa_initialized && wanted(EvalModel::Fawa));
    eta::EvalSizes {
        val: s.splits.val.len(),
        test: s.splits.test.len(),
        test_models,
    }
}

/// Whether this epoch's validation (worst-class robust, clean overall) replaces the best so far
/// as `best-worst-robust`: a strictly better worst class, or the same worst class with a clean
/// accuracy at least as good (the later model wins a full tie). Chance-level epochs tie at 0, so
/// "strictly better" alone would keep the first epoch's model for ever.
pub fn better_worst(now: (f64, Option<f64>), best: Option<(f64, Option<f64>)>) -> bool {
    let Some((bw, bc)) = best else {
        return true;
    };
    let (w, c) = now;
    w > bw || (w == bw && c.unwrap_or(0.0) >= bc.unwrap_or(0.0))
}

/// A train-mode forward of the clean batch whose output is dropped: it moves BatchNorm's
/// running statistics toward clean-batch statistics (algorithms.md §1.5; PKU-ML/CFA
/// `train.py` `train_epoch`, TejaswiniMedi/FAIR-TAT `target_train_new.py` `train_epoch`).
fn clean_forward(model: &crate::models::Model, batch: &Batch) {
    tch::no_grad(|| drop(model.forward_t(&batch.x, true)));
}

#[cfg(test)]
mod tests {
    use super::better_worst;

    #[test]
    fn best_worst_robust_needs_a_better_worst_class_or_a_tie_with_better_clean() {
        assert!(
            better_worst((0.0, Some(0.1)), None),
            "the first validation sets it"
        );
        assert!(better_worst((0.2, Some(0.1)), Some((0.1, Some(0.9)))));
        assert!(!better_worst((0.1, Some(0.9)), Some((0.2, Some(0.1)))));
        // Chance-level epochs tie at 0: the later, cleaner model replaces the first one.
        assert!(better_worst((0.0, Some(0.4)), Some((0.0, Some(0.1)))));
        assert!(!better_worst((0.0, Some(0.05)), Some((0.0, Some(0.1)))));
        assert!(
            better_worst((0.0, Some(0.1)), Some((0.0, Some(0.1)))),
            "a full tie keeps the later"
        );
    }
}
