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
use super::kl::{kl_attack, per_sample_ce, per_sample_kl, trades_weights};
use super::{sampler, train_pgd_config, Batch, Method, StepOutput};
use crate::attacks::{per_sample_eps, pgd, PgdConfig};
use fairtat_core::config::{MethodKind, RunSpec};
use fairtat_core::fairness::ClassMetrics;
use crate::models::Model;
use fairtat_core::util::Rng;

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

/// CCR's per-sample weighted TRADES loss (CFA `cw_trades_loss`) with the KL target taken from
/// its own natural forward `target_nat`: `mean_i [w_ce_i CE(nat_i, y_i) + w_kl_i KL(adv_i ||
/// target_i)]`.
fn weighted_trades_loss_with_target(
    logits_nat: &Tensor,
    target_nat: &Tensor,
    logits_adv: &Tensor,
    y: &Tensor,
    w_ce: &Tensor,
    w_kl: &Tensor,
) -> Tensor {
    let ce = per_sample_ce(logits_nat, y);
    let kl = per_sample_kl(target_nat, logits_adv);
    (ce * w_ce + kl * w_kl).mean(tch::Kind::Float)
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
        // Train-mode forwards in the references' order, natural, adversarial, natural: the KL
        // target `softmax(model(x_natural))` is a forward of its own (yaodongyu/TRADES
        // `trades.py`, PKU-ML/CFA `attack.py`). Its logits equal the first (batch statistics,
        // same weights); what differs is BatchNorm's running statistics, updated three times.
        let logits_nat = model.forward_t(&batch.x, true);
        let logits_adv = model.forward_t(&x_adv, true);
        let target_nat = model.forward_t(&batch.x, true);
        let o = self.cal.opts();
        let loss = if o.ccr {
            let (w_ce, w_kl) = class_trades_weights(&self.cal.beta, o.trades_normalize, &batch.y)?;
            weighted_trades_loss_with_target(
                &logits_nat,
                &target_nat,
                &logits_adv,
                &batch.y,
                &w_ce,
                &w_kl,
            )
        } else {
            let (w_ce, w_kl) = trades_weights(o.beta, o.trades_normalize);
            let ce = logits_nat.cross_entropy_for_logits(&batch.y);
            let kl = per_sample_kl(&target_nat, &logits_adv).mean(tch::Kind::Float);
            ce * w_ce + kl * w_kl
        };
        Ok(StepOutput {
            loss,
            logits: logits_adv,
            targets,
        })
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
