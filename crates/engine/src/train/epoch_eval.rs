//! The per-epoch evaluation: which models, which splits, which epochs.
//!
//! - Validation (live model, clean and PGD-k) runs every epoch when there is a validation
//!   split: its worst class drives FAWA and `best-worst-robust`. Without one, nothing is
//!   selected (the test set never picks a checkpoint).
//! - The test set is evaluated every `eval.every` epochs and always after the last, for the
//!   models `eval.models` names (live, ema, fawa) among those the run has.
//! - A model that is an exact copy of another this epoch (the EMA at its first update, FAWA on
//!   the epoch it starts: both copy the whole live state, BN buffers included) is not evaluated
//!   again: its records are the live model's, relabelled.
//! - A stop request is checked before every evaluation batch. The epoch's training, its EMA
//!   update and (once applied) FAWA's update are kept with the records finished so far
//!   ([`PendingEval`] in `state.json`); resume trains nothing again, repeats no update, and
//!   redoes only the evaluation the stop cut short.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use super::eval::{eval_record, evaluate, EvalAttack};
use super::fawa;
use super::session::Session;
use super::state::PendingEval;
use super::TrainError;
use crate::data::Dataset;
use crate::models::Model;
use fairtat_core::config::{EvalModel, RunSpec};
use fairtat_core::fairness::ClassMetrics;
use fairtat_core::runs::EvalRecord;

/// What an epoch's evaluation leaves for its record and for model selection.
pub struct EpochEvals {
    /// The training record first, then test (live, EMA), validation, test (FAWA).
    pub evals: Vec<EvalRecord>,
    /// The validation worst class's PGD-k accuracy (`None` without a validation split).
    pub val_worst: Option<f64>,
    /// The method's state and FAWA's decision.
    pub method_state: BTreeMap<String, Vec<f64>>,
    /// Seconds the evaluation (and FAWA's update) took, in this and any stopped process.
    pub secs: f64,
}

/// Evaluate epoch `epoch` after training (and the EMA update, recorded in `done`), update FAWA
/// from the validation, and collect the records after `train`, the epoch's training record.
///
/// `done` holds what an earlier, stopped process finished of this evaluation (its records and
/// FAWA's update are reused, not redone) and collects what this one finishes: on
/// [`TrainError::Stopped`] (`stop` set before an evaluation batch) the caller saves it.
pub fn evaluate_epoch(
    s: &mut Session,
    epoch: usize,
    train: EvalRecord,
    done: &mut PendingEval,
    stop: &AtomicBool,
) -> Result<EpochEvals, TrainError> {
    let mut ev = Evaluator { done, stop };
    test_live_and_ema(s, epoch, &mut ev)?;
    let val_worst = validate(s, epoch, &mut ev)?;
    let mut method_state = s.method.method_state();
    if let Some(c) = &s.sampler {
        method_state.insert("cfol_class_probs".into(), c.probs());
    }
    if ev.done.fawa.is_none() {
        let (t1, fawa_was_initialized) = (Instant::now(), s.state.fawa_initialized);
        ev.done.fawa = Some(fawa::update(s, val_worst));
        ev.done.fawa_is_copy = !fawa_was_initialized && s.state.fawa_initialized;
        ev.done.secs += t1.elapsed().as_secs_f64();
    }
    method_state.extend(ev.done.fawa.clone().unwrap_or_default());
    test_fawa(s, epoch, &mut ev)?;
    let mut evals = vec![train];
    evals.extend(done.evals.iter().cloned());
    Ok(EpochEvals {
        evals,
        val_worst,
        method_state,
        secs: done.secs,
    })
}

/// The evaluation in progress: the records finished (by this process or a stopped one) and
/// the stop flag checked between batches.
struct Evaluator<'a> {
    done: &'a mut PendingEval,
    stop: &'a AtomicBool,
}

/// Whether epoch `epoch` (0-based) evaluates the test set: every `eval.every` epochs, counting
/// from 1, and always the last.
pub fn test_due(spec: &RunSpec, epoch: usize) -> bool {
    let done = epoch + 1;
    done.is_multiple_of(spec.eval.every.max(1)) || done >= spec.train.epochs
}

/// The per-epoch evaluation attacks: clean, PGD-k, and PGD-final at the last epoch.
pub fn eval_attacks(spec: &RunSpec, epoch: usize) -> Vec<Option<EvalAttack>> {
    let e = &spec.eval;
    let last = epoch + 1 == spec.train.epochs;
    let mut attacks: Vec<Option<EvalAttack>> = vec![None];
    if e.steps > 0 {
        attacks.push(Some(EvalAttack::pgd(e.eps, e.alpha, e.steps)));
    }
    if last && e.final_steps > 0 && e.final_steps != e.steps {
        attacks.push(Some(EvalAttack::pgd(e.eps, e.alpha, e.final_steps)));
    }
    attacks
}

/// Evaluate one model on one split under one attack and record it (a record a stopped
/// process finished is reused).
fn eval_into(
    ev: &mut Evaluator,
    spec: &RunSpec,
    (split, model_name): (&str, &str),
    model: &Model,
    ds: &Dataset,
    attack: &Option<EvalAttack>,
) -> Result<ClassMetrics, TrainError> {
    let name = attack.as_ref().map_or("clean", |a| a.name.as_str());
    if let Some(r) = ev.done.find(split, name, model_name) {
        return Ok(r.metrics.clone());
    }
    let t0 = Instant::now();
    let batch = spec.eval_batch(model.device().is_cuda());
    let cm = evaluate(model, ds, attack.as_ref(), batch, ev.stop, |_, _| {});
    // Time spent on an evaluation a stop cut short is lost with it.
    let cm = cm?;
    let record = eval_record(split, name, model_name, &cm);
    let metrics = record.metrics.clone();
    ev.done.evals.push(record);
    ev.done.secs += t0.elapsed().as_secs_f64();
    Ok(metrics)
}

/// Test records of `model_name`: the live model's test records relabelled when it is a copy
/// of the live model (and those were computed), else a fresh evaluation.
fn test_model(
    ev: &mut Evaluator,
    s: &Session,
    epoch: usize,
    (model_name, model): (&str, &Model),
    is_copy: bool,
) -> Result<(), TrainError> {
    let spec = &s.spec;
    let live: Vec<EvalRecord> = (ev.done.evals.iter())
        .filter(|r| r.split == "test" && r.model == "live")
        .cloned()
        .collect();
    if is_copy && !live.is_empty() {
        // Relabelled all at once: a stopped process left all of them or none.
        if !ev.done.evals.iter().any(|r| r.model == model_name) {
            for mut r in live {
                r.model = model_name.into();
                ev.done.evals.push(r);
            }
        }
        return Ok(());
    }
    for a in &eval_attacks(spec, epoch) {
        eval_into(ev, spec, ("test", model_name), model, &s.splits.test, a)?;
    }
    Ok(())
}

/// Test records of the live model and the EMA, when due and asked for.
fn test_live_and_ema(s: &Session, epoch: usize, ev: &mut Evaluator) -> Result<(), TrainError> {
    if !test_due(&s.spec, epoch) {
        return Ok(());
    }
    let wanted = |m: EvalModel| s.spec.eval.models.contains(&m);
    if wanted(EvalModel::Live) {
        test_model(ev, s, epoch, ("live", &s.model), false)?;
    }
    if let Some(ema) = s.ema.as_ref().filter(|_| wanted(EvalModel::Ema)) {
        let copy = ev.done.ema_is_copy;
        test_model(ev, s, epoch, ("ema", &ema.model), copy)?;
    }
    Ok(())
}

/// Test records of FAWA once it holds a model, when due and asked for.
fn test_fawa(s: &Session, epoch: usize, ev: &mut Evaluator) -> Result<(), TrainError> {
    let wanted = s.spec.eval.models.contains(&EvalModel::Fawa);
    if !test_due(&s.spec, epoch) || !wanted || !s.state.fawa_initialized {
        return Ok(());
    }
    if let Some(f) = &s.fawa {
        let copy = ev.done.fawa_is_copy;
        test_model(ev, s, epoch, ("fawa", &f.model), copy)?;
    }
    Ok(())
}

/// Validation of the live model (clean and PGD-k); the worst class's PGD-k accuracy, which
/// drives FAWA and picks `best-worst-robust`. `None` without a validation split.
fn validate(s: &Session, epoch: usize, ev: &mut Evaluator) -> Result<Option<f64>, TrainError> {
    if s.splits.val.is_empty() {
        return Ok(None);
    }
    let mut val_worst = None;
    for a in eval_attacks(&s.spec, epoch).iter().take(2) {
        let m = eval_into(ev, &s.spec, ("val", "live"), &s.model, &s.splits.val, a)?;
        if a.is_some() {
            val_worst = Some(m.worst);
        }
    }
    Ok(val_worst)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(epochs: usize, every: usize, steps: usize, final_steps: usize) -> RunSpec {
        let mut s = fairtat_core::config::from_toml_str("", &[]).unwrap();
        (s.train.epochs, s.eval.every) = (epochs, every);
        (s.eval.steps, s.eval.final_steps) = (steps, final_steps);
        s
    }

    fn names(spec: &RunSpec, epoch: usize) -> Vec<String> {
        let name = |a: &Option<EvalAttack>| a.as_ref().map_or("clean".into(), |a| a.name.clone());
        eval_attacks(spec, epoch).iter().map(name).collect()
    }

    #[test]
    fn the_test_set_is_due_every_few_epochs_and_after_the_last() {
        let s = spec(5, 2, 10, 20);
        let due: Vec<usize> = (0..5).filter(|&e| test_due(&s, e)).collect();
        assert_eq!(due, vec![1, 3, 4]);
        assert!(test_due(&spec(5, 0, 10, 20), 0), "every = 0 counts as 1");
    }

    #[test]
    fn the_last_epoch_adds_the_final_attack_once() {
        let s = spec(3, 1, 10, 20);
        assert_eq!(names(&s, 0), vec!["clean", "pgd-10"]);
        assert_eq!(names(&s, 2), vec!["clean", "pgd-10", "pgd-20"]);
        assert_eq!(names(&spec(3, 1, 10, 10), 2), vec!["clean", "pgd-10"]);
        assert_eq!(names(&spec(3, 1, 0, 0), 2), vec!["clean"]);
    }
}
