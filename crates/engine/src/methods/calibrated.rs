//! The per-epoch calibration of the PGD-AT, TRADES and FAT families and their FAIR-TAT
//! combinations (algorithms.md §1.3, §1.4, §1.6, §2.3): class-wise epsilon (CCM, when
//! `method.class_eps`), CCR's class-wise TRADES beta (when `method.ccr`) and the
//! target-sampling distribution from the previous epoch's C_FPS.
//!
//! [`Calibrated`] is that state; [`WithCalibration`] wraps a [`CalibratedStep`] (what a method
//! does with a batch) into a [`Method`], so the calibration and its hooks exist once.

use std::collections::BTreeMap;

use tch::{TchError, Tensor};

use super::{calibration, sampler, Batch, Method, StepOutput, StepResult};
use crate::attacks::per_sample_eps;
use crate::models::Model;
use fairtat_core::config::{MethodKind, MethodSpec, RunSpec, TargetWeighting};
use fairtat_core::fairness::ClassMetrics;
use fairtat_core::util::Rng;

/// Targets drawn for one batch, one per sample and never its label.
pub(crate) struct Targets {
    /// On the host, for the loop's records ([`super::StepOutput::targets`]).
    pub host: Vec<i64>,
    /// On the batch's device, for the attack.
    pub device: Tensor,
}

/// One target per sample of `batch` from `probs` (the true class excluded, see
/// [`sampler::sample_targets`]); the only place a method draws targets.
pub(crate) fn draw_targets(
    batch: &Batch,
    probs: &[f64],
    rng: &mut Rng,
) -> Result<Targets, TchError> {
    let host = sampler::sample_targets(&batch.labels, probs, rng);
    let device = Tensor::f_from_slice(&host)?.f_to_device(batch.y.device())?;
    Ok(Targets { host, device })
}

pub(crate) struct Calibrated {
    opts: MethodSpec,
    base_eps: f64,
    /// Whether the method draws targets (only then is `probs` in force).
    targeted: bool,
    /// Per-class epsilon in force this epoch.
    pub eps: Vec<f64>,
    /// Target-sampling distribution in force this epoch (used by targeted methods only).
    pub probs: Vec<f64>,
    /// Per-class TRADES beta (before normalisation) in force this epoch: `method.beta` for
    /// every class unless CCR is on.
    pub beta: Vec<f64>,
}

/// The previous epoch's class accuracies when `on`, otherwise none (no calibration).
fn class_acc_if(on: bool, prev: Option<&ClassMetrics>) -> Option<&[f64]> {
    prev.filter(|_| on).map(|m| m.class_acc.as_slice())
}

impl Calibrated {
    pub fn new(spec: &RunSpec, targeted: bool) -> Self {
        let k = spec.num_classes();
        Calibrated {
            opts: spec.method.clone(),
            base_eps: spec.attack.eps,
            targeted,
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
        let start = o.calibration_start;
        let r = class_acc_if(o.class_eps, prev);
        self.eps = calibration::class_scaled(self.base_eps, o.lambda1, r, k, epoch, start);
        let r_ccr = class_acc_if(o.ccr, prev);
        self.beta = calibration::class_scaled(o.beta, o.lambda2, r_ccr, k, epoch, start);
        // Reference quirk (§1.3): FAIR-TAT refreshes the C_FPS weights only inside the
        // adaptive-eps branch; without class-wise epsilon the targets stay uniform unless
        // `cfps_requires_class_eps` is off.
        let calibrating = epoch > 0 && epoch >= start;
        let update_targets = calibrating && (o.class_eps || !o.cfps_requires_class_eps);
        let cfps = prev.filter(|_| update_targets).map(|m| m.cfps.as_slice());
        let weighting = if update_targets {
            o.targets
        } else {
            TargetWeighting::Uniform
        };
        self.probs = sampler::target_distribution(cfps, k, weighting, o.softmax_scale);
    }
}

/// A batch with what the calibration puts in force for it.
pub(crate) struct CalibratedBatch<'a> {
    pub batch: &'a Batch,
    pub cal: &'a Calibrated,
    /// Per-sample radius [B], the true class's epsilon.
    pub eps: Tensor,
    /// Targets on the batch's device, for targeted methods.
    pub targets: Option<&'a Tensor>,
}

/// What a calibrated method does with a batch: the adversarial examples and the loss.
pub(crate) trait CalibratedStep {
    /// The loss to minimise and the logits on the training adversarial examples.
    fn step(&mut self, model: &Model, b: &CalibratedBatch) -> Result<(Tensor, Tensor), TchError>;
    /// After the epoch's calibration: reset per-epoch tallies.
    fn begin_epoch(&mut self) {}
    fn method_state(&self, _cal: &Calibrated) -> BTreeMap<String, Vec<f64>> {
        BTreeMap::new()
    }
}

/// A [`CalibratedStep`] with its [`Calibrated`] state, as the [`Method`] `spec` asks for.
pub(crate) struct WithCalibration<S> {
    kind: MethodKind,
    cal: Calibrated,
    inner: S,
}

impl<S: CalibratedStep + 'static> WithCalibration<S> {
    /// `targeted`: whether the method draws targets (from the distribution in force).
    pub fn boxed(spec: &RunSpec, targeted: bool, inner: S) -> Box<dyn Method> {
        Box::new(WithCalibration {
            kind: spec.method.name,
            cal: Calibrated::new(spec, targeted),
            inner,
        })
    }
}

impl<S: CalibratedStep> Method for WithCalibration<S> {
    fn kind(&self) -> MethodKind {
        self.kind
    }

    fn begin_epoch(&mut self, epoch: usize, prev: Option<&ClassMetrics>) {
        self.cal.begin_epoch(epoch, prev);
        self.inner.begin_epoch();
    }

    fn class_eps(&self) -> &[f64] {
        &self.cal.eps
    }

    fn target_probs(&self) -> Option<&[f64]> {
        self.cal.targeted.then_some(self.cal.probs.as_slice())
    }

    fn step(&mut self, model: &Model, batch: &Batch, rng: &mut Rng) -> StepResult {
        let cal = &self.cal;
        let drawn = cal
            .targeted
            .then(|| draw_targets(batch, &cal.probs, rng))
            .transpose()?;
        let b = CalibratedBatch {
            batch,
            cal,
            eps: per_sample_eps(&cal.eps, &batch.y),
            targets: drawn.as_ref().map(|t| &t.device),
        };
        let (loss, logits) = self.inner.step(model, &b)?;
        Ok(StepOutput {
            loss,
            logits,
            targets: drawn.map(|t| t.host),
        })
    }

    fn method_state(&self) -> BTreeMap<String, Vec<f64>> {
        self.inner.method_state(&self.cal)
    }
}
