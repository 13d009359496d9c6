//! The methods since FAIR-TAT (DAFA, DAFA on PGD-AT, TRIX, FAAL) from their Fashion-MNIST Table 1
//! rows as a user runs them: 2 epochs on a real 5,000-image subset (the quick size) through `fairtat train`
//! (CPU, fixed seed), each learning, recording its class weights and finishing; FAAL fine-tunes
//! the DAFA-on-PGD-AT run's checkpoint.

use std::path::{Path, PathBuf};

use fairtat::runs::reader::read_events;
use fairtat::runs::{EpochRecord, RunEvent};

fn row(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("configs/table1/{name}.toml"))
}

/// Train row `name` for 2 epochs with `extra` settings into a new folder of `out`; the run
/// directory and its epoch records.
fn train(out: &Path, name: &str, extra: &[String]) -> (PathBuf, Vec<EpochRecord>) {
    let sets = [
        "train.epochs=2",
        "data.train_subset=5000",
        "data.val_per_class=10",
        "data.test_subset=300",
        "attack.steps=3",
        "eval.steps=3",
        "eval.final_steps=3",
        "train.lr_schedule=constant",
        "train.log_every=20",
    ];
    let dest = out.join(name);
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_fairtat"));
    c.env("FAIRTAT_LOG", "warn")
        .args(["train", "--config"])
        .arg(row(name))
        .arg("--out")
        .arg(&dest);
    for s in sets
        .iter()
        .map(|s| s.to_string())
        .chain(extra.iter().cloned())
    {
        c.args(["--set", &s]);
    }
    let res = c.output().expect("run fairtat");
    assert!(
        res.status.success(),
        "{name}: {}",
        String::from_utf8_lossy(&res.stderr)
    );
    let dir = std::fs::read_dir(&dest)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let recs = read_events(&dir.join("events.jsonl"))
        .unwrap()
        .into_iter()
        .filter_map(|l| match l.event {
            RunEvent::Epoch(r) => Some(*r),
            _ => None,
        })
        .collect::<Vec<_>>();
    assert_eq!(recs.len(), 2, "{name}");
    (dir, recs)
}

/// Clean test accuracy beats chance (0.1) clearly and robust accuracy lies below it.
fn learns(name: &str, r: &EpochRecord) {
    let clean = r.eval("test", "clean", "live").unwrap().metrics.overall;
    let robust = r.eval("test", "pgd-3", "live").unwrap().metrics.overall;
    assert!(clean > 0.3, "{name}: clean accuracy {clean}");
    assert!(robust < clean, "{name}: robust {robust} vs clean {clean}");
}

/// DAFA's weights: 1 in the warm-up epoch, away from 1 after it, the class radii with them.
fn weighted_after_warmup(name: &str, recs: &[EpochRecord]) {
    let w0 = &recs[0].method_state["dafa_weights"];
    let w1 = &recs[1].method_state["dafa_weights"];
    assert!(w0.iter().all(|&w| w == 1.0), "{name}: {w0:?}");
    assert!(w1.iter().any(|&w| (w - 1.0).abs() > 0.01), "{name}: {w1:?}");
    for (e, w) in recs[1].class_eps.iter().zip(w1) {
        assert!((e - 0.1 * w).abs() < 1e-9, "{name}: eps {e} for weight {w}");
    }
}

#[test]
fn dafa_and_trix_rows_train_and_weight_classes_after_the_warmup() {
    let tmp = tempfile::tempdir().unwrap();
    for name in ["fmnist-dafa", "fmnist-trix"] {
        let (_, recs) = train(tmp.path(), name, &["method.dafa_warmup=1".into()]);
        learns(name, &recs[1]);
        weighted_after_warmup(name, &recs);
    }
}

#[test]
fn faal_fine_tunes_a_dafa_pgd_at_run() {
    let tmp = tempfile::tempdir().unwrap();
    // The AT row with DAFA on it (no row of its own).
    let (base, recs) = train(
        tmp.path(),
        "fmnist-at",
        &[
            "method.name=dafa-pgd-at".into(),
            "method.dafa_warmup=1".into(),
        ],
    );
    learns("dafa-pgd-at", &recs[1]);
    weighted_after_warmup("dafa-pgd-at", &recs);
    let ck = base.join("checkpoints/last.safetensors");
    let init = format!("train.init_checkpoint={}", ck.display());
    let (_, recs) = train(tmp.path(), "fmnist-faal", &[init]);
    for r in &recs {
        learns("faal", r);
        let w = &r.method_state["faal_weights"];
        assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-6, "{w:?}");
        assert!(w.iter().any(|&v| (v - 0.1).abs() > 1e-3), "uniform: {w:?}");
    }
}
