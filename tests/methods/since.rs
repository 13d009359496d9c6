//! The methods since FAIR-TAT (DAFA, TRIX, FAAL) as whole runs on tiny synthetic splits: what
//! each records, that DAFA's weights come into force after the warm-up and survive a resume,
//! and their config defaults and refusals.

use fairtat::config::{from_toml_str, DatasetKind, LrSchedule};

use super::runs::{run_tiny, run_tiny_in, scalar};
use super::serial;

/// DAFA's weights are 1 in the warm-up, then fixed, away from 1, and the class radii follow.
fn warmup_then_weights(method: &str) {
    let _g = serial();
    let recs = run_tiny(
        3,
        &[&format!("method.name={method}"), "method.dafa_warmup=1"],
    );
    assert_eq!(recs.len(), 3);
    let w = |e: usize| recs[e].method_state["dafa_weights"].clone();
    assert!(w(0).iter().all(|&v| v == 1.0), "warm-up: {:?}", w(0));
    assert_eq!(w(1), w(2), "computed once");
    assert!(w(1).iter().any(|&v| (v - 1.0).abs() > 1e-3), "{:?}", w(1));
    assert!(w(1).iter().all(|&v| v >= 0.1));
    for r in &recs {
        assert!(r.eval("test", "pgd-2", "live").is_some());
        assert!(r.train_loss.is_finite(), "{}", r.train_loss);
    }
}

#[test]
fn dafa_on_trades_weights_classes_after_its_warmup() {
    warmup_then_weights("dafa");
}

#[test]
fn dafa_on_pgd_at_weights_classes_after_its_warmup() {
    warmup_then_weights("dafa-pgd-at");
}

#[test]
fn trix_records_its_targeted_share_and_dafa_weights() {
    let _g = serial();
    let recs = run_tiny(2, &["method.name=trix", "method.dafa_warmup=1"]);
    for r in &recs {
        let share = scalar(&r.method_state, "trix_targeted_share");
        assert!((0.0..=1.0).contains(&share), "{share}");
    }
    // Strong classes (below the mean weight) exist in most batches.
    assert!(scalar(&recs[0].method_state, "trix_targeted_share") > 0.0);
    assert!(recs[1].method_state["dafa_weights"]
        .iter()
        .any(|&v| v != 1.0));
}

#[test]
fn dafa_resume_in_the_weighted_phase_keeps_the_weights() {
    let _g = serial();
    let sets = ["method.name=dafa", "method.dafa_warmup=1"];
    let tmp = tempfile::tempdir().unwrap();
    let straight = run_tiny_in(&tmp.path().join("a"), 3, &sets, false);
    let b = tmp.path().join("b");
    run_tiny_in(&b, 1, &sets, false);
    let resumed = run_tiny_in(&b, 3, &sets, true);
    assert_eq!(resumed[0].epoch, 1);
    assert_eq!(
        resumed[1].method_state["dafa_weights"],
        straight[2].method_state["dafa_weights"]
    );
}

#[test]
fn faal_fine_tunes_from_a_checkpoint_and_records_class_weights() {
    let _g = serial();
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().join("base");
    run_tiny_in(&base, 1, &["method.name=pgd-at"], false);
    let ck = base.join("checkpoints/last.safetensors");
    let init = format!("train.init_checkpoint={}", ck.display());
    let recs = run_tiny(2, &["method.name=faal", &init]);
    for r in &recs {
        let w = &r.method_state["faal_weights"];
        assert_eq!(w.len(), 10);
        assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-6, "{w:?}");
    }
}

#[test]
fn defaults_follow_the_references_and_bad_values_are_refused() {
    let spec = |sets: &[&str]| {
        let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
        from_toml_str("", &sets)
    };
    let d = spec(&["method.name=dafa", "train.epochs=110"]).unwrap();
    assert_eq!(d.method.dafa_warmup, 70);
    assert_eq!(d.method.dafa_lambda, 1.0);
    assert!(!d.method.trades_normalize);
    let t = spec(&["method.name=trix", "train.epochs=150"]).unwrap();
    assert_eq!(t.method.dafa_warmup, 70);
    let c100 = spec(&["method.name=dafa", "data.dataset=cifar100"]).unwrap();
    assert_eq!(c100.data.dataset, DatasetKind::Cifar100);
    assert_eq!(c100.method.dafa_lambda, 1.5);
    let e = spec(&["method.name=dafa", "method.dafa_lambda=-1"]).unwrap_err();
    assert!(e.to_string().contains("method.dafa_lambda"), "{e}");
    let e = spec(&["method.name=trix", "method.dafa_warmup=0"]).unwrap_err();
    assert!(e.to_string().contains("method.dafa_warmup"), "{e}");
    let init = "train.init_checkpoint=x.safetensors";
    let e = spec(&["method.name=faal", init, "method.faal_r=11"]).unwrap_err();
    assert!(e.to_string().contains("method.faal_r"), "{e}");
    // FAAL fine-tunes: without a checkpoint it is refused like FRL.
    let e = spec(&["method.name=faal"]).unwrap_err();
    assert!(e.to_string().contains("train.init_checkpoint"), "{e}");
    assert!(e.to_string().contains("faal"), "{e}");
    let f = spec(&["method.name=faal", init]).unwrap();
    assert_eq!(f.method.faal_r, 0.5);
    let s = spec(&["train.lr_schedule=drop-last-10-5"]).unwrap();
    assert_eq!(s.train.lr_schedule, LrSchedule::DropLast10_5);
}

/// CFOL's sampler moves the class draws with the classes' errors, whatever the loss.
#[test]
fn cfol_samples_classes_by_their_errors_under_every_loss() {
    let _g = serial();
    for method in ["pgd-at", "trades", "fair-tat", "dafa"] {
        let sets = [
            format!("method.name={method}"),
            "train.class_sampler=cfol".into(),
            "train.cfol_eta=0.01".into(),
        ];
        let sets: Vec<&str> = sets.iter().map(String::as_str).collect();
        let recs = run_tiny(2, &sets);
        let p = &recs[1].method_state["cfol_class_probs"];
        assert_eq!(p.len(), 10);
        assert!(
            (p.iter().sum::<f64>() - 1.0).abs() < 1e-9,
            "{method}: {p:?}"
        );
        // gamma = 0.5 keeps half of the uniform distribution for every class.
        assert!(p.iter().all(|&v| v >= 0.05 - 1e-12), "{method}: {p:?}");
        let spread = p.iter().cloned().fold(0.0, f64::max) - p.iter().cloned().fold(1.0, f64::min);
        assert!(spread > 1e-3, "{method}: uniform {p:?}");
    }
    // Shuffling records no sampler.
    let plain = run_tiny(1, &["method.name=pgd-at"]);
    assert!(!plain[0].method_state.contains_key("cfol_class_probs"));
}

#[test]
fn cfol_resume_continues_the_samplers_weights() {
    let _g = serial();
    let sets = [
        "method.name=pgd-at",
        "train.class_sampler=cfol",
        "train.cfol_eta=0.01",
    ];
    let tmp = tempfile::tempdir().unwrap();
    let straight = run_tiny_in(&tmp.path().join("a"), 3, &sets, false);
    let b = tmp.path().join("b");
    run_tiny_in(&b, 2, &sets, false);
    let resumed = run_tiny_in(&b, 3, &sets, true);
    assert_eq!(
        resumed[0].method_state["cfol_class_probs"],
        straight[2].method_state["cfol_class_probs"]
    );
    assert_eq!(resumed[0].train_loss, straight[2].train_loss);
}
