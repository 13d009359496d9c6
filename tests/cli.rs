//! The CLI as a process on a small real Fashion-MNIST subset (CPU, fixed seed): a run writes every
//! file of the run-directory format, beats chance, its checkpoint reproduces the recorded
//! predictions, SIGTERM cancels cleanly and `--resume` continues; bad input fails clearly.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use fairtat::runs::reader::read_events;
use fairtat::runs::{EpochRecord, RunEvent, RunStatus};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_fairtat"));
    c.env("FAIRTAT_LOG", "warn");
    c
}

fn preset() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/fmnist-quick-fairtat.toml")
}

/// Small enough for a few seconds per epoch on 2 cores.
fn small_sets(epochs: usize) -> Vec<String> {
    [
        // SmallCNN sits on a loss plateau at ln(10) for its first ~50 SGD steps (PyTorch shows
        // the same curve), so small batches and a constant lr get it learning within seconds.
        "data.train_subset=2000",
        "data.val_per_class=10",
        "data.test_subset=300",
        "attack.steps=3",
        "eval.steps=3",
        "eval.final_steps=5",
        "train.lr=0.05",
        "train.lr_schedule=constant",
        "train.batch_size=32",
        "train.log_every=5",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([format!("train.epochs={epochs}")])
    .collect()
}

fn train(out: &Path, sets: &[String]) -> Output {
    let mut c = bin();
    c.args(["train", "--config"])
        .arg(preset())
        .arg("--out")
        .arg(out);
    for s in sets {
        c.args(["--set", s]);
    }
    c.output().expect("run fairtat")
}

fn only_run_dir(out: &Path) -> PathBuf {
    let dirs: Vec<PathBuf> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    dirs[0].clone()
}

fn epochs(dir: &Path) -> Vec<EpochRecord> {
    read_events(&dir.join("events.jsonl"))
        .unwrap()
        .into_iter()
        .filter_map(|l| match l.event {
            RunEvent::Epoch(r) => Some(*r),
            _ => None,
        })
        .collect()
}

#[test]
fn end_to_end_run_writes_every_file_and_learns() {
    let tmp = tempfile::tempdir().unwrap();
    let out = train(tmp.path(), &small_sets(3));
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = only_run_dir(tmp.path());
    for f in [
        "config.toml",
        "spec.json",
        "events.jsonl",
        "checkpoints/last.safetensors",
        "checkpoints/ema.safetensors",
        "checkpoints/best-worst-robust.safetensors",
        "reports/epochs.csv",
        "reports/classes.csv",
        "reports/confusion_test_clean.csv",
        "reports/confusion_test_pgd-3.csv",
        "reports/confusion_train_train-attack.csv",
    ] {
        assert!(dir.join(f).exists(), "missing {f}");
    }
    // The trainer held the run's lock and released it on exit.
    assert!(dir.join("lock").exists());
    assert_eq!(
        fairtat::runs::lock::probe(&fairtat::runs::RunDir::new(&dir)),
        None
    );

    let lines = read_events(&dir.join("events.jsonl")).unwrap();
    assert!(lines.iter().all(|l| l.v == fairtat::runs::SCHEMA_VERSION));
    assert!(
        lines.iter().enumerate().all(|(i, l)| l.seq == i as u64),
        "seq must count lines"
    );
    assert!(matches!(
        lines.first().unwrap().event,
        RunEvent::Started { .. }
    ));
    assert!(lines
        .iter()
        .any(|l| matches!(l.event, RunEvent::Progress { .. })));
    assert!(matches!(
        lines.last().unwrap().event,
        RunEvent::Finished {
            status: RunStatus::Finished,
            epochs_done: 3,
            ..
        }
    ));

    let recs = epochs(&dir);
    assert_eq!(recs.len(), 3);
    let last = &recs[2];
    // FAIR-TAT bookkeeping: class-wise eps calibrated in epoch 1, targets from C_FPS, counts cover the data.
    assert_eq!(recs[0].class_eps, vec![0.1; 10]);
    assert!(
        last.class_eps.iter().any(|e| (e - 0.1).abs() > 1e-9),
        "{:?}",
        last.class_eps
    );
    let probs = last.target_probs.as_ref().unwrap();
    assert!((probs.iter().sum::<f64>() - 1.0).abs() < 1e-9);
    assert_eq!(
        last.target_counts.as_ref().unwrap().iter().sum::<u64>(),
        2000
    );
    let train = last.eval("train", "train-attack", "live").unwrap();
    assert_eq!(train.metrics.support.iter().sum::<u64>(), 2000);
    let cfps_sum: f64 = train.metrics.cfps.iter().sum();
    assert!((cfps_sum - 1.0).abs() < 1e-9, "{cfps_sum}");
    for (split, attack, model) in [
        ("test", "clean", "live"),
        ("test", "pgd-3", "live"),
        ("test", "pgd-5", "live"),
        ("test", "clean", "ema"),
        ("val", "pgd-3", "live"),
    ] {
        assert!(
            last.eval(split, attack, model).is_some(),
            "{split}/{attack}/{model}"
        );
    }
    let clean = last.eval("test", "clean", "live").unwrap().metrics.overall;
    let robust = last.eval("test", "pgd-5", "live").unwrap().metrics.overall;
    assert!(
        clean > 0.3,
        "clean accuracy {clean} should beat chance (0.1) clearly"
    );
    assert!(robust < clean, "robust {robust} < clean {clean}");
    assert!(
        recs[2].train_loss < recs[0].train_loss - 0.2,
        "loss falls: {} -> {}",
        recs[0].train_loss,
        recs[2].train_loss
    );

    let epochs_csv = std::fs::read_to_string(dir.join("reports/epochs.csv")).unwrap();
    assert_eq!(epochs_csv.lines().count(), 4);
    let classes_csv = std::fs::read_to_string(dir.join("reports/classes.csv")).unwrap();
    assert!(classes_csv.starts_with(
        "epoch,split,attack,model,class,class_name,accuracy,cfps,cacc,epsilon,target_prob"
    ));
    assert!(classes_csv.contains("Ankle boot"));

    // The checkpoint reproduces the predictions recorded for the last epoch exactly.
    let eval_out = tmp.path().join("eval");
    let out = bin()
        .args(["eval", "--checkpoint"])
        .arg(dir.join("checkpoints/last.safetensors"))
        .args([
            "--attack", "clean", "--subset", "300", "--device", "cpu", "--out",
        ])
        .arg(&eval_out)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("worst class"));
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(eval_out.join("eval.json")).unwrap()).unwrap();
    // Without --batch-size or a run: auto, which is 256 on the CPU, and the report says so.
    assert_eq!(report["batch_size"], 256);
    let recorded =
        serde_json::to_value(&last.eval("test", "clean", "live").unwrap().confusion).unwrap();
    assert_eq!(report["evals"][0]["confusion"], recorded);
    assert!(eval_out.join("summary.csv").exists());
    assert!(eval_out.join("confusion_clean.csv").exists());

    // The dashboard's evaluation job: a run directory, the quick suite (PGD-20 and a cheaper
    // AutoAttack with its per-stage breakdown), reports under evals/quick-last/.
    let out = bin()
        .args(["eval", "--run-dir"])
        .arg(&dir)
        .args(["--suite", "quick", "--subset", "60", "--device", "cpu"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let qdir = dir.join("evals/quick-last");
    let q: fairtat::runs::eval_report::EvalReport =
        serde_json::from_slice(&std::fs::read(qdir.join("eval.json")).unwrap()).unwrap();
    let names: Vec<&str> = q.evals.iter().map(|e| e.attack.as_str()).collect();
    assert_eq!(names, ["clean", "pgd-20", "autoattack-quick"]);
    assert_eq!(q.images, 60);
    // The run's eval.batch_size (auto: 256 on the CPU) unless --batch-size says otherwise.
    assert_eq!(q.batch_size, 256);
    let acc = |n: &str| {
        q.evals
            .iter()
            .find(|e| e.attack == n)
            .unwrap()
            .metrics
            .overall
    };
    assert!(acc("autoattack-quick") <= acc("clean"));
    let stages: Vec<&str> = q.autoattack.iter().map(|s| s.stage.as_str()).collect();
    assert_eq!(stages, ["clean", "apgd-ce", "apgd-t", "square"]);
    // Robust accuracy never rises from one stage to the next, and the last stage is the result.
    for w in q.autoattack.windows(2) {
        assert!(w[1].metrics.overall <= w[0].metrics.overall, "{stages:?}");
    }
    assert_eq!(
        q.autoattack.last().unwrap().metrics.overall,
        acc("autoattack-quick")
    );
    let broken: u64 = q.autoattack.iter().map(|s| s.broken).sum();
    assert_eq!(
        broken as f64,
        ((1.0 - acc("autoattack-quick")) * 60.0).round()
    );
    assert!(qdir.join("autoattack.csv").exists() && !qdir.join("progress.json").exists());

    // Procedural corruptions on Fashion-MNIST: per (corruption, severity) plus the pooled row.
    let out = bin()
        .args(["eval", "--run-dir"])
        .arg(&dir)
        .args([
            "--suite",
            "corruptions",
            "--subset",
            "50",
            "--device",
            "cpu",
        ])
        .args(["--corruption", "gaussian_noise", "--corruption", "contrast"])
        .args(["--batch-size", "20"])
        .args(["--severity", "1", "--severity", "5"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let c: fairtat::runs::eval_report::EvalReport = serde_json::from_slice(
        &std::fs::read(dir.join("evals/corruptions-last/eval.json")).unwrap(),
    )
    .unwrap();
    let rows: Vec<(String, u8)> = c
        .corruptions
        .iter()
        .map(|r| (r.corruption.clone(), r.severity))
        .collect();
    let expect: Vec<(String, u8)> = ["gaussian_noise", "contrast"]
        .iter()
        .flat_map(|n| [1u8, 5, 0].map(|s| (n.to_string(), s)))
        .collect();
    assert_eq!(rows, expect);
    assert_eq!(c.batch_size, 20, "--batch-size overrides the run's");
    for r in &c.corruptions {
        let n: u64 = r.confusion.iter().flatten().sum();
        assert_eq!(n, if r.severity == 0 { 100 } else { 50 });
        assert!(r.metrics.worst <= r.metrics.overall);
    }
    assert_eq!(c.corruption_summary.len(), 2);
    // Severity 5 contrast (c = 0.15) hurts more than severity 1 (c = 0.75).
    let sev = |s: u8| {
        c.corruptions
            .iter()
            .find(|r| r.corruption == "contrast" && r.severity == s)
            .unwrap()
            .metrics
            .overall
    };
    assert!(sev(5) < sev(1), "contrast s5 {} vs s1 {}", sev(5), sev(1));

    // A bad suite name or batch size is a usage error naming the flag and the allowed values.
    for (flag, bad, allowed) in [
        ("--suite", "full", "quick, standard, corruptions"),
        ("--batch-size", "0", "auto, or a whole number"),
    ] {
        let out = bin()
            .args(["eval", "--run-dir"])
            .arg(&dir)
            .args([flag, bad])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(flag) && err.contains(allowed), "{err}");
    }
    // The run left eval.batch_size at auto; its record says what that chose on the CPU.
    let events = std::fs::read_to_string(dir.join("events.jsonl")).unwrap();
    assert!(
        events.contains("eval.batch_size = auto: batches of 256 on the CPU"),
        "{events}"
    );
}

#[test]
fn sigterm_cancels_with_checkpoint_and_resume_finishes() {
    let tmp = tempfile::tempdir().unwrap();
    let mut c = bin();
    c.args(["train", "--config"])
        .arg(preset())
        .arg("--out")
        .arg(tmp.path());
    for s in small_sets(2) {
        c.args(["--set", &s]);
    }
    let mut child = c.stderr(std::process::Stdio::null()).spawn().unwrap();
    // Wait for the first progress event of epoch 0, then ask it to stop.
    let t0 = Instant::now();
    let dir = loop {
        assert!(t0.elapsed() < Duration::from_secs(120), "no progress event");
        std::thread::sleep(Duration::from_millis(50));
        let Some(d) = std::fs::read_dir(tmp.path()).unwrap().next() else {
            continue;
        };
        let d = d.unwrap().path();
        let text = std::fs::read_to_string(d.join("events.jsonl")).unwrap_or_default();
        if text.contains("\"type\":\"progress\"") {
            break d;
        }
    };
    let pid = child.id();
    // What the dashboard's Cancel does: the marker, then SIGTERM.
    std::fs::write(dir.join("cancel-requested"), "cancel\n").unwrap();
    Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    let lines = read_events(&dir.join("events.jsonl")).unwrap();
    let RunEvent::Finished {
        status: RunStatus::Cancelled,
        message,
        ..
    } = &lines.last().unwrap().event
    else {
        panic!("the last line is not a cancel: {:?}", lines.last());
    };
    let message = message.as_deref().unwrap_or_default();
    assert!(
        message.starts_with("cancelled by you") && message.contains("Resume continues"),
        "{message}"
    );
    assert!(dir.join("checkpoints/last.safetensors").exists());
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("checkpoints/state.json")).unwrap())
            .unwrap();
    let done = state["epochs_done"].as_u64().unwrap();
    assert!(done < 2);

    let out = bin()
        .arg("train")
        .arg("--resume")
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = read_events(&dir.join("events.jsonl")).unwrap();
    let starts: Vec<usize> = lines
        .iter()
        .filter_map(|l| match &l.event {
            RunEvent::Started { start_epoch, .. } => Some(*start_epoch),
            _ => None,
        })
        .collect();
    assert_eq!(starts, vec![0, done as usize]);
    let recs = epochs(&dir);
    assert_eq!(recs.iter().map(|r| r.epoch).collect::<Vec<_>>(), vec![0, 1]);
    // The resumed epoch still accounts for every training image.
    let train = recs
        .last()
        .unwrap()
        .eval("train", "train-attack", "live")
        .unwrap();
    assert_eq!(train.metrics.support.iter().sum::<u64>(), 2000);
    assert!(matches!(
        lines.last().unwrap().event,
        RunEvent::Finished {
            status: RunStatus::Finished,
            epochs_done: 2,
            ..
        }
    ));
    assert_eq!(
        std::fs::read_to_string(dir.join("reports/epochs.csv"))
            .unwrap()
            .lines()
            .count(),
        3
    );
}

#[test]
fn config_errors_name_the_key_and_leave_no_run() {
    let tmp = tempfile::tempdir().unwrap();
    let out = train(tmp.path(), &["method.name=magic".into()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("method.name") && err.contains("fair-tat") && err.contains("pgd-at"),
        "{err}"
    );
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);

    let out = train(tmp.path(), &["data.dir=/nonexistent/fmnist".into()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/fmnist"), "{err}");
    assert_eq!(
        std::fs::read_dir(tmp.path()).unwrap().count(),
        0,
        "no half-made run directory"
    );

    let out = bin()
        .args(["train", "--resume", "/nonexistent/run"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a run directory"));
}

#[test]
fn invalid_config_in_a_run_directory_is_recorded_as_failed() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("config.toml"), "[train]\nepochs = 0\n").unwrap();
    let out = bin()
        .arg("train")
        .arg("--run-dir")
        .arg(tmp.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let lines = read_events(&tmp.path().join("events.jsonl")).unwrap();
    match &lines.last().unwrap().event {
        RunEvent::Finished {
            status: RunStatus::Failed,
            message: Some(m),
            ..
        } => assert!(m.contains("train.epochs"), "{m}"),
        other => panic!("{other:?}"),
    }
}
