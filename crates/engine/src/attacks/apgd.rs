//! APGD, L-inf (Croce & Hein, ICML 2020), ported from fra31/auto-attack
//! `autoattack/autopgd_base.py` (`APGDAttack.attack_single_run`, `perturb`, and
//! `APGDAttack_targeted.perturb`); algorithms.md §4.2.
//!
//! One run: random start `x + eps * t/||t||_inf`, step size `2*eps`, momentum 0.75 after the
//! first step, and step-size checkpoints (see [`checkpoints`]) at which a sample's step is halved
//! and it restarts from its best point when the loss oscillated or stalled. Each run keeps the
//! best-loss point and the last misclassified iterate; a point counts as broken when any
//! iterate was misclassified, and the returned image is then that iterate.
//!
//! Randomness: `tch::manual_seed(seed)` once per call (like the reference's
//! `torch.random.manual_seed(self.seed)` in `perturb`), draws from the CPU generator.

use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use super::classifier::{
    attack_robust_points, clean_correct, logits_no_grad, loss_and_grad, on_model, per_image,
    rand_cpu, AttackError, Classifier,
};
use super::losses::{ce_loss, ce_loss_targeted, dlr_loss, dlr_loss_targeted};

/// The loss APGD ascends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ApgdLoss {
    /// Untargeted cross-entropy (APGD-CE).
    Ce,
    /// Untargeted DLR (APGD-DLR, rand/plus versions); needs 3 classes.
    Dlr,
    /// Targeted DLR over the top clean classes (APGD-T); needs 4 classes.
    TargetedDlr,
    /// Targeted `-CE(z, t)` over the top clean classes: AutoAttack's fallback for APGD-T below
    /// 4 classes (the reference's `ce-targeted` loss).
    TargetedCe,
}

impl ApgdLoss {
    fn min_classes(self) -> usize {
        match self {
            ApgdLoss::Ce | ApgdLoss::TargetedCe => 2,
            ApgdLoss::Dlr => 3,
            ApgdLoss::TargetedDlr => 4,
        }
    }

    fn is_targeted(self) -> bool {
        matches!(self, ApgdLoss::TargetedDlr | ApgdLoss::TargetedCe)
    }

    fn name(self) -> &'static str {
        match self {
            ApgdLoss::Ce => "CE",
            ApgdLoss::Dlr => "DLR",
            ApgdLoss::TargetedDlr => "targeted DLR",
            ApgdLoss::TargetedCe => "targeted CE",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ApgdConfig {
    /// L-inf radius in [0,1] pixel units.
    pub eps: f64,
    pub n_iter: usize,
    /// Restarts per target (untargeted: in total); AutoAttack standard uses 1.
    pub n_restarts: usize,
    /// Oscillation threshold of the step-size rule (0.75).
    pub rho: f64,
    pub loss: ApgdLoss,
    /// Targeted losses: targets are the classes of the 2nd..(n+1)-th largest clean logit,
    /// n = min(n_target_classes, K-1) (9 in AutoAttack, also for CIFAR-100, issue #57).
    pub n_target_classes: usize,
    pub seed: u64,
}

impl ApgdConfig {
    /// AutoAttack's settings: 100 iterations, 1 restart, rho 0.75, 9 targets, seed 0.
    pub fn new(eps: f64, loss: ApgdLoss) -> Self {
        ApgdConfig {
            eps,
            n_iter: 100,
            n_restarts: 1,
            rho: 0.75,
            loss,
            n_target_classes: 9,
            seed: 0,
        }
    }
}

/// Iteration counts after which the step size is checked: the first after
/// `max(int(0.22 n), 1)` iterations, each later interval shorter by `max(int(0.03 n), 1)`
/// down to `max(int(0.06 n), 1)`. For n = 100: [22, 41, 57, 70, 80, 87, 93, 99].
pub fn checkpoints(n_iter: usize) -> Vec<usize> {
    let n = n_iter as f64;
    let first = ((0.22 * n) as usize).max(1);
    let min = ((0.06 * n) as usize).max(1);
    let decr = ((0.03 * n) as usize).max(1);
    let (mut out, mut at, mut k) = (Vec::new(), 0, first);
    loop {
        at += k;
        if at > n_iter {
            return out;
        }
        out.push(at);
        k = k.saturating_sub(decr).max(min);
    }
}

/// APGD on the points of `x` [B,C,H,W] (in [0,1]) that the model classifies correctly; returns
/// detached images with `|x_adv - x|_inf <= eps`, equal to `x` where no adversarial was found.
/// Errors when the loss needs more classes than the model has.
pub fn apgd<C: Classifier + ?Sized>(
    model: &C,
    x: &Tensor,
    y: &Tensor,
    cfg: &ApgdConfig,
) -> Result<Tensor, AttackError> {
    let (x, y) = on_model(model, x, y);
    let k = logits_no_grad(model, &x).size()[1] as usize;
    if k < cfg.loss.min_classes() {
        return Err(AttackError::TooFewClasses {
            loss: cfg.loss.name(),
            needs: cfg.loss.min_classes(),
            got: k,
        });
    }
    tch::manual_seed(cfg.seed as i64);
    let mut robust = clean_correct(model, &x, &y);
    let mut adv = x.copy();
    let targets: Vec<Option<i64>> = if cfg.loss.is_targeted() {
        // Target rank r = 2 means the class of the second largest clean logit.
        (2..cfg.n_target_classes.min(k - 1) as i64 + 2)
            .map(Some)
            .collect()
    } else {
        vec![None]
    };
    for rank in targets {
        for _ in 0..cfg.n_restarts {
            let mut run = |xs: &Tensor, ys: &Tensor| {
                // Targets are recomputed on the points still robust (reference behaviour).
                let target = rank.map(|r| {
                    logits_no_grad(model, xs)
                        .argsort(1, false)
                        .select(1, k as i64 - r)
                });
                single_run(model, xs, ys, target.as_ref(), cfg)
            };
            attack_robust_points(model, &x, &y, &mut robust, &mut adv, &mut run, None);
        }
    }
    Ok(adv)
}

/// Per-sample loss of `logits` for this configuration.
fn loss_of(loss: ApgdLoss, logits: &Tensor, y: &Tensor, target: Option<&Tensor>) -> Tensor {
    let t = || target.expect("targeted loss without target");
    match loss {
        ApgdLoss::Ce => ce_loss(logits, y),
        ApgdLoss::Dlr => dlr_loss(logits, y),
        ApgdLoss::TargetedDlr => dlr_loss_targeted(logits, y, t()),
        ApgdLoss::TargetedCe => ce_loss_targeted(logits, t()),
    }
}

/// `attack_single_run`: returns the adversarial image of each point (a misclassified iterate
/// when one was found, else the best-loss point).
fn single_run<C: Classifier + ?Sized>(
    model: &C,
    x: &Tensor,
    y: &Tensor,
    target: Option<&Tensor>,
    cfg: &ApgdConfig,
) -> Tensor {
    let (n, eps, nd) = (cfg.n_iter, cfg.eps, x.dim());
    let b = x.size()[0];
    let lossf = |logits: &Tensor| loss_of(cfg.loss, logits, y, target);
    let (lo, hi) = ((x - eps).clamp_min(0.0), (x + eps).clamp_max(1.0));
    let project = |v: &Tensor| v.clamp_tensor(Some(&lo), Some(&hi));

    let t = rand_cpu(&x.size(), x.device()) * 2.0 - 1.0;
    let t_max = per_image(&t.abs().flatten(1, -1).amax([1i64].as_slice(), false), nd);
    let mut x_adv = (x + &t / (t_max + 1e-12) * eps).clamp(0.0, 1.0);
    let (logits, loss_indiv, mut grad) = loss_and_grad(model, &x_adv, &lossf);
    let mut x_best = x_adv.copy();
    let mut x_best_adv = x_adv.copy();
    let mut grad_best = grad.copy();
    let mut loss_best = loss_indiv.copy();
    let mut mis = logits.argmax(1, false).ne_tensor(y);
    // Loss of every iterate [n, B]; the reference's oscillation test reads index -1 (the last,
    // still zero row) at the first checkpoint, reproduced by wrapping around below.
    let loss_steps = Tensor::zeros([n as i64, b], (Kind::Float, x.device()));
    let mut step = Tensor::full([b], 2.0 * eps, (Kind::Float, x.device()));
    let mut x_adv_old = x_adv.copy();
    let checks = checkpoints(n);
    let mut last_check = 0usize;
    let mut loss_best_last_check = loss_best.copy();
    let mut reduced_last_check = loss_best.ones_like();

    for i in 0..n {
        tch::no_grad(|| {
            let momentum = &x_adv - &x_adv_old;
            x_adv_old = x_adv.copy();
            let a = if i > 0 { 0.75 } else { 1.0 };
            let z = project(&(&x_adv + per_image(&step, nd) * grad.sign()));
            x_adv = project(&(&x_adv + (z - &x_adv) * a + momentum * (1.0 - a)));
        });
        let (logits, loss_indiv, g) = loss_and_grad(model, &x_adv, &lossf);
        grad = g;
        tch::no_grad(|| {
            let mis_now = logits.argmax(1, false).ne_tensor(y);
            mis = mis.logical_or(&mis_now);
            x_best_adv = x_adv.where_self(&per_image(&mis_now, nd), &x_best_adv);
            loss_steps.get(i as i64).copy_(&loss_indiv);
            let improved = loss_indiv.gt_tensor(&loss_best);
            let improved4 = per_image(&improved, nd);
            x_best = x_adv.where_self(&improved4, &x_best);
            grad_best = grad.where_self(&improved4, &grad_best);
            loss_best = loss_indiv.where_self(&improved, &loss_best);

            if checks.contains(&(i + 1)) {
                let k = i + 1 - last_check;
                last_check = i + 1;
                let osc = oscillation(&loss_steps, i, k, cfg.rho);
                let no_impr = (reduced_last_check.ones_like() - &reduced_last_check)
                    * loss_best_last_check
                        .ge_tensor(&loss_best)
                        .to_kind(Kind::Float);
                let reduce = osc.maximum(&no_impr);
                reduced_last_check = reduce.copy();
                loss_best_last_check = loss_best.copy();
                let halve = reduce.gt(0.0);
                step = (&step * 0.5).where_self(&halve, &step);
                let halve4 = per_image(&halve, nd);
                x_adv = x_best.where_self(&halve4, &x_adv);
                grad = grad_best.where_self(&halve4, &grad);
            }
        });
    }
    x_best_adv
        .where_self(&per_image(&mis, nd), &x_best)
        .detach()
}

/// 1.0 where the loss increased in at most `rho * k` of the last `k` steps ending at iteration
/// `j` (`check_oscillation`), else 0.0. Index `j - k` may be -1, read as the last row.
fn oscillation(loss_steps: &Tensor, j: usize, k: usize, rho: f64) -> Tensor {
    let n = loss_steps.size()[0];
    let mut count = loss_steps.get(0).zeros_like();
    for c in 0..k as i64 {
        let cur = j as i64 - c;
        let prev = (cur - 1).rem_euclid(n);
        count += loss_steps
            .get(cur)
            .gt_tensor(&loss_steps.get(prev))
            .to_kind(Kind::Float);
    }
    count.le(k as f64 * rho).to_kind(Kind::Float)
}
