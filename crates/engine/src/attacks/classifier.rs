//! What the evaluation attacks (APGD, FAB-T, Square, AutoAttack) need from a network, and the
//! small tensor helpers they share.
//!
//! The attacks are generic over [`Classifier`] rather than tied to [`Model`] so that tests (and
//! later wrappers such as an EMA copy or a defended model) can supply any logit function, e.g. a
//! network behind an input quantisation whose gradient is zero everywhere: the gradient-free
//! Square attack must still work there (the reason AutoAttack contains it, Croce & Hein 2020 §4).

use tch::{Device, Kind, Tensor};

use crate::models::Model;

/// A classifier in evaluation mode: logits of images in [0,1].
pub trait Classifier {
    /// Logits [B, K] of images `x` [B, C, H, W] in [0,1], with BatchNorm using running
    /// statistics and no dropout (AutoAttack expects `model.eval()`, algorithms.md §4.1).
    fn logits(&self, x: &Tensor) -> Tensor;

    /// Device the logits are computed on; attacks move their inputs there.
    fn device(&self) -> Device;
}

impl Classifier for Model {
    fn logits(&self, x: &Tensor) -> Tensor {
        self.forward_t(x, false)
    }

    fn device(&self) -> Device {
        Model::device(self)
    }
}

/// Why an attack could not run.
#[derive(Debug, thiserror::Error)]
pub enum AttackError {
    /// A loss that needs more classes than the model has (DLR needs 3, targeted DLR 4;
    /// fra31/auto-attack issue #70 reports crashes instead).
    #[error("{loss} needs at least {needs} classes, the model has {got}")]
    TooFewClasses {
        loss: &'static str,
        needs: usize,
        got: usize,
    },
    /// An AutoAttack stage name that is not one of apgd-ce, apgd-t, fab-t, square.
    #[error("unknown attack stage {0:?} (expected apgd-ce, apgd-t, fab-t or square)")]
    UnknownStage(String),
    #[error(transparent)]
    Torch(#[from] tch::TchError),
}

/// Logits (detached), per-sample loss values [B] (detached) and the gradient of their sum with
/// respect to `x`. Only `x` gets a gradient: no parameter gradient is computed or accumulated.
/// A loss that does not depend on `x` through autograd yields a zero gradient instead of an
/// error, so that gradient attacks degrade gracefully on such models.
pub(crate) fn loss_and_grad<C: Classifier + ?Sized>(
    model: &C,
    x: &Tensor,
    loss: &dyn Fn(&Tensor) -> Tensor,
) -> (Tensor, Tensor, Tensor) {
    tch::with_grad(|| {
        let xg = x.detach().set_requires_grad(true);
        let logits = model.logits(&xg);
        let per_sample = loss(&logits);
        let grad = if per_sample.requires_grad() {
            Tensor::run_backward(&[per_sample.sum(Kind::Float)], &[&xg], false, false)
                .pop()
                .expect("one input, one gradient")
        } else {
            x.zeros_like()
        };
        (logits.detach(), per_sample.detach(), grad.detach())
    })
}

/// A batch as the attacks take it: detached float32 images and int64 labels on the model's
/// device.
pub(crate) fn on_model<C: Classifier + ?Sized>(
    model: &C,
    x: &Tensor,
    y: &Tensor,
) -> (Tensor, Tensor) {
    let x = x.detach().to_device(model.device()).to_kind(Kind::Float);
    let y = y.to_device(model.device()).to_kind(Kind::Int64);
    (x, y)
}

/// Logits without building a graph.
pub(crate) fn logits_no_grad<C: Classifier + ?Sized>(model: &C, x: &Tensor) -> Tensor {
    tch::no_grad(|| model.logits(x))
}

/// Predicted classes (int64 [B]).
pub(crate) fn predict<C: Classifier + ?Sized>(model: &C, x: &Tensor) -> Tensor {
    logits_no_grad(model, x).argmax(-1, false)
}

/// Uniform [0,1) draws, always from the CPU generator and then moved: a seed gives the same
/// draws on every device (the reference also draws with `torch.rand(...).to(device)`).
pub(crate) fn rand_cpu(shape: &[i64], device: Device) -> Tensor {
    Tensor::rand(shape, (Kind::Float, Device::Cpu)).to_device(device)
}

/// Per-sample L-inf distance [B] between two image batches.
pub(crate) fn linf_dist(a: &Tensor, b: &Tensor) -> Tensor {
    (a - b).abs().flatten(1, -1).amax([1i64].as_slice(), false)
}

/// A bool/0-1 tensor [B] as a Rust vector.
pub(crate) fn to_bools(t: &Tensor) -> Vec<bool> {
    Vec::<i64>::try_from(&t.to_kind(Kind::Int64).to_device(Device::Cpu).flatten(0, -1))
        .unwrap_or_default()
        .into_iter()
        .map(|v| v != 0)
        .collect()
}

/// Positions of the `true` entries.
pub(crate) fn positions(flags: &[bool]) -> Vec<i64> {
    flags
        .iter()
        .enumerate()
        .filter(|(_, f)| **f)
        .map(|(i, _)| i as i64)
        .collect()
}

/// An index vector as an int64 tensor on `device`.
pub(crate) fn index_tensor(idx: &[i64], device: Device) -> Tensor {
    Tensor::from_slice(idx).to_device(device)
}

/// Reshape a per-sample [B] tensor so that it broadcasts over images [B, C, H, W].
pub(crate) fn per_image(t: &Tensor, ndim: usize) -> Tensor {
    let mut shape = vec![-1i64];
    shape.extend(std::iter::repeat_n(1, ndim.saturating_sub(1)));
    t.view(shape.as_slice())
}

/// Per point "still robust despite the attack's output" (FAB: the adversarial is too far).
pub(crate) type ExtraCheck<'a> = &'a dyn Fn(&Tensor, &Tensor) -> Tensor;

/// Keep the points that are still robust, run `attack` on them, and write back the adversarial
/// images of those it breaks (prediction != label). This is the `perturb` loop of every
/// fra31/auto-attack attack: each restart (or target) only sees points not yet broken.
pub(crate) fn attack_robust_points<C: Classifier + ?Sized>(
    model: &C,
    x: &Tensor,
    y: &Tensor,
    robust: &mut [bool],
    adv: &mut Tensor,
    attack: &mut dyn FnMut(&Tensor, &Tensor) -> Tensor,
    extra_check: Option<ExtraCheck>,
) {
    let idx = positions(robust);
    if idx.is_empty() {
        return;
    }
    let idx_t = index_tensor(&idx, x.device());
    let xs = x.index_select(0, &idx_t);
    let ys = y.index_select(0, &idx_t);
    let adv_curr = attack(&xs, &ys);
    let mut still = predict(model, &adv_curr).eq_tensor(&ys);
    if let Some(check) = extra_check {
        // FAB: an adversarial found outside the eps ball does not count.
        still = still.logical_or(&check(&xs, &adv_curr));
    }
    let broken: Vec<bool> = to_bools(&still).into_iter().map(|s| !s).collect();
    let local = positions(&broken);
    if local.is_empty() {
        return;
    }
    let global: Vec<i64> = local.iter().map(|&j| idx[j as usize]).collect();
    for &g in &global {
        robust[g as usize] = false;
    }
    let local_t = index_tensor(&local, x.device());
    let global_t = index_tensor(&global, x.device());
    tch::no_grad(|| {
        let _ = adv.index_copy_(0, &global_t, &adv_curr.index_select(0, &local_t));
    });
}

/// Clean robustness flags: prediction equals label.
pub(crate) fn clean_correct<C: Classifier + ?Sized>(
    model: &C,
    x: &Tensor,
    y: &Tensor,
) -> Vec<bool> {
    to_bools(&predict(model, x).eq_tensor(y))
}
