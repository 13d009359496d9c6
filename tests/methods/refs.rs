//! DAFA, TRIX and FAAL against PyTorch transcriptions of their reference code
//! (`tests/py/methods_ref.py`: rucy74/DAFA, Fairness-a11y/TRIX, TrustAI/FAAL) on one fixed batch:
//! the same checkpoint, images, starting points and random draws on both sides. PreAct
//! ResNet-18 (BatchNorm, no dropout), so train-mode forwards are deterministic.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use fairtat::attacks::per_sample_eps;
use fairtat::config::Arch;
use fairtat::methods::dafa::class_means;
use fairtat::methods::{
    batch_weights, class_margins, dafa_step, dafa_weights, dro_weights, faal_loss, trix_step,
    Batch, DafaStep, TrixStep,
};
use fairtat::models::Model;
use tch::nn::OptimizerConfig;
use tch::{nn, Device, Kind, Tensor};

use super::serial;

const K: usize = 10;
const EPS: f64 = 8.0 / 255.0;
const ALPHA: f64 = 2.0 / 255.0;
/// Class weights with margins above and below the base radius.
const W: [f64; K] = [1.4, 0.6, 1.0, 1.2, 0.5, 1.1, 0.9, 1.0, 1.3, 0.8];

fn python() -> PathBuf {
    match std::env::var_os("FAIRTAT_PYTHON") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(std::env::var("HOME").unwrap_or_default())
            .join(".cache/fairtat/torch-2.11.0/bin/python"),
    }
}

/// Run `methods_ref.py case` on `inputs` (and the checkpoint `ck`, if any); its outputs.
fn reference(case: &str, ck: Option<&Path>, inputs: &[(&str, Tensor)]) -> BTreeMap<String, Tensor> {
    let dir = tempfile::tempdir().unwrap();
    let (inp, out) = (
        dir.path().join("in.safetensors"),
        dir.path().join("out.safetensors"),
    );
    let named: Vec<(&str, &Tensor)> = inputs.iter().map(|(n, t)| (*n, t)).collect();
    Tensor::write_safetensors(&named, &inp).unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let ck = ck
        .map(|p| p.as_os_str().to_owned())
        .unwrap_or_else(|| "-".into());
    let res = Command::new(python())
        .arg(root.join("tests/py/methods_ref.py"))
        .arg(case)
        .arg(root.join("tests/py"))
        .args([ck, inp.into(), out.clone().into()])
        .output()
        .expect("run methods_ref.py (set FAIRTAT_PYTHON to a python with torch)");
    assert!(
        res.status.success(),
        "methods_ref.py {case}:\n{}\n{}",
        String::from_utf8_lossy(&res.stdout),
        String::from_utf8_lossy(&res.stderr)
    );
    Tensor::read_safetensors(&out)
        .unwrap()
        .into_iter()
        .collect()
}

/// A PreAct ResNet-18 on 32x32 RGB with its checkpoint, a batch of 8 with classes 5, 6, 7 and 9
/// absent, and a start point inside every sample's ball. Not the references' `x + 0.001 N(0, 1)`:
/// there the KL's gradient is rounding noise, whose signs no two implementations share.
struct Fixture {
    model: Model,
    ck: PathBuf,
    _dir: tempfile::TempDir,
    b: Batch,
    start: Tensor,
}

fn fixture() -> Fixture {
    tch::manual_seed(11);
    let model = Model::new(Arch::PreactResnet18, 3, K, 32, None, Device::Cpu).unwrap();
    // A few steps on random images: BatchNorm's running statistics and the logits then depend
    // on the input, so the attacks' gradients are not at rounding level.
    let mut opt = nn::Adam::default().build(&model.vs, 1e-3).unwrap();
    for _ in 0..3 {
        let x = Tensor::rand([16, 3, 32, 32], (Kind::Float, Device::Cpu));
        let y = Tensor::randint(K as i64, [16], (Kind::Int64, Device::Cpu));
        opt.backward_step(&model.forward_t(&x, true).cross_entropy_for_logits(&y));
    }
    let dir = tempfile::tempdir().unwrap();
    let ck = dir.path().join("model.safetensors");
    let meta = BTreeMap::from([
        ("arch".to_string(), "preact-resnet18".to_string()),
        ("in_channels".to_string(), "3".to_string()),
        ("num_classes".to_string(), K.to_string()),
        ("image_size".to_string(), "32".to_string()),
    ]);
    model.save(&ck, &meta).unwrap();
    let x = Tensor::rand([8, 3, 32, 32], (Kind::Float, Device::Cpu));
    let labels = vec![0i64, 0, 1, 2, 3, 3, 4, 8];
    let y = Tensor::from_slice(&labels);
    let start = (&x + (x.rand_like() - 0.5) * EPS).clamp(0.0, 1.0);
    Fixture {
        model,
        ck,
        _dir: dir,
        b: Batch { x, y, labels },
        start,
    }
}

fn params(v: &[f64]) -> Tensor {
    Tensor::from_slice(v)
}

fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
    (a.to_kind(Kind::Double) - b.to_kind(Kind::Double))
        .abs()
        .max()
        .double_value(&[])
}

/// The share of entries more than 1e-5 apart: a gradient entry at rounding level can take
/// another sign on each side and move its pixel by a step.
fn pixels_apart(a: &Tensor, b: &Tensor) -> f64 {
    let far = (a - b).abs().gt(1e-5).to_kind(Kind::Double);
    far.mean(Kind::Double).double_value(&[])
}

/// The largest perturbation of each sample.
fn radius(x_adv: &Tensor, x: &Tensor) -> Vec<f64> {
    let r = (x_adv - x).abs().flatten(1, -1).amax(&[1i64][..], false);
    Vec::<f64>::try_from(&r.to_kind(Kind::Double)).unwrap()
}

fn close(a: f64, b: f64, what: &str) {
    assert!(
        (a - b).abs() <= 1e-4 * (1.0 + b.abs()),
        "{what}: {a} vs {b}"
    );
}

#[test]
fn dafa_weights_equal_the_reference_formula() {
    let _g = serial();
    tch::manual_seed(3);
    let probs =
        Tensor::randn([60, K as i64], (Kind::Double, Device::Cpu)).softmax(-1, Kind::Double);
    let labels = Tensor::arange(60, (Kind::Int64, Device::Cpu)).remainder(K as i64);
    let sums = Tensor::zeros([K as i64, K as i64], (Kind::Double, Device::Cpu))
        .index_add(0, &labels, &probs);
    let counts = Tensor::zeros([K as i64], (Kind::Double, Device::Cpu)).index_add(
        0,
        &labels,
        &labels.ones_like().to_kind(Kind::Double),
    );
    let ours = dafa_weights(&class_means(&sums, &counts), 1.5);
    let r = reference(
        "dafa_weights",
        None,
        &[
            ("probs", probs),
            ("labels", labels),
            ("params", params(&[1.5])),
        ],
    );
    let theirs = Vec::<f64>::try_from(&r["weights"]).unwrap();
    for (a, b) in ours.iter().zip(&theirs) {
        assert!((a - b).abs() < 1e-12, "{ours:?} vs {theirs:?}");
    }
}

fn dafa_case(trades: bool) {
    let _g = serial();
    let f = fixture();
    let w = per_sample_eps(&W, &f.b.y);
    let s = DafaStep {
        eps: EPS,
        alpha: ALPHA,
        steps: 5,
        bn_train: false,
        beta: trades.then_some(6.0),
    };
    let p = if trades {
        vec![EPS, ALPHA, 5.0, 6.0]
    } else {
        vec![EPS, ALPHA, 5.0]
    };
    let inputs = [
        ("x", f.b.x.shallow_clone()),
        ("y", f.b.y.shallow_clone()),
        ("start", f.start.shallow_clone()),
        ("class_weights", Tensor::from_slice(&W)),
        ("params", params(&p)),
    ];
    let case = if trades { "dafa_trades" } else { "dafa_pgd_at" };
    let r = reference(case, Some(&f.ck), &inputs);
    let (loss, logits, x_adv) = dafa_step(&f.model, &f.b.x, &f.b.y, Some(&f.start), &w, &s);
    close(loss.double_value(&[]), r["loss"].double_value(&[]), "loss");
    let moved = pixels_apart(&x_adv, &r["x_adv"]);
    assert!(
        moved < 1e-3,
        "{case}: {moved} of the pixels of x_adv differ"
    );
    if trades {
        let probs = logits.softmax(-1, Kind::Float);
        assert!(
            max_diff(&probs, &r["probs"]) < 1e-4,
            "the warm-up softmax differs"
        );
    }
    // Each class keeps its own margin, above the base radius where W > 1 ...
    let ours = radius(&x_adv, &f.b.x);
    for (i, &y) in f.b.labels.iter().enumerate() {
        assert!(
            ours[i] <= W[y as usize] * EPS + 1e-6,
            "sample {i}: {}",
            ours[i]
        );
    }
    assert!(
        ours[0] > EPS * 1.2,
        "class 0 (W = 1.4) was projected to {}",
        ours[0]
    );
    // ... which the reference's second, unweighted step projects away.
    if !trades {
        let theirs = radius(&r["x_adv_reference"], &f.b.x);
        assert!(theirs.iter().all(|&v| v <= EPS + 1e-6), "{theirs:?}");
    }
}

#[test]
fn dafa_trades_step_matches_the_reference() {
    dafa_case(true);
}

#[test]
fn dafa_pgd_at_step_matches_the_corrected_reference_and_keeps_class_margins() {
    dafa_case(false);
}

#[test]
fn trix_step_matches_the_reference() {
    let _g = serial();
    let f = fixture();
    let w = per_sample_eps(&W, &f.b.y);
    let wrong: Vec<i64> = f.b.labels.iter().map(|&y| (y + 3) % K as i64).collect();
    let wrong = Tensor::from_slice(&wrong);
    let inputs = [
        ("x", f.b.x.shallow_clone()),
        ("y", f.b.y.shallow_clone()),
        ("start", f.start.shallow_clone()),
        ("class_weights", Tensor::from_slice(&W)),
        ("rand_targets", wrong.shallow_clone()),
        ("params", params(&[EPS, ALPHA, 5.0, 6.0])),
    ];
    let r = reference("trix", Some(&f.ck), &inputs);
    let s = TrixStep {
        eps: EPS,
        alpha: ALPHA,
        steps: 5,
        bn_train: false,
        beta: 6.0,
    };
    let out = trix_step(&f.model, &f.b, Some(&f.start), &w, &wrong, &s);
    let theirs = Vec::<f64>::try_from(&r["tar_weights"]).unwrap();
    for (a, b) in out.batch_weights.iter().zip(&theirs) {
        assert!(
            (a - b).abs() < 1e-5,
            "{:?} vs {theirs:?}",
            out.batch_weights
        );
    }
    let mask = Vec::<f64>::try_from(&r["targeted"].to_kind(Kind::Double)).unwrap();
    let mask: Vec<bool> = mask.iter().map(|&m| m > 0.5).collect();
    assert_eq!(out.targeted, mask);
    assert!(
        mask.iter().any(|&m| m) && mask.iter().any(|&m| !m),
        "{mask:?}"
    );
    close(
        out.loss.double_value(&[]),
        r["loss"].double_value(&[]),
        "loss",
    );
    let moved = pixels_apart(&out.x_adv, &r["x_adv"]);
    assert!(moved < 1e-3, "trix: {moved} of the pixels of x_adv differ");
    // The batch weights are DAFA's formula on the batch's clean softmax.
    let again = batch_weights(&vec![vec![0.1; K]; K]);
    assert!(again.iter().all(|v| v.is_finite()));
}

#[test]
fn faal_margins_weights_and_loss_match_the_reference() {
    let _g = serial();
    let f = fixture();
    let x_adv = (&f.start + 0.02).clamp(0.0, 1.0);
    let logits = f.model.forward_t(&x_adv, true);
    let _ = tch::no_grad(|| f.model.forward_t(&f.b.x, true));
    let (m, n) = class_margins(&logits, &f.b.labels, K);
    let a: Vec<f64> = m.iter().zip(&n).map(|(m, n)| m * n).collect();
    let p = dro_weights(&a, 0.5);
    let loss = faal_loss(&logits, &f.b.y, &p);
    let inputs = [
        ("x", f.b.x.shallow_clone()),
        ("y", f.b.y.shallow_clone()),
        ("x_adv", x_adv),
        ("weights", Tensor::from_slice(&p)),
        ("params", params(&[K as f64])),
    ];
    let r = reference("faal", Some(&f.ck), &inputs);
    let theirs = Vec::<f64>::try_from(&r["margin"].to_kind(Kind::Double)).unwrap();
    for (a, b) in m.iter().zip(&theirs) {
        assert!((a - b).abs() < 1e-5, "{m:?} vs {theirs:?}");
    }
    assert_eq!(
        Vec::<f64>::try_from(&r["counts"].to_kind(Kind::Double)).unwrap(),
        n
    );
    close(loss.double_value(&[]), r["loss"].double_value(&[]), "loss");
    // The DRO by an independent numeric solver.
    let dro = reference(
        "faal_dro",
        None,
        &[
            ("margin", Tensor::from_slice(&m)),
            ("counts", Tensor::from_slice(&n)),
            ("params", params(&[0.5])),
        ],
    );
    let theirs = Vec::<f64>::try_from(&dro["weights"]).unwrap();
    for (a, b) in p.iter().zip(&theirs) {
        assert!((a - b).abs() < 1e-6, "{p:?} vs {theirs:?}");
    }
}
