//! A diverging run stops with a clear failure instead of training on NaN weights (issue 9):
//! lr = 10 with weight decay 1 multiplies the weights by about -9 per step, so the loss is
//! non-finite within a few dozen steps on a tiny synthetic task (CPU, fixed seed).

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use fairtat::config::from_toml_str;
use fairtat::data::{Dataset, Splits};
use fairtat::runs::events::MemorySink;
use fairtat::runs::{RunDir, RunEvent};
use fairtat::train::{train_on, TrainError, TrainOptions};
use tch::Device;

const SIDE: usize = 16;

#[test]
fn a_nan_loss_stops_the_run_naming_epoch_and_batch() {
    let sets: Vec<String> = [
        "device=cpu",
        "method.name=pgd-at",
        "train.lr=10",
        "train.weight_decay=1",
        "train.lr_schedule=constant",
        "train.batch_size=4",
        "train.epochs=20",
        "attack.steps=1",
        "eval.steps=1",
        "eval.final_steps=1",
        "eval.batch_size=40",
        "train.log_every=100",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let spec = from_toml_str("", &sets).unwrap();
    let splits = Splits {
        train: Dataset::synthetic(10, 4, 1, SIDE, SIDE, 31),
        val: Dataset::synthetic(10, 2, 1, SIDE, SIDE, 32),
        test: Dataset::synthetic(10, 2, 1, SIDE, SIDE, 33),
    };
    let tmp = tempfile::tempdir().unwrap();
    let run = RunDir::new(tmp.path().join("run"));
    std::fs::create_dir_all(run.root()).unwrap();
    let opts = TrainOptions {
        device: Device::Cpu,
        stop: Arc::new(AtomicBool::new(false)),
        resume: false,
    };
    let mut sink = MemorySink::default();
    let err = train_on(&spec, splits, &run, &opts, &mut sink).expect_err("the run diverges");
    let msg = err.to_string();
    assert!(matches!(err, TrainError::Invalid(_)), "{msg}");
    assert!(msg.starts_with("loss became"), "{msg}");
    assert!(
        msg.contains(" at epoch ") && msg.contains(" batch "),
        "{msg}"
    );
    // No epoch with a non-finite loss was recorded.
    for e in &sink.events {
        if let RunEvent::Epoch(r) = e {
            assert!(r.train_loss.is_finite(), "epoch {} recorded NaN", r.epoch);
        }
    }
}
