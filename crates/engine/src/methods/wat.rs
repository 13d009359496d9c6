//! WAT, Worst-class Adversarial Training (Li & Liu, AAAI 2023; boqili/WAT
//! `worst_class_adversarial_train.py`, algorithms.md §3.6).
//!
//! TRADES with class weights chosen by Hedge (exponentiated gradient) over K+1 experts: one per
//! class and one for the average. Before each epoch but the first, the model as the previous
//! epoch left it is attacked on the validation split (TRADES' KL attack, eval-mode BN) and the
//! per-class TRADES cost `c_k = CE_k + beta KL_k` (class means) and the overall mean `c_{K+1}`
//! are added to running sums `S_j`; the weights become `w_j = K exp(eta S_j) / sum_l exp(eta S_l)`
//! (all 1 before the first update). The training loss is
//! `(1/B) sum_i w_{y_i} l_i + w_{K+1} mean_i l_i` with `l_i` the per-sample TRADES term, i.e.
//! per-sample weight `w_{y_i} + w_{K+1}`.
//!
//! The reference divides the validation sums by `batches * batch_size` (slightly more than the
//! split's size when the last batch is short); here they are divided by the class sizes, which
//! is the same for full batches. `class_weights` (K+1 entries, the last the average's) is
//! recorded per epoch; the sums `S_j` are saved for resume.

use std::collections::BTreeMap;

use tch::{Device, Kind, Tensor};

use super::kl::{kl_attack, per_sample_ce, per_sample_kl, trades_weights, weighted_trades_loss};
use super::{train_pgd_config, Batch, EpochCtx, Method, StepOutput, StepResult};
use crate::attacks::PgdConfig;
use crate::data::{batch_indices, make_batch, Dataset};
use crate::models::Model;
use fairtat_core::config::{MethodKind, RunSpec};
use fairtat_core::util::Rng;

/// Hedge weights over K+1 experts from the cost sums: `K softmax(eta * sums)`.
pub fn hedge_weights(sums: &[f64], eta: f64, k: usize) -> Vec<f64> {
    let m = sums
        .iter()
        .map(|s| eta * s)
        .fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = sums.iter().map(|s| (eta * s - m).exp()).collect();
    let total: f64 = e.iter().sum();
    e.iter().map(|x| k as f64 * x / total).collect()
}

/// Per-class mean TRADES cost `CE + beta KL` on `ds` under the KL attack (eval-mode BN), plus
/// the overall mean as entry K. Classes without images cost 0.
pub fn validation_costs(
    model: &Model,
    ds: &Dataset,
    batch_size: usize,
    eps: f64,
    cfg: &PgdConfig,
    beta: f64,
) -> Vec<f64> {
    let k = ds.num_classes();
    let device = model.device();
    let (mut sums, mut counts) = (vec![0.0; k], vec![0usize; k]);
    for idx in batch_indices(ds.len(), batch_size.max(1), None) {
        let (x, y) = make_batch(ds, &idx, None);
        let (x, y) = (x.to_device(device), y.to_device(device));
        let e = Tensor::full([idx.len() as i64], eps, (Kind::Float, device));
        let x_adv = kl_attack(model, &x, &e, cfg.alpha, cfg.steps, false);
        let cost = tch::no_grad(|| {
            let nat = model.forward_t(&x, false);
            let adv = model.forward_t(&x_adv, false);
            per_sample_ce(&nat, &y) + per_sample_kl(&nat, &adv) * beta
        });
        let cost = Vec::<f64>::try_from(&cost.to_kind(Kind::Double).to_device(Device::Cpu))
            .unwrap_or_default();
        for (&i, c) in idx.iter().zip(cost) {
            let label = ds.labels[i] as usize;
            if label < k {
                sums[label] += c;
                counts[label] += 1;
            }
        }
    }
    let total: f64 = sums.iter().sum();
    let n: usize = counts.iter().sum();
    let mut out: Vec<f64> = sums
        .iter()
        .zip(&counts)
        .map(|(s, &c)| if c > 0 { s / c as f64 } else { 0.0 })
        .collect();
    out.push(if n > 0 { total / n as f64 } else { 0.0 });
    out
}

pub struct Wat {
    cfg: PgdConfig,
    eps: Vec<f64>,
    beta: f64,
    normalize: bool,
    eta: f64,
    /// Running sums S_j of the validation costs (K+1); empty before the first update.
    sums: Vec<f64>,
    /// Weights in force this epoch (K+1, the last the average's).
    weights: Vec<f64>,
}

impl Wat {
    pub fn new(spec: &RunSpec) -> Self {
        let k = spec.num_classes();
        Wat {
            cfg: train_pgd_config(&spec.attack),
            eps: vec![spec.attack.eps; k],
            beta: spec.method.beta,
            normalize: spec.method.trades_normalize,
            eta: spec.method.eta,
            sums: vec![],
            weights: vec![1.0; k + 1],
        }
    }

    fn refresh_weights(&mut self) {
        let k = self.eps.len();
        self.weights = if self.sums.len() == k + 1 {
            hedge_weights(&self.sums, self.eta, k)
        } else {
            vec![1.0; k + 1]
        };
    }
}

impl Method for Wat {
    fn kind(&self) -> MethodKind {
        MethodKind::Wat
    }

    fn prepare_epoch(&mut self, ctx: &EpochCtx) -> Result<(), tch::TchError> {
        let k = self.eps.len();
        if ctx.epoch == 0 || ctx.val.is_empty() {
            return Ok(());
        }
        let c = validation_costs(
            ctx.model,
            ctx.val,
            ctx.batch_size,
            self.eps[0],
            &self.cfg,
            self.beta,
        );
        if self.sums.len() != k + 1 {
            self.sums = vec![0.0; k + 1];
        }
        for (s, c) in self.sums.iter_mut().zip(c) {
            *s += c;
        }
        self.refresh_weights();
        Ok(())
    }

    fn class_eps(&self) -> &[f64] {
        &self.eps
    }

    fn step(&mut self, model: &Model, batch: &Batch, _rng: &mut Rng) -> StepResult {
        let device = batch.y.device();
        let e = Tensor::full(
            [batch.labels.len() as i64],
            self.eps[0],
            (Kind::Float, device),
        );
        let x_adv = kl_attack(
            model,
            &batch.x,
            &e,
            self.cfg.alpha,
            self.cfg.steps,
            self.cfg.bn_train,
        );
        let logits_nat = model.forward_t(&batch.x, true);
        let logits_adv = model.forward_t(&x_adv, true);
        let k = self.eps.len();
        let avg = self.weights[k];
        let per_class: Vec<f64> = self.weights[..k].iter().map(|w| w + avg).collect();
        let w = Tensor::f_from_slice(&per_class)?
            .f_to_kind(Kind::Float)?
            .f_to_device(device)?
            .f_index_select(0, &batch.y)?;
        let (w_ce, w_kl) = trades_weights(self.beta, self.normalize);
        let loss = weighted_trades_loss(
            &logits_nat,
            &logits_adv,
            &batch.y,
            &(&w * w_ce),
            &(&w * w_kl),
        );
        Ok(StepOutput {
            loss,
            logits: logits_adv,
            targets: None,
        })
    }

    fn method_state(&self) -> BTreeMap<String, Vec<f64>> {
        BTreeMap::from([("class_weights".to_string(), self.weights.clone())])
    }

    fn resume_state(&self) -> BTreeMap<String, Vec<f64>> {
        BTreeMap::from([("wat_cost_sums".to_string(), self.sums.clone())])
    }

    fn restore_state(&mut self, state: &BTreeMap<String, Vec<f64>>) {
        if let Some(s) = state.get("wat_cost_sums") {
            self.sums = s.clone();
            self.refresh_weights();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hedge_weights_follow_the_cost_sums() {
        // K = 2 classes + the average: w_j = 2 exp(0.1 S_j) / sum_l exp(0.1 S_l).
        let s = [10.0, 0.0, 5.0];
        let w = hedge_weights(&s, 0.1, 2);
        let z = 1f64.exp() + 1.0 + 0.5f64.exp();
        let want = [2.0 * 1f64.exp() / z, 2.0 / z, 2.0 * 0.5f64.exp() / z];
        for (a, b) in w.iter().zip(want) {
            assert!((a - b).abs() < 1e-12, "{w:?}");
        }
        assert!((w.iter().sum::<f64>() - 2.0).abs() < 1e-12);
        // Equal sums: K/(K+1) each; huge sums do not overflow.
        assert!(hedge_weights(&[3.0; 4], 0.1, 3)
            .iter()
            .all(|x| (x - 0.75).abs() < 1e-12));
        let big = hedge_weights(&[1e6, 0.0], 1.0, 1);
        assert!((big[0] - 1.0).abs() < 1e-12 && big[1] == 0.0);
    }
}
