//! BAT: the two early-stopped KL attacks and a tiny run recording their mean steps.

use fairtat::attacks::PgdConfig;
use fairtat::methods::{early_stopped_kl, KlStop};
use tch::Kind;

use super::runs::{run_tiny, scalar};
use super::{serial, spec, trained};

#[test]
fn last_clean_stays_correct_and_first_adv_crosses() {
    let _g = serial();
    let (m, b) = trained(3);
    let cfg = PgdConfig {
        alpha: 0.05,
        steps: 10,
        random_start: true,
        bn_train: false,
    };
    let pred = |x: &tch::Tensor| tch::no_grad(|| m.forward_t(x, false).argmax(-1, false));
    let clean_ok = pred(&b.x).eq_tensor(&b.y);
    let (x_lc, s_lc) = early_stopped_kl(&m, &b.x, &b.y, 0.3, &cfg, KlStop::LastClean);
    let (x_fa, s_fa) = early_stopped_kl(&m, &b.x, &b.y, 0.3, &cfg, KlStop::FirstAdv { tau: 1 });
    // A sample correct at x whose last_clean example is misclassified ran every step: only the
    // final iterate is returned unchecked (as the reference); every earlier stop is clean.
    let lc_ok = pred(&x_lc).eq_tensor(&b.y);
    let broken = clean_ok.logical_and(&lc_ok.logical_not());
    let broken = Vec::<bool>::try_from(&broken).unwrap();
    for (i, &bad) in broken.iter().enumerate() {
        assert!(
            !bad || s_lc[i] == 10,
            "sample {i} stopped at {} steps",
            s_lc[i]
        );
    }
    // A large budget flips most first_adv examples.
    let fa_wrong = pred(&x_fa)
        .ne_tensor(&b.y)
        .to_kind(Kind::Float)
        .mean(Kind::Float);
    assert!(fa_wrong.double_value(&[]) > 0.5, "{fa_wrong}");
    for x in [&x_lc, &x_fa] {
        let d = (x - &b.x).abs().max().double_value(&[]);
        assert!(d <= 0.3 + 1e-6, "{d}");
    }
    assert!(s_lc.iter().chain(&s_fa).all(|s| (0..=10).contains(s)));
}

#[test]
fn last_clean_returns_the_final_iterate_unchecked() {
    let _g = serial();
    let (m, b) = trained(3);
    // One large step: a sample correct at the start moves once and is returned as moved, even
    // where that step crossed the boundary (the reference has no check after its last step).
    let cfg = PgdConfig {
        alpha: 0.5,
        steps: 1,
        random_start: true,
        bn_train: false,
    };
    let pred = |x: &tch::Tensor| tch::no_grad(|| m.forward_t(x, false).argmax(-1, false));
    let (x_lc, s_lc) = early_stopped_kl(&m, &b.x, &b.y, 0.5, &cfg, KlStop::LastClean);
    let moved: Vec<f64> = Vec::try_from(
        &(&x_lc - &b.x)
            .abs()
            .flatten(1, -1)
            .max_dim(1, false)
            .0
            .to_kind(Kind::Double),
    )
    .unwrap();
    let wrong = Vec::<bool>::try_from(&pred(&x_lc).ne_tensor(&b.y)).unwrap();
    let mut crossed = 0;
    for i in 0..s_lc.len() {
        if s_lc[i] == 1 {
            assert!(moved[i] > 0.2, "sample {i} took its step: {}", moved[i]);
            crossed += usize::from(wrong[i]);
        } else {
            assert!(
                moved[i] < 0.01,
                "sample {i} stopped at the start: {}",
                moved[i]
            );
        }
    }
    assert!(
        crossed > 0,
        "some final iterates crossed the boundary and were kept"
    );
}

#[test]
fn bat_run_records_mean_steps() {
    let _g = serial();
    assert!(!spec(&["method.name=bat"]).method.trades_normalize);
    let recs = run_tiny(2, &["method.name=bat"]);
    for r in &recs {
        let lc = scalar(&r.method_state, "bat_last_clean_mean_steps");
        let fa = scalar(&r.method_state, "bat_first_adv_mean_steps");
        assert!(
            (0.0..=2.0).contains(&lc) && (0.0..=2.0).contains(&fa),
            "{lc} {fa}"
        );
        assert!(r.train_loss.is_finite());
    }
}
