//! Shared pieces of the dashboard benchmark: the in-process server, run directories with
//! trainer-like events, and process figures from /proc.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use fairtat::fairness::{ClassMetrics, ConfusionMatrix};
use fairtat::runs::writer::EventWriter;
use fairtat::runs::{EpochRecord, EvalRecord, RunDir, RunEvent, RunStatus};
use fairtat::server::{router, AppState, ServeOptions};
pub async fn serve(opts: ServeOptions) -> Result<(AppState, String)> {
    let state = fairtat::server::supervisor::start(opts).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?.to_string();
    let (st, shutdown) = (state.clone(), state.shutdown_token().clone());
    let limits = st.guard().limits.clone();
    tokio::spawn(fairtat::server::listen::serve(
        listener,
        router(st),
        limits,
        shutdown,
    ));
    Ok((state, addr))
}

pub fn options(root: &Path, trainer: Option<PathBuf>) -> ServeOptions {
    ServeOptions {
        addr: "127.0.0.1:0".parse().expect("loopback address"),
        runs_dir: root.join("runs"),
        configs_dir: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("configs"),
        trainer,
        // What `fairtat serve` uses.
        ..ServeOptions::default()
    }
}

pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

// ---------------------------------------------------------------- run directories

pub fn spec_text() -> Result<String> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("configs/fmnist-quick-fairtat.toml");
    std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
}

/// A new run directory with the preset's config and spec and an open events writer.
pub fn new_run(runs_dir: &Path, n: usize) -> Result<(RunDir, EventWriter)> {
    let spec = fairtat::config::from_toml_str(&spec_text()?, &[format!("name=\"bench-{n}\"")])?;
    let dir = fairtat::runs::create_run_dir(runs_dir, &spec)?;
    let w = EventWriter::open(&dir)?;
    Ok((dir, w))
}

/// Run number `n` under `runs_dir`: started, three epochs, finished (a run of the runs list).
pub fn write_small_run(runs_dir: &Path, n: usize) -> Result<()> {
    let (dir, mut w) = new_run(runs_dir, n)?;
    w.append(&started(&dir))?;
    for e in 0..3 {
        w.append(&epoch(e, 3))?;
    }
    w.append(&finished(3))?;
    Ok(())
}

pub fn started(dir: &RunDir) -> RunEvent {
    RunEvent::Started {
        run_id: dir.id(),
        spec: serde_json::json!({}),
        class_names: (0..10).map(|c| format!("class{c}")).collect(),
        device: "cpu".into(),
        train_size: 5000,
        val_size: 500,
        test_size: 1000,
        start_epoch: 0,
        pid: std::process::id(),
    }
}

/// An epoch line with the evaluations a real FAIR-TAT epoch records (10 classes).
pub fn epoch(e: usize, epochs: usize) -> RunEvent {
    let eval = |split: &str, attack: &str, hit: u64| {
        let rows: Vec<Vec<u64>> = (0..10)
            .map(|y| {
                (0..10)
                    .map(|p| if p == y { hit + y as u64 } else { 2 })
                    .collect()
            })
            .collect();
        let cm = ConfusionMatrix::from_rows(&rows).expect("square");
        EvalRecord {
            split: split.into(),
            attack: attack.into(),
            model: "live".into(),
            confusion: rows,
            metrics: ClassMetrics::from_confusion(&cm),
        }
    };
    let hit = 40 + 5 * e as u64;
    RunEvent::Epoch(Box::new(EpochRecord {
        epoch: e,
        epochs,
        lr: 0.05,
        train_loss: 1.0 / (e + 1) as f64,
        train_secs: 10.0,
        eval_secs: 2.0,
        images_per_sec: 500.0,
        class_eps: vec![0.1; 10],
        target_probs: Some(vec![0.1; 10]),
        target_counts: Some(vec![50; 10]),
        evals: vec![
            eval("train", "train-attack", hit / 2),
            eval("test", "clean", hit),
            eval("test", "pgd-10", hit / 2),
            eval("val", "clean", hit),
            eval("val", "pgd-10", hit / 2),
        ],
        method_state: Default::default(),
    }))
}

pub fn finished(epochs: usize) -> RunEvent {
    RunEvent::Finished {
        status: RunStatus::Finished,
        epochs_done: epochs,
        message: None,
    }
}

pub fn scratch(name: &str) -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("fairtat-bench-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// The `fairtat` binary built next to this one (same profile, same target dir).
pub fn trainer_binary() -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let bin = exe
        .parent()
        .context("no parent directory of this executable")?
        .join(format!("fairtat{}", std::env::consts::EXE_SUFFIX));
    if !bin.exists() {
        bail!(
            "{} is missing: build it first (cargo build --release --bins)",
            bin.display()
        );
    }
    Ok(bin)
}

/// CPU seconds this process (server and clients) has used so far, from /proc (0 elsewhere).
pub fn own_cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the `)`.
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}
