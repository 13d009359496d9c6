//! Friendly Adversarial Training (Zhang et al. ICML 2020) in CFA's/FAIR-TAT's form, and
//! FAIR-TAT + FAT (algorithms.md §1.8, §2.5, §3.3).
//!
//! `fat`: early-stopped PGD with a per-sample budget tau (`method.tau`, fixed, CFA's 3): at each
//! of `attack.steps` iterations a sample predicted wrongly with budget 0 is frozen for good, one
//! predicted wrongly with budget > 0 spends one unit and keeps moving, a correctly predicted one
//! keeps moving. Loss: CE on the resulting examples (train mode). BN is in train mode during the
//! attack by default (`attack.bn_mode`), as CFA's and FAIR-TAT's `fat_loss`, which never call
//! `model.eval()` (PKU-ML/CFA `attack.py`); `attack.bn_mode = "eval"` is official FAT's
//! (zjfheart/Friendly-Adversarial-Training `earlystop.py`).
//!
//! `fair-tat-fat`: the same early stop on "prediction != true label", but each step is
//! FAIR-TAT's targeted CE descent toward a class drawn from the previous epoch's C_FPS, with
//! FAIR-TAT's class-wise epsilon.
//!
//! The mean number of steps a sample was moved during the epoch is recorded as
//! `fat_mean_steps` in `method_state`.

use std::collections::BTreeMap;

use tch::{Kind, TchError, Tensor};

use super::calibrated::{Calibrated, CalibratedBatch, CalibratedStep, WithCalibration};
use super::{train_pgd_config, Method};
use crate::attacks::{linf_bounds, start_delta, PgdConfig};
use crate::models::Model;
use fairtat_core::config::{MethodKind, RunSpec};

/// Early-stopped adversarial examples and how many steps moved each sample.
pub struct EarlyStop {
    /// Detached images in [0,1], within each sample's eps ball.
    pub x_adv: Tensor,
    /// Steps that moved each sample (0..=cfg.steps).
    pub steps_taken: Vec<i64>,
}

/// FAT's early-stopped PGD from `x` with per-sample radius `eps` [B]: untargeted (ascent on
/// CE(y)) or, with `targets`, descent on CE(target); a sample counts as misclassified when its
/// prediction differs from `y` in both cases. Start, alpha, steps and BN mode from `cfg`.
pub fn early_stopped_pgd(
    model: &Model,
    x: &Tensor,
    y: &Tensor,
    eps: &Tensor,
    targets: Option<&Tensor>,
    tau: usize,
    cfg: &PgdConfig,
) -> EarlyStop {
    let x = x.detach();
    let b = x.size().first().copied().unwrap_or(0);
    // The start and bounds of `attacks::pgd`: same torch draw, same clipping.
    let (lo, hi, mut delta) = tch::no_grad(|| {
        let (lo, hi, eps4) = linf_bounds(&x, eps);
        let delta = start_delta(&x, &eps4, &lo, &hi, cfg.random_start);
        (lo, hi, delta)
    });
    let opts = (Kind::Int64, x.device());
    let mut budget = Tensor::full([b], tau as i64, opts);
    let mut active = Tensor::ones([b], (Kind::Bool, x.device()));
    let mut steps = Tensor::zeros([b], opts);
    let (label, sign) = match targets {
        Some(t) => (t, -1.0),
        None => (y, 1.0),
    };
    for _ in 0..cfg.steps {
        let _ = delta.requires_grad_(true);
        let logits = model.forward_t(&(&x + &delta), cfg.bn_train);
        let loss = logits.cross_entropy_for_logits(label);
        let grad = Tensor::run_backward(&[&loss], &[&delta], false, false)
            .pop()
            .expect("one input, one gradient");
        let any_active = tch::no_grad(|| {
            let wrong = logits.argmax(-1, false).ne_tensor(y);
            let exhausted = budget.eq(0);
            active = active.logical_and(&wrong.logical_and(&exhausted).logical_not());
            budget = &budget - wrong.logical_and(&active).to_kind(Kind::Int64);
            steps = &steps + active.to_kind(Kind::Int64);
            let mask = active.to_kind(x.kind()).view([-1, 1, 1, 1]);
            delta = (delta.detach() + grad.sign() * mask * (sign * cfg.alpha))
                .clamp_tensor(Some(&lo), Some(&hi));
            active.any().int64_value(&[]) != 0
        });
        if !any_active {
            break;
        }
    }
    let x_adv = tch::no_grad(|| (&x + &delta).clamp(0.0, 1.0)).detach();
    let steps_taken = Vec::<i64>::try_from(&steps.to_device(tch::Device::Cpu)).unwrap_or_default();
    EarlyStop { x_adv, steps_taken }
}

pub struct Fat {
    tau: usize,
    cfg: PgdConfig,
    /// Steps taken this epoch, summed over samples, and the number of samples.
    steps_sum: f64,
    samples: usize,
}

impl Fat {
    /// `fat` or `fair-tat-fat`.
    pub fn build(spec: &RunSpec) -> Box<dyn Method> {
        let targeted = spec.method.name == MethodKind::FairTatFat;
        let step = Fat {
            tau: spec.method.tau,
            cfg: train_pgd_config(&spec.attack),
            steps_sum: 0.0,
            samples: 0,
        };
        WithCalibration::boxed(spec, targeted, step)
    }
}

impl CalibratedStep for Fat {
    fn begin_epoch(&mut self) {
        self.steps_sum = 0.0;
        self.samples = 0;
    }

    fn step(&mut self, model: &Model, b: &CalibratedBatch) -> Result<(Tensor, Tensor), TchError> {
        let (batch, tau) = (b.batch, self.tau);
        let es = early_stopped_pgd(model, &batch.x, &batch.y, &b.eps, b.targets, tau, &self.cfg);
        self.steps_sum += es.steps_taken.iter().sum::<i64>() as f64;
        self.samples += es.steps_taken.len();
        let logits = model.forward_t(&es.x_adv, true);
        Ok((logits.cross_entropy_for_logits(&batch.y), logits))
    }

    fn method_state(&self, _cal: &Calibrated) -> BTreeMap<String, Vec<f64>> {
        let mut m = BTreeMap::new();
        if self.samples > 0 {
            m.insert(
                "fat_mean_steps".to_string(),
                vec![self.steps_sum / self.samples as f64],
            );
        }
        m
    }
}
