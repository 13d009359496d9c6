//! TRIX (Medi, Jung, Keuper, arXiv 2507.07768; Fairness-a11y/TRIX `losses.py`,
//! `mixed_trades_loss`): TRADES with a per-batch choice of attack. From the batch's clean
//! eval-mode softmax, DAFA-style weights ([`batch_weights`], `calculate_class_weights_from_clean`
//! with lambda 1); samples whose class weight is below the batch's mean sample weight ("strong"
//! classes) get a targeted attack, descent on CE toward a uniformly drawn wrong class; the others
//! TRADES' untargeted KL ascent. Radius and step of each sample are scaled by DAFA's warm-up
//! weights ([`super::dafa::DafaWeights`], warm-up 70 of 150 epochs in the reference; all 1
//! before). Loss: `mean_i W_y CE(f(x_i), y_i) + beta mean_i KL(f(x_i) || f(x'_i))`, with the
//! reference's clamp of the clean probabilities at 1e-10.
//!
//! Per epoch, `dafa_weights` and the share of targeted samples (`trix_targeted_share`, one
//! value) are recorded.

use std::collections::BTreeMap;

use tch::{Kind, Tensor};

use super::dafa::{class_means, DafaWeights};
use super::kl::per_sample_ce;
use super::{Batch, Method, StepOutput, StepResult};
use crate::attacks::{signed_steps, trades_start, Ball};
use crate::models::Model;
use fairtat_core::config::{BnMode, MethodKind, RunSpec};
use fairtat_core::fairness::ClassMetrics;
use fairtat_core::util::Rng;

/// TRIX's per-batch weights from the mean clean probabilities `p` (K rows; a class absent from
/// the batch has a zero row): `calculate_class_weights_from_clean` with lambda 1 and 1e-8 added
/// to the diagonal, i.e. DAFA's formula.
pub fn batch_weights(p: &[Vec<f64>]) -> Vec<f64> {
    let mut p = p.to_vec();
    for (i, row) in p.iter_mut().enumerate() {
        row[i] += 1e-8;
    }
    super::dafa::dafa_weights(&p, 1.0)
}

/// TRIX's KL term per sample, [B]: `sum_c p (log p - log_softmax(adv + 1e-10))` with the clean
/// probabilities `p` clamped at 1e-10, as the reference writes it.
fn clamped_kl(logits_nat: &Tensor, logits_adv: &Tensor) -> Tensor {
    let p = logits_nat.softmax(-1, Kind::Float).clamp_min(1e-10);
    let logp_adv = (logits_adv + 1e-10).log_softmax(-1, Kind::Float);
    (&p * (p.log() - logp_adv)).sum_dim_intlist(-1, false, Kind::Float)
}

/// The fixed settings of a TRIX step.
#[derive(Clone, Copy, Debug)]
pub struct TrixStep {
    pub eps: f64,
    pub alpha: f64,
    pub steps: usize,
    pub bn_train: bool,
    pub beta: f64,
}

/// What one TRIX step computed.
pub struct TrixOut {
    pub loss: Tensor,
    /// Train-mode logits on the adversarial batch, and the batch.
    pub logits: Tensor,
    pub x_adv: Tensor,
    /// The batch's weights ([`batch_weights`]) and which samples were attacked targeted.
    pub batch_weights: Vec<f64>,
    pub targeted: Vec<bool>,
}

/// One TRIX step from `start` (`None`: TRADES' `x + 0.001 N(0, 1)` inside the ball) with DAFA
/// weights `w` [B] and a wrong class per sample in
/// `wrong` [B] (used where the sample is attacked targeted). The same operations in the same
/// order as `mixed_trades_loss`.
pub fn trix_step(
    model: &Model,
    b: &Batch,
    start: Option<&Tensor>,
    w: &Tensor,
    wrong: &Tensor,
    s: &TrixStep,
) -> TrixOut {
    let k = model.num_classes as i64;
    let nat = tch::no_grad(|| model.forward_t(&b.x, s.bn_train));
    let counts = Tensor::zeros([k], (Kind::Double, nat.device()));
    let ones = b.y.ones_like().to_kind(Kind::Double);
    let sums = Tensor::zeros([k, k], (Kind::Double, nat.device())).index_add(
        0,
        &b.y,
        &nat.softmax(-1, Kind::Float).to_kind(Kind::Double),
    );
    let weights = batch_weights(&class_means(&sums, &counts.index_add(0, &b.y, &ones)));
    let per: Vec<f64> = b.labels.iter().map(|&y| weights[y as usize]).collect();
    let mean = per.iter().sum::<f64>() / per.len().max(1) as f64;
    let targeted: Vec<bool> = per.iter().map(|&v| v < mean).collect();
    let mask = Tensor::from_slice(&targeted).to_device(b.x.device());
    let label = b.y.where_self(&mask.logical_not(), wrong);
    let sign = Tensor::from_slice(
        &targeted
            .iter()
            .map(|&t| if t { -1.0f32 } else { 1.0 })
            .collect::<Vec<_>>(),
    );
    let ball = tch::no_grad(|| Ball::new(&b.x, &(w * s.eps)));
    let start = start.map_or_else(|| trades_start(&b.x, &ball), Tensor::shallow_clone);
    let step = w * s.alpha * sign.to_device(b.x.device());
    let maskf = mask.to_kind(Kind::Float);
    let mixed = |l: &Tensor| {
        let ce = l.cross_entropy_loss::<Tensor>(&label, None, tch::Reduction::None, -100, 0.0);
        let kl = clamped_kl(&nat, l);
        (&ce * &maskf + kl * (maskf.ones_like() - &maskf)).mean(Kind::Float)
    };
    let x_adv = signed_steps(model, &start, &ball, &step, s.steps, s.bn_train, mixed);
    let adv = model.forward_t(&x_adv, true);
    let nat = model.forward_t(&b.x, true);
    let natural = (per_sample_ce(&nat, &b.y) * w).mean(Kind::Float);
    let robust = clamped_kl(&nat, &adv).mean(Kind::Float);
    TrixOut {
        loss: natural + robust * s.beta,
        logits: adv,
        x_adv,
        batch_weights: weights,
        targeted,
    }
}

/// One uniformly drawn class other than `y` per label (the reference redraws until it differs,
/// which is the same distribution).
pub fn wrong_classes(labels: &[i64], k: usize, rng: &mut Rng) -> Vec<i64> {
    labels
        .iter()
        .map(|&y| {
            let r = rng.below(k.saturating_sub(1).max(1)) as i64;
            if k < 2 || r < y {
                r
            } else {
                r + 1
            }
        })
        .collect()
}

pub struct Trix {
    weights: DafaWeights,
    step: TrixStep,
    /// Targeted and all samples of the epoch so far.
    targeted: (usize, usize),
}

impl Trix {
    pub fn new(spec: &RunSpec) -> Self {
        let a = &spec.attack;
        Trix {
            weights: DafaWeights::new(spec),
            step: TrixStep {
                eps: a.eps,
                alpha: a.alpha,
                steps: a.steps,
                bn_train: a.bn_mode == BnMode::Train,
                beta: spec.method.beta,
            },
            targeted: (0, 0),
        }
    }
}

impl Method for Trix {
    fn kind(&self) -> MethodKind {
        MethodKind::Trix
    }

    fn begin_epoch(&mut self, epoch: usize, _prev: Option<&ClassMetrics>) {
        self.weights.begin_epoch(epoch);
        self.targeted = (0, 0);
    }

    fn class_eps(&self) -> &[f64] {
        self.weights.class_eps()
    }

    fn step(&mut self, model: &Model, b: &Batch, rng: &mut Rng) -> StepResult {
        let w = self.weights.per_sample(&b.y);
        let wrong = wrong_classes(&b.labels, self.weights.w.len(), rng);
        let wrong = Tensor::f_from_slice(&wrong)?.f_to_device(b.y.device())?;
        let out = trix_step(model, b, None, &w, &wrong, &self.step);
        self.weights.observe(&out.logits, &b.y);
        self.targeted.0 += out.targeted.iter().filter(|&&t| t).count();
        self.targeted.1 += out.targeted.len();
        Ok(StepOutput {
            loss: out.loss,
            logits: out.logits,
            targets: None,
        })
    }

    fn method_state(&self) -> BTreeMap<String, Vec<f64>> {
        let share = self.targeted.0 as f64 / self.targeted.1.max(1) as f64;
        let mut m = self.weights.method_state();
        m.insert("trix_targeted_share".to_string(), vec![share]);
        m
    }

    super::resume_state_in!(weights);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrong_classes_are_uniform_over_the_others() {
        let mut rng = Rng::new(3);
        let labels = vec![2i64; 9000];
        let w = wrong_classes(&labels, 4, &mut rng);
        let mut n = [0usize; 4];
        for c in w {
            n[c as usize] += 1;
        }
        assert_eq!(n[2], 0);
        for c in [0, 1, 3] {
            assert!((n[c] as f64 - 3000.0).abs() < 200.0, "{n:?}");
        }
    }

    #[test]
    fn an_absent_class_keeps_a_zero_row_and_weights_stay_finite() {
        let p = vec![vec![0.9, 0.1, 0.0], vec![0.0; 3], vec![0.3, 0.1, 0.6]];
        let w = batch_weights(&p);
        assert!(w.iter().all(|v| v.is_finite()), "{w:?}");
        // Class 2 is weaker than class 0 and gains; class 0 loses.
        assert!(w[2] > 1.0 && w[0] < 1.0, "{w:?}");
    }
}
