//! BAT, Balance Adversarial Training (Sun et al., AAAI 2023; silvercherry/
//! Balance-Adversarial-Training `train.py`, `train_mode/*.py`; algorithms.md §3.5).
//!
//! Two early-stopped TRADES-style attacks (KL ascent from x + 0.001 N(0,1), eval-mode BN by
//! default, up to `attack.steps` steps):
//! - `last_clean`: the last iterate the model still classifies correctly (a sample is stopped
//!   the step it crosses the boundary and keeps its previous iterate; samples never
//!   misclassified run every step, and their final iterate is returned unchecked, as the
//!   reference's, even when that last step crossed the boundary);
//! - `first_adv`: FAT's early stop with tau = 1 (a sample may take one more step after it is
//!   first misclassified, then it is frozen).
//!
//! Loss: `w_ce CE(f(last_clean), y) + w_kl mean KL(f(first_adv) || f(x))
//!       + mean KL(p(last_clean) || U) + mean KL(p(first_adv) || U)`,
//! U uniform over classes, so `KL(p || U) = log K - H(p)`: the last two terms push predictions
//! near the boundary toward high entropy (no drift to a few target classes). (w_ce, w_kl) =
//! (1, beta) as the reference (`method.trades_normalize = false` is BAT's default).
//! The reference returns `first_adv` in a random order with the clean images permuted alike;
//! the loss is a batch mean, so the order is irrelevant and is kept.
//!
//! Recorded per epoch: `bat_last_clean_mean_steps`, `bat_first_adv_mean_steps`.

use std::collections::BTreeMap;

use tch::{Device, Kind, Tensor};

use super::kl::{per_sample_kl, trades_weights};
use super::{train_pgd_config, Batch, Method, StepOutput, StepResult};
use crate::attacks::PgdConfig;
use crate::models::Model;
use fairtat_core::config::{MethodKind, RunSpec};
use fairtat_core::fairness::ClassMetrics;
use fairtat_core::util::Rng;

/// Which iterate an early-stopped KL attack keeps for a sample that becomes misclassified.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KlStop {
    /// The iterate before it crossed (BAT's `last_clean`).
    LastClean,
    /// FAT's rule with budget `tau`: frozen once misclassified with no budget left.
    FirstAdv { tau: usize },
}

/// Early-stopped KL attack from x + 0.001 N(0,1) with one radius for the batch; returns the
/// detached examples and the steps that moved each sample.
pub fn early_stopped_kl(
    model: &Model,
    x: &Tensor,
    y: &Tensor,
    eps: f64,
    cfg: &PgdConfig,
    stop: KlStop,
) -> (Tensor, Vec<i64>) {
    let x = x.detach();
    let b = x.size().first().copied().unwrap_or(0);
    let (p_nat, lo, hi, mut x_adv) = tch::no_grad(|| {
        let logits = model.forward_t(&x, cfg.bn_train);
        let lo = (&x - eps).clamp_min(0.0);
        let hi = (&x + eps).clamp_max(1.0);
        let start = (&x + x.randn_like() * 0.001).clamp_tensor(Some(&lo), Some(&hi));
        (logits.detach(), lo, hi, start)
    });
    let opts = (Kind::Int64, x.device());
    let tau = match stop {
        KlStop::LastClean => 0,
        KlStop::FirstAdv { tau } => tau as i64,
    };
    let mut budget = Tensor::full([b], tau, opts);
    let mut active = Tensor::ones([b], (Kind::Bool, x.device()));
    let mut steps = Tensor::zeros([b], opts);
    // What a stopped sample keeps: its current iterate (first_adv) or the previous one.
    let mut kept = x_adv.copy();
    for _ in 0..cfg.steps {
        let _ = x_adv.requires_grad_(true);
        let logits = model.forward_t(&x_adv, cfg.bn_train);
        let loss = per_sample_kl(&p_nat, &logits).sum(Kind::Float);
        let grad = Tensor::run_backward(&[&loss], &[&x_adv], false, false)
            .pop()
            .expect("one input, one gradient");
        let any_active = tch::no_grad(|| {
            let wrong = logits.argmax(-1, false).ne_tensor(y);
            let was_active = active.shallow_clone();
            match stop {
                KlStop::LastClean => {
                    active = active.logical_and(&wrong.logical_not());
                    // Samples still correct remember this iterate.
                    let m = active.view([-1, 1, 1, 1]);
                    kept = x_adv.detach().where_self(&m, &kept);
                }
                KlStop::FirstAdv { .. } => {
                    active = active.logical_and(&wrong.logical_and(&budget.eq(0)).logical_not());
                    budget = &budget - wrong.logical_and(&active).to_kind(Kind::Int64);
                    // Samples frozen now keep this iterate.
                    let frozen_now = was_active
                        .logical_and(&active.logical_not())
                        .view([-1, 1, 1, 1]);
                    kept = x_adv.detach().where_self(&frozen_now, &kept);
                }
            }
            steps = &steps + active.to_kind(Kind::Int64);
            let mask = active.to_kind(x.kind()).view([-1, 1, 1, 1]);
            x_adv = (x_adv.detach() + grad.sign() * mask * cfg.alpha)
                .clamp_tensor(Some(&lo), Some(&hi));
            active.any().int64_value(&[]) != 0
        });
        if !any_active {
            break;
        }
    }
    // Samples still moving after the last step return their final iterate unchecked, for both
    // attacks: the reference's loop ends without a last forward, so a `last_clean` sample that
    // the final step pushed across the boundary is returned as it is.
    let out = tch::no_grad(|| {
        x_adv
            .detach()
            .where_self(&active.view([-1, 1, 1, 1]), &kept)
    });
    let steps = Vec::<i64>::try_from(&steps.to_device(Device::Cpu)).unwrap_or_default();
    (out.detach(), steps)
}

/// Per-sample `KL(softmax(logits) || U) = log K - H(p)`, [B].
pub fn kl_to_uniform(logits: &Tensor) -> Tensor {
    let k = logits.size().last().copied().unwrap_or(1) as f64;
    let logp = logits.log_softmax(-1, Kind::Float);
    (logp.exp() * (logp + k.ln())).sum_dim_intlist(-1, false, Kind::Float)
}

pub struct Bat {
    cfg: PgdConfig,
    eps: Vec<f64>,
    beta: f64,
    normalize: bool,
    /// Steps summed over samples this epoch (last_clean, first_adv) and samples seen.
    steps: (f64, f64),
    samples: usize,
}

impl Bat {
    pub fn new(spec: &RunSpec) -> Self {
        Bat {
            cfg: train_pgd_config(&spec.attack),
            eps: vec![spec.attack.eps; spec.num_classes()],
            beta: spec.method.beta,
            normalize: spec.method.trades_normalize,
            steps: (0.0, 0.0),
            samples: 0,
        }
    }
}

impl Method for Bat {
    fn kind(&self) -> MethodKind {
        MethodKind::Bat
    }

    fn begin_epoch(&mut self, _epoch: usize, _prev: Option<&ClassMetrics>) {
        self.steps = (0.0, 0.0);
        self.samples = 0;
    }

    fn class_eps(&self) -> &[f64] {
        &self.eps
    }

    fn step(&mut self, model: &Model, batch: &Batch, _rng: &mut Rng) -> StepResult {
        let eps = self.eps[0];
        let (x_lc, s_lc) =
            early_stopped_kl(model, &batch.x, &batch.y, eps, &self.cfg, KlStop::LastClean);
        let (x_fa, s_fa) = early_stopped_kl(
            model,
            &batch.x,
            &batch.y,
            eps,
            &self.cfg,
            KlStop::FirstAdv { tau: 1 },
        );
        self.steps.0 += s_lc.iter().sum::<i64>() as f64;
        self.steps.1 += s_fa.iter().sum::<i64>() as f64;
        self.samples += s_lc.len();
        let logits_nat = model.forward_t(&batch.x, true);
        let logits_lc = model.forward_t(&x_lc, true);
        let logits_fa = model.forward_t(&x_fa, true);
        let (w_ce, w_kl) = trades_weights(self.beta, self.normalize);
        let loss = logits_lc.cross_entropy_for_logits(&batch.y) * w_ce
            + per_sample_kl(&logits_nat, &logits_fa).mean(Kind::Float) * w_kl
            + kl_to_uniform(&logits_lc).mean(Kind::Float)
            + kl_to_uniform(&logits_fa).mean(Kind::Float);
        Ok(StepOutput {
            loss,
            logits: logits_fa,
            targets: None,
        })
    }

    fn method_state(&self) -> BTreeMap<String, Vec<f64>> {
        let mut m = BTreeMap::new();
        if self.samples > 0 {
            let n = self.samples as f64;
            m.insert(
                "bat_last_clean_mean_steps".to_string(),
                vec![self.steps.0 / n],
            );
            m.insert(
                "bat_first_adv_mean_steps".to_string(),
                vec![self.steps.1 / n],
            );
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kl_to_uniform_is_log_k_minus_entropy() {
        let z = [[2.0f32, 0.0, -1.0, 0.5], [0.0, 0.0, 0.0, 0.0]];
        let t = Tensor::from_slice(z.as_flattened()).view([2, 4]);
        let got = Vec::<f64>::try_from(&kl_to_uniform(&t).to_kind(Kind::Double)).unwrap();
        for (row, g) in z.iter().zip(got) {
            let m = row.iter().cloned().fold(f32::NEG_INFINITY, f32::max) as f64;
            let e: Vec<f64> = row.iter().map(|v| (*v as f64 - m).exp()).collect();
            let s: f64 = e.iter().sum();
            let h: f64 = e.iter().map(|x| -(x / s) * (x / s).ln()).sum();
            assert!(
                (g - (4f64.ln() - h)).abs() < 1e-5,
                "{g} vs {}",
                4f64.ln() - h
            );
        }
    }
}
