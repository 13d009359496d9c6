//! L-inf PGD with a per-sample radius (algorithms.md §1.5, §3.1, §9) and FGSM.
//!
//! `delta` starts uniform in [-eps_i, eps_i], is clipped so that x + delta stays in [0,1], and
//! takes `steps` signed-gradient steps of cross-entropy: ascent on the true label (untargeted) or
//! descent toward a target label (targeted, FAIR-TAT). After every step it is projected back
//! onto [max(-eps_i, -x), min(eps_i, 1 - x)], which is the eps_i ball intersected with the image
//! range. BatchNorm mode during the attack is explicit (`bn_train`): FAIR-TAT/CFA/Rice attack in
//! train mode, which also updates the running statistics.
//!
//! Hot path of training: gradients are taken with `run_backward` w.r.t. `delta` only, so no
//! parameter gradient is computed or accumulated, and `delta` is updated in place.

use tch::{Kind, TchError, Tensor};

use crate::models::Model;

#[derive(Clone, Debug, PartialEq)]
pub struct PgdConfig {
    /// Step size in [0,1] pixel units (not scaled with eps_i, as in the FAIR-TAT code).
    pub alpha: f64,
    pub steps: usize,
    /// Uniform start in [-eps_i, eps_i]; without it the attack starts at x.
    pub random_start: bool,
    /// BatchNorm in train mode (batch statistics, running stats updated) during the attack.
    pub bn_train: bool,
}

/// Per-sample radius `class_eps[y_i]` as a float32 tensor [B] on `labels`' device; errors when
/// a label is outside `class_eps`.
pub fn try_per_sample_eps(class_eps: &[f64], labels: &Tensor) -> Result<Tensor, TchError> {
    let table = Tensor::f_from_slice(class_eps)?
        .f_to_kind(Kind::Float)?
        .f_to_device(labels.device())?;
    table.f_index_select(0, &labels.f_to_kind(Kind::Int64)?.f_flatten(0, -1)?)
}

/// [`try_per_sample_eps`] for labels known to be valid (the trainer's own batches).
pub fn per_sample_eps(class_eps: &[f64], labels: &Tensor) -> Tensor {
    try_per_sample_eps(class_eps, labels).unwrap_or_else(|e| {
        panic!(
            "per_sample_eps: labels do not index the {} class radii: {e}",
            class_eps.len()
        )
    })
}

/// Bounds of `delta` for images `x` [B,C,H,W] and per-sample radius `eps` [B]: the eps ball
/// intersected with [-x, 1 - x] (x + delta in [0,1]), i.e. `(lo, hi)`, and the radius reshaped
/// to [B,1,1,1] in `x`'s kind and device. Call under `no_grad`.
pub(crate) fn linf_bounds(x: &Tensor, eps: &Tensor) -> (Tensor, Tensor, Tensor) {
    let eps4 = eps
        .to_device(x.device())
        .to_kind(x.kind())
        .view([-1, 1, 1, 1]);
    let lo = x.neg().maximum(&eps4.neg());
    let hi = (x * -1.0 + 1.0).minimum(&eps4);
    (lo, hi, eps4)
}

/// The starting `delta`: uniform in [-eps_i, eps_i] when `random` (one `rand_like` draw from
/// torch's generator), zero otherwise, clipped to `[lo, hi]` from [`linf_bounds`]. Call under
/// `no_grad`.
pub(crate) fn start_delta(
    x: &Tensor,
    eps4: &Tensor,
    lo: &Tensor,
    hi: &Tensor,
    random: bool,
) -> Tensor {
    let mut delta = if random {
        let mut d = x.rand_like();
        let _ = d.g_mul_scalar_(2.0).g_sub_scalar_(1.0).g_mul_(eps4);
        d
    } else {
        x.zeros_like()
    };
    let _ = delta.clamp_tensor_(Some(lo), Some(hi));
    delta
}

/// How far each step moves: a fixed alpha (PGD) or the sample's own eps (FGSM).
enum StepSize {
    Fixed(f64),
    Eps,
}

/// PGD from `x` (images [B,C,H,W] in [0,1]) with per-sample radius `eps` [B]. Untargeted when
/// `target` is `None` (ascent on CE(y)), otherwise descent on CE(target). Returns detached
/// adversarial images.
pub fn pgd(
    model: &Model,
    x: &Tensor,
    y: &Tensor,
    eps: &Tensor,
    target: Option<&Tensor>,
    cfg: &PgdConfig,
) -> Tensor {
    attack(
        model,
        x,
        y,
        eps,
        target,
        StepSize::Fixed(cfg.alpha),
        cfg.steps,
        cfg.random_start,
        cfg.bn_train,
    )
}

/// FGSM: one untargeted step of size eps_i from x (no random start).
pub fn fgsm(model: &Model, x: &Tensor, y: &Tensor, eps: &Tensor, bn_train: bool) -> Tensor {
    attack(model, x, y, eps, None, StepSize::Eps, 1, false, bn_train)
}

#[allow(clippy::too_many_arguments)]
fn attack(
    model: &Model,
    x: &Tensor,
    y: &Tensor,
    eps: &Tensor,
    target: Option<&Tensor>,
    step: StepSize,
    steps: usize,
    random_start: bool,
    bn_train: bool,
) -> Tensor {
    let x = x.detach();
    let (lo, hi, mut delta, eps4) = tch::no_grad(|| {
        let (lo, hi, eps4) = linf_bounds(&x, eps);
        let delta = start_delta(&x, &eps4, &lo, &hi, random_start);
        (lo, hi, delta, eps4)
    });
    let (label, sign) = match target {
        Some(t) => (t, -1.0),
        None => (y, 1.0),
    };
    for _ in 0..steps {
        let _ = delta.requires_grad_(true);
        let logits = model.forward_t(&(&x + &delta), bn_train);
        let loss = logits.cross_entropy_for_logits(label);
        let grad = Tensor::run_backward(&[loss], &[&delta], false, false)
            .pop()
            .expect("one input, one gradient");
        tch::no_grad(|| {
            let mut g = grad.sign();
            let _ = match step {
                StepSize::Fixed(alpha) => g.g_mul_scalar_(sign * alpha),
                StepSize::Eps => g.g_mul_(&eps4).g_mul_scalar_(sign),
            };
            let _ = delta.g_add_(&g);
            let _ = delta.clamp_tensor_(Some(&lo), Some(&hi));
        });
    }
    tch::no_grad(|| (&x + &delta).clamp(0.0, 1.0)).detach()
}
