//! Sign-gradient steps in image space with a per-sample radius and a per-sample, signed step:
//! the inner loops of DAFA (rucy74/DAFA `losses.py`, class-weighted margins and steps) and TRIX
//! (Fairness-a11y/TRIX `mixed_trades_loss`, targeted descent for some samples and untargeted
//! ascent for the others in one loop).
//!
//! Each step is `x' <- clip(x' + s_i sign(grad_x' L), x - eps_i, x + eps_i)` then clipped to
//! [0,1], as the references write it (`torch.min(torch.max(..))`, then `torch.clamp`), which
//! equals one clip to `[max(x - eps_i, 0), min(x + eps_i, 1)]`. A negative `s_i` descends (a
//! targeted sample). No second, unweighted step follows: DAFA's `madry_loss` takes one and
//! projects it onto the uniform ball, which cancels the class margins (its pitfall, not copied).

use tch::{Kind, Tensor};

use crate::models::Model;

/// The image-space box of each sample: `max(x - eps_i, 0)` and `min(x + eps_i, 1)`.
pub struct Ball {
    pub lo: Tensor,
    pub hi: Tensor,
}

impl Ball {
    /// The box for images `x` [B,C,H,W] in [0,1] and radii `eps` [B]. Call under `no_grad`.
    pub fn new(x: &Tensor, eps: &Tensor) -> Ball {
        let eps4 = eps
            .to_device(x.device())
            .to_kind(x.kind())
            .view([-1, 1, 1, 1]);
        Ball {
            lo: (x - &eps4).clamp_min(0.0),
            hi: (x + &eps4).clamp_max(1.0),
        }
    }

    /// `v` clipped into the box.
    pub fn clip(&self, v: &Tensor) -> Tensor {
        v.clamp_tensor(Some(&self.lo), Some(&self.hi))
    }
}

/// TRADES' start `x + 0.001 N(0, 1)` (one `randn_like` draw from torch's generator), clipped
/// into `ball`.
pub fn trades_start(x: &Tensor, ball: &Ball) -> Tensor {
    tch::no_grad(|| ball.clip(&(x + x.randn_like() * 0.001)))
}

/// `steps` sign-gradient steps from `start`: sample i moves by `step[i] * sign(grad_i)` of
/// `loss(logits)` (a scalar that sums or averages per-sample terms, so each sample's gradient
/// is its own term's), then back into `ball`. BatchNorm mode is `bn_train`. Returns detached
/// images.
pub fn signed_steps(
    model: &Model,
    start: &Tensor,
    ball: &Ball,
    step: &Tensor,
    steps: usize,
    bn_train: bool,
    loss: impl Fn(&Tensor) -> Tensor,
) -> Tensor {
    let step4 = step
        .to_device(start.device())
        .to_kind(Kind::Float)
        .view([-1, 1, 1, 1]);
    let mut x_adv = start.detach();
    for _ in 0..steps {
        let _ = x_adv.requires_grad_(true);
        let l = loss(&model.forward_t(&x_adv, bn_train));
        let grad = Tensor::run_backward(&[l], &[&x_adv], false, false)
            .pop()
            .expect("one input, one gradient");
        x_adv = tch::no_grad(|| ball.clip(&(x_adv.detach() + grad.sign() * &step4)));
    }
    x_adv.detach()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ball_is_the_radius_box_inside_the_image_range() {
        let x = Tensor::from_slice(&[0.0f32, 0.5, 0.98, 0.3]).view([4, 1, 1, 1]);
        let eps = Tensor::from_slice(&[0.1f32, 0.1, 0.1, 0.0]);
        let b = tch::no_grad(|| Ball::new(&x, &eps));
        let lo = Vec::<f32>::try_from(b.lo.flatten(0, -1)).unwrap();
        let hi = Vec::<f32>::try_from(b.hi.flatten(0, -1)).unwrap();
        let want_lo = [0.0, 0.4, 0.88, 0.3];
        let want_hi = [0.1, 0.6, 1.0, 0.3];
        for i in 0..4 {
            assert!((lo[i] - want_lo[i]).abs() < 1e-6, "{lo:?}");
            assert!((hi[i] - want_hi[i]).abs() < 1e-6, "{hi:?}");
        }
        let v = Tensor::from_slice(&[-1.0f32, 2.0, 0.9, 1.0]).view([4, 1, 1, 1]);
        let c = Vec::<f32>::try_from(b.clip(&v).flatten(0, -1)).unwrap();
        assert_eq!(c, vec![0.0, 0.6, 0.9, 0.3]);
    }
}
