//! Per-sample attack losses of AutoAttack (algorithms.md §4.2, fra31/auto-attack
//! `autoattack/autopgd_base.py`: `dlr_loss`, `dlr_loss_targeted`, `ce_loss_targeted`;
//! `autoattack/square.py`: `margin_and_loss`). Every function maps logits [B, K] to [B].
//!
//! DLR (Croce & Hein 2020, eq. 5) is shift- and scale-invariant in the logits, which is why
//! AutoAttack uses it next to CE: rescaling the logits cannot mask the gradient.

use tch::{Kind, Reduction, Tensor};

/// Cross-entropy per sample (the APGD-CE loss).
pub fn ce_loss(logits: &Tensor, y: &Tensor) -> Tensor {
    logits.cross_entropy_loss::<Tensor>(y, None, Reduction::None, -100, 0.0)
}

/// Targeted cross-entropy `-CE(z, t)` (autopgd_base.py `ce_loss_targeted`): ascending it moves
/// toward class `t`. AutoAttack's APGD-T uses it here only when targeted DLR is undefined
/// (fewer than 4 classes).
pub fn ce_loss_targeted(logits: &Tensor, target: &Tensor) -> Tensor {
    -ce_loss(logits, target)
}

/// Column `i` (negative counts from the end) of `sorted`, ascending order.
fn col(sorted: &Tensor, i: i64) -> Tensor {
    let k = sorted.size()[1];
    sorted.select(1, if i < 0 { k + i } else { i })
}

fn logit_of(logits: &Tensor, class: &Tensor) -> Tensor {
    logits.gather(1, &class.unsqueeze(1), false).squeeze_dim(1)
}

/// Untargeted DLR: `-(z_y - max_{i!=y} z_i) / (z_pi1 - z_pi3 + 1e-12)` with z_pi1 >= z_pi2 >=
/// z_pi3 the sorted logits. Needs at least 3 classes (panics otherwise; APGD checks first).
pub fn dlr_loss(logits: &Tensor, y: &Tensor) -> Tensor {
    assert!(logits.size()[1] >= 3, "DLR needs at least 3 classes");
    let (sorted, ind) = logits.sort(1, false);
    // Largest other logit: the second largest if y is the top class, else the largest.
    let y_top = col(&ind, -1).eq_tensor(y).to_kind(logits.kind());
    let z_y = logit_of(logits, y);
    let top1 = col(&sorted, -1);
    let other = col(&sorted, -2) * &y_top + &top1 * (y_top.ones_like() - &y_top);
    -(z_y - other) / (&top1 - col(&sorted, -3) + 1e-12)
}

/// Targeted DLR: `-(z_y - z_t) / (z_pi1 - (z_pi3 + z_pi4)/2 + 1e-12)`. Needs at least 4 classes
/// (panics otherwise).
pub fn dlr_loss_targeted(logits: &Tensor, y: &Tensor, target: &Tensor) -> Tensor {
    assert!(
        logits.size()[1] >= 4,
        "targeted DLR needs at least 4 classes"
    );
    let (sorted, _) = logits.sort(1, false);
    let den = col(&sorted, -1) - (col(&sorted, -3) + col(&sorted, -4)) * 0.5 + 1e-12;
    -(logit_of(logits, y) - logit_of(logits, target)) / den
}

/// Margin `z_y - max_{j!=y} z_j` (Square's loss; <= 0 means misclassified, ties included).
/// With a single class there is no other logit and the margin is +inf.
pub fn margin(logits: &Tensor, y: &Tensor) -> Tensor {
    let others = logits
        .to_kind(Kind::Float)
        .scatter_value(1, &y.unsqueeze(1), f64::NEG_INFINITY);
    logit_of(&logits.to_kind(Kind::Float), y) - others.amax([1i64].as_slice(), false)
}
