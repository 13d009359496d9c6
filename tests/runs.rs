//! The run-directory format: events.jsonl writer/reader/tailer, the run summary, CSV reports.

use std::collections::BTreeMap;
use std::io::Write;

use fairtat::fairness::{ClassMetrics, ConfusionMatrix};
use fairtat::runs::reader::{read_events, ReadError, Tailer};
use fairtat::runs::reports::{parse_csv, summary_csv, write_reports, CLASSES_HEADER};
use fairtat::runs::summary::RunSummary;
use fairtat::runs::writer::EventWriter;
use fairtat::runs::{
    EpochRecord, EvalRecord, EventLine, ProgressRecord, RunDir, RunEvent, RunStatus, SCHEMA_VERSION,
};

fn run_dir() -> (tempfile::TempDir, RunDir) {
    let tmp = tempfile::tempdir().unwrap();
    let run = RunDir::new(tmp.path().join("20250101-000000-test-abcd"));
    (tmp, run)
}

/// An evaluation from labels/predictions, through the public fairness types.
fn eval(split: &str, attack: &str, model: &str, labels: &[i64], preds: &[i64]) -> EvalRecord {
    let cm = ConfusionMatrix::from_pairs(3, labels, preds);
    EvalRecord {
        split: split.into(),
        attack: attack.into(),
        model: model.into(),
        confusion: cm.rows(),
        metrics: ClassMetrics::from_confusion(&cm),
    }
}

const Y: [i64; 9] = [0, 0, 0, 1, 1, 1, 2, 2, 2];

fn epoch(e: usize, with_final: bool) -> EpochRecord {
    // Clean: class accuracies 2/3, 1, 1/3 (overall 6/9). Robust: 1/3, 2/3, 0 (overall 3/9).
    let mut evals = vec![
        eval("test", "clean", "live", &Y, &[0, 0, 1, 1, 1, 1, 0, 1, 2]),
        eval("test", "pgd-10", "live", &Y, &[0, 1, 1, 1, 1, 0, 0, 1, 1]),
        eval("test", "pgd-10", "ema", &Y, &Y),
    ];
    if with_final {
        // PGD-20: classes 1/3, 1/3, 0 (overall 2/9).
        evals.push(eval(
            "test",
            "pgd-20",
            "live",
            &Y,
            &[0, 1, 1, 1, 0, 0, 0, 1, 1],
        ));
    }
    EpochRecord {
        epoch: e,
        epochs: 4,
        lr: 0.1,
        train_loss: 1.5 - e as f64 * 0.1,
        train_secs: 10.0,
        eval_secs: 2.0,
        images_per_sec: 900.0,
        class_eps: vec![0.03, 0.031, 0.032],
        target_probs: Some(vec![0.2, 0.3, 0.5]),
        target_counts: Some(vec![2, 3, 5]),
        evals,
        method_state: BTreeMap::from([("beta".to_string(), vec![0.5, 0.5, 0.5])]),
    }
}

fn started() -> RunEvent {
    RunEvent::Started {
        run_id: "r".into(),
        spec: serde_json::json!({
            "name": "fmnist quick", "tags": ["a", "b"],
            "data": {"dataset": "fashion-mnist"}, "model": {"arch": "small-cnn"},
            "method": {"name": "fair-tat"}, "train": {"epochs": 4}
        }),
        class_names: vec![
            "T-shirt/top".into(),
            "Trouser".into(),
            "Pull, \"over\"".into(),
        ],
        device: "cpu".into(),
        train_size: 100,
        val_size: 10,
        test_size: 9,
        start_epoch: 0,
        pid: 42,
    }
}

fn every_variant() -> Vec<RunEvent> {
    vec![
        started(),
        RunEvent::Progress(ProgressRecord {
            epoch: 0,
            batch: 5,
            batches: 10,
            loss: 2.0,
            images_per_sec: 800.0,
            eta_secs: 120.0,
            step_loss: None,
            epoch_eta_secs: None,
        }),
        RunEvent::Epoch(Box::new(epoch(0, false))),
        RunEvent::Checkpoint {
            epoch: 0,
            kind: "last".into(),
            file: "checkpoints/last.safetensors".into(),
        },
        RunEvent::Log {
            level: "warn".into(),
            message: "línea \"quoted\"\nsecond".into(),
        },
        RunEvent::Finished {
            status: RunStatus::Cancelled,
            epochs_done: 1,
            message: Some("stopped".into()),
        },
    ]
}

fn line(seq: u64, time: f64, event: RunEvent) -> EventLine {
    EventLine {
        v: SCHEMA_VERSION,
        seq,
        time,
        event,
    }
}

#[test]
fn round_trip_of_every_variant_and_seq_continues_after_reopen() {
    let (_tmp, run) = run_dir();
    let events = every_variant();
    let mut w = EventWriter::open(&run).unwrap();
    for (i, ev) in events.iter().enumerate() {
        assert_eq!(w.append(ev).unwrap(), i as u64);
    }
    drop(w);
    let back = read_events(&run.events()).unwrap();
    assert_eq!(back.len(), events.len());
    for (i, (l, ev)) in back.iter().zip(&events).enumerate() {
        assert_eq!(l.v, SCHEMA_VERSION);
        assert_eq!(l.seq, i as u64);
        assert!(l.time > 1.6e9, "unix time, got {}", l.time);
        assert_eq!(&l.event, ev);
    }
    let text = std::fs::read_to_string(run.events()).unwrap();
    assert!(
        text.lines().all(|l| l.starts_with("{\"v\":1,\"seq\":")),
        "{text}"
    );
    assert!(text.contains("\"type\":\"progress\""));

    let mut w = EventWriter::open(&run).unwrap();
    assert_eq!(
        w.append(&RunEvent::Log {
            level: "info".into(),
            message: "again".into()
        })
        .unwrap(),
        6
    );
    assert_eq!(read_events(&run.events()).unwrap().len(), 7);
}

#[test]
fn torn_last_line_is_ignored_then_truncated_on_reopen() {
    let (_tmp, run) = run_dir();
    let mut w = EventWriter::open(&run).unwrap();
    w.append(&started()).unwrap();
    w.append(&RunEvent::Log {
        level: "info".into(),
        message: "x".into(),
    })
    .unwrap();
    drop(w);
    append_raw(&run, b"{\"v\":1,\"seq\":2,\"time\":1.0,\"type\":\"lo");
    assert_eq!(
        read_events(&run.events()).unwrap().len(),
        2,
        "torn line ignored"
    );

    let mut w = EventWriter::open(&run).unwrap();
    assert_eq!(
        w.append(&RunEvent::Log {
            level: "info".into(),
            message: "after crash".into()
        })
        .unwrap(),
        2
    );
    let back = read_events(&run.events()).unwrap();
    assert_eq!(back.len(), 3);
    assert_eq!(
        back[2].event,
        RunEvent::Log {
            level: "info".into(),
            message: "after crash".into()
        }
    );
    assert!(!std::fs::read_to_string(run.events())
        .unwrap()
        .contains("\"type\":\"lo\n"));
}

/// Append `bytes` to the run's log behind the writer's back (a torn or corrupt line).
fn append_raw(run: &RunDir, bytes: &[u8]) {
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(run.events())
        .unwrap();
    f.write_all(bytes).unwrap();
}

#[test]
fn corrupt_middle_line_names_its_line_number() {
    let (_tmp, run) = run_dir();
    let mut w = EventWriter::open(&run).unwrap();
    w.append(&started()).unwrap();
    drop(w);
    append_raw(&run, b"not json\n");
    EventWriter::open(&run)
        .unwrap()
        .append(&RunEvent::Log {
            level: "i".into(),
            message: "m".into(),
        })
        .unwrap();
    match read_events(&run.events()) {
        Err(e @ ReadError::Corrupt { line: 2, .. }) => {
            assert!(e.to_string().contains("line 2"), "{e}")
        }
        other => panic!("expected a corrupt line 2, got {other:?}"),
    }
}

#[test]
fn tailer_sees_chunked_appends_exactly_once_in_order() {
    let (_tmp, run) = run_dir();
    let mut tail = Tailer::new(run.events());
    assert!(
        tail.poll().unwrap().is_empty(),
        "missing file is not an error"
    );
    std::fs::create_dir_all(run.root()).unwrap();
    let lines: Vec<String> = every_variant()
        .into_iter()
        .enumerate()
        .map(|(i, ev)| serde_json::to_string(&line(i as u64, 1.0 + i as f64, ev)).unwrap() + "\n")
        .collect();
    let all = lines.concat();
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(run.events())
        .unwrap();
    // Chunks: two whole lines; half of the third; the rest of it plus the fourth; the remainder.
    let a = lines[0].len() + lines[1].len();
    let b = a + lines[2].len() / 2;
    let c = a + lines[2].len() + lines[3].len();
    let mut seen = vec![];
    for (i, chunk) in [&all[..a], &all[a..b], &all[b..c], &all[c..]]
        .into_iter()
        .enumerate()
    {
        f.write_all(chunk.as_bytes()).unwrap();
        f.flush().unwrap();
        let got = tail.poll().unwrap();
        if i == 1 {
            assert!(got.is_empty(), "half a line yields nothing");
        }
        seen.extend(got);
        assert!(tail.offset() <= all.len() as u64);
    }
    assert!(tail.poll().unwrap().is_empty(), "nothing new");
    let seqs: Vec<u64> = seen.iter().map(|l| l.seq).collect();
    assert_eq!(seqs, (0..lines.len() as u64).collect::<Vec<_>>());
    assert_eq!(tail.offset(), all.len() as u64);
    assert_eq!(seen[2].event, every_variant()[2]);
}

#[test]
fn tailer_survives_writer_truncating_a_torn_line() {
    let (_tmp, run) = run_dir();
    let mut w = EventWriter::open(&run).unwrap();
    w.append(&started()).unwrap();
    drop(w);
    append_raw(
        &run,
        b"{\"v\":1,\"seq\":1,\"time\":1.0,\"type\":\"log\",\"level\":\"in",
    );
    let mut tail = Tailer::new(run.events());
    assert_eq!(tail.poll().unwrap().len(), 1);
    // The trainer restarts: the torn line is truncated and a longer line written in its place.
    let mut w = EventWriter::open(&run).unwrap();
    w.append(&RunEvent::Log {
        level: "info".into(),
        message: "resumed after a crash, long message".into(),
    })
    .unwrap();
    let got = tail.poll().unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].seq, 1);
    assert!(
        matches!(&got[0].event, RunEvent::Log { message, .. } if message.starts_with("resumed"))
    );
}

#[test]
fn summary_tracks_status_progress_and_latest_metrics() {
    let (_tmp, run) = run_dir();
    let mut events = vec![
        line(0, 100.0, started()),
        line(
            1,
            110.0,
            RunEvent::Progress(ProgressRecord {
                epoch: 0,
                batch: 5,
                batches: 10,
                loss: 2.0,
                images_per_sec: 1.0,
                eta_secs: 300.0,
                step_loss: None,
                epoch_eta_secs: None,
            }),
        ),
    ];
    let s = RunSummary::from_events(&run, &events);
    assert_eq!(s.id, "20250101-000000-test-abcd");
    assert_eq!(
        (
            s.name.as_str(),
            s.method.as_str(),
            s.dataset.as_str(),
            s.arch.as_str()
        ),
        ("fmnist quick", "fair-tat", "fashion-mnist", "small-cnn")
    );
    assert_eq!(s.tags, vec!["a", "b"]);
    assert_eq!(s.status, RunStatus::Running);
    assert_eq!(s.epochs_total, 4);
    assert!(
        (s.progress - 0.5 / 4.0).abs() < 1e-12,
        "progress {}",
        s.progress
    );
    assert_eq!(s.eta_secs, Some(300.0));
    assert!(s.clean.is_none() && s.robust.is_none());

    events.push(line(2, 120.0, RunEvent::Epoch(Box::new(epoch(0, false)))));
    events.push(line(
        3,
        130.0,
        RunEvent::Progress(ProgressRecord {
            epoch: 1,
            batch: 2,
            batches: 8,
            loss: 1.0,
            images_per_sec: 1.0,
            eta_secs: 50.0,
            step_loss: None,
            epoch_eta_secs: None,
        }),
    ));
    events.push(line(4, 140.0, RunEvent::Epoch(Box::new(epoch(1, true)))));
    // Incremental application equals the batch fold.
    let mut inc = RunSummary::from_events(&run, &events[..2]);
    for ev in &events[2..] {
        inc.apply(ev);
    }
    let s = RunSummary::from_events(&run, &events);
    assert_eq!(inc, s);
    assert_eq!(s.epochs_done, 2);
    assert!((s.progress - 0.5).abs() < 1e-12);
    assert_eq!(s.eta_secs, Some(2.0 * 12.0), "2 epochs left at 12 s each");
    let clean = s.clean.as_ref().unwrap();
    assert_eq!((clean.epoch, clean.attack.as_str()), (1, "clean"));
    assert!((clean.overall - 6.0 / 9.0).abs() < 1e-12 && (clean.worst - 1.0 / 3.0).abs() < 1e-12);
    let robust = s.robust.as_ref().unwrap();
    assert_eq!(
        robust.attack, "pgd-20",
        "the strongest PGD of the latest epoch"
    );
    assert!((robust.overall - 2.0 / 9.0).abs() < 1e-12 && robust.worst.abs() < 1e-12);
    assert_eq!((s.started_at, s.updated_at), (Some(100.0), Some(140.0)));

    events.push(line(
        5,
        150.0,
        RunEvent::Finished {
            status: RunStatus::Failed,
            epochs_done: 2,
            message: Some("boom".into()),
        },
    ));
    let s = RunSummary::from_events(&run, &events);
    assert_eq!(s.status, RunStatus::Failed);
    assert_eq!(s.message.as_deref(), Some("boom"));
    assert_eq!(s.eta_secs, None);
    let json = serde_json::to_string(&s).unwrap();
    assert_eq!(serde_json::from_str::<RunSummary>(&json).unwrap(), s);

    let csv = parse_csv(&summary_csv(&[
        s.clone(),
        RunSummary::from_events(&run, &[]),
    ]));
    assert_eq!(csv.len(), 3);
    assert_eq!(csv[0][0], "id");
    assert!(csv.iter().all(|r| r.len() == csv[0].len()));
    let col = |name: &str| csv[0].iter().position(|h| h == name).unwrap();
    assert_eq!(csv[1][col("status")], "failed");
    assert_eq!(csv[1][col("test_robust_attack")], "pgd-20");
}

#[test]
fn reports_have_headers_rows_and_quoted_names() {
    let (_tmp, run) = run_dir();
    let names: Vec<String> = vec![
        "T-shirt/top".into(),
        "Trouser".into(),
        "Pull, \"over\"".into(),
    ];
    // Out of order on purpose: rows come out sorted by epoch.
    write_reports(&run, &names, &[epoch(1, true), epoch(0, false)]).unwrap();

    let epochs = parse_csv(&std::fs::read_to_string(run.report("epochs.csv")).unwrap());
    assert_eq!(epochs.len(), 3, "header + 2 epochs");
    assert_eq!(
        &epochs[0][..6],
        [
            "epoch",
            "lr",
            "train_loss",
            "train_secs",
            "eval_secs",
            "images_per_sec"
        ]
    );
    assert_eq!(
        epochs[0].len(),
        6 + 4 * 3,
        "4 evaluations x acc/worst/worst10"
    );
    assert_eq!(
        &epochs[0][6..9],
        [
            "test_clean_live_acc",
            "test_clean_live_worst",
            "test_clean_live_worst10"
        ]
    );
    assert_eq!(epochs[0].last().unwrap(), "test_pgd-20_live_worst10");
    assert_eq!(epochs[1][0], "0");
    assert_eq!(epochs[1].last().unwrap(), "", "epoch 0 has no PGD-20");
    assert!((epochs[2].last().unwrap().parse::<f64>().unwrap()).abs() < 1e-12);

    let text = std::fs::read_to_string(run.report("classes.csv")).unwrap();
    assert_eq!(text.lines().next().unwrap(), CLASSES_HEADER);
    let classes = parse_csv(&text);
    assert_eq!(
        classes.len(),
        1 + (3 + 4) * 3,
        "header + (3 + 4 evals) x 3 classes"
    );
    assert!(
        text.contains(",\"Pull, \"\"over\"\"\","),
        "class name quoted:\n{text}"
    );
    // Epoch 1, test/clean/live, class 2: accuracy 1/3, C_FPS 0, C_acc 7/9, eps 0.032, p 0.5.
    let row = classes
        .iter()
        .find(|r| r[..5] == ["1", "test", "clean", "live", "2"])
        .expect("class row");
    assert_eq!(row[5], "Pull, \"over\"");
    let v: Vec<f64> = row[6..].iter().map(|x| x.parse().unwrap()).collect();
    let want = [1.0 / 3.0, 0.0, 7.0 / 9.0, 0.032, 0.5];
    for (got, want) in v.iter().zip(want) {
        assert!((got - want).abs() < 1e-12, "row {row:?}");
    }

    let conf = parse_csv(&std::fs::read_to_string(run.report("confusion_test_clean.csv")).unwrap());
    assert_eq!(
        conf[0],
        ["true\\pred", "T-shirt/top", "Trouser", "Pull, \"over\""]
    );
    assert_eq!(conf.len(), 4);
    assert_eq!(conf[3], ["Pull, \"over\"", "1", "1", "1"]);
    assert!(run.report("confusion_test_pgd-20.csv").exists());
    let leftovers: Vec<_> = std::fs::read_dir(run.reports())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left behind");
}
