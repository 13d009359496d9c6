//! PGD-AT and FAIR-TAT: adversarial examples by PGD with the true class's epsilon, then
//! cross-entropy on the true labels in train mode.
//!
//! `pgd-at`: PGD-AT (Madry et al. 2018) in the Rice et al. recipe (locuslab/robust_overfitting
//! `train_cifar.py`, algorithms.md §3.1), untargeted PGD; with `method.class_eps = true` it
//! becomes PGD-AT + CCM (CFA's class-wise margin).
//!
//! `fair-tat`: FAIR-TAT (Medi, Jung, Keuper, WACV 2025, Algorithm 1) as the reference code does
//! it (TejaswiniMedi/FAIR-TAT `target_train_new.py` + `Targeted_attack.py`, algorithms.md §1):
//! targeted PGD toward classes drawn from the previous epoch's training C_FPS, per-sample
//! epsilon of the true class calibrated as eps_k = (lambda1 + r_k) * eps.
//!
//! Both calibrate through [`WithCalibration`] (one copy of the CCM / C_FPS rules).

use tch::{TchError, Tensor};

use super::calibrated::{CalibratedBatch, CalibratedStep, WithCalibration};
use super::{train_pgd_config, Method};
use crate::attacks::{pgd, PgdConfig};
use crate::models::Model;
use fairtat_core::config::{MethodKind, RunSpec};

pub struct PgdAt {
    cfg: PgdConfig,
}

impl PgdAt {
    /// `pgd-at`, or `fair-tat` (targeted) for that kind.
    pub fn build(spec: &RunSpec) -> Box<dyn Method> {
        let targeted = spec.method.name == MethodKind::FairTat;
        let cfg = train_pgd_config(&spec.attack);
        WithCalibration::boxed(spec, targeted, PgdAt { cfg })
    }
}

impl CalibratedStep for PgdAt {
    fn step(&mut self, model: &Model, b: &CalibratedBatch) -> Result<(Tensor, Tensor), TchError> {
        let batch = b.batch;
        let x_adv = pgd(model, &batch.x, &batch.y, &b.eps, b.targets, &self.cfg);
        let logits = model.forward_t(&x_adv, true);
        Ok((logits.cross_entropy_for_logits(&batch.y), logits))
    }
}
