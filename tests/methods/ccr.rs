//! CCR and the CFA methods: the class-weighted TRADES loss against a hand computation, the
//! `cfa`/`fair-tat-cfa` defaults, and a tiny run recording `class_beta`.

use fairtat::config::{BnMode, MethodKind};
use fairtat::methods::class_trades_weights;
use fairtat::methods::kl::weighted_trades_loss;
use tch::{Kind, Tensor};

use super::runs::run_tiny;
use super::{serial, softmax, spec};

#[test]
fn class_weighted_trades_loss_matches_hand_computation() {
    let nat = [[1.0, 0.0, -1.0], [0.5, 0.5, 0.0], [0.0, 2.0, 0.0]];
    let adv = [[0.0, 1.0, 0.0], [0.0, 0.0, 2.0], [1.0, 1.0, 0.0]];
    let y = [0i64, 2, 1];
    // Unnormalised class betas (lambda2 + r_k) * beta for r = (0.8, 0.1, 0.0), beta 6.
    let betas = [7.8, 3.6, 3.0];
    let mut want = 0.0;
    for i in 0..3 {
        let (p, q) = (softmax(&nat[i]), softmax(&adv[i]));
        let ce = -p[y[i] as usize].ln();
        let kl: f64 = (0..3).map(|c| p[c] * (p[c] / q[c]).ln()).sum();
        let b = betas[y[i] as usize] / (1.0 + betas[y[i] as usize]);
        want += ((1.0 - b) * ce + b * kl) / 3.0;
    }
    let t = |a: &[[f64; 3]; 3]| {
        Tensor::from_slice(a.as_flattened())
            .view([3, 3])
            .to_kind(Kind::Float)
    };
    let yt = Tensor::from_slice(&y);
    let (w_ce, w_kl) = class_trades_weights(&betas, true, &yt).unwrap();
    let got = weighted_trades_loss(&t(&nat), &t(&adv), &yt, &w_ce, &w_kl).double_value(&[]);
    assert!((got - want).abs() < 1e-5, "{got} vs {want}");
}

#[test]
fn cfa_defaults_and_ccr_validation() {
    let c = spec(&["method.name=cfa", "train.epochs=200"]);
    assert_eq!(c.method.name, MethodKind::Cfa);
    assert!(c.method.ccr && c.method.class_eps);
    assert_eq!(c.method.lambda2, 0.5);
    assert_eq!(
        c.method.calibration_start, 10,
        "CFA's begin = 10 of 200 epochs"
    );
    assert_eq!(c.train.fawa_decay, 0.88);
    assert_eq!(c.train.fawa_threshold, 0.2);
    assert_eq!(c.attack.bn_mode, BnMode::Eval);
    assert_eq!(
        spec(&["method.name=cfa", "train.epochs=20"])
            .method
            .calibration_start,
        1
    );
    let f = spec(&["method.name=fair-tat-cfa"]);
    assert!(f.method.ccr && f.method.class_eps && f.method.trades_targeted);
    assert_eq!(f.train.fawa_decay, 0.85);
    assert_eq!(f.method.calibration_start, 1);
    assert!(!spec(&["method.name=trades"]).method.ccr);
    assert_eq!(spec(&["method.name=pgd-at"]).train.fawa_decay, 0.0);
    assert_eq!(spec(&["method.name=fair-tat"]).train.fawa_decay, 0.85);
    let e =
        fairtat::config::from_toml_str("", &["method.name=fat".into(), "method.ccr=true".into()])
            .unwrap_err();
    assert_eq!(e.key(), Some("method.ccr"));
    assert!(e.to_string().contains("cfa"), "{e}");
    for (set, key) in [
        ("method.lambda2=-1", "method.lambda2"),
        ("train.fawa_decay=1", "train.fawa_decay"),
        ("train.fawa_threshold=2", "train.fawa_threshold"),
        ("method.ccr=maybe", "method.ccr"),
    ] {
        let e = fairtat::config::from_toml_str("", &[set.to_string()]).unwrap_err();
        assert_eq!(e.key(), Some(key), "{set}: {e}");
        assert!(e.to_string().contains("allowed"), "{e}");
    }
}

#[test]
fn cfa_run_records_class_beta_and_fawa() {
    let _g = serial();
    let recs = run_tiny(2, &["method.name=cfa", "train.fawa_threshold=0"]);
    let uniform = 6.0 / 7.0;
    assert!(recs[0].method_state["class_beta"]
        .iter()
        .all(|b| (b - uniform).abs() < 1e-12));
    let b = &recs[1].method_state["class_beta"];
    assert!(
        b.iter().all(|x| (0.75 - 1e-9..=0.9 + 1e-9).contains(x)),
        "{b:?}"
    );
    assert_eq!(recs[1].method_state["fawa_updated"], vec![1.0]);
}
