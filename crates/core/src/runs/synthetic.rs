//! Synthetic runs with every record the trainer writes, for the dashboard benchmark and tests at
//! the paper's scale (CIFAR-100: 100 classes, 200 epochs, about 48 MB of `events.jsonl`).
//!
//! Each epoch has the seven evaluations `train::runner` records (training adversarial
//! predictions; test clean and PGD-10 for the live and the EMA model; validation clean and
//! PGD-10), each with its K x K confusion matrix and metrics, plus per-class epsilon, target
//! distribution and counts, and one method-state key. Accuracies rise over epochs and differ per
//! class, so worst classes and C_FPS are not degenerate. Deterministic for a seed.

use std::collections::BTreeMap;

use super::events::{EpochRecord, EvalRecord, ProgressRecord, RunEvent, RunStatus};
use super::writer::EventWriter;
use super::RunDir;
use crate::fairness::{ClassMetrics, ConfusionMatrix};

/// Shape of a synthetic run.
#[derive(Clone, Copy, Debug)]
pub struct Synth {
    pub classes: usize,
    pub epochs: usize,
    /// Progress lines per epoch (the trainer logs every `log_every` batches).
    pub progress: usize,
    pub seed: u64,
}

impl Synth {
    /// CIFAR-100 at the paper's length.
    pub fn cifar100() -> Synth {
        Synth {
            classes: 100,
            epochs: 200,
            progress: 8,
            seed: 1,
        }
    }

    fn rng(&self, e: usize, salt: u64) -> SplitMix {
        SplitMix(self.seed ^ (e as u64).wrapping_mul(0x9E37_79B9) ^ salt.wrapping_mul(0xD1B5))
    }

    pub fn started(&self, run_id: &str) -> RunEvent {
        RunEvent::Started {
            run_id: run_id.to_string(),
            spec: serde_json::json!({}),
            class_names: (0..self.classes).map(|c| format!("class-{c}")).collect(),
            device: "cpu".into(),
            train_size: 500 * self.classes,
            val_size: 10 * self.classes,
            test_size: 100 * self.classes,
            start_epoch: 0,
            pid: 0,
        }
    }

    pub fn progress(&self, e: usize, batch: usize) -> RunEvent {
        RunEvent::Progress(ProgressRecord {
            epoch: e,
            batch,
            batches: 391,
            loss: 2.0 / (e + 1) as f64,
            images_per_sec: 1500.0,
            eta_secs: 60.0 * (self.epochs - e) as f64,
            step_loss: Some(2.0 / (e + 1) as f64),
            epoch_eta_secs: Some(0.15 * (391 - batch.min(391)) as f64),
        })
    }

    /// One confusion matrix: `n` samples per class, a class- and epoch-dependent hit rate, the
    /// misses spread over a few confusable classes.
    fn eval(&self, e: usize, split: &str, attack: &str, model: &str, n: u64) -> EvalRecord {
        let k = self.classes;
        let mut rng = self.rng(
            e,
            split.len() as u64 * 31 + attack.len() as u64 * 7 + model.len() as u64,
        );
        let progress = (e + 1) as f64 / self.epochs as f64;
        let attacked = if attack == "clean" { 1.0 } else { 0.55 };
        let rows: Vec<Vec<u64>> = (0..k)
            .map(|y| {
                let difficulty = 0.5 + 0.5 * ((y * 37 % k) as f64 / k as f64);
                let p = (0.2 + 0.7 * progress.sqrt() * difficulty) * attacked;
                let hits = ((n as f64) * p.clamp(0.0, 1.0)) as u64;
                let mut row = vec![0u64; k];
                row[y] = hits;
                for _ in 0..(n - hits) {
                    // Misses go to three neighbours mostly, sometimes anywhere.
                    let to = if rng.next_u64().is_multiple_of(4) {
                        (rng.next_u64() as usize) % k
                    } else {
                        (y + 1 + (rng.next_u64() as usize) % 3) % k
                    };
                    row[to] += 1;
                }
                row
            })
            .collect();
        let metrics = ConfusionMatrix::from_rows(&rows)
            .map(|cm| ClassMetrics::from_confusion(&cm))
            .unwrap_or_else(|| ClassMetrics::from_confusion(&ConfusionMatrix::new(k)));
        EvalRecord {
            split: split.into(),
            attack: attack.into(),
            model: model.into(),
            confusion: rows,
            metrics,
        }
    }

    pub fn epoch(&self, e: usize) -> EpochRecord {
        let k = self.classes;
        let evals = vec![
            self.eval(e, "train", "train-attack", "live", 500),
            self.eval(e, "test", "clean", "live", 100),
            self.eval(e, "test", "pgd-10", "live", 100),
            self.eval(e, "test", "clean", "ema", 100),
            self.eval(e, "test", "pgd-10", "ema", 100),
            self.eval(e, "val", "clean", "live", 10),
            self.eval(e, "val", "pgd-10", "live", 10),
        ];
        let cfps = &evals[0].metrics.cfps;
        let total: f64 = cfps.iter().map(|v| v.max(1e-6)).sum();
        let probs: Vec<f64> = cfps.iter().map(|v| v.max(1e-6) / total).collect();
        let mut method_state = BTreeMap::new();
        method_state.insert(
            "lambda".to_string(),
            (0..k).map(|c| 1.0 + 0.01 * ((c + e) % 10) as f64).collect(),
        );
        EpochRecord {
            epoch: e,
            epochs: self.epochs,
            lr: 0.1 * (1.0 - e as f64 / self.epochs as f64),
            train_loss: 2.0 / (e + 1) as f64,
            train_secs: 60.0,
            eval_secs: 20.0,
            images_per_sec: 1500.0,
            class_eps: (0..k).map(|c| (6.0 + (c % 5) as f64) / 255.0).collect(),
            target_counts: Some(probs.iter().map(|p| (p * 50_000.0) as u64).collect()),
            target_probs: Some(probs),
            evals,
            method_state,
        }
    }

    /// Append the whole run (started, progress and epoch lines, finished) to `dir`'s log.
    pub fn write(&self, dir: &RunDir) -> std::io::Result<()> {
        let mut w = EventWriter::open(dir)?;
        w.append(&self.started(&dir.id()))?;
        for e in 0..self.epochs {
            self.write_epoch(&mut w, e)?;
        }
        w.append(&RunEvent::Finished {
            status: RunStatus::Finished,
            epochs_done: self.epochs,
            message: None,
        })?;
        Ok(())
    }

    /// The progress lines and the epoch line of epoch `e`.
    pub fn write_epoch(&self, w: &mut EventWriter, e: usize) -> std::io::Result<()> {
        for b in 0..self.progress {
            w.append(&self.progress(e, b * 50))?;
        }
        w.append(&RunEvent::Epoch(Box::new(self.epoch(e))))?;
        Ok(())
    }
}

/// SplitMix64 (Steele, Lea, Flood 2014): enough randomness for synthetic confusions.
struct SplitMix(u64);

impl SplitMix {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}
