//! FAIR-TAT (Medi, Jung, Keuper, WACV 2025, Algorithm 1) as the reference code does it
//! (TejaswiniMedi/FAIR-TAT `target_train_new.py` + `Targeted_attack.py`, algorithms.md §1):
//! targeted PGD toward classes drawn from the previous epoch's training C_FPS, per-sample
//! epsilon of the true class calibrated as eps_k = (lambda1 + r_k) * eps, CE on true labels.

use tch::Tensor;

use super::{adversarial_ce, calibration, sampler, train_pgd_config, Batch, Method, StepOutput};
use crate::attacks::PgdConfig;
use fairtat_core::config::{MethodSpec, RunSpec, TargetWeighting};
use fairtat_core::fairness::ClassMetrics;
use crate::models::Model;
use fairtat_core::util::Rng;

pub struct FairTat {
    opts: MethodSpec,
    cfg: PgdConfig,
    base_eps: f64,
    eps: Vec<f64>,
    probs: Vec<f64>,
}

impl FairTat {
    pub fn new(spec: &RunSpec) -> Self {
        let k = spec.num_classes();
        FairTat {
            opts: spec.method.clone(),
            cfg: train_pgd_config(&spec.attack),
            base_eps: spec.attack.eps,
            eps: vec![spec.attack.eps; k],
            probs: vec![1.0 / k as f64; k],
        }
    }
}

impl Method for FairTat {
    fn name(&self) -> &'static str {
        "fair-tat"
    }

    fn begin_epoch(&mut self, epoch: usize, prev: Option<&ClassMetrics>) {
        let k = self.eps.len();
        let o = &self.opts;
        let calibrating = epoch > 0 && epoch >= o.calibration_start;
        let r = if o.class_eps {
            prev.map(|m| m.class_acc.as_slice())
        } else {
            None
        };
        self.eps =
            calibration::class_eps(self.base_eps, o.lambda1, r, k, epoch, o.calibration_start);
        // Reference quirk (§1.3): the C_FPS weights are only refreshed inside the adaptive-eps
        // branch; without class-wise epsilon the targets stay uniform unless the switch is off.
        let update_targets = calibrating && (o.class_eps || !o.cfps_requires_class_eps);
        let cfps = if update_targets {
            prev.map(|m| m.cfps.as_slice())
        } else {
            None
        };
        let weighting = if update_targets {
            o.targets
        } else {
            TargetWeighting::Uniform
        };
        self.probs = sampler::target_distribution(cfps, k, weighting, o.softmax_scale);
    }

    fn class_eps(&self) -> &[f64] {
        &self.eps
    }

    fn target_probs(&self) -> Option<&[f64]> {
        Some(&self.probs)
    }

    fn step(
        &mut self,
        model: &Model,
        batch: &Batch,
        rng: &mut Rng,
    ) -> Result<StepOutput, tch::TchError> {
        let targets = sampler::sample_targets(&batch.labels, &self.probs, rng);
        let t = Tensor::from_slice(&targets).to_device(batch.y.device());
        let (loss, logits) = adversarial_ce(model, batch, &self.eps, Some(&t), &self.cfg)?;
        Ok(StepOutput {
            loss,
            logits,
            targets: Some(targets),
        })
    }
}
