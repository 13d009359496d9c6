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
//! `method_state` (CFA's beta_k when normalised).

use std::collections::BTreeMap;

use tch::{TchError, Tensor};

use super::calibrated::{Calibrated, CalibratedBatch, CalibratedStep, WithCalibration};
use super::kl::{kl_attack, trades_weights, TradesLogits};
use super::{train_pgd_config, Method};
use crate::attacks::{pgd, PgdConfig};
use crate::models::Model;
use fairtat_core::config::{MethodKind, RunSpec};

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
    cfg: PgdConfig,
}

impl Trades {
    /// `trades`, `fair-tat-trades`, `cfa` or `fair-tat-cfa`.
    pub fn build(spec: &RunSpec) -> Box<dyn Method> {
        let fair = matches!(
            spec.method.name,
            MethodKind::FairTatTrades | MethodKind::FairTatCfa
        );
        let targeted = fair && spec.method.trades_targeted;
        let cfg = train_pgd_config(&spec.attack);
        WithCalibration::boxed(spec, targeted, Trades { cfg })
    }
}

impl CalibratedStep for Trades {
    fn step(&mut self, model: &Model, b: &CalibratedBatch) -> Result<(Tensor, Tensor), TchError> {
        let (batch, cal) = (b.batch, b.cal);
        let x_adv = trades_adversarial(model, &batch.x, &batch.y, &b.eps, b.targets, &self.cfg);
        // Train-mode forwards in the references' order, natural, adversarial, natural: the KL
        // target `softmax(model(x_natural))` is a forward of its own (yaodongyu/TRADES
        // `trades.py`, PKU-ML/CFA `attack.py`). Its logits equal the first (batch statistics,
        // same weights); what differs is BatchNorm's running statistics, updated three times.
        let logits_nat = model.forward_t(&batch.x, true);
        let logits_adv = model.forward_t(&x_adv, true);
        let target_nat = model.forward_t(&batch.x, true);
        let l = TradesLogits {
            nat: &logits_nat,
            target: &target_nat,
            adv: &logits_adv,
        };
        let o = cal.opts();
        let loss = if o.ccr {
            let (w_ce, w_kl) = class_trades_weights(&cal.beta, o.trades_normalize, &batch.y)?;
            l.weighted_loss(&batch.y, &w_ce, &w_kl)
        } else {
            l.loss(&batch.y, trades_weights(o.beta, o.trades_normalize))
        };
        Ok((loss, logits_adv))
    }

    fn method_state(&self, cal: &Calibrated) -> BTreeMap<String, Vec<f64>> {
        let mut m = BTreeMap::new();
        let o = cal.opts();
        if o.ccr {
            let kl_weights = cal
                .beta
                .iter()
                .map(|b| trades_weights(*b, o.trades_normalize).1)
                .collect();
            m.insert("class_beta".to_string(), kl_weights);
        }
        m
    }
}
