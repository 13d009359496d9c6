//! Square attack, L-inf (Andriushchenko et al., ECCV 2020), ported from fra31/auto-attack
//! `autoattack/square.py` (`attack_single_run`, Linf branch; `p_selection`; `perturb`),
//! algorithms.md §4.3. Gradient-free: it only queries logits, so it still works on models whose
//! gradient is zero or useless (the reason it is the last stage of AutoAttack).
//!
//! Init: vertical stripes `x + eps * s`, one sign per (image, channel, column). Each query adds
//! `2*eps*sign_c` inside one random `s x s` window (position and per-channel signs shared by the
//! batch, as in the PyTorch reference), projects to the ball and [0,1], and keeps the candidate
//! if the margin `z_y - max_{j!=y} z_j` decreased or is <= 0. Points with margin <= 0 stop.
//!
//! Randomness: `tch::manual_seed(seed)` once per call, draws from the CPU generator.

use serde::{Deserialize, Serialize};
use tch::Tensor;

use super::classifier::{
    attack_robust_points, clean_correct, index_tensor, logits_no_grad, on_model, per_image,
    positions, rand_cpu, to_bools, Classifier,
};
use super::losses::margin;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SquareConfig {
    pub eps: f64,
    /// Queries per restart (5000 in AutoAttack standard).
    pub n_queries: usize,
    /// Initial fraction of pixels changed per query (0.8).
    pub p_init: f64,
    pub n_restarts: usize,
    /// Rescale the p schedule to `n_queries` (`resc_schedule`); AutoAttack passes `false`.
    pub rescale_schedule: bool,
    pub seed: u64,
}

impl SquareConfig {
    /// AutoAttack's settings: 5000 queries, p_init 0.8, 1 restart, no schedule rescaling.
    pub fn new(eps: f64) -> Self {
        SquareConfig {
            eps,
            n_queries: 5000,
            p_init: 0.8,
            n_restarts: 1,
            rescale_schedule: false,
            seed: 0,
        }
    }
}

/// Fraction p of pixels changed at (0-based) query `it` (`p_selection`): p_init up to 10, then
/// halved at 50, 200, 500, 1000, 2000, 4000, 6000, 8000. With `rescale`, `it` is first mapped to
/// `int(it / n_queries * 10000)`.
pub fn p_selection(p_init: f64, it: usize, n_queries: usize, rescale: bool) -> f64 {
    let it = if rescale {
        (it as f64 / n_queries.max(1) as f64 * 10000.0) as usize
    } else {
        it
    };
    let bounds = [10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000];
    let halvings = bounds.iter().filter(|&&b| it > b).count();
    p_init / f64::powi(2.0, halvings as i32)
}

/// Window side for fraction `p` of an `h x w` image: `max(round(sqrt(p*h*w)), 1)` with Python's
/// round-half-to-even, capped at `min(h, w)` so that the window always fits (the reference
/// only meets square images, where the cap never binds for p <= 1).
pub fn window_side(p: f64, h: usize, w: usize) -> usize {
    let s = (p * (h * w) as f64).sqrt().round_ties_even().max(1.0) as usize;
    s.min(h.min(w)).max(1)
}

/// `sign(2u - 1)` with u uniform: +-1 (0 with probability ~0, as in the reference).
fn random_sign(shape: &[i64], device: tch::Device) -> Tensor {
    (rand_cpu(shape, device) * 2.0 - 1.0).sign()
}

/// Uniform integer in [0, n) (0 when n = 0), as the reference's `random_int(0, n)`.
fn random_int(n: usize) -> i64 {
    let u = rand_cpu(&[1], tch::Device::Cpu).double_value(&[0]);
    (u * n as f64) as i64
}

/// Square L-inf on the correctly classified points of `x` [B,C,H,W]; returns detached images
/// within the eps ball and [0,1], equal to `x` where the attack failed.
pub fn square<C: Classifier + ?Sized>(
    model: &C,
    x: &Tensor,
    y: &Tensor,
    cfg: &SquareConfig,
) -> Tensor {
    let (x, y) = on_model(model, x, y);
    tch::manual_seed(cfg.seed as i64);
    let mut robust = clean_correct(model, &x, &y);
    let mut adv = x.copy();
    for _ in 0..cfg.n_restarts {
        let mut run = |xs: &Tensor, ys: &Tensor| single_run(model, xs, ys, cfg);
        attack_robust_points(model, &x, &y, &mut robust, &mut adv, &mut run, None);
    }
    adv
}

fn single_run<C: Classifier + ?Sized>(
    model: &C,
    x: &Tensor,
    y: &Tensor,
    cfg: &SquareConfig,
) -> Tensor {
    tch::no_grad(|| {
        let size = x.size();
        let (b, c, h, w) = (size[0], size[1], size[2], size[3]);
        let (eps, dev, nd) = (cfg.eps, x.device(), x.dim());
        let mut x_best = (x + random_sign(&[b, c, 1, w], dev) * eps).clamp(0.0, 1.0);
        let mut margin_min = margin(&logits_no_grad(model, &x_best), y);
        for it in 0..cfg.n_queries {
            let active = positions(&to_bools(&margin_min.gt(0.0)));
            if active.is_empty() {
                break;
            }
            let idx = index_tensor(&active, dev);
            let x_curr = x.index_select(0, &idx);
            let x_best_curr = x_best.index_select(0, &idx);
            let y_curr = y.index_select(0, &idx);
            let margin_curr = margin_min.index_select(0, &idx);

            let p = p_selection(cfg.p_init, it, cfg.n_queries, cfg.rescale_schedule);
            let s = window_side(p, h as usize, w as usize);
            let vh = random_int(h as usize - s);
            let vw = random_int(w as usize - s);
            let signs = random_sign(&[c, 1, 1], dev) * (2.0 * eps);
            let x_new = x_best_curr.copy();
            let mut window = x_new.narrow(2, vh, s as i64).narrow(3, vw, s as i64);
            window += signs;
            let x_new = x_new
                .clamp_tensor(Some(&(&x_curr - eps)), Some(&(&x_curr + eps)))
                .clamp(0.0, 1.0);

            let m = margin(&logits_no_grad(model, &x_new), &y_curr);
            // Accept a lower margin, or any misclassification (margin <= 0).
            let improved = m.lt_tensor(&margin_curr).logical_or(&m.le(0.0));
            let _ = margin_min.index_copy_(0, &idx, &m.where_self(&improved, &margin_curr));
            let kept = x_new.where_self(&per_image(&improved, nd), &x_best_curr);
            let _ = x_best.index_copy_(0, &idx, &kept);
        }
        x_best
    })
}
