//! Run directories for the compare tests, written as `fairtat train` and `fairtat eval` write
//! them: a shipped preset's resolved spec (so the method is the preset's, not a name's), two
//! classes of ten test images with a chosen number right per class, a final status, and
//! evaluation reports under `evals/<suite>-<checkpoint>/`. Included with `#[path]` by the tests
//! that need it, so `common/mod.rs` stays as it is.
#![allow(dead_code)]

use std::path::Path;

use fairtat::fairness::{ClassMetrics, ConfusionMatrix};
use fairtat::runs::eval_report::{self, CorruptionSummary, EvalReport};
use fairtat::runs::writer::EventWriter;
use fairtat::runs::{EpochRecord, EvalRecord, RunDir, RunEvent, RunStatus};

/// An evaluation of two classes with 10 images each, `correct` of them right per class.
pub fn eval(split: &str, attack: &str, correct: [i64; 2]) -> EvalRecord {
    let mut labels = vec![];
    let mut preds = vec![];
    for (c, ok) in correct.iter().enumerate() {
        for i in 0..10 {
            labels.push(c as i64);
            preds.push(if i < *ok { c as i64 } else { 1 - c as i64 });
        }
    }
    let cm = ConfusionMatrix::from_pairs(2, &labels, &preds);
    EvalRecord {
        split: split.into(),
        attack: attack.into(),
        model: "live".into(),
        confusion: cm.rows(),
        metrics: ClassMetrics::from_confusion(&cm),
    }
}

/// One run to write: preset, seed, final status, epochs done of the preset's, and per class
/// the test images right (clean, robust) at every epoch.
pub struct Fixture<'a> {
    pub preset: &'a str,
    pub seed: u64,
    pub status: RunStatus,
    pub epochs_done: usize,
    pub clean: [i64; 2],
    pub robust: [i64; 2],
}

fn epoch(e: usize, epochs: usize, f: &Fixture, attack: &str) -> RunEvent {
    RunEvent::Epoch(Box::new(EpochRecord {
        epoch: e,
        epochs,
        lr: 0.1,
        train_loss: 1.0,
        train_secs: 1.0,
        eval_secs: 1.0,
        images_per_sec: 1.0,
        class_eps: vec![],
        target_probs: None,
        target_counts: None,
        evals: vec![
            eval("test", "clean", f.clean),
            eval("test", attack, f.robust),
        ],
        method_state: Default::default(),
    }))
}

/// Write the run under `runs`; its directory (named `<time>-<preset>-s<seed>`).
pub fn write_run(runs: &Path, f: &Fixture) -> RunDir {
    let configs = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs");
    let seed = format!("seed={}", f.seed);
    let mut spec = fairtat::config::load(&configs.join(format!("{}.toml", f.preset)), &[seed])
        .unwrap_or_else(|e| panic!("preset {}: {e}", f.preset));
    spec.name = format!("{}-s{}", f.preset, f.seed);
    let dir = RunDir::new(runs.join(format!("20261204-00000{}-{}", f.seed, spec.name)));
    std::fs::create_dir_all(dir.root()).unwrap();
    let mut w = EventWriter::open(&dir).unwrap();
    w.append(&RunEvent::Started {
        run_id: dir.id(),
        spec: serde_json::to_value(&spec).unwrap(),
        class_names: vec!["cat".into(), "dog".into()],
        device: "cpu".into(),
        train_size: 20,
        val_size: 20,
        test_size: 20,
        start_epoch: 0,
        pid: 0,
    })
    .unwrap();
    let epochs = spec.train.epochs;
    for e in 0..f.epochs_done {
        // The last epoch's robust test uses the final (stronger) attack, as the trainer does.
        let attack = if e + 1 == epochs { "pgd-20" } else { "pgd-10" };
        w.append(&epoch(e, epochs, f, attack)).unwrap();
    }
    w.append(&RunEvent::Finished {
        status: f.status,
        epochs_done: f.epochs_done,
        message: None,
    })
    .unwrap();
    dir
}

/// `fairtat eval --suite <suite>` of checkpoint `model` at `epoch` with `attack` (and, for the
/// corruptions suite, fog with minimum class accuracy `fog_worst`).
pub fn write_eval(
    dir: &RunDir,
    (suite, model, epoch): (&str, &str, usize),
    attack: &str,
    robust: [i64; 2],
    fog_worst: Option<f64>,
) {
    let report = EvalReport {
        checkpoint: format!("checkpoints/{model}.safetensors"),
        arch: "smallcnn".into(),
        dataset: "fashion-mnist".into(),
        epoch,
        model: model.into(),
        suite: Some(suite.into()),
        eps: 0.1,
        seed: 0,
        batch_size: 256,
        images: 20,
        class_names: vec!["cat".into(), "dog".into()],
        evals: vec![eval("test", attack, robust)],
        autoattack: vec![],
        corruptions: vec![],
        corruption_summary: fog_worst
            .map(|w| CorruptionSummary {
                corruption: "fog".into(),
                overall: 0.5,
                worst: w,
                worst10: w,
                mean_worst_over_severities: w,
            })
            .into_iter()
            .collect(),
        seconds: 1.0,
    };
    eval_report::write(&dir.root().join(format!("evals/{suite}-{model}")), &report).unwrap();
}
