//! Class-wise fairness metrics computed from counts: plain Rust, no tch, no tokio.
//!
//! Definitions follow the FAIR-TAT paper (Medi, Jung, Keuper, WACV 2025, §3):
//! - class accuracy acc_k = #{pred = k, y = k} / #{y = k} (per-class recall),
//! - C_acc(k), eq. (7): (#{pred = k, y = k} + #{pred != k, y != k}) / N,
//! - C_FPS(k), eq. (8): #{pred = k, y != k} / #{pred != y}; all zeros when there is no error,
//! - worst-class accuracy (CIFAR-10 style) and the mean of the worst 10% classes (CIFAR-100 style,
//!   at least one class);
//! - DAFA's rho (Lee et al., ICLR 2024): worst-class gain minus average loss against a base
//!   model ([`rho`]).

mod confusion;
pub mod rho;

pub use confusion::ConfusionMatrix;
pub use rho::{rho, WorstAndAverage};

use serde::{Deserialize, Serialize};

/// Every class-wise statistic the paper reports for one (split, attack) evaluation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassMetrics {
    /// Fraction of all samples predicted correctly.
    #[serde(deserialize_with = "crate::util::nonfinite::f64_or_nan")]
    pub overall: f64,
    /// Minimum per-class accuracy over classes that have samples.
    #[serde(deserialize_with = "crate::util::nonfinite::f64_or_nan")]
    pub worst: f64,
    /// Mean accuracy of the worst ceil(10% of K) classes.
    #[serde(deserialize_with = "crate::util::nonfinite::f64_or_nan")]
    pub worst10: f64,
    /// Per-class accuracy (recall); NaN-free: a class without samples reports 0.
    #[serde(deserialize_with = "crate::util::nonfinite::vec_or_nan")]
    pub class_acc: Vec<f64>,
    /// Class false-positive score, eq. (8).
    #[serde(deserialize_with = "crate::util::nonfinite::vec_or_nan")]
    pub cfps: Vec<f64>,
    /// Class-wise accuracy, eq. (7).
    #[serde(deserialize_with = "crate::util::nonfinite::vec_or_nan")]
    pub cacc: Vec<f64>,
    /// Samples per true class.
    pub support: Vec<u64>,
}

impl ClassMetrics {
    /// The worst-class figure the paper reports: the worst class for up to 10 classes, the
    /// mean of the worst 10% for more (CIFAR-100).
    pub fn paper_worst(&self) -> f64 {
        if self.class_acc.len() > 10 {
            self.worst10
        } else {
            self.worst
        }
    }

    /// Compute every metric from a confusion matrix.
    pub fn from_confusion(cm: &ConfusionMatrix) -> Self {
        let k = cm.classes();
        let n = cm.total();
        let support: Vec<u64> = (0..k).map(|c| cm.row_sum(c)).collect();
        let correct: Vec<u64> = (0..k).map(|c| cm.get(c, c)).collect();
        let predicted: Vec<u64> = (0..k).map(|c| cm.col_sum(c)).collect();
        let total_correct: u64 = correct.iter().sum();
        let errors = n - total_correct;
        let class_acc: Vec<f64> = (0..k).map(|c| ratio(correct[c], support[c])).collect();
        let cfps: Vec<f64> = (0..k)
            .map(|c| ratio(predicted[c] - correct[c], errors))
            .collect();
        // True negatives for class c: samples with y != c and pred != c.
        let cacc: Vec<f64> = (0..k)
            .map(|c| {
                let tn = n - support[c] - (predicted[c] - correct[c]);
                ratio(correct[c] + tn, n)
            })
            .collect();
        let present: Vec<f64> = (0..k)
            .filter(|&c| support[c] > 0)
            .map(|c| class_acc[c])
            .collect();
        ClassMetrics {
            overall: ratio(total_correct, n),
            worst: if present.is_empty() {
                0.0
            } else {
                present.iter().cloned().fold(f64::INFINITY, f64::min)
            },
            worst10: worst_fraction_mean(&present, 0.10),
            class_acc,
            cfps,
            cacc,
            support,
        }
    }
}

/// Mean of the lowest `ceil(fraction * len)` values (at least one); 0 for an empty slice.
/// The paper's CIFAR-100 worst-class metric is `worst_fraction_mean(acc, 0.10)`.
pub fn worst_fraction_mean(values: &[f64], fraction: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut v: Vec<f64> = values
        .iter()
        .map(|x| if x.is_nan() { 0.0 } else { *x })
        .collect();
    v.sort_by(|a, b| a.total_cmp(b));
    let m = ((fraction * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[..m].iter().sum::<f64>() / m as f64
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

#[cfg(test)]
mod tests;
