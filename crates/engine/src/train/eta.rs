//! The time left of a run: the batches left to train plus every evaluation still to come.
//!
//! Evaluation time is counted in "gradient passes per image" (a PGD-k attack is k forward and
//! backward passes plus a forward; a clean pass about a third of one). Once an epoch has been
//! evaluated its measured time gives seconds per pass; before that, the training pass rate
//! stands in. Epochs differ: the test set is evaluated only every `eval.every` epochs, and the
//! last epoch adds PGD-`final_steps`, so each epoch is estimated on its own.

use super::epoch_eval::{eval_attacks, test_due};
use fairtat_core::config::RunSpec;
use fairtat_core::runs::{EpochRecord, EvalRecord};

/// A forward pass, as a fraction of a forward and backward pass.
const FORWARD: f64 = 1.0 / 3.0;

/// What the estimate needs of the run besides its spec.
#[derive(Clone, Copy, Debug)]
pub struct EvalSizes {
    pub val: usize,
    pub test: usize,
    /// Models evaluated on the test set (live, EMA, FAWA as the run has them).
    pub test_models: usize,
}

/// Gradient passes of the evaluation after epoch `epoch` (0-based).
pub fn eval_passes(spec: &RunSpec, epoch: usize, n: EvalSizes) -> f64 {
    let cost: Vec<f64> = eval_attacks(spec, epoch)
        .iter()
        .map(|a| a.as_ref().map_or(FORWARD, |a| a.steps as f64 + FORWARD))
        .collect();
    // Validation runs clean and PGD-k (the first two), every epoch.
    let val = n.val as f64 * cost.iter().take(2).sum::<f64>();
    let test = if test_due(spec, epoch) {
        (n.test * n.test_models) as f64 * cost.iter().sum::<f64>()
    } else {
        0.0
    };
    val + test
}

/// Gradient passes of training one image (the attack's steps and the update).
fn train_passes(spec: &RunSpec) -> f64 {
    spec.attack.steps as f64 + 1.0
}

/// The test-set models an epoch record evaluated itself: the live model, plus every other model
/// whose test records differ from the live model's (an EMA at its first update, or FAWA on the
/// epoch it starts, is a copy whose records are the live model's, relabelled, not evaluated).
pub fn evaluated_models(rec: &EpochRecord) -> usize {
    let test = |m: &str| -> Vec<&EvalRecord> {
        rec.evals
            .iter()
            .filter(|e| e.split == "test" && e.model == m)
            .collect()
    };
    let live = test("live");
    let mut others: Vec<&str> = rec
        .evals
        .iter()
        .filter(|e| e.split == "test" && e.model != "live")
        .map(|e| e.model.as_str())
        .collect();
    others.sort_unstable();
    others.dedup();
    let own = others
        .into_iter()
        .filter(|m| {
            let recs = test(m);
            recs.len() != live.len()
                || recs
                    .iter()
                    .zip(&live)
                    .any(|(a, b)| a.confusion != b.confusion)
        })
        .count();
    usize::from(!live.is_empty()) + own
}

/// The time left in epoch `epoch`, planned once per epoch (the evaluations still to come and
/// their price), then priced at each progress line from the measured time per batch.
#[derive(Clone, Copy, Debug)]
pub struct Eta {
    /// Epochs after this one.
    epochs_after: usize,
    /// Gradient passes of every evaluation from this epoch's on.
    eval_passes_left: f64,
    /// Seconds per pass of the latest measured evaluation (`None` before the first one).
    measured_per_pass: Option<f64>,
    /// Gradient passes of one training batch (prices evaluations before any was measured).
    train_passes_per_batch: f64,
}

impl Eta {
    /// The plan for epoch `epoch`; `last` is the latest epoch record (its measured evaluation).
    pub fn plan(spec: &RunSpec, epoch: usize, last: Option<&EpochRecord>, n: EvalSizes) -> Eta {
        let measured_per_pass = last.and_then(|r| {
            let n = EvalSizes {
                test_models: evaluated_models(r),
                ..n
            };
            let passes = eval_passes(spec, r.epoch, n);
            (passes > 0.0).then(|| r.eval_secs / passes)
        });
        Eta {
            epochs_after: spec.train.epochs.saturating_sub(epoch + 1),
            eval_passes_left: (epoch..spec.train.epochs)
                .map(|e| eval_passes(spec, e, n))
                .sum(),
            measured_per_pass,
            train_passes_per_batch: spec.train.batch_size.max(1) as f64 * train_passes(spec),
        }
    }

    /// Seconds left after batch `batch` of `batches`, training at `per_batch` seconds a batch.
    pub fn secs(&self, (batch, batches): (usize, usize), per_batch: f64) -> f64 {
        let left_batches = batches.saturating_sub(batch) + self.epochs_after * batches;
        let per_pass = self
            .measured_per_pass
            .unwrap_or(per_batch / self.train_passes_per_batch);
        per_batch * left_batches as f64 + per_pass * self.eval_passes_left
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(epochs: usize, every: usize) -> RunSpec {
        let mut s = fairtat_core::config::from_toml_str("", &[]).unwrap();
        s.train.epochs = epochs;
        s.train.batch_size = 100;
        s.attack.steps = 10;
        s.eval.steps = 10;
        s.eval.final_steps = 20;
        s.eval.every = every;
        s
    }

    const N: EvalSizes = EvalSizes {
        val: 0,
        test: 1000,
        test_models: 1,
    };

    #[test]
    fn before_any_evaluation_the_training_rate_prices_the_evaluations() {
        let s = spec(2, 1);
        // 10 batches of 100 images at 11 passes each take 1 s: 1/11000 s per pass.
        let eta = Eta::plan(&s, 0, None, N).secs((0, 10), 0.1);
        let passes = eval_passes(&s, 0, N) + eval_passes(&s, 1, N);
        assert!((eta - (2.0 + passes / 11_000.0)).abs() < 1e-9, "{eta}");
        // The last epoch adds PGD-20 on top of clean and PGD-10.
        assert!(eval_passes(&s, 1, N) > eval_passes(&s, 0, N));
    }

    #[test]
    fn a_measured_evaluation_sets_the_rate_and_skipped_epochs_cost_nothing() {
        let s = spec(4, 2);
        assert_eq!(
            eval_passes(&s, 0, N),
            0.0,
            "no test set after epoch 0 with every = 2"
        );
        let at1 = eval_passes(&s, 1, N);
        // Epoch 1 was evaluated in 5 s; epochs 2 (none) and 3 (the final one) are left.
        let eta = Eta::plan(&s, 2, Some(&record(1, 5.0, &["live"])), N).secs((0, 10), 0.0);
        let want = 5.0 / at1 * eval_passes(&s, 3, N);
        assert!((eta - want).abs() < 1e-9, "{eta} vs {want}");
    }

    /// An epoch record with a clean test record per model; "copy" models get the live matrix.
    fn record(epoch: usize, eval_secs: f64, models: &[&str]) -> EpochRecord {
        let evals = models
            .iter()
            .map(|m| {
                let own = if *m == "live" || m.ends_with("copy") {
                    1
                } else {
                    7
                };
                let mut r: EvalRecord = serde_json::from_value(serde_json::json!({
                    "split": "test", "attack": "clean", "model": m,
                    "confusion": [[1, own], [0, 1]], "overall": 0.5, "worst": 0.5,
                    "worst10": 0.5, "class_acc": [0.5, 0.5], "cfps": [0.0, 0.0],
                    "cacc": [0.5, 0.5], "support": [1, 1]
                }))
                .unwrap();
                r.model = m.trim_end_matches("-copy").to_string();
                r
            })
            .collect();
        serde_json::from_value(serde_json::json!({
            "epoch": epoch, "epochs": 4, "lr": 0.1, "train_loss": 1.0, "train_secs": 1.0,
            "eval_secs": eval_secs, "images_per_sec": 1.0, "class_eps": [],
            "target_probs": null, "target_counts": null, "evals": [], "method_state": {}
        }))
        .map(|mut r: EpochRecord| {
            r.evals = evals;
            r
        })
        .unwrap()
    }

    #[test]
    fn copies_of_the_live_model_are_not_counted_as_evaluated() {
        let first = record(0, 1.0, &["live", "ema-copy"]);
        assert_eq!(evaluated_models(&first), 1);
        let later = record(1, 1.0, &["live", "ema", "fawa-copy"]);
        assert_eq!(evaluated_models(&later), 2);
        // Epoch 0 evaluated one model in 1 s; later epochs evaluate two: twice the time.
        let s = spec(3, 1);
        let two = EvalSizes {
            test_models: 2,
            ..N
        };
        let eta = Eta::plan(&s, 1, Some(&first), two).secs((10, 10), 0.0);
        let want = (eval_passes(&s, 1, two) + eval_passes(&s, 2, two)) / eval_passes(&s, 0, N);
        assert!((eta - want).abs() < 1e-9, "{eta} vs {want}");
    }
}
