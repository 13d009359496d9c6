//! Confusion matrix of counts: rows are true classes, columns predictions.

use serde::{Deserialize, Serialize};

/// K x K counts, row-major, `counts[y * k + pred]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfusionMatrix {
    k: usize,
    counts: Vec<u64>,
}

impl ConfusionMatrix {
    pub fn new(k: usize) -> Self {
        ConfusionMatrix {
            k,
            counts: vec![0; k * k],
        }
    }

    /// Build from (true, predicted) pairs; pairs with an index >= k are ignored.
    pub fn from_pairs(k: usize, labels: &[i64], preds: &[i64]) -> Self {
        let mut cm = Self::new(k);
        cm.add_batch(labels, preds);
        cm
    }

    /// Build from nested rows (as stored in `events.jsonl`); `None` when rows are not square.
    pub fn from_rows(rows: &[Vec<u64>]) -> Option<Self> {
        let k = rows.len();
        if rows.iter().any(|r| r.len() != k) {
            return None;
        }
        Some(ConfusionMatrix {
            k,
            counts: rows.concat(),
        })
    }

    pub fn classes(&self) -> usize {
        self.k
    }

    pub fn add(&mut self, label: usize, pred: usize) {
        if label < self.k && pred < self.k {
            self.counts[label * self.k + pred] += 1;
        }
    }

    /// Add a batch of labels and predictions; out-of-range or negative entries are skipped.
    pub fn add_batch(&mut self, labels: &[i64], preds: &[i64]) {
        for (&y, &p) in labels.iter().zip(preds) {
            if y >= 0 && p >= 0 {
                self.add(y as usize, p as usize);
            }
        }
    }

    pub fn merge(&mut self, other: &ConfusionMatrix) {
        if other.k == self.k {
            for (a, b) in self.counts.iter_mut().zip(&other.counts) {
                *a += b;
            }
        }
    }

    pub fn get(&self, label: usize, pred: usize) -> u64 {
        self.counts[label * self.k + pred]
    }

    pub fn row_sum(&self, label: usize) -> u64 {
        self.counts[label * self.k..(label + 1) * self.k]
            .iter()
            .sum()
    }

    pub fn col_sum(&self, pred: usize) -> u64 {
        (0..self.k).map(|y| self.get(y, pred)).sum()
    }

    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Nested rows, the JSON form.
    pub fn rows(&self) -> Vec<Vec<u64>> {
        self.counts
            .chunks(self.k.max(1))
            .map(|r| r.to_vec())
            .collect()
    }

    /// For true class `label`, the other classes it is most often predicted as, most frequent
    /// first, with their counts (zero counts omitted).
    pub fn top_confusions(&self, label: usize, n: usize) -> Vec<(usize, u64)> {
        let mut v: Vec<(usize, u64)> = (0..self.k)
            .filter(|&p| p != label)
            .map(|p| (p, self.get(label, p)))
            .filter(|x| x.1 > 0)
            .collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        v.truncate(n);
        v
    }
}
