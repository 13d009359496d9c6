//! Evaluation of a model on a dataset, clean or under untargeted PGD, in eval mode (BatchNorm
//! running statistics), as the reference evaluates every epoch (algorithms.md §1.7).
//!
//! An evaluation checks the stop flag before every batch: a PGD evaluation of a CIFAR test set
//! takes minutes, and a scheduler's warning signal leaves seconds (issue 21).

use std::sync::atomic::{AtomicBool, Ordering};

use tch::{Device, Tensor};

use crate::attacks::{pgd, PgdConfig};
use crate::data::{batch_indices, make_batch, Dataset};
use crate::models::Model;
use fairtat_core::fairness::{ClassMetrics, ConfusionMatrix};
use fairtat_core::runs::eval_names::AttackName;
use fairtat_core::runs::EvalRecord;

use super::TrainError;

/// A stop flag that is never set, for evaluations nothing can stop.
pub static NO_STOP: AtomicBool = AtomicBool::new(false);

/// An untargeted L-inf PGD evaluation attack with one epsilon for every class.
#[derive(Clone, Debug)]
pub struct EvalAttack {
    pub name: String,
    pub eps: f64,
    pub alpha: f64,
    pub steps: usize,
}

impl EvalAttack {
    /// `pgd-<steps>`, random start, eval-mode BatchNorm.
    pub fn pgd(eps: f64, alpha: f64, steps: usize) -> Self {
        EvalAttack {
            name: format!("pgd-{steps}"),
            eps,
            alpha,
            steps,
        }
    }

    /// Parse `clean`, `fgsm` or `pgd-<k>`.
    pub fn parse(s: &str, eps: f64, alpha: f64) -> Option<Option<Self>> {
        match AttackName::parse(s) {
            AttackName::Clean => Some(None),
            AttackName::Fgsm => Some(Some(EvalAttack {
                name: "fgsm".into(),
                eps,
                alpha: eps,
                steps: 1,
            })),
            AttackName::Pgd(k) if (1..=10_000).contains(&k) => {
                Some(Some(EvalAttack::pgd(eps, alpha, k as usize)))
            }
            _ => None,
        }
    }

    fn config(&self) -> PgdConfig {
        // FGSM: one full-eps step from the clean point.
        let random_start = self.name != "fgsm";
        PgdConfig {
            alpha: self.alpha,
            steps: self.steps,
            random_start,
            bn_train: false,
        }
    }
}

/// Confusion matrix of `model` on `ds`, clean (`attack = None`) or attacked. `on_batch` is called
/// with (done, total) images for progress reporting. [`TrainError::Stopped`] when `stop` is set
/// before a batch.
pub fn evaluate(
    model: &Model,
    ds: &Dataset,
    attack: Option<&EvalAttack>,
    batch_size: usize,
    stop: &AtomicBool,
    mut on_batch: impl FnMut(usize, usize),
) -> Result<ConfusionMatrix, TrainError> {
    let device: Device = model.device();
    let mut cm = ConfusionMatrix::new(ds.num_classes());
    let mut done = 0;
    for idx in batch_indices(ds.len(), batch_size, None) {
        check_stop(stop)?;
        let (x, y) = make_batch(ds, &idx, None);
        let (x, y) = (x.to_device(device), y.to_device(device));
        let _scope = model.precision_scope();
        let input = match attack {
            None => x,
            Some(a) => {
                let eps = Tensor::full([idx.len() as i64], a.eps, (tch::Kind::Float, device));
                pgd(model, &x, &y, &eps, None, &a.config())
            }
        };
        let preds = tch::no_grad(|| model.forward_t(&input, false).argmax(-1, false));
        let preds: Vec<i64> = Vec::try_from(&preds.to_device(Device::Cpu)).unwrap_or_default();
        let labels: Vec<i64> = idx.iter().map(|&i| ds.labels[i] as i64).collect();
        cm.add_batch(&labels, &preds);
        done += idx.len();
        on_batch(done, ds.len());
    }
    Ok(cm)
}

/// [`TrainError::Stopped`] once `stop` is set.
pub fn check_stop(stop: &AtomicBool) -> Result<(), TrainError> {
    if stop.load(Ordering::SeqCst) {
        return Err(TrainError::Stopped);
    }
    Ok(())
}

/// The record of one evaluation (split, attack, model) from its confusion matrix.
pub fn eval_record(split: &str, attack: &str, model: &str, cm: &ConfusionMatrix) -> EvalRecord {
    EvalRecord {
        split: split.into(),
        attack: attack.into(),
        model: model.into(),
        confusion: cm.rows(),
        metrics: ClassMetrics::from_confusion(cm),
    }
}
