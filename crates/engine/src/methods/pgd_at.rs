//! PGD-AT (Madry et al. 2018) in the Rice et al. recipe (locuslab/robust_overfitting
//! `train_cifar.py`, algorithms.md §3.1): untargeted PGD, CE on the adversarial examples.
//! With `method.class_eps = true` it becomes PGD-AT + CCM (CFA's class-wise margin).

use super::{adversarial_ce, calibration, train_pgd_config, Batch, Method, StepOutput};
use crate::attacks::PgdConfig;
use fairtat_core::config::RunSpec;
use fairtat_core::fairness::ClassMetrics;
use crate::models::Model;
use fairtat_core::util::Rng;

pub struct PgdAt {
    cfg: PgdConfig,
    base_eps: f64,
    lambda1: f64,
    calibrate: bool,
    start: usize,
    eps: Vec<f64>,
}

impl PgdAt {
    pub fn new(spec: &RunSpec) -> Self {
        PgdAt {
            cfg: train_pgd_config(&spec.attack),
            base_eps: spec.attack.eps,
            lambda1: spec.method.lambda1,
            calibrate: spec.method.class_eps,
            start: spec.method.calibration_start,
            eps: vec![spec.attack.eps; spec.num_classes()],
        }
    }
}

impl Method for PgdAt {
    fn name(&self) -> &'static str {
        "pgd-at"
    }

    fn begin_epoch(&mut self, epoch: usize, prev: Option<&ClassMetrics>) {
        let k = self.eps.len();
        let r = if self.calibrate {
            prev.map(|m| m.class_acc.as_slice())
        } else {
            None
        };
        self.eps = calibration::class_eps(self.base_eps, self.lambda1, r, k, epoch, self.start);
    }

    fn class_eps(&self) -> &[f64] {
        &self.eps
    }

    fn step(
        &mut self,
        model: &Model,
        batch: &Batch,
        _rng: &mut Rng,
    ) -> Result<StepOutput, tch::TchError> {
        let (loss, logits) = adversarial_ce(model, batch, &self.eps, None, &self.cfg)?;
        Ok(StepOutput {
            loss,
            logits,
            targets: None,
        })
    }
}
