//! FAB-T, the targeted L-inf Fast Adaptive Boundary attack (Croce & Hein, ICML 2020), ported
//! from fra31/auto-attack `autoattack/fab_pt.py` (`attack_single_run_targeted`,
//! `get_diff_logits_grads_batch_targeted`) and `autoattack/fab_base.py` (`perturb`, targeted
//! branch); the projection is in `fab_projection.rs`. algorithms.md §4.1.
//!
//! Each iteration linearises `f = z_t - z_y` at the current iterate, projects both the iterate
//! and the clean point onto the hyperplane `f = 0` intersected with the [0,1] box (L-inf
//! projection), and moves to a convex combination of the two extrapolated (eta) projections,
//! biased (alpha <= alpha_max) toward staying close to the clean point. When the iterate is
//! adversarial it is recorded if closer than the best so far and pulled back toward the clean
//! point by beta. FAB minimises the distance, so a found adversarial only counts when its
//! `||delta||_inf <= eps`.
//!
//! Randomness: `tch::manual_seed(seed)` once per call; restart 0 starts at the clean point,
//! later restarts at a random point of the eps/2 box (CPU generator).

use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use super::classifier::{
    attack_robust_points, clean_correct, linf_dist, logits_no_grad, loss_and_grad, on_model,
    per_image, predict, rand_cpu, Classifier,
};
use super::fab_projection::projection_linf;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FabConfig {
    /// Success radius (and the size of random restarts).
    pub eps: f64,
    pub n_iter: usize,
    /// Restarts per target; restart 0 has no random start.
    pub n_restarts: usize,
    /// Largest weight of the clean point's projection in the step (0.1).
    pub alpha_max: f64,
    /// Overshoot of the projection step (1.05).
    pub eta: f64,
    /// Backward step toward the clean point after an adversarial iterate (0.9).
    pub beta: f64,
    /// Targets: classes of the 2nd..(n+1)-th largest clean logit, n = min(this, K-1).
    pub n_target_classes: usize,
    pub seed: u64,
}

impl FabConfig {
    /// AutoAttack standard: 100 iterations, 1 restart, alpha_max 0.1, eta 1.05, beta 0.9,
    /// 9 targets, seed 0.
    pub fn new(eps: f64) -> Self {
        FabConfig {
            eps,
            n_iter: 100,
            n_restarts: 1,
            alpha_max: 0.1,
            eta: 1.05,
            beta: 0.9,
            n_target_classes: 9,
            seed: 0,
        }
    }
}

/// FAB-T on the correctly classified points of `x` [B,C,H,W]; returns detached images, equal to
/// `x` unless an adversarial within the eps ball was found.
pub fn fab_targeted<C: Classifier + ?Sized>(
    model: &C,
    x: &Tensor,
    y: &Tensor,
    cfg: &FabConfig,
) -> Tensor {
    let (x, y) = on_model(model, x, y);
    let k = logits_no_grad(model, &x).size()[1];
    tch::manual_seed(cfg.seed as i64);
    let mut robust = clean_correct(model, &x, &y);
    let mut adv = x.copy();
    let eps = cfg.eps;
    let outside = |xs: &Tensor, a: &Tensor| linf_dist(a, xs).gt(eps);
    let outside: &dyn Fn(&Tensor, &Tensor) -> Tensor = &outside;
    for rank in 2..(cfg.n_target_classes as i64).min(k - 1) + 2 {
        for restart in 0..cfg.n_restarts {
            let mut run = |xs: &Tensor, ys: &Tensor| {
                let target = logits_no_grad(model, xs)
                    .argsort(1, false)
                    .select(1, k - rank);
                single_run(model, xs, ys, &target, cfg, restart > 0)
            };
            attack_robust_points(
                model,
                &x,
                &y,
                &mut robust,
                &mut adv,
                &mut run,
                Some(outside),
            );
        }
    }
    adv
}

/// `attack_single_run_targeted` on points that are all correctly classified: the closest
/// adversarial found for each point, or the point itself.
fn single_run<C: Classifier + ?Sized>(
    model: &C,
    im2: &Tensor,
    la2: &Tensor,
    target: &Tensor,
    cfg: &FabConfig,
    rand_start: bool,
) -> Tensor {
    let nd = im2.dim();
    let bs = im2.size()[0];
    let dev = im2.device();
    let mut adv = im2.copy();
    let mut res2 = Tensor::full([bs], 1e10, (Kind::Float, dev));
    let x0 = im2.flatten(1, -1);
    let mut x1 = im2.copy();
    if rand_start {
        let t = rand_cpu(&im2.size(), dev) * 2.0 - 1.0;
        let t_max = per_image(&t.abs().flatten(1, -1).amax([1i64].as_slice(), false), nd);
        let r = per_image(&res2.clamp_max(cfg.eps), nd);
        x1 = (im2 + r * &t / t_max * 0.5).clamp(0.0, 1.0);
    }
    // f(x) = -(z_y - z_t): negative while the point is still classified as y.
    let diff = |logits: &Tensor| {
        let z = |c: &Tensor| logits.gather(1, &c.unsqueeze(1), false).squeeze_dim(1);
        -(z(la2) - z(target))
    };
    for _ in 0..cfg.n_iter {
        let (_, df, dg) = loss_and_grad(model, &x1, &diff);
        tch::no_grad(|| {
            let w = dg.flatten(1, -1);
            let b = -&df + (&w * x1.flatten(1, -1)).sum_dim_intlist(1, false, Kind::Float);
            let d3 = projection_linf(
                &Tensor::cat(&[x1.flatten(1, -1), x0.shallow_clone()], 0),
                &Tensor::cat(&[&w, &w], 0),
                &Tensor::cat(&[&b, &b], 0),
            );
            let d1 = d3.narrow(0, 0, bs).view_as(&x1);
            let d2 = d3.narrow(0, bs, bs).view_as(&x1);
            let a0 = per_image(&d3.abs().amax([1i64].as_slice(), false).clamp_min(1e-8), nd);
            let (a1, a2) = (a0.narrow(0, 0, bs), a0.narrow(0, bs, bs));
            let alpha = (&a1 / (&a1 + &a2)).clamp(0.0, cfg.alpha_max);
            x1 = ((&x1 + d1 * cfg.eta) * (alpha.ones_like() - &alpha)
                + (im2 + d2 * cfg.eta) * &alpha)
                .clamp(0.0, 1.0);

            let is_adv = predict(model, &x1).ne_tensor(la2);
            let t = linf_dist(&x1, im2);
            let better = is_adv.logical_and(&t.lt_tensor(&res2));
            adv = x1.where_self(&per_image(&better, nd), &adv);
            res2 = t.where_self(&better, &res2);
            let back = im2 + (&x1 - im2) * cfg.beta;
            x1 = back.where_self(&per_image(&is_adv, nd), &x1);
        });
    }
    adv.detach()
}
