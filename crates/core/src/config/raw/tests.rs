//! Validation: defaults, errors naming the key and the allowed values, round trip.

use crate::config::*;

#[test]
fn empty_config_gets_reference_defaults() {
    let s = from_toml_str("", &[]).unwrap();
    assert_eq!(s.method.name, MethodKind::FairTat);
    assert_eq!(s.method.targets, TargetWeighting::Softmax);
    assert_eq!(s.method.softmax_scale, 2.0);
    assert_eq!(s.method.lambda1, 0.5);
    assert_eq!(s.method.calibration_start, 1);
    assert!((s.attack.eps - 8.0 / 255.0).abs() < 1e-12);
    assert_eq!(s.attack.steps, 10);
    assert_eq!(s.train.batch_size, 128);
    assert_eq!(s.train.ema_decay, 0.85);
    assert_eq!(s.eval.final_steps, 20);
}

#[test]
fn sets_override_file_values() {
    let s = from_toml_str(
        "[train]\nepochs = 3\n",
        &["train.epochs=7".into(), "attack.eps=8/255".into()],
    )
    .unwrap();
    assert_eq!(s.train.epochs, 7);
    assert!((s.attack.eps - 8.0 / 255.0).abs() < 1e-12);
}

#[test]
fn errors_name_key_and_allowed_values() {
    let e = from_toml_str("[method]\nname = \"magic\"\n", &[]).unwrap_err();
    assert_eq!(e.key(), Some("method.name"));
    let msg = e.to_string();
    assert!(msg.contains("pgd-at") && msg.contains("fair-tat"), "{msg}");

    let e = from_toml_str("[train]\nepoch = 3\n", &[]).unwrap_err();
    assert_eq!(e.key(), Some("train.epoch"));
    assert!(e.to_string().contains("epochs"), "{e}");

    let e = from_toml_str("[train]\nepochs = 0\n", &[]).unwrap_err();
    assert_eq!(e.key(), Some("train.epochs"));

    let e = from_toml_str("[attack]\neps = \"big\"\n", &[]).unwrap_err();
    assert_eq!(e.key(), Some("attack.eps"));

    let e = from_toml_str("device = \"gpu\"\n", &[]).unwrap_err();
    assert!(e.to_string().contains("cuda:N"), "{e}");

    let e = from_toml_str("bogus = 1\n", &[]).unwrap_err();
    assert_eq!(e.key(), Some("bogus"));

    assert!(matches!(
        from_toml_str("[train", &[]),
        Err(ConfigError::Syntax(_))
    ));
}

#[test]
fn saved_spec_reloads_identically() {
    let s = from_toml_str(
        "[data]\ntrain_subset = 100\n[method]\nname = \"pgd-at\"\n",
        &[],
    )
    .unwrap();
    let again = from_toml_str(&s.to_toml(), &[]).unwrap();
    assert_eq!(s, again);
}

proptest::proptest! {
    #[test]
    fn validation_never_panics(key in "[a-z_.]{1,20}", value in ".{0,20}") {
        let _ = from_toml_str("", &[format!("{key}={value}")]);
    }
}
