//! A stop request during a long evaluation (issue 21): the trainer's per-epoch evaluation and
//! `fairtat eval` check it before every batch, so a scheduler's warning or a cancel ends them
//! within seconds; a stop during the epoch's evaluation keeps the trained epoch, and the
//! resumed run trains no epoch twice.

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fairtat::config::{from_toml_str, RunSpec};
use fairtat::data::{Dataset, Splits};
use fairtat::runs::writer::EventWriter;
use fairtat::runs::{EventSink, RunDir, RunEvent};
use fairtat::train::{train_on, Outcome, TrainOptions};
use tch::Device;

const SIDE: usize = 16;

/// A tiny training set (two batches) and large evaluation sets: the evaluation of an epoch
/// (test live and EMA, validation; PGD-10) takes several seconds on a CPU, its batches a
/// fraction of one.
fn spec() -> RunSpec {
    let sets: Vec<String> = [
        "device=cpu",
        "model.arch=smallcnn",
        "method.name=pgd-at",
        "train.batch_size=20",
        "train.epochs=2",
        "train.log_every=1",
        "train.ema_decay=0.5",
        "attack.steps=1",
        "eval.steps=10",
        "eval.final_steps=10",
        "eval.batch_size=50",
        "eval.every=1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    from_toml_str("", &sets).unwrap()
}

fn splits() -> Splits {
    Splits {
        train: Dataset::synthetic(10, 4, 1, SIDE, SIDE, 41),
        val: Dataset::synthetic(10, 40, 1, SIDE, SIDE, 42),
        test: Dataset::synthetic(10, 40, 1, SIDE, SIDE, 43),
    }
}

/// Keeps the events and notes when epoch `epoch`'s last training batch is done (its
/// evaluation starts then).
struct Watch {
    events: Arc<Mutex<Vec<RunEvent>>>,
    eval_started: Arc<Mutex<Option<Instant>>>,
    epoch: usize,
}

impl EventSink for Watch {
    fn emit(&mut self, event: &RunEvent) {
        if let RunEvent::Progress(p) = event {
            if p.epoch == self.epoch && p.batch == p.batches {
                *self.eval_started.lock().unwrap() = Some(Instant::now());
            }
        }
        self.events.lock().unwrap().push(event.clone());
    }
}

/// Train (or resume) `run`; a stop is requested `stop_after` into epoch 0's evaluation when
/// given. The outcome, the events and when the stop was requested.
fn train(
    run: &RunDir,
    resume: bool,
    stop_after: Option<Duration>,
) -> (Outcome, Vec<RunEvent>, Option<Instant>) {
    let stop = Arc::new(AtomicBool::new(false));
    let events = Arc::new(Mutex::new(vec![]));
    let eval_started = Arc::new(Mutex::new(None));
    let watch = Watch {
        events: events.clone(),
        eval_started: eval_started.clone(),
        epoch: 0,
    };
    let stopper = stop_after.map(|after| {
        let (stop, started) = (stop.clone(), eval_started.clone());
        std::thread::spawn(move || loop {
            let at = *started.lock().unwrap();
            if at.is_some_and(|t| t.elapsed() >= after) {
                stop.store(true, Ordering::SeqCst);
                return Instant::now();
            }
            std::thread::sleep(Duration::from_millis(10));
        })
    });
    let writer = EventWriter::open(run).unwrap();
    let mut sinks: Vec<Box<dyn EventSink>> = vec![Box::new(writer), Box::new(watch)];
    let opts = TrainOptions {
        device: Device::Cpu,
        stop,
        resume,
    };
    let outcome = train_on(&spec(), splits(), run, &opts, &mut sinks).unwrap();
    let stopped_at = stopper.map(|h| h.join().unwrap());
    let events = events.lock().unwrap().clone();
    (outcome, events, stopped_at)
}

fn epochs_csv_epochs(run: &RunDir) -> Vec<String> {
    let text = std::fs::read_to_string(run.report("epochs.csv")).unwrap();
    text.lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap().to_string())
        .collect()
}

#[test]
fn a_stop_during_the_epoch_evaluation_keeps_the_epoch_and_resume_trains_it_once() {
    tch::manual_seed(0);
    let tmp = tempfile::tempdir().unwrap();
    let run = RunDir::new(tmp.path().join("run"));
    std::fs::create_dir_all(run.root()).unwrap();

    let (outcome, events, stopped_at) = train(&run, false, Some(Duration::from_millis(500)));
    let returned = Instant::now();
    assert_eq!(outcome, Outcome::Cancelled { epochs_done: 0 });
    let waited = returned - stopped_at.unwrap();
    // Within seconds, not after the evaluation: `epochs_done: 0` above says the epoch was not
    // committed. The bound is loose because `make test` runs two trainings at once on 2 cores
    // (3.3 s seen there; well under a second alone).
    assert!(
        waited < Duration::from_secs(10),
        "stopped {waited:?} after the request"
    );
    assert!(
        !events.iter().any(|e| matches!(e, RunEvent::Epoch(_))),
        "the stop came before epoch 0's evaluation finished"
    );
    let said = events.iter().any(
        |e| matches!(e, RunEvent::Log { message, .. } if message.contains("during its evaluation")),
    );
    assert!(said, "no log line says where it stopped");
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.resume_state()).unwrap()).unwrap();
    assert_eq!(state["epochs_done"], 0);
    assert_eq!(state["batches_done"], 2, "both training batches are kept");
    assert!(state["pending_eval"].is_object(), "{state}");

    let (outcome, events, _) = train(&run, true, None);
    assert_eq!(outcome, Outcome::Finished { epochs_done: 2 });
    let trained_again = events
        .iter()
        .any(|e| matches!(e, RunEvent::Progress(p) if p.epoch == 0));
    assert!(!trained_again, "the resumed run trained epoch 0 again");
    let records: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            RunEvent::Epoch(r) => Some(r.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(records.iter().map(|r| r.epoch).collect::<Vec<_>>(), [0, 1]);
    let keys = |r: &fairtat::runs::EpochRecord| {
        let mut k: Vec<String> = (r.evals.iter())
            .map(|e| format!("{} {} {}", e.split, e.attack, e.model))
            .collect();
        k.sort();
        k
    };
    assert_eq!(
        keys(&records[0]),
        keys(&records[1]),
        "epoch 0's evaluation is complete"
    );
    assert!(keys(&records[0]).contains(&"test pgd-10 ema".to_string()));
    assert_eq!(
        epochs_csv_epochs(&run),
        ["0", "1"],
        "each epoch once in epochs.csv"
    );
}

/// `fairtat eval` on a large test set: SIGTERM ends it within seconds, with exit status 130
/// and `error.txt` saying who stopped it.
#[test]
fn sigterm_stops_fairtat_eval_between_batches() {
    let tmp = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_fairtat");
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/fmnist-quick-fairtat.toml");
    let mut train = Command::new(bin);
    train
        .args(["train", "--config"])
        .arg(&config)
        .arg("--out")
        .arg(tmp.path());
    for set in [
        "data.train_subset=200",
        "data.val_per_class=0",
        "data.test_subset=100",
        "train.epochs=1",
        "attack.steps=1",
        "eval.steps=1",
        "eval.final_steps=1",
    ] {
        train.args(["--set", set]);
    }
    let out = train.env("FAIRTAT_LOG", "warn").output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the training run failed: {err}");
    let dir = std::fs::read_dir(tmp.path())
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let evals = tmp.path().join("eval-out");
    let mut child = Command::new(bin)
        .env("FAIRTAT_LOG", "warn")
        .args(["eval", "--run-dir"])
        .arg(&dir)
        .args(["--attack", "pgd-200", "--subset", "0", "--batch-size", "20"])
        .args(["--device", "cpu", "--out"])
        .arg(&evals)
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while !evals.join("progress.json").exists() {
        assert!(t0.elapsed() < Duration::from_secs(120), "no progress.json");
        if child.try_wait().unwrap().is_some() {
            let out = child.wait_with_output().unwrap();
            panic!(
                "fairtat eval ended early: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    let sent = Instant::now();
    let pid = child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let status = child.wait().unwrap();
    let waited = sent.elapsed();
    assert_eq!(status.code(), Some(130));
    assert!(
        waited < Duration::from_secs(5),
        "exited {waited:?} after SIGTERM"
    );
    let error = std::fs::read_to_string(evals.join("error.txt")).unwrap();
    assert!(error.contains("stopped by SIGINT/SIGTERM"), "{error}");
    assert!(!evals.join("eval.json").exists());
}
