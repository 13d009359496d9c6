//! Whole training runs through `train::train_on` on tiny synthetic splits (CPU, a few seconds
//! each): what the loop records per epoch for FAWA and for each method's own state.

use std::collections::BTreeMap;

use fairtat::config::from_toml_str;
use fairtat::data::{Dataset, Splits};
use fairtat::runs::events::MemorySink;
use fairtat::runs::EpochRecord;
use fairtat::train::{Outcome, TrainError};

use super::tiny_run::{epoch_records, train_into, TINY};
use super::{serial, SIDE};

pub fn tiny_splits() -> Splits {
    Splits {
        train: Dataset::synthetic(10, 8, 1, SIDE, SIDE, 21),
        val: Dataset::synthetic(10, 4, 1, SIDE, SIDE, 22),
        test: Dataset::synthetic(10, 4, 1, SIDE, SIDE, 23),
    }
}

/// Train `epochs` epochs with the tiny settings plus `sets`; the epoch records.
pub fn run_tiny(epochs: usize, sets: &[&str]) -> Vec<EpochRecord> {
    let tmp = tempfile::tempdir().unwrap();
    run_tiny_in(&tmp.path().join("run"), epochs, sets, false)
}

/// Like [`run_tiny`] into `dir` (resuming a run there when `resume`).
pub fn run_tiny_in(
    dir: &std::path::Path,
    epochs: usize,
    sets: &[&str],
    resume: bool,
) -> Vec<EpochRecord> {
    let (out, events) = run(dir, epochs, sets, resume, tiny_splits()).unwrap();
    assert!(matches!(out, Outcome::Finished { .. }), "{out:?}");
    events
}

/// A fresh run on `splits`; the error when training fails.
pub fn try_run(
    dir: &std::path::Path,
    epochs: usize,
    sets: &[&str],
    splits: Splits,
) -> Result<Vec<EpochRecord>, TrainError> {
    run(dir, epochs, sets, false, splits).map(|(_, e)| e)
}

fn run(
    dir: &std::path::Path,
    epochs: usize,
    sets: &[&str],
    resume: bool,
    splits: Splits,
) -> Result<(Outcome, Vec<EpochRecord>), TrainError> {
    let mut all: Vec<String> = TINY.iter().map(|s| s.to_string()).collect();
    all.push(format!("train.epochs={epochs}"));
    all.extend(sets.iter().map(|s| s.to_string()));
    let spec = from_toml_str("", &all).unwrap();
    let mut sink = MemorySink::default();
    let out = train_into(&spec, splits, dir, resume, &mut sink)?;
    Ok((out, epoch_records(&sink.events)))
}

/// The one value of a scalar method-state entry.
pub fn scalar(state: &BTreeMap<String, Vec<f64>>, key: &str) -> f64 {
    let v = state
        .get(key)
        .unwrap_or_else(|| panic!("no {key} in {state:?}"));
    assert_eq!(v.len(), 1, "{key}: {v:?}");
    v[0]
}

#[test]
fn fawa_never_updates_under_an_unreachable_threshold() {
    let _g = serial();
    let recs = run_tiny(
        2,
        &[
            "method.name=pgd-at",
            "train.fawa_decay=0.88",
            "train.fawa_threshold=1.01",
        ],
    );
    for r in &recs {
        assert_eq!(scalar(&r.method_state, "fawa_updated"), 0.0);
        let a = scalar(&r.method_state, "fawa_min_val_acc");
        assert!((0.0..=1.0).contains(&a), "{a}");
        assert!(r.eval("test", "clean", "fawa").is_none());
    }
}

#[test]
fn fawa_updates_every_epoch_at_threshold_zero_and_is_evaluated_and_saved() {
    let _g = serial();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let recs = run_tiny_in(
        &dir,
        2,
        &[
            "method.name=pgd-at",
            "train.fawa_decay=0.88",
            "train.fawa_threshold=0",
        ],
        false,
    );
    for r in &recs {
        assert_eq!(scalar(&r.method_state, "fawa_updated"), 1.0);
        assert!(r.eval("test", "clean", "fawa").is_some());
        assert!(r.eval("test", "pgd-2", "fawa").is_some());
        // EMA keeps working next to it.
        assert!(r.eval("test", "pgd-2", "ema").is_some());
    }
    assert!(dir.join("checkpoints/fawa.safetensors").exists());
    let state = std::fs::read_to_string(dir.join("checkpoints/state.json")).unwrap();
    assert!(state.contains("\"fawa_initialized\": true"), "{state}");
    // Resuming for a third epoch restores FAWA: it updates with the decay, not a fresh copy.
    let more = run_tiny_in(
        &dir,
        3,
        &[
            "method.name=pgd-at",
            "train.fawa_decay=0.88",
            "train.fawa_threshold=0",
        ],
        true,
    );
    assert_eq!(more.len(), 1);
    assert_eq!(more[0].epoch, 2);
    assert_eq!(scalar(&more[0].method_state, "fawa_updated"), 1.0);
    // FAWA is off by default outside the FAIR-TAT family.
    let off = run_tiny(1, &["method.name=pgd-at"]);
    assert!(!off[0].method_state.contains_key("fawa_updated"));
}
