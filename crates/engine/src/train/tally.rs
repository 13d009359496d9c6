//! The training book-keeping of one epoch, read from the logits each step already computed: the
//! class-wise confusion on the training adversarial examples, the loss, the images, the targets
//! drawn per class and the learning rate in force. A cancel stores it as a
//! [`PartialEpoch`] so that a resumed epoch reports the same statistics as an uninterrupted one.

use fairtat_core::fairness::{ClassMetrics, ConfusionMatrix};
use fairtat_core::runs::EvalRecord;

use super::eval::eval_record;
use super::state::PartialEpoch;
use super::step::BatchStep;

#[derive(Clone, Debug)]
pub struct EpochTally {
    pub confusion: ConfusionMatrix,
    /// Loss summed over images (the mean is what events report).
    pub loss_sum: f64,
    pub images: usize,
    /// Targets drawn per class (targeted methods; zeros otherwise).
    pub target_counts: Vec<u64>,
    /// Training seconds of the batches a previous process trained (resumed epoch).
    pub secs_before: f64,
    /// Images this process trained in this epoch: the throughput counts only these.
    pub images_here: usize,
    /// The learning rate of the latest batch (the configured one before any).
    pub lr: f64,
}

impl EpochTally {
    /// The tally of an epoch over `k` classes, continuing `partial` when it fits (a resumed
    /// epoch), else from zero.
    pub fn resume(partial: Option<PartialEpoch>, k: usize, lr: f64) -> Self {
        let p = partial.unwrap_or_default();
        EpochTally {
            confusion: ConfusionMatrix::from_rows(&p.confusion)
                .filter(|c| c.classes() == k)
                .unwrap_or_else(|| ConfusionMatrix::new(k)),
            loss_sum: p.loss_sum,
            images: p.images,
            target_counts: if p.target_counts.len() == k {
                p.target_counts
            } else {
                vec![0; k]
            },
            secs_before: p.train_secs,
            images_here: 0,
            lr,
        }
    }

    /// Count one trained batch.
    pub fn add(&mut self, step: &BatchStep) {
        let n = step.labels.len();
        self.confusion.add_batch(&step.labels, &step.predictions);
        self.loss_sum += step.loss * n as f64;
        self.images += n;
        self.images_here += n;
        self.lr = step.lr;
        for t in step.targets.iter().flatten() {
            if let Some(c) = self.target_counts.get_mut(*t as usize) {
                *c += 1;
            }
        }
    }

    /// Mean training loss per image so far.
    pub fn mean_loss(&self) -> f64 {
        self.loss_sum / self.images.max(1) as f64
    }

    /// Images per second of this process's share of the epoch, trained in `secs_here`; the
    /// earlier processes' rate when this one trained nothing (it resumed the evaluation).
    pub fn images_per_sec(&self, secs_here: f64) -> f64 {
        if self.images_here == 0 {
            return self.images as f64 / self.secs_before.max(1e-9);
        }
        self.images_here as f64 / secs_here.max(1e-9)
    }

    /// What a cancel stores after `secs_here` seconds of training in this process.
    pub fn pause(&self, secs_here: f64) -> PartialEpoch {
        PartialEpoch {
            confusion: self.confusion.rows(),
            loss_sum: self.loss_sum,
            images: self.images,
            target_counts: self.target_counts.clone(),
            train_secs: self.secs_before + secs_here,
        }
    }

    pub fn metrics(&self) -> ClassMetrics {
        ClassMetrics::from_confusion(&self.confusion)
    }

    /// The epoch's training record (the attack the method trained on, the live model).
    pub fn train_record(&self) -> EvalRecord {
        eval_record("train", "train-attack", "live", &self.confusion)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(labels: &[i64], preds: &[i64], loss: f64, targets: Option<Vec<i64>>) -> BatchStep {
        BatchStep {
            loss,
            labels: labels.to_vec(),
            predictions: preds.to_vec(),
            targets,
            lr: 0.05,
        }
    }

    #[test]
    fn counts_batches_and_a_resumed_epoch_continues_the_counts() {
        let mut t = EpochTally::resume(None, 3, 0.1);
        assert_eq!((t.lr, t.mean_loss()), (0.1, 0.0), "no batch yet");
        t.add(&step(
            &[0, 1, 2, 2],
            &[0, 1, 1, 2],
            2.0,
            Some(vec![1, 1, 0, 9]),
        ));
        assert_eq!((t.images, t.loss_sum, t.lr), (4, 8.0, 0.05));
        assert_eq!(
            t.target_counts,
            vec![1, 2, 0],
            "an out-of-range target is dropped"
        );
        let p = t.pause(3.0);
        assert_eq!(p.train_secs, 3.0);

        let mut r = EpochTally::resume(Some(p), 3, 0.1);
        assert_eq!((r.images, r.images_here, r.secs_before), (4, 0, 3.0));
        r.add(&step(&[0, 1], &[0, 0], 1.0, None));
        assert_eq!(r.images, 6);
        assert_eq!(
            r.images_here, 2,
            "the throughput counts this process's images only"
        );
        assert!((r.mean_loss() - 10.0 / 6.0).abs() < 1e-12);
        assert_eq!(r.pause(1.0).train_secs, 4.0);
        assert_eq!(
            r.train_record().confusion,
            vec![vec![2, 0, 0], vec![1, 1, 0], vec![0, 1, 1]]
        );
        assert!((r.images_per_sec(0.5) - 4.0).abs() < 1e-12);
    }

    #[test]
    fn a_partial_epoch_of_another_class_count_is_not_continued() {
        let p = PartialEpoch {
            confusion: vec![vec![1, 0], vec![0, 1]],
            loss_sum: 1.0,
            images: 2,
            target_counts: vec![1, 1],
            train_secs: 1.0,
        };
        let t = EpochTally::resume(Some(p), 3, 0.1);
        assert_eq!(t.confusion.classes(), 3);
        assert_eq!(t.target_counts, vec![0, 0, 0]);
    }
}
