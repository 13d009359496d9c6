//! What the loop evaluates and selects: nothing on the test set without a validation split,
//! `eval.every`, `eval.models`, and no second evaluation of a model that is a copy.

use fairtat::runs::events::MemorySink;
use fairtat::runs::RunEvent;

use super::{epochs, run_spec, serial, spec, tiny_splits, TINY};

fn tiny_spec(extra: &[&str]) -> fairtat::config::RunSpec {
    let mut all: Vec<&str> = TINY.to_vec();
    all.extend(extra);
    spec(&all)
}

#[test]
fn without_a_validation_split_nothing_is_selected_on_the_test_set() {
    let _g = serial();
    let s = tiny_spec(&[
        "method.name=pgd-at",
        "train.epochs=2",
        "train.fawa_decay=0.88",
        "train.fawa_threshold=0",
    ]);
    let mut splits = tiny_splits(16, 2);
    splits.val = splits.val.subset(&[]);
    let tmp = tempfile::tempdir().unwrap();
    let mut sink = MemorySink::default();
    run_spec(&s, splits, tmp.path(), &mut sink).unwrap();
    for r in epochs(&sink) {
        assert!(
            !r.method_state.contains_key("fawa_updated"),
            "{:?}",
            r.method_state
        );
        assert!(r.eval("test", "clean", "fawa").is_none());
        assert!(r.evals.iter().all(|e| e.split != "val"));
        // The test set is still evaluated, it just picks nothing.
        assert!(r.eval("test", "pgd-2", "live").is_some());
    }
    assert!(!tmp
        .path()
        .join("checkpoints/best-worst-robust.safetensors")
        .exists());
    assert!(!tmp.path().join("checkpoints/fawa.safetensors").exists());
    let logged = sink.events.iter().any(|e| {
        matches!(e, RunEvent::Log { message, .. }
            if message.contains("no validation split") && message.contains("FAWA"))
    });
    assert!(logged, "a log line says why");
    // With a validation split, best-worst-robust is selected there.
    let tmp2 = tempfile::tempdir().unwrap();
    run_spec(
        &s,
        tiny_splits(16, 2),
        tmp2.path(),
        &mut MemorySink::default(),
    )
    .unwrap();
    assert!(tmp2
        .path()
        .join("checkpoints/best-worst-robust.safetensors")
        .exists());
}

#[test]
fn eval_every_and_models_choose_epochs_and_models() {
    let _g = serial();
    let s = tiny_spec(&[
        "method.name=pgd-at",
        "train.epochs=3",
        "eval.every=2",
        "eval.models=live",
    ]);
    assert_eq!(s.eval.every, 2);
    let tmp = tempfile::tempdir().unwrap();
    let mut sink = MemorySink::default();
    run_spec(&s, tiny_splits(16, 2), tmp.path(), &mut sink).unwrap();
    let recs = epochs(&sink);
    assert_eq!(recs.len(), 3);
    let tested: Vec<bool> = recs
        .iter()
        .map(|r| r.eval("test", "pgd-2", "live").is_some())
        .collect();
    // Epochs 2 (every 2nd) and 3 (the last), 1-based.
    assert_eq!(tested, [false, true, true]);
    for r in &recs {
        assert!(
            r.evals.iter().all(|e| e.model == "live"),
            "only the live model"
        );
        // Validation still runs every epoch (it drives FAWA and best-worst-robust).
        assert!(r.eval("val", "pgd-2", "live").is_some());
        assert!(r.eval("train", "train-attack", "live").is_some());
    }
    let e = fairtat::config::from_toml_str("", &["eval.models=live,emma".into()]).unwrap_err();
    assert_eq!(e.key(), Some("eval.models"));
    assert!(e.to_string().contains("fawa"), "{e}");
    let e = fairtat::config::from_toml_str("", &["eval.every=0".into()]).unwrap_err();
    assert_eq!(e.key(), Some("eval.every"));
}

#[test]
fn copies_of_the_live_model_reuse_its_evaluation() {
    let _g = serial();
    // Defaults: every epoch, live + ema + fawa. The EMA's first update and FAWA's first
    // qualifying epoch copy the live model exactly.
    let s = tiny_spec(&[
        "method.name=pgd-at",
        "train.epochs=2",
        "train.fawa_decay=0.88",
        "train.fawa_threshold=0",
    ]);
    let tmp = tempfile::tempdir().unwrap();
    let mut sink = MemorySink::default();
    run_spec(&s, tiny_splits(16, 2), tmp.path(), &mut sink).unwrap();
    let recs = epochs(&sink);
    let first = &recs[0];
    for attack in ["clean", "pgd-2"] {
        let live = first.eval("test", attack, "live").unwrap();
        for copy in ["ema", "fawa"] {
            let c = first.eval("test", attack, copy).unwrap();
            assert_eq!(c.confusion, live.confusion, "{copy} {attack}");
        }
    }
    // Later epochs still evaluate both averages.
    assert!(recs[1].eval("test", "pgd-2", "ema").is_some());
    assert!(recs[1].eval("test", "pgd-2", "fawa").is_some());
}
