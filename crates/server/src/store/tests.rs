//! The fold against a full parse of the log: random event sequences (resumed runs re-doing
//! epochs, method-state keys coming and going, a torn last line), folded from the file at once,
//! in follower-sized pieces, and with request catch-ups in between; plus the read counters.

use std::io::Write;

use proptest::prelude::*;

use super::*;
use crate::metrics;
use fairtat_core::fairness::{ClassMetrics, ConfusionMatrix};
use fairtat_core::runs::reader::{read_events, Tailer};
use fairtat_core::runs::{EpochRecord, EvalRecord, EventLine, RunEvent};

fn eval(split: &str, attack: &str, k: usize, hit: u64) -> EvalRecord {
    let rows: Vec<Vec<u64>> = (0..k)
        .map(|y| {
            (0..k)
                .map(|p| if p == y { hit + y as u64 } else { 1 })
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
}

/// One random event: (kind, epoch, classes, hit, state key).
fn event(kind: u8, epoch: usize, k: usize, hit: u64, key: u8) -> RunEvent {
    match kind {
        0 => RunEvent::Started {
            run_id: "r".into(),
            spec: serde_json::json!({}),
            class_names: if hit.is_multiple_of(3) {
                vec![]
            } else {
                (0..k).map(|c| format!("c{c}-{hit}")).collect()
            },
            device: "cpu".into(),
            train_size: 1,
            val_size: 1,
            test_size: 1,
            start_epoch: epoch,
            pid: 1,
        },
        1 => RunEvent::Log {
            level: "info".into(),
            message: format!("m{hit}"),
        },
        _ => {
            let mut evals = vec![eval("test", "clean", k, hit)];
            if hit.is_multiple_of(2) {
                evals.push(eval("test", "pgd-10", k, hit / 2));
                evals.push(eval("train", "train-attack", k, hit / 3));
            }
            let mut method_state = std::collections::BTreeMap::new();
            if key > 0 {
                method_state.insert(format!("k{}", key % 3), vec![hit as f64; k]);
            }
            RunEvent::Epoch(Box::new(EpochRecord {
                epoch,
                epochs: 10,
                lr: 0.1,
                train_loss: 1.0 / (hit + 1) as f64,
                train_secs: 1.0,
                eval_secs: 1.0,
                images_per_sec: 1.0,
                class_eps: if key == 2 { vec![] } else { vec![0.03; k] },
                target_probs: (key == 1).then(|| vec![1.0 / k as f64; k]),
                target_counts: None,
                evals,
                method_state,
            }))
        }
    }
}

fn write_log(dir: &RunDir, events: &[RunEvent], torn: bool) -> Vec<u8> {
    let mut text = Vec::new();
    for (seq, ev) in events.iter().enumerate() {
        let line = EventLine {
            v: 1,
            seq: seq as u64,
            time: 0.0,
            event: ev.clone(),
        };
        text.extend(serde_json::to_vec(&line).unwrap());
        text.push(b'\n');
    }
    if torn {
        text.extend(br#"{"v":1,"seq":999,"time":0,"type":"epo"#);
    }
    std::fs::create_dir_all(dir.root()).unwrap();
    std::fs::File::create(dir.events())
        .unwrap()
        .write_all(&text)
        .unwrap();
    text
}

fn full_parse(dir: &RunDir) -> (String, Option<EpochDetail>) {
    let events = read_events(&dir.events()).unwrap();
    let m = metrics::metrics(&events);
    let last = metrics::epoch_records(&events)
        .last()
        .map(|r| EpochDetail::of(r));
    (serde_json::to_string(&m).unwrap(), last)
}

fn folded(e: &RunEntry) -> (String, Option<EpochDetail>) {
    let f = e.fold();
    (
        serde_json::to_string(f.metrics()).unwrap(),
        f.last_detail().map(|d| (*d).clone()),
    )
}

fn events_strategy() -> impl Strategy<Value = Vec<RunEvent>> {
    prop::collection::vec((0u8..6, 0usize..8, 2usize..5, 0u64..40, 0u8..4), 0..40).prop_map(|v| {
        v.into_iter()
            .map(|(kind, epoch, k, hit, key)| event(kind, epoch, k, hit, key))
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn fold_equals_full_parse(events in events_strategy(), torn in any::<bool>(), cut in 0usize..40) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = RunDir::new(tmp.path().join("run"));
        write_log(&dir, &events, torn);
        let want = full_parse(&dir);

        // At once, as a first view does.
        let store = MetricsStore::default();
        let at_once = folded(&store.run(&dir));
        prop_assert_eq!(&at_once, &want);

        // In pieces handed over by a follower, with a request catching up in between: lines
        // seen twice count once.
        let store = MetricsStore::default();
        let mut tailer = Tailer::new(dir.events());
        let lines = tailer.poll_located().unwrap();
        let cut = cut.min(lines.len());
        let end_first = lines.get(cut).map_or(tailer.offset(), |(at, _)| *at);
        store.append(&dir, &lines[..cut], end_first);
        let _ = store.run(&dir);
        store.append(&dir, &lines[cut..], tailer.offset());
        let e = store.run(&dir);
        prop_assert_eq!(folded(&e), want);

        // Replay gives every line once, in order, as written.
        let mut seqs = vec![];
        let mut after = None;
        loop {
            let chunk = e.raw_after(after, 300);
            if chunk.is_empty() { break; }
            for (seq, raw) in chunk {
                let line: EventLine = serde_json::from_str(&raw).unwrap();
                prop_assert_eq!(line.seq, seq);
                seqs.push(seq);
                after = Some(seq);
            }
        }
        prop_assert_eq!(seqs, (0..events.len() as u64).collect::<Vec<_>>());
    }
}

#[test]
fn a_resumed_run_replaces_redone_epochs_and_their_state_keys() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = RunDir::new(tmp.path().join("run"));
    let evs = vec![
        event(0, 0, 3, 1, 0),
        event(2, 0, 3, 10, 1),
        event(2, 1, 3, 12, 2),
        event(2, 2, 3, 14, 2),
        // resumed from the checkpoint of epoch 0: epochs 1 and 2 are re-done
        event(0, 1, 3, 2, 0),
        event(2, 1, 3, 20, 0),
    ];
    write_log(&dir, &evs, true);
    let store = MetricsStore::default();
    let e = store.run(&dir);
    assert_eq!(folded(&e), full_parse(&dir));
    let f = e.fold();
    assert_eq!(f.metrics().epochs, vec![0, 1]);
    assert_eq!(f.metrics().train_loss[1], 1.0 / 21.0);
    assert!(
        !f.metrics().method_state.contains_key("k2"),
        "a key only the replaced epochs had is gone"
    );
    assert_eq!(f.last_detail().unwrap().epoch, 1);
}

#[test]
fn a_second_view_reads_nothing_and_growth_reads_only_the_new_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = RunDir::new(tmp.path().join("run"));
    let evs: Vec<RunEvent> = (0..4).map(|e| event(2, e, 4, 10 + e as u64, 1)).collect();
    let text = write_log(&dir, &evs, false);
    let store = MetricsStore::default();
    let _ = store.run(&dir);
    let read = |s: &MetricsStore| s.stats.bytes_read.load(Ordering::Relaxed);
    assert_eq!(read(&store), text.len() as u64);
    let _ = store.run(&dir);
    let _ = store.run(&dir);
    assert_eq!(
        read(&store),
        text.len() as u64,
        "a second view reads nothing"
    );
    assert_eq!(store.stats.loads.load(Ordering::Relaxed), 1);

    let more = write_log(
        &dir,
        &[evs.clone(), vec![event(2, 4, 4, 30, 1)]].concat(),
        false,
    );
    let e = store.run(&dir);
    assert_eq!(
        read(&store),
        more.len() as u64,
        "only the appended line was read"
    );
    assert_eq!(e.fold().metrics().epochs.len(), 5);

    // An older epoch's matrices are read back from its own line, once.
    let d = e.detail(Some(1), &store.stats).unwrap();
    assert_eq!(d.epoch, 1);
    let _ = e.detail(Some(1), &store.stats);
    assert_eq!(store.stats.detail_reads.load(Ordering::Relaxed), 1);
}

#[test]
fn the_lru_bound_evicts_least_recently_used_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let evs: Vec<RunEvent> = (0..3).map(|e| event(2, e, 4, 10, 1)).collect();
    let store = MetricsStore::new(1);
    for i in 0..3 {
        let dir = RunDir::new(tmp.path().join(format!("run{i}")));
        write_log(&dir, &evs, false);
        let _ = store.run(&dir);
    }
    assert_eq!(store.len(), 1, "only the run just viewed stays over budget");
    let dir = RunDir::new(tmp.path().join("run0"));
    assert_eq!(
        store.run(&dir).fold().metrics().epochs.len(),
        3,
        "rebuilt from the file"
    );
}

#[test]
fn a_log_larger_than_one_poll_is_folded_whole_in_bounded_pieces() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = RunDir::new(tmp.path().join("run"));
    let synth = fairtat_core::runs::synthetic::Synth {
        classes: 100,
        epochs: 12,
        progress: 1,
        seed: 5,
    };
    synth.write(&dir).unwrap();
    let len = std::fs::metadata(dir.events()).unwrap().len();
    assert!(len > 2 * reader::MAX_POLL_BYTES, "{len} bytes");
    let mut tailer = Tailer::new(dir.events());
    let first = tailer.poll_located().unwrap();
    assert!(tailer.more() && tailer.offset() <= reader::MAX_POLL_BYTES);
    assert!(!first.is_empty());
    let store = MetricsStore::default();
    let e = store.run(&dir);
    assert_eq!(folded(&e), full_parse(&dir));
    assert_eq!(e.fold().metrics().epochs.len(), 12);
    assert_eq!(e.offset(), len);
    assert_eq!(reader::last_seq(&dir.events()), e.fold().last_seq());
}
