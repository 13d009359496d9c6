//! FRL: fine-tuning from another run's checkpoint, the multipliers and weights it records, and
//! clear errors for a missing or mismatched checkpoint.

use fairtat::data::{Dataset, Splits};

use super::runs::{run_tiny_in, tiny_splits, try_run};
use super::{serial, spec};

fn in_range(v: &[f64], lo: f64, hi: f64) -> bool {
    v.iter()
        .all(|x| x.is_finite() && *x >= lo - 1e-9 && *x <= hi + 1e-9)
}

#[test]
fn frl_fine_tunes_and_records_multipliers() {
    let _g = serial();
    let tmp = tempfile::tempdir().unwrap();
    run_tiny_in(&tmp.path().join("hot"), 1, &["method.name=trades"], false);
    let hot = tmp.path().join("hot/checkpoints/last.safetensors");
    let init = format!("train.init_checkpoint={}", hot.display());
    for (name, remargin) in [("frl-rw", false), ("frl-rwrm", true)] {
        let recs = run_tiny_in(
            &tmp.path().join(name),
            2,
            &[&format!("method.name={name}"), &init, "train.lr=0.001"],
            false,
        );
        for r in &recs {
            let s = &r.method_state;
            for key in ["lambda0", "lambda1", "lambda2", "w0", "w1", "eps_mult"] {
                assert_eq!(s[key].len(), 10, "{name} {key}");
            }
            assert!(
                in_range(&s["lambda0"], 0.0, 0.5) && s["lambda0"].iter().sum::<f64>() <= 0.5 + 1e-9
            );
            assert!(
                in_range(&s["lambda1"], 0.0, 0.5) && s["lambda1"].iter().sum::<f64>() <= 0.5 + 1e-9
            );
            for w in ["w0", "w1"] {
                assert!(
                    (s[w].iter().sum::<f64>() - 1.0).abs() < 1e-9,
                    "{name} {w}: {:?}",
                    s[w]
                );
            }
            assert!(in_range(&s["eps_mult"], 0.98, 3.0), "{:?}", s["eps_mult"]);
            if !remargin {
                assert_eq!(s["eps_mult"], vec![1.0; 10]);
                assert_eq!(s["lambda2"], vec![0.0; 10]);
            }
            let eps = 8.0 / 255.0;
            assert!(r
                .class_eps
                .iter()
                .zip(&s["eps_mult"])
                .all(|(e, m)| (e - m * eps).abs() < 1e-9));
            assert!(r.train_loss.is_finite());
        }
    }
    let f = spec(&[
        "method.name=frl-rwrm",
        "train.init_checkpoint=x.safetensors",
    ]);
    assert_eq!(
        (f.method.beta, f.method.frl_bound0, f.method.frl_rate2),
        (1.5, 0.07, 0.2)
    );
    let r = spec(&["method.name=frl-rw", "train.init_checkpoint=x.safetensors"]);
    assert_eq!(
        (r.method.frl_bound1, r.method.frl_rate1, r.method.frl_lim),
        (0.1, 0.05, 0.5)
    );
}

#[test]
fn init_checkpoint_errors_are_clear() {
    let _g = serial();
    let tmp = tempfile::tempdir().unwrap();
    let err = try_run(
        &tmp.path().join("a"),
        1,
        &[
            "method.name=frl-rw",
            "train.init_checkpoint=/nonexistent/x.safetensors",
        ],
        tiny_splits(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("train.init_checkpoint") && err.contains("no such file"),
        "{err}"
    );
    run_tiny_in(&tmp.path().join("hot"), 1, &["method.name=pgd-at"], false);
    let hot = tmp.path().join("hot/checkpoints/last.safetensors");
    // 20x20 images instead of the checkpoint's 16x16.
    let small = Splits {
        train: Dataset::synthetic(10, 4, 1, 20, 20, 1),
        val: Dataset::synthetic(10, 2, 1, 20, 20, 2),
        test: Dataset::synthetic(10, 2, 1, 20, 20, 3),
    };
    let err = try_run(
        &tmp.path().join("b"),
        1,
        &[
            "method.name=frl-rw",
            &format!("train.init_checkpoint={}", hot.display()),
        ],
        small,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("train.init_checkpoint") && err.contains("16x16px"),
        "{err}"
    );
}
