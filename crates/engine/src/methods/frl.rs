//! FRL, Fair Robust Learning (Xu et al. ICML 2021; hannxu123/fair_robust `frlrw.py` +
//! `utils_frl.py` (Reweight), `frlrmrw.py` + `utils_frl2.py` (Reweight + Remargin);
//! algorithms.md §3.4).
//!
//! FRL fine-tunes a pre-trained robust model (`train.init_checkpoint`, loaded by the session).
//! Before every epoch the model is evaluated on the validation split, clean and under PGD
//! (`eval.eps`, `eval.alpha`, `eval.final_steps` = the reference's PGD-20; eval-mode BN), giving
//! class clean errors e_k and boundary errors b_k; the multipliers follow [`frl_rule`]. Training
//! uses TRADES' KL attack with per-class radius `eps * m_k` (Remargin multipliers, 1 for
//! FRL-RW; with Remargin the step is max_i(eps_i)/4 as in `utils_frl2.py`) and the reweighted
//! loss `sum_i w0_{y_i} CE_i / sum_i w0_{y_i} + beta sum_i w1_{y_i} KL_i / sum_i w1_{y_i}`.
//!
//! Recorded per epoch: `lambda0`, `lambda1`, `lambda2`, `w0`, `w1`, `eps_mult`; the
//! multipliers are saved for resume.

use std::collections::BTreeMap;

use tch::{Device, Kind, Tensor};

use super::frl_rule::{class_weights, eps_multipliers, FrlRule, Multipliers};
use super::kl::{kl_attack, per_sample_ce, per_sample_kl};
use super::{train_pgd_config, Batch, EpochCtx, Method, StepOutput, StepResult};
use crate::attacks::{per_sample_eps, pgd, PgdConfig};
use crate::data::{batch_indices, make_batch, Dataset};
use crate::models::Model;
use fairtat_core::config::{MethodKind, RunSpec};
use fairtat_core::fairness::{ClassMetrics, ConfusionMatrix};
use fairtat_core::util::Rng;

/// Class clean errors and boundary errors (clean minus robust accuracy) of `model` on `ds`,
/// PGD with one radius, eval-mode BN.
pub fn clean_and_boundary_errors(
    model: &Model,
    ds: &Dataset,
    batch_size: usize,
    eps: f64,
    cfg: &PgdConfig,
) -> (Vec<f64>, Vec<f64>) {
    let k = ds.num_classes();
    let device = model.device();
    let (mut clean, mut robust) = (ConfusionMatrix::new(k), ConfusionMatrix::new(k));
    for idx in batch_indices(ds.len(), batch_size.max(1), None) {
        let (x, y) = make_batch(ds, &idx, None);
        let (x, y) = (x.to_device(device), y.to_device(device));
        let e = Tensor::full([idx.len() as i64], eps, (Kind::Float, device));
        let x_adv = pgd(model, &x, &y, &e, None, cfg);
        let preds = |input: &Tensor| -> Vec<i64> {
            let p = tch::no_grad(|| model.forward_t(input, false).argmax(-1, false));
            Vec::try_from(&p.to_device(Device::Cpu)).unwrap_or_default()
        };
        let labels: Vec<i64> = idx.iter().map(|&i| ds.labels[i] as i64).collect();
        clean.add_batch(&labels, &preds(&x));
        robust.add_batch(&labels, &preds(&x_adv));
    }
    let (a, r) = (
        ClassMetrics::from_confusion(&clean).class_acc,
        ClassMetrics::from_confusion(&robust).class_acc,
    );
    let e = a.iter().map(|x| 1.0 - x).collect();
    let b = a.iter().zip(&r).map(|(x, y)| x - y).collect();
    (e, b)
}

pub struct Frl {
    kind: MethodKind,
    rule: FrlRule,
    cfg: PgdConfig,
    val_cfg: PgdConfig,
    val_eps: f64,
    base_eps: f64,
    beta: f64,
    m: Multipliers,
    /// Per-class training epsilon in force (base eps times the Remargin multipliers).
    eps: Vec<f64>,
}

impl Frl {
    /// `frl-rw`, or `frl-rwrm` (Remargin) for that kind.
    pub fn new(spec: &RunSpec) -> Self {
        let o = &spec.method;
        let remargin = o.name == MethodKind::FrlRwrm;
        let k = spec.num_classes();
        Frl {
            kind: o.name,
            rule: FrlRule {
                bound0: o.frl_bound0,
                bound1: o.frl_bound1,
                rate1: o.frl_rate1,
                rate2: o.frl_rate2,
                lim: o.frl_lim,
                remargin,
            },
            cfg: train_pgd_config(&spec.attack),
            val_cfg: PgdConfig {
                alpha: spec.eval.alpha,
                steps: spec.eval.final_steps,
                random_start: true,
                bn_train: false,
            },
            val_eps: spec.eval.eps,
            base_eps: spec.attack.eps,
            beta: o.beta,
            m: Multipliers::zeros(k),
            eps: vec![spec.attack.eps; k],
        }
    }

    fn refresh_eps(&mut self) {
        self.eps = eps_multipliers(&self.m.lambda2)
            .iter()
            .map(|m| m * self.base_eps)
            .collect();
    }
}

impl Method for Frl {
    fn kind(&self) -> MethodKind {
        self.kind
    }

    fn prepare_epoch(&mut self, ctx: &EpochCtx) -> Result<(), tch::TchError> {
        if ctx.val.is_empty() {
            return Ok(());
        }
        let (e, b) = clean_and_boundary_errors(
            ctx.model,
            ctx.val,
            ctx.batch_size,
            self.val_eps,
            &self.val_cfg,
        );
        self.m.update(&self.rule, ctx.epoch, &e, &b);
        self.refresh_eps();
        Ok(())
    }

    fn class_eps(&self) -> &[f64] {
        &self.eps
    }

    fn step(&mut self, model: &Model, batch: &Batch, _rng: &mut Rng) -> StepResult {
        let eps = per_sample_eps(&self.eps, &batch.y);
        let alpha = if self.rule.remargin {
            eps.max().double_value(&[]) / 4.0
        } else {
            self.cfg.alpha
        };
        let x_adv = kl_attack(
            model,
            &batch.x,
            &eps,
            alpha,
            self.cfg.steps,
            self.cfg.bn_train,
        );
        let logits_nat = model.forward_t(&batch.x, true);
        let logits_adv = model.forward_t(&x_adv, true);
        let pick = |w: Vec<f64>| -> Result<Tensor, tch::TchError> {
            Tensor::f_from_slice(&w)?
                .f_to_kind(Kind::Float)?
                .f_to_device(batch.y.device())?
                .f_index_select(0, &batch.y)
        };
        let w0 = pick(class_weights(&self.m.lambda0))?;
        let w1 = pick(class_weights(&self.m.lambda1))?;
        let ce =
            (per_sample_ce(&logits_nat, &batch.y) * &w0).sum(Kind::Float) / w0.sum(Kind::Float);
        let kl =
            (per_sample_kl(&logits_nat, &logits_adv) * &w1).sum(Kind::Float) / w1.sum(Kind::Float);
        Ok(StepOutput {
            loss: ce + kl * self.beta,
            logits: logits_adv,
            targets: None,
        })
    }

    fn method_state(&self) -> BTreeMap<String, Vec<f64>> {
        BTreeMap::from([
            ("lambda0".to_string(), self.m.lambda0.clone()),
            ("lambda1".to_string(), self.m.lambda1.clone()),
            ("lambda2".to_string(), self.m.lambda2.clone()),
            ("w0".to_string(), class_weights(&self.m.lambda0)),
            ("w1".to_string(), class_weights(&self.m.lambda1)),
            ("eps_mult".to_string(), eps_multipliers(&self.m.lambda2)),
        ])
    }

    fn resume_state(&self) -> BTreeMap<String, Vec<f64>> {
        BTreeMap::from([
            ("lambda0".to_string(), self.m.lambda0.clone()),
            ("lambda1".to_string(), self.m.lambda1.clone()),
            ("lambda2".to_string(), self.m.lambda2.clone()),
        ])
    }

    fn restore_state(&mut self, state: &BTreeMap<String, Vec<f64>>) {
        let k = self.eps.len();
        for (key, dst) in [
            ("lambda0", &mut self.m.lambda0),
            ("lambda1", &mut self.m.lambda1),
            ("lambda2", &mut self.m.lambda2),
        ] {
            if let Some(v) = state.get(key).filter(|v| v.len() == k) {
                dst.clone_from(v);
            }
        }
        self.refresh_eps();
    }
}
