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

use super::eval::{evaluate, EvalAttack};
use super::session::Session;
use fairtat_core::config::{EvalModel, RunSpec};
use crate::data::Dataset;
use fairtat_core::fairness::ClassMetrics;
use crate::models::Model;
use fairtat_core::runs::EvalRecord;

/// Which averaged models hold an exact copy of the live model after this epoch's updates.
#[derive(Clone, Copy, Debug, Default)]
pub struct Copies {
    pub ema: bool,
    pub fawa: bool,
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

/// Evaluate one model on one split under one attack and record it.
fn eval_into(
    evals: &mut Vec<EvalRecord>,
    spec: &RunSpec,
    split: &str,
    model_name: &str,
    model: &Model,
    ds: &Dataset,
    attack: &Option<EvalAttack>,
) -> ClassMetrics {
    let cm = evaluate(model, ds, attack.as_ref(), spec.eval.batch_size, |_, _| {});
    let metrics = ClassMetrics::from_confusion(&cm);
    let name = attack
        .as_ref()
        .map(|a| a.name.clone())
        .unwrap_or_else(|| "clean".into());
    evals.push(EvalRecord {
        split: split.into(),
        attack: name,
        model: model_name.into(),
        confusion: cm.rows(),
        metrics: metrics.clone(),
    });
    metrics
}

/// Test records of `model_name`: the live model's test records relabelled when it is a copy
/// of the live model (and those were computed), else a fresh evaluation.
fn test_model(
    evals: &mut Vec<EvalRecord>,
    s: &Session,
    epoch: usize,
    model_name: &str,
    model: &Model,
    is_copy: bool,
) {
    let spec = &s.spec;
    let live: Vec<EvalRecord> = evals
        .iter()
        .filter(|r| r.split == "test" && r.model == "live")
        .cloned()
        .collect();
    if is_copy && !live.is_empty() {
        for mut r in live {
            r.model = model_name.into();
            evals.push(r);
        }
        return;
    }
    for a in &eval_attacks(spec, epoch) {
        eval_into(evals, spec, "test", model_name, model, &s.splits.test, a);
    }
}

/// Test records of the live model and the EMA, when due and asked for.
pub fn test_live_and_ema(s: &Session, epoch: usize, copies: Copies, evals: &mut Vec<EvalRecord>) {
    if !test_due(&s.spec, epoch) {
        return;
    }
    let wanted = |m: EvalModel| s.spec.eval.models.contains(&m);
    if wanted(EvalModel::Live) {
        test_model(evals, s, epoch, "live", &s.model, false);
    }
    if let Some(ema) = s.ema.as_ref().filter(|_| wanted(EvalModel::Ema)) {
        test_model(evals, s, epoch, "ema", &ema.model, copies.ema);
    }
}

/// Test records of FAWA once it holds a model, when due and asked for.
pub fn test_fawa(s: &Session, epoch: usize, copies: Copies, evals: &mut Vec<EvalRecord>) {
    let wanted = s.spec.eval.models.contains(&EvalModel::Fawa);
    if !test_due(&s.spec, epoch) || !wanted || !s.state.fawa_initialized {
        return;
    }
    if let Some(f) = &s.fawa {
        test_model(evals, s, epoch, "fawa", &f.model, copies.fawa);
    }
}

/// Validation of the live model (clean and PGD-k); the worst class's PGD-k accuracy, which
/// drives FAWA and picks `best-worst-robust`. `None` without a validation split.
pub fn validate(s: &Session, epoch: usize, evals: &mut Vec<EvalRecord>) -> Option<f64> {
    if s.splits.val.is_empty() {
        return None;
    }
    let mut val_worst = None;
    for a in eval_attacks(&s.spec, epoch).iter().take(2) {
        let m = eval_into(evals, &s.spec, "val", "live", &s.model, &s.splits.val, a);
        if a.is_some() {
            val_worst = Some(m.worst);
        }
    }
    val_worst
}
