//! `fairtat train --config grid.toml` with a row that starts from another row
//! (`train.init_from`): the CLI trains the source first, whatever the grid's order, records its
//! checkpoint in the dependent run's config, and the dependent run starts from those weights.
//! Small real Fashion-MNIST subset, CPU, one epoch per run.

use std::path::{Path, PathBuf};
use std::process::Command;

use fairtat::runs::reader::read_events;
use fairtat::runs::RunEvent;
use tch::Tensor;

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// Unix time of the run's `started` event.
fn started_at(dir: &Path) -> f64 {
    read_events(&dir.join("events.jsonl"))
        .unwrap()
        .into_iter()
        .find(|l| matches!(l.event, RunEvent::Started { .. }))
        .map(|l| l.time)
        .expect("a started event")
}

#[test]
fn grid_trains_the_source_row_first_and_the_frl_row_starts_from_it() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("configs");
    write(
        &cfg.join("rows/trades.toml"),
        "[method]\nname = \"trades\"\n[train]\nlr = 0.05\n",
    );
    // lr 0: FRL's weights stay those it starts from.
    write(
        &cfg.join("rows/frl.toml"),
        "[method]\nname = \"frl-rw\"\n[train]\ninit_from = \"trades\"\nlr = 0\n",
    );
    // FRL first: the CLI must reorder.
    write(
        &cfg.join("g.toml"),
        "name = \"g\"\n[grid]\npreset = [\"rows/frl\", \"rows/trades\"]\nseed = [0]\n",
    );
    let runs = tmp.path().join("runs");
    let mut c = Command::new(env!("CARGO_BIN_EXE_fairtat"));
    c.env("FAIRTAT_LOG", "warn")
        .args(["train", "--config"])
        .arg(cfg.join("g.toml"))
        .arg("--out")
        .arg(&runs);
    for s in [
        "device=cpu",
        "data.train_subset=400",
        "data.val_per_class=5",
        "data.test_subset=100",
        "train.epochs=1",
        "train.batch_size=50",
        "attack.steps=2",
        "eval.steps=2",
        "eval.final_steps=2",
    ] {
        c.args(["--set", s]);
    }
    let out = c.output().expect("run fairtat");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stderr: {stderr}");
    let first = stderr.find("g-trades-s0").expect("trades run announced");
    let second = stderr.find("g-frl-s0").expect("frl run announced");
    assert!(first < second, "{stderr}");

    let dirs: Vec<PathBuf> = std::fs::read_dir(&runs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let find = |part: &str| {
        dirs.iter()
            .find(|d| d.to_string_lossy().contains(part))
            .unwrap()
    };
    let (trades, frl) = (find("-g-trades-s0-"), find("-g-frl-s0-"));
    assert!(started_at(trades) <= started_at(frl));
    let config = std::fs::read_to_string(frl.join("config.toml")).unwrap();
    let spec = fairtat::config::from_toml_str(&config, &[]).unwrap();
    assert_eq!(spec.train.init_from_run, "g-trades-s0");
    let ck = trades.join("checkpoints/last.safetensors");
    assert_eq!(
        std::fs::canonicalize(&spec.train.init_checkpoint).unwrap(),
        std::fs::canonicalize(&ck).unwrap()
    );
    let sorted = |p: &Path| {
        let mut v = Tensor::read_safetensors(p).unwrap();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    };
    let (a, b) = (
        sorted(&ck),
        sorted(&frl.join("checkpoints/last.safetensors")),
    );
    assert_eq!(a.len(), b.len());
    for ((n, x), (_, y)) in a.iter().zip(&b) {
        assert_eq!((x - y).abs().max().double_value(&[]), 0.0, "{n}");
    }
}
