//! The per-epoch calibration shared by the TRADES and FAT methods and their FAIR-TAT
//! combinations: class-wise epsilon (CCM, when `method.class_eps`), CCR's class-wise TRADES
//! beta (when `method.ccr`) and the target-sampling distribution from the previous epoch's
//! C_FPS, with the same rules as [`super::FairTat`] (algorithms.md §1.3, §1.4, §1.6, §2.3).

use super::{calibration, sampler};
use fairtat_core::config::{MethodSpec, RunSpec, TargetWeighting};
use fairtat_core::fairness::ClassMetrics;

pub(crate) struct Calibrated {
    opts: MethodSpec,
    base_eps: f64,
    /// Per-class epsilon in force this epoch.
    pub eps: Vec<f64>,
    /// Target-sampling distribution in force this epoch (used by targeted methods only).
    pub probs: Vec<f64>,
    /// Per-class TRADES beta (before normalisation) in force this epoch: `method.beta` for
    /// every class unless CCR is on.
    pub beta: Vec<f64>,
}

impl Calibrated {
    pub fn new(spec: &RunSpec) -> Self {
        let k = spec.num_classes();
        Calibrated {
            opts: spec.method.clone(),
            base_eps: spec.attack.eps,
            eps: vec![spec.attack.eps; k],
            probs: vec![1.0 / k.max(1) as f64; k],
            beta: vec![spec.method.beta; k],
        }
    }

    pub fn opts(&self) -> &MethodSpec {
        &self.opts
    }

    pub fn begin_epoch(&mut self, epoch: usize, prev: Option<&ClassMetrics>) {
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
        let r_ccr = if o.ccr {
            prev.map(|m| m.class_acc.as_slice())
        } else {
            None
        };
        self.beta =
            calibration::class_beta(o.beta, o.lambda2, r_ccr, k, epoch, o.calibration_start);
        // Same reference quirk as FAIR-TAT (§1.3): C_FPS targets follow the class-wise epsilon
        // switch unless `cfps_requires_class_eps` is off.
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
}
