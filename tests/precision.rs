//! `train.precision = "bf16"` on the CPU (libtorch's CPU autocast; the GPU is where it pays,
//! and where BENCHMARKS.md measures it): the model's forwards round through bfloat16 while its
//! weights, checkpoints and logits stay float32, gradients reach the input for the attacks, and a
//! whole run trains about as an fp32 run of the same seed does.

use std::collections::BTreeMap;

use fairtat::config::{from_toml_str, Arch, Precision, RunSpec};
use fairtat::data::{Dataset, Splits};
use fairtat::models::precision::is_channels_last;
use fairtat::models::Model;
use fairtat::runs::events::MemorySink;
use fairtat::runs::{EpochRecord, RunEvent};
use tch::{Device, Kind, Tensor};
use tiny_run::{epoch_records, train_into, TINY};

#[path = "common/tiny_run.rs"]
mod tiny_run;

/// tch's RNG is process-global and tests run in parallel threads: each test holds this lock.
static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

fn max_abs(t: &Tensor) -> f64 {
    t.abs().max().double_value(&[])
}

#[test]
fn a_bf16_model_rounds_its_forward_but_keeps_float32_weights_and_checkpoints() {
    let _g = serial();
    let tmp = tempfile::tempdir().unwrap();
    for (arch, c, side) in [
        (Arch::Smallcnn, 1usize, 28usize),
        (Arch::PreactResnet18, 3, 32),
    ] {
        tch::manual_seed(0);
        let mut m = Model::new(arch, c, 10, side, None, Device::Cpu).unwrap();
        let x = Tensor::rand(
            [4, c as i64, side as i64, side as i64],
            (Kind::Float, Device::Cpu),
        );
        let fp32 = m.forward_t(&x, false);
        m.set_precision(Precision::Bf16);
        let conv =
            m.vs.variables()
                .into_values()
                .find(|v| v.dim() == 4)
                .unwrap();
        assert!(
            is_channels_last(&conv),
            "{arch}: conv weights channels_last"
        );
        let input = x.copy().set_requires_grad(true);
        let bf16 = m.forward_t(&input, false);
        assert_eq!(
            bf16.kind(),
            Kind::Float,
            "{arch}: logits come back as float32"
        );
        let diff = max_abs(&(&bf16 - &fp32));
        let scale = max_abs(&fp32);
        assert!(diff > 0.0, "{arch}: identical logits: autocast did not act");
        assert!(
            diff < 0.05 * scale + 1e-3,
            "{arch}: bf16 logits {diff} away from fp32 (scale {scale})"
        );
        bf16.sum(Kind::Float).backward();
        let grad = input.grad();
        assert_eq!(grad.kind(), Kind::Float);
        let g = max_abs(&grad);
        assert!(g.is_finite() && g > 0.0, "{arch}: input gradient {g}");
        assert!(m.vs.variables().values().all(|v| v.kind() == Kind::Float));
        // The checkpoint is the same state_dict: an fp32 model loading it gives fp32's logits.
        let path = tmp.path().join(format!("{arch}.safetensors"));
        m.save(&path, &BTreeMap::new()).unwrap();
        let mut back = Model::new(arch, c, 10, side, None, Device::Cpu).unwrap();
        back.load(&path).unwrap();
        let again = back.forward_t(&x, false);
        assert_eq!(max_abs(&(&again - &fp32)), 0.0, "{arch}: weights changed");
    }
}

fn spec(precision: &str) -> RunSpec {
    let mut sets: Vec<String> = TINY.iter().map(|s| s.to_string()).collect();
    sets.extend(
        [
            "model.arch=smallcnn",
            "train.epochs=6",
            "train.ema_decay=0",
            "method.name=pgd-at",
            "attack.eps=0.03",
            "attack.alpha=0.01",
        ]
        .map(String::from),
    );
    sets.push(format!("train.precision={precision}"));
    from_toml_str("", &sets).unwrap()
}

/// The epoch records and the `started` line's precision of a 6-epoch PGD-AT run.
fn run(precision: &str) -> (Vec<EpochRecord>, String) {
    tch::manual_seed(0);
    let splits = Splits {
        train: Dataset::synthetic(10, 40, 1, 16, 16, 31),
        val: Dataset::synthetic(10, 2, 1, 16, 16, 32),
        test: Dataset::synthetic(10, 10, 1, 16, 16, 33),
    };
    let tmp = tempfile::tempdir().unwrap();
    let mut sink = MemorySink::default();
    train_into(&spec(precision), splits, tmp.path(), false, &mut sink).unwrap();
    let started = sink.events.iter().find_map(|e| match e {
        RunEvent::Started { spec, .. } => Some(spec["train"]["precision"].to_string()),
        _ => None,
    });
    (
        epoch_records(&sink.events),
        started.expect("a started line"),
    )
}

fn clean_test_accuracy(r: &EpochRecord) -> f64 {
    let e = r
        .evals
        .iter()
        .find(|e| e.split == "test" && e.attack == "clean");
    e.expect("a clean test evaluation").metrics.overall
}

#[test]
fn a_bf16_run_trains_about_as_its_fp32_twin() {
    let _g = serial();
    let (fp32, _) = run("fp32");
    let (bf16, started) = run("bf16");
    assert_eq!(started, "\"bf16\"", "recorded in the run");
    assert_eq!(bf16.len(), 6);
    let loss = |r: &[EpochRecord]| r.iter().map(|e| e.train_loss).collect::<Vec<_>>();
    let (a, b) = (loss(&fp32), loss(&bf16));
    assert!(b.iter().all(|l| l.is_finite()), "{b:?}");
    // Same seed, same batches: the epochs' losses differ by bfloat16's rounding only.
    for (x, y) in a.iter().zip(&b).take(5) {
        assert!((x - y).abs() < 0.02 * x, "fp32 {a:?}\nbf16 {b:?}");
    }
    let best = |r: &[EpochRecord]| r.iter().map(clean_test_accuracy).fold(0.0, f64::max);
    let (a, b) = (best(&fp32), best(&bf16));
    assert!(b >= 0.3, "bf16 clean test accuracy {b} (chance 0.1)");
    assert!(
        (a - b).abs() <= 0.15,
        "best clean test accuracy: fp32 {a}, bf16 {b}"
    );
}

/// Logits of `x` from two forwards inside one scope (an attack's and the loss's), `train`
/// selecting BatchNorm's batch statistics (which, unlike the running ones, the forwards do not
/// change).
fn scoped_pair(m: &Model, x: &Tensor, train: bool) -> (Tensor, Tensor) {
    let _scope = m.precision_scope();
    (m.forward_t(x, train), m.forward_t(x, train))
}

#[test]
fn one_scope_over_a_step_casts_the_weights_once_and_changes_no_logit() {
    let _g = serial();
    tch::manual_seed(1);
    let mut m = Model::new(Arch::PreactResnet18, 3, 10, 32, None, Device::Cpu).unwrap();
    m.set_precision(Precision::Bf16);
    let x = Tensor::rand([4, 3, 32, 32], (Kind::Float, Device::Cpu));
    // The casts a scope keeps are the per-forward casts: bit for bit the same logits.
    let (first, second) = scoped_pair(&m, &x, true);
    let own_region = m.forward_t(&x, true);
    assert_eq!(max_abs(&(&first - &own_region)), 0.0);
    assert_eq!(max_abs(&(&second - &own_region)), 0.0);
    // The scope ended: the weights' bf16 copies went with it, so an optimiser-like in-place
    // change of the weights is seen by the next scope (no stale cast).
    tch::no_grad(|| {
        for (_, mut v) in m.vs.variables() {
            let _ = v.g_mul_scalar_(1.5);
        }
    });
    let (after, _) = scoped_pair(&m, &x, true);
    let fresh = m.forward_t(&x, true);
    assert_eq!(
        max_abs(&(&after - &fresh)),
        0.0,
        "a stale cast survived the scope"
    );
    assert!(max_abs(&(&after - &first)) > 0.0, "the change was not seen");
    // fp32 models ignore the scope.
    let f = Model::new(Arch::Smallcnn, 1, 10, 28, None, Device::Cpu).unwrap();
    let y = Tensor::rand([2, 1, 28, 28], (Kind::Float, Device::Cpu));
    let (a, _) = scoped_pair(&f, &y, false);
    assert_eq!(max_abs(&(&a - f.forward_t(&y, false))), 0.0);
}
