//! What an AutoAttack run found, as plain data: which stage broke each point, and class-wise
//! robust accuracy after every stage (algorithms.md §4.5: worst class for CIFAR-10, mean of the
//! worst 10% for CIFAR-100, both from [`fairtat_core::fairness::ClassMetrics`]).
//!
//! A point broken at stage s keeps the image (and prediction) found there, so its prediction
//! after any later stage is fixed; a point not yet broken is predicted correctly. That makes
//! the confusion matrix after every stage recoverable from `broken_by` and `predictions`.

use serde::Serialize;
use tch::Tensor;

use fairtat_core::fairness::{ClassMetrics, ConfusionMatrix};

#[derive(Debug, Serialize)]
pub struct AaResult {
    pub eps: f64,
    pub num_classes: usize,
    /// Stage names in run order, starting with "clean".
    pub stages: Vec<String>,
    /// Per point the stage that broke it; `None` = robust against every stage.
    pub broken_by: Vec<Option<String>>,
    pub labels: Vec<i64>,
    /// Per point the prediction at its final image (clean prediction for "clean" and for
    /// robust points, where it equals the label).
    pub predictions: Vec<i64>,
    /// Adaptations made for this model (fewer classes than the standard version assumes).
    pub notes: Vec<String>,
    /// Final images [B, C, H, W]; not serialised.
    #[serde(skip)]
    pub x_adv: Option<Tensor>,
}

/// Class-wise robust accuracy after one stage (cumulative over the stages up to it).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StageMetrics {
    pub stage: String,
    pub metrics: ClassMetrics,
}

impl AaResult {
    /// Robust after every stage.
    pub fn robust_flags(&self) -> Vec<bool> {
        self.broken_by.iter().map(Option::is_none).collect()
    }

    pub fn robust_count(&self) -> usize {
        self.broken_by.iter().filter(|b| b.is_none()).count()
    }

    /// Fraction of points robust after every stage (0 for an empty batch).
    pub fn robust_accuracy(&self) -> f64 {
        if self.broken_by.is_empty() {
            0.0
        } else {
            self.robust_count() as f64 / self.broken_by.len() as f64
        }
    }

    fn stage_index(&self, name: &str) -> Option<usize> {
        self.stages.iter().position(|s| s == name)
    }

    /// Confusion matrix of the predictions after stage `stage` ("clean" = clean accuracy);
    /// `None` for a stage that did not run or a label outside `num_classes`.
    pub fn confusion_after(&self, stage: &str) -> Option<ConfusionMatrix> {
        let s = self.stage_index(stage)?;
        let k = self.num_classes;
        if self.labels.iter().any(|&l| l < 0 || l as usize >= k) {
            return None;
        }
        let preds: Vec<i64> = self
            .broken_by
            .iter()
            .zip(&self.labels)
            .zip(&self.predictions)
            .map(|((by, &label), &pred)| {
                let broken_at = by.as_deref().and_then(|b| self.stage_index(b));
                match broken_at {
                    Some(t) if t <= s => pred,
                    _ => label,
                }
            })
            .collect();
        Some(ConfusionMatrix::from_pairs(k, &self.labels, &preds))
    }

    /// Class-wise metrics after each stage, in run order (first "clean").
    pub fn per_stage_metrics(&self) -> Vec<StageMetrics> {
        self.stages
            .iter()
            .filter_map(|s| {
                self.confusion_after(s).map(|cm| StageMetrics {
                    stage: s.clone(),
                    metrics: ClassMetrics::from_confusion(&cm),
                })
            })
            .collect()
    }

    /// Append the result of the next batch (same configuration). `x_adv` is concatenated when
    /// both hold images, else dropped.
    pub fn append(&mut self, other: AaResult) {
        self.num_classes = self.num_classes.max(other.num_classes);
        for s in other.stages {
            if !self.stages.contains(&s) {
                self.stages.push(s);
            }
        }
        for n in other.notes {
            if !self.notes.contains(&n) {
                self.notes.push(n);
            }
        }
        self.broken_by.extend(other.broken_by);
        self.labels.extend(other.labels);
        self.predictions.extend(other.predictions);
        self.x_adv = match (self.x_adv.take(), other.x_adv) {
            (Some(a), Some(b)) => {
                let b = b.to_device(a.device());
                Some(Tensor::cat(&[a, b], 0))
            }
            _ => None,
        };
    }
}
