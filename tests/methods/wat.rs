//! WAT: a tiny run whose class weights start at 1 and then follow the Hedge rule, and the
//! validation costs it feeds on.

use fairtat::config::BnMode;
use fairtat::data::Dataset;
use fairtat::methods::{train_pgd_config, validation_costs};

use super::runs::{run_tiny, run_tiny_in};
use super::{serial, spec, trained, SIDE};

#[test]
fn wat_run_records_hedge_class_weights() {
    let _g = serial();
    let recs = run_tiny(3, &["method.name=wat"]);
    assert_eq!(recs[0].method_state["class_weights"], vec![1.0; 11]);
    for r in &recs[1..] {
        let w = &r.method_state["class_weights"];
        assert_eq!(w.len(), 11, "K + 1 experts");
        assert!(w.iter().all(|x| x.is_finite() && *x > 0.0), "{w:?}");
        assert!((w.iter().sum::<f64>() - 10.0).abs() < 1e-9, "{w:?}");
        assert!(r.train_loss.is_finite());
    }
}

#[test]
fn wat_defaults_and_validation_costs() {
    let s = spec(&["method.name=wat"]);
    assert_eq!(s.method.eta, 0.1);
    assert_eq!(s.method.beta, 6.0);
    assert!(!s.method.trades_normalize, "WAT uses CE + beta KL");
    assert_eq!(s.attack.bn_mode, BnMode::Eval);
    let e = fairtat::config::from_toml_str("", &["method.eta=-0.1".into()]).unwrap_err();
    assert_eq!(e.key(), Some("method.eta"));

    let _g = serial();
    let (m, _) = trained(3);
    let val = Dataset::synthetic(3, 6, 1, SIDE, SIDE, 4);
    let mut cfg = train_pgd_config(&s.attack);
    cfg.alpha = 0.02;
    let c = validation_costs(&m, &val, 7, 0.1, &cfg, 6.0);
    assert_eq!(c.len(), 4);
    assert!(c.iter().all(|x| x.is_finite() && *x >= 0.0), "{c:?}");
    // Balanced classes: the average entry is the mean of the class entries.
    let mean = c[..3].iter().sum::<f64>() / 3.0;
    assert!((c[3] - mean).abs() < 1e-6 * (1.0 + mean), "{c:?}");
    // No attack budget, no KL: the costs drop to the clean cross-entropy, which is smaller.
    let c0 = validation_costs(&m, &val, 7, 0.0, &cfg, 6.0);
    assert!(c0[3] < c[3], "{c0:?} vs {c:?}");
}

#[test]
fn wat_resume_restores_the_cost_sums() {
    let _g = serial();
    let tmp = tempfile::tempdir().unwrap();
    let straight = run_tiny_in(&tmp.path().join("a"), 3, &["method.name=wat"], false);
    let b = tmp.path().join("b");
    run_tiny_in(&b, 2, &["method.name=wat"], false);
    let resumed = run_tiny_in(&b, 3, &["method.name=wat"], true);
    assert_eq!(resumed.len(), 1);
    let (w1, w2) = (
        &straight[2].method_state["class_weights"],
        &resumed[0].method_state["class_weights"],
    );
    assert!(
        w1.iter().zip(w2).all(|(a, b)| (a - b).abs() < 1e-4),
        "{w1:?} vs {w2:?}"
    );
}
