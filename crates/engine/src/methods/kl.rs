//! TRADES building blocks: the outer loss and the KL inner attack (yaodongyu/TRADES `trades.py`,
//! CFA `attack.py` `trades_loss`; algorithms.md §2.3, §3.2).
//!
//! "KL(f(x') || f(x))" is written the way the reference code computes it,
//! `KLDivLoss(log_softmax(f(x')), softmax(f(x)))`, i.e. per sample
//! `sum_c p_c(x) * (log p_c(x) - log p_c(x'))`, summed over classes.

use tch::{Kind, Tensor};

use crate::models::Model;

/// Per-sample KL as the reference computes it: `sum_c p(nat) (log p(nat) - log p(adv))`, [B].
pub fn per_sample_kl(logits_nat: &Tensor, logits_adv: &Tensor) -> Tensor {
    let logp_nat = logits_nat.log_softmax(-1, Kind::Float);
    let logp_adv = logits_adv.log_softmax(-1, Kind::Float);
    (logp_nat.exp() * (&logp_nat - logp_adv)).sum_dim_intlist(-1, false, Kind::Float)
}

/// Weights (w_ce, w_kl) of the TRADES terms. Normalised (CFA/FAIR-TAT, §2.3):
/// (1 - b, b) with b = beta / (1 + beta); original TRADES: (1, beta).
pub fn trades_weights(beta: f64, normalize: bool) -> (f64, f64) {
    if normalize {
        let b = beta / (1.0 + beta);
        (1.0 - b, b)
    } else {
        (1.0, beta)
    }
}

/// The logits a TRADES loss reads: natural (CE term), the KL's target `f(x)` (the natural
/// forward itself, or a natural forward of its own as TRADES' and CFA's code do) and
/// adversarial. All keep their graphs, as in the reference, where the KL's target
/// `softmax(f(x))` is not detached.
pub struct TradesLogits<'a> {
    pub nat: &'a Tensor,
    pub target: &'a Tensor,
    pub adv: &'a Tensor,
}

impl<'a> TradesLogits<'a> {
    /// The clean forward itself as the KL's target.
    pub fn plain(nat: &'a Tensor, adv: &'a Tensor) -> Self {
        TradesLogits {
            nat,
            target: nat,
            adv,
        }
    }

    /// `w_ce CE(f(x), y) + w_kl mean_i KL(f(x'_i) || target_i)` with the batch-mean CE.
    pub fn loss(&self, y: &Tensor, (w_ce, w_kl): (f64, f64)) -> Tensor {
        let ce = self.nat.cross_entropy_for_logits(y);
        let kl = per_sample_kl(self.target, self.adv).mean(Kind::Float);
        ce * w_ce + kl * w_kl
    }

    /// Per-sample term weights `w_ce`, `w_kl` [B] (CFA's CCR, `attack.py` `cw_trades_loss`):
    /// `mean_i [w_ce_i CE(f(x_i), y_i) + w_kl_i KL(f(x'_i) || target_i)]`.
    pub fn weighted_loss(&self, y: &Tensor, w_ce: &Tensor, w_kl: &Tensor) -> Tensor {
        let ce = per_sample_ce(self.nat, y);
        let kl = per_sample_kl(self.target, self.adv);
        (ce * w_ce + kl * w_kl).mean(Kind::Float)
    }
}

/// TRADES loss `mean_i [w_ce CE(f(x_i), y_i) + w_kl KL(f(x'_i) || f(x_i))]` from the clean and
/// adversarial logits, the KL's target being the clean forward itself.
pub fn trades_loss(
    logits_nat: &Tensor,
    logits_adv: &Tensor,
    y: &Tensor,
    beta: f64,
    normalize: bool,
) -> Tensor {
    TradesLogits::plain(logits_nat, logits_adv).loss(y, trades_weights(beta, normalize))
}

/// [`TradesLogits::weighted_loss`] with the clean forward as the KL's target.
pub fn weighted_trades_loss(
    logits_nat: &Tensor,
    logits_adv: &Tensor,
    y: &Tensor,
    w_ce: &Tensor,
    w_kl: &Tensor,
) -> Tensor {
    TradesLogits::plain(logits_nat, logits_adv).weighted_loss(y, w_ce, w_kl)
}

/// Per-sample cross-entropy, [B].
pub fn per_sample_ce(logits: &Tensor, y: &Tensor) -> Tensor {
    -logits
        .log_softmax(-1, Kind::Float)
        .gather(1, &y.view([-1, 1]), false)
        .view([-1])
}

/// TRADES inner maximisation: from x' = x + 0.001 N(0, 1), `steps` signed-gradient ascent steps
/// of size `alpha` on the batch-summed KL against the (fixed) clean prediction, each followed by
/// projection onto the per-sample ball `|x' - x| <= eps_i` ([B]) and [0,1]. BatchNorm mode is
/// `bn_train` (the reference uses eval mode). Returns detached images.
pub fn kl_attack(
    model: &Model,
    x: &Tensor,
    eps: &Tensor,
    alpha: f64,
    steps: usize,
    bn_train: bool,
) -> Tensor {
    let x = x.detach();
    let (p_nat, lo, hi, mut x_adv) = tch::no_grad(|| {
        let logits = model.forward_t(&x, bn_train);
        let eps4 = eps
            .to_device(x.device())
            .to_kind(x.kind())
            .view([-1, 1, 1, 1]);
        let lo = (&x - &eps4).clamp_min(0.0);
        let hi = (&x + &eps4).clamp_max(1.0);
        let start = (&x + x.randn_like() * 0.001).clamp_tensor(Some(&lo), Some(&hi));
        (logits.detach(), lo, hi, start)
    });
    for _ in 0..steps {
        let _ = x_adv.requires_grad_(true);
        let logits_adv = model.forward_t(&x_adv, bn_train);
        let loss = per_sample_kl(&p_nat, &logits_adv).sum(Kind::Float);
        let grad = Tensor::run_backward(&[loss], &[&x_adv], false, false)
            .pop()
            .expect("one input, one gradient");
        x_adv = tch::no_grad(|| {
            (x_adv.detach() + grad.sign() * alpha).clamp_tensor(Some(&lo), Some(&hi))
        });
    }
    x_adv.detach()
}
