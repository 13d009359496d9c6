//! TRADES (Zhang et al. 2019) as CFA/FAIR-TAT run it, CFA, and the FAIR-TAT combinations
//! (algorithms.md §1.8, §2.1-§2.3, §3.2).
//!
//! `trades`: KL inner attack from x + 0.001 N(0,1) (eval-mode BN by default), outer loss
//! `(1-b) CE(f(x), y) + b KL(f(x') || f(x))`, b = beta/(1+beta) (or CE + beta KL with
//! `method.trades_normalize = false`). CCM's class-wise epsilon applies when `method.class_eps`,
//! CCR's class-wise beta (b_{y_i} per sample) when `method.ccr`.
//!
//! `cfa` (PKU-ML/CFA `train.py --mode TRADES --ccm --ccr --fawa`): `trades` with CCM and CCR on
//! by default, calibrated from epoch `method.calibration_start`, and FAWA (in the loop).
//!
//! `fair-tat-trades`: no public targeted TRADES exists (§1.8), so this is the design of issue 4:
//! the inner maximisation is replaced by FAIR-TAT's targeted PGD (CE descent toward a class
//! drawn from the previous epoch's C_FPS, uniform start in the true class's eps ball, same
//! alpha and steps), the outer TRADES loss is unchanged. `method.trades_targeted = false` keeps
//! TRADES' untargeted KL inner loop with FAIR-TAT's class-wise epsilon. `fair-tat-cfa` is the
//! same with CCR on by default.
//!
//! With CCR on, the per-class KL weight in force is recorded as `class_beta` in
//! [`Method::method_state`] (CFA's beta_k when normalised).

use std::collections::BTreeMap;

use tch::Tensor;

use super::calibrated::Calibrated;
use super::kl::{kl_attack, trades_loss, trades_weights, weighted_trades_loss};
use super::{sampler, train_pgd_config, Batch, Method, StepOutput};
use crate::attacks::{per_sample_eps, pgd, PgdConfig};
use crate::config::{MethodKind, RunSpec};
use crate::fairness::ClassMetrics;
use crate::models::Model;
use crate::util::Rng;

/// The TRADES adversarial example: targeted PGD toward `targets` when given, otherwise the KL
/// attack; per-sample radius `eps` [B], step, steps and BN mode from `cfg` (the KL attack
/// ignores `cfg.random_start`: it always starts at x + 0.001 N(0,1)).
pub fn trades_adversarial(
    model: &Model,
    x: &Tensor,
    y: &Tensor,
    eps: &Tensor,
    targets: Option<&Tensor>,
    cfg: &PgdConfig,
) -> Tensor {
    match targets {
        Some(t) => pgd(model, x, y, eps, Some(t), cfg),
        None => kl_attack(model, x, eps, cfg.alpha, cfg.steps, cfg.bn_train),
    }
}

/// Per-sample TRADES term weights (w_ce, w_kl), each [B], from per-class betas.
pub fn class_trades_weights(
    class_beta: &[f64],
    normalize: bool,
    y: &Tensor,
) -> Result<(Tensor, Tensor), tch::TchError> {
    let (ce, kl): (Vec<f64>, Vec<f64>) = class_beta
        .iter()
        .map(|b| trades_weights(*b, normalize))
        .unzip();
    let pick = |w: &[f64]| -> Result<Tensor, tch::TchError> {
        Tensor::f_from_slice(w)?
            .f_to_kind(tch::Kind::Float)?
            .f_to_device(y.device())?
            .f_index_select(0, y)
    };
    Ok((pick(&ce)?, pick(&kl)?))
}

pub struct Trades {
    name: &'static str,
    targeted: bool,
    cal: Calibrated,
    cfg: PgdConfig,
}

impl Trades {
    /// `trades`, `fair-tat-trades`, `cfa` or `fair-tat-cfa` (any other kind builds plain TRADES).
    pub fn new(spec: &RunSpec) -> Self {
        let kind = spec.method.name;
        let name = match kind {
            MethodKind::FairTatTrades | MethodKind::Cfa | MethodKind::FairTatCfa => kind.as_str(),
            _ => "trades",
        };
        let fair = matches!(kind, MethodKind::FairTatTrades | MethodKind::FairTatCfa);
        Trades {
            name,
            targeted: fair && spec.method.trades_targeted,
            cal: Calibrated::new(spec),
            cfg: train_pgd_config(&spec.attack),
        }
    }
}

impl Method for Trades {
    fn name(&self) -> &'static str {
        self.name
    }

    fn begin_epoch(&mut self, epoch: usize, prev: Option<&ClassMetrics>) {
        self.cal.begin_epoch(epoch, prev);
    }

    fn class_eps(&self) -> &[f64] {
        &self.cal.eps
    }

    fn target_probs(&self) -> Option<&[f64]> {
        self.targeted.then_some(self.cal.probs.as_slice())
    }

    fn step(
        &mut self,
        model: &Model,
        batch: &Batch,
        rng: &mut Rng,
    ) -> Result<StepOutput, tch::TchError> {
        let eps = per_sample_eps(&self.cal.eps, &batch.y);
        let targets = self
            .targeted
            .then(|| sampler::sample_targets(&batch.labels, &self.cal.probs, rng));
        let t = match &targets {
            Some(t) => Some(Tensor::f_from_slice(t)?.f_to_device(batch.y.device())?),
            None => None,
        };
        let x_adv = trades_adversarial(model, &batch.x, &batch.y, &eps, t.as_ref(), &self.cfg);
        let logits_nat = model.forward_t(&batch.x, true);
        let logits_adv = model.forward_t(&x_adv, true);
        let o = self.cal.opts();
        let loss = if o.ccr {
            let (w_ce, w_kl) = class_trades_weights(&self.cal.beta, o.trades_normalize, &batch.y)?;
            weighted_trades_loss(&logits_nat, &logits_adv, &batch.y, &w_ce, &w_kl)
        } else {
            trades_loss(
                &logits_nat,
                &logits_adv,
                &batch.y,
                o.beta,
                o.trades_normalize,
            )
        };
        Ok(StepOutput {
            loss,
            logits: logits_adv,
            targets,
        })
    }

    fn after_step(&mut self, model: &Model, batch: &Batch) {
        if self.cal.opts().clean_forward_after_step {
            tch::no_grad(|| drop::<Tensor>(model.forward_t(&batch.x, true)));
        }
    }

    fn method_state(&self) -> BTreeMap<String, Vec<f64>> {
        let mut m = BTreeMap::new();
        let o = self.cal.opts();
        if o.ccr {
            let kl_weights = self
                .cal
                .beta
                .iter()
                .map(|b| trades_weights(*b, o.trades_normalize).1)
                .collect();
            m.insert("class_beta".to_string(), kl_weights);
        }
        m
    }
}
