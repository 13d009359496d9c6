//! Model architectures, parameter names (= PyTorch state_dict keys of
//! `tests/py/models.py`), PyTorch-default init, checkpoints, weight averaging, and a
//! cross-check of logits against PyTorch itself (`tests/py/check_checkpoint.py`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use fairtat::config::Arch;
use fairtat::models::{predict, read_metadata, Model, ModelError, WeightAverage};
use tch::nn::OptimizerConfig;
use tch::{nn, Device, Kind, Tensor};

fn model(arch: Arch, c: usize, k: usize, size: usize) -> Model {
    Model::new(arch, c, k, size, None, Device::Cpu).expect("valid model config")
}

fn shapes(m: &Model) -> BTreeMap<String, Vec<i64>> {
    m.named_state()
        .into_iter()
        .map(|(n, t)| (n, t.size()))
        .collect()
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    (a - b).abs().max().double_value(&[])
}

/// A few SGD steps in train mode so BN running stats and weights move away from their init.
fn train_briefly(m: &Model, x: &Tensor, y: &Tensor, steps: usize) {
    let mut opt = nn::Sgd {
        momentum: 0.9,
        ..Default::default()
    }
    .build(&m.vs, 0.02)
    .unwrap();
    for _ in 0..steps {
        let loss = m.forward_t(x, true).cross_entropy_for_logits(y);
        opt.backward_step(&loss);
    }
}

fn meta_for(m: &Model, norm: Option<&str>) -> BTreeMap<String, String> {
    let mut meta = BTreeMap::new();
    meta.insert("arch".to_string(), m.arch.as_str().to_string());
    meta.insert("in_channels".to_string(), m.in_channels.to_string());
    meta.insert("num_classes".to_string(), m.num_classes.to_string());
    meta.insert("image_size".to_string(), m.image_size.to_string());
    if let Some(n) = norm {
        meta.insert("normalization".to_string(), n.to_string());
    }
    meta
}

#[test]
fn smallcnn_names_and_shapes_equal_models_py() {
    let m = model(Arch::Smallcnn, 1, 10, 28);
    // `SmallCNN(1, 10, 28).state_dict()` in tests/py/models.py.
    let expected: BTreeMap<String, Vec<i64>> = [
        ("feature_extractor.conv1.weight", vec![32, 1, 3, 3]),
        ("feature_extractor.conv1.bias", vec![32]),
        ("feature_extractor.conv2.weight", vec![32, 32, 3, 3]),
        ("feature_extractor.conv2.bias", vec![32]),
        ("feature_extractor.conv3.weight", vec![64, 32, 3, 3]),
        ("feature_extractor.conv3.bias", vec![64]),
        ("feature_extractor.conv4.weight", vec![64, 64, 3, 3]),
        ("feature_extractor.conv4.bias", vec![64]),
        ("classifier.fc1.weight", vec![200, 1024]),
        ("classifier.fc1.bias", vec![200]),
        ("classifier.fc2.weight", vec![200, 200]),
        ("classifier.fc2.bias", vec![200]),
        ("classifier.fc3.weight", vec![10, 200]),
        ("classifier.fc3.bias", vec![10]),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(shapes(&m), expected);
    // Image size and channels change the first conv and fc1 as in models.py (side 5 for 32px).
    let m3 = shapes(&model(Arch::Smallcnn, 3, 7, 32));
    assert_eq!(m3["feature_extractor.conv1.weight"], vec![32, 3, 3, 3]);
    assert_eq!(m3["classifier.fc1.weight"], vec![200, 64 * 5 * 5]);
    assert_eq!(m3["classifier.fc3.bias"], vec![7]);
}

#[test]
fn preact_resnet18_names_and_shapes() {
    let s = shapes(&model(Arch::PreactResnet18, 3, 10, 32));
    // models.py's state_dict without the 17 `num_batches_tracked` buffers.
    assert_eq!(s.len(), 90);
    assert_eq!(s["conv1.weight"], vec![64, 3, 3, 3]);
    assert_eq!(s["layer1.0.bn1.running_mean"], vec![64]);
    assert_eq!(s["layer1.0.bn1.running_var"], vec![64]);
    assert_eq!(s["layer2.0.shortcut.0.weight"], vec![128, 64, 1, 1]);
    assert_eq!(s["layer4.1.conv2.weight"], vec![512, 512, 3, 3]);
    assert_eq!(s["bn.weight"], vec![512]);
    assert_eq!(s["linear.weight"], vec![10, 512]);
    assert_eq!(s["linear.bias"], vec![10]);
    assert!(
        !s.contains_key("layer1.0.shortcut.0.weight"),
        "identity shortcut has no conv"
    );
    assert!(!s.contains_key("layer2.1.shortcut.0.weight"));
    assert!(
        !s.keys().any(|k| k.contains("conv") && k.ends_with(".bias")),
        "PRN-18 convs are bias-free"
    );
}

#[test]
fn forward_shapes_for_every_arch() {
    tch::manual_seed(0);
    let cases = [
        (Arch::Smallcnn, 1, 10, 28, 3),
        (Arch::Smallcnn, 3, 4, 32, 2),
        (Arch::PreactResnet18, 3, 10, 32, 2),
        (Arch::PreactResnet18, 1, 5, 28, 2),
    ];
    for (arch, c, k, size, b) in cases {
        let m = model(arch, c, k, size);
        let x = Tensor::rand(
            [b, c as i64, size as i64, size as i64],
            (Kind::Float, Device::Cpu),
        );
        for train in [false, true] {
            let y = m.forward_t(&x, train);
            assert_eq!(
                y.size(),
                vec![b, k as i64],
                "{arch:?} c={c} k={k} train={train}"
            );
            assert!(y.isfinite().all().int64_value(&[]) == 1);
        }
        assert_eq!(predict(&m, &x, 1).len(), b as usize);
    }
}

#[test]
fn wrn_34_10_names_and_one_forward() {
    tch::manual_seed(0);
    let m = model(Arch::Wrn34_10, 3, 10, 32);
    let s = shapes(&m);
    assert_eq!(
        s.len(),
        160,
        "models.py WideResNet(34, 10) without num_batches_tracked"
    );
    assert_eq!(s["conv1.weight"], vec![16, 3, 3, 3]);
    assert_eq!(s["block1.0.shortcut.weight"], vec![160, 16, 1, 1]);
    assert_eq!(s["block2.0.shortcut.weight"], vec![320, 160, 1, 1]);
    assert_eq!(s["block3.4.conv2.weight"], vec![640, 640, 3, 3]);
    assert!(!s.contains_key("block1.1.shortcut.weight"));
    assert_eq!(s["fc.weight"], vec![10, 640]);
    let y = tch::no_grad(|| {
        m.forward_t(
            &Tensor::rand([1, 3, 32, 32], (Kind::Float, Device::Cpu)),
            false,
        )
    });
    assert_eq!(y.size(), vec![1, 10]);
}

#[test]
fn init_follows_pytorch_defaults() {
    tch::manual_seed(1);
    let m = model(Arch::PreactResnet18, 3, 10, 32);
    let st: BTreeMap<String, Tensor> = m.named_state().into_iter().collect();
    // BN: weight 1, bias 0, running mean 0, running var 1 (tch's own default weight is U(0,1)).
    for (n, want) in [
        ("bn.weight", 1.0),
        ("bn.bias", 0.0),
        ("layer1.0.bn1.running_mean", 0.0),
        ("layer1.0.bn1.running_var", 1.0),
    ] {
        assert!(
            max_abs_diff(&st[n], &st[n].full_like(want)) == 0.0,
            "{n} should be all {want}"
        );
    }
    // kaiming_uniform(a=sqrt(5)): U(-b, b) with b = 1/sqrt(fan_in); std = b/sqrt(3).
    // (tch's default would be b = sqrt(6/fan_in), 2.4x wider.)
    let w = &st["layer3.0.conv1.weight"]; // fan_in = 128 * 9
    let bound = 1.0 / ((128 * 9) as f64).sqrt();
    let max = w.abs().max().double_value(&[]);
    assert!(
        max <= bound + 1e-7 && max > 0.95 * bound,
        "max {max} vs bound {bound}"
    );
    let std = w.std(true).double_value(&[]);
    assert!(
        (std / (bound / 3f64.sqrt()) - 1.0).abs() < 0.02,
        "std {std}"
    );
    // Linear bias U(-1/sqrt(fan_in), ..) and SmallCNN conv biases non-zero within that bound.
    let sc = model(Arch::Smallcnn, 1, 10, 28);
    let sst: BTreeMap<String, Tensor> = sc.named_state().into_iter().collect();
    let b = &sst["feature_extractor.conv2.bias"]; // fan_in 32 * 9
    let bmax = b.abs().max().double_value(&[]);
    assert!(
        bmax > 0.0 && bmax <= 1.0 / (288f64).sqrt() + 1e-7,
        "conv bias max {bmax}"
    );
    let fb = &sst["classifier.fc1.bias"];
    assert!(fb.abs().max().double_value(&[]) <= 1.0 / 32.0 + 1e-7);
}

#[test]
fn bad_configs_and_inputs_are_errors() {
    let small = Model::new(Arch::Smallcnn, 1, 10, 12, None, Device::Cpu).unwrap_err();
    assert!(small.to_string().contains("16x16"), "{small}");
    let norm = Model::new(
        Arch::PreactResnet18,
        3,
        10,
        32,
        Some((vec![0.5], vec![0.5])),
        Device::Cpu,
    )
    .unwrap_err();
    assert!(norm.to_string().contains("3 input channels"), "{norm}");
    let zero_std = Model::new(
        Arch::Smallcnn,
        1,
        10,
        28,
        Some((vec![0.5], vec![0.0])),
        Device::Cpu,
    )
    .unwrap_err();
    assert!(zero_std.to_string().contains("std"), "{zero_std}");
    let m = model(Arch::Smallcnn, 1, 10, 28);
    let err = m
        .f_forward_t(
            &Tensor::zeros([2, 3, 28, 28], (Kind::Float, Device::Cpu)),
            false,
        )
        .unwrap_err();
    assert!(
        matches!(err, ModelError::Input { .. }) && err.to_string().contains("1 channels"),
        "{err}"
    );
    assert!(m
        .f_forward_t(
            &Tensor::zeros([2, 1, 32, 32], (Kind::Float, Device::Cpu)),
            false
        )
        .is_err());
    assert!(m
        .f_forward_t(
            &Tensor::zeros([1, 28, 28], (Kind::Float, Device::Cpu)),
            false
        )
        .is_err());
    assert_eq!(
        m.f_forward_t(
            &Tensor::zeros([2, 1, 28, 28], (Kind::Float, Device::Cpu)),
            false
        )
        .unwrap()
        .size(),
        vec![2, 10]
    );
}

#[test]
fn normalisation_is_applied_inside_forward_and_not_stored() {
    tch::manual_seed(2);
    let (mean, std) = (vec![0.4, 0.5, 0.6], vec![0.2, 0.25, 0.3]);
    let normed = Model::new(
        Arch::PreactResnet18,
        3,
        4,
        16,
        Some((mean.clone(), std.clone())),
        Device::Cpu,
    )
    .unwrap();
    let mut plain = model(Arch::PreactResnet18, 3, 4, 16);
    assert_eq!(
        shapes(&normed),
        shapes(&plain),
        "normalisation must not add variables"
    );
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("n.safetensors");
    normed.save(&p, &BTreeMap::new()).unwrap();
    plain.load(&p).unwrap();
    let x = Tensor::rand([3, 3, 16, 16], (Kind::Float, Device::Cpu));
    let m = Tensor::from_slice(&mean)
        .to_kind(Kind::Float)
        .view([1, 3, 1, 1]);
    let s = Tensor::from_slice(&std)
        .to_kind(Kind::Float)
        .view([1, 3, 1, 1]);
    let a = tch::no_grad(|| normed.forward_t(&x, false));
    let b = tch::no_grad(|| plain.forward_t(&((&x - m) / s), false));
    assert!(max_abs_diff(&a, &b) < 1e-5);
    assert!(
        max_abs_diff(&a, &tch::no_grad(|| plain.forward_t(&x, false))) > 1e-3,
        "normalisation changed nothing"
    );
}

#[test]
fn dropout_only_in_train_mode() {
    tch::manual_seed(3);
    let m = model(Arch::Smallcnn, 1, 10, 28);
    let x = Tensor::rand([4, 1, 28, 28], (Kind::Float, Device::Cpu));
    let (e1, e2) = tch::no_grad(|| (m.forward_t(&x, false), m.forward_t(&x, false)));
    assert_eq!(max_abs_diff(&e1, &e2), 0.0);
    let (t1, t2) = tch::no_grad(|| (m.forward_t(&x, true), m.forward_t(&x, true)));
    assert!(
        max_abs_diff(&t1, &t2) > 1e-6,
        "dropout inactive in train mode"
    );
}

#[test]
fn save_load_roundtrip_gives_identical_predictions_and_metadata() {
    tch::manual_seed(4);
    let m = model(Arch::PreactResnet18, 1, 3, 12);
    let x = Tensor::rand([16, 1, 12, 12], (Kind::Float, Device::Cpu));
    let y = Tensor::from_slice(&[0i64, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0]);
    train_briefly(&m, &x, &y, 3);
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("ck.safetensors");
    let mut meta = meta_for(&m, None);
    meta.insert("epoch".into(), "7".into());
    m.save(&p, &meta).unwrap();
    assert!(
        !dir.path().join(".ck.safetensors.tmp").exists(),
        "temp file left behind"
    );
    assert_eq!(read_metadata(&p).unwrap(), meta);

    tch::manual_seed(99);
    let mut fresh = model(Arch::PreactResnet18, 1, 3, 12);
    let before = tch::no_grad(|| fresh.forward_t(&x, false));
    fresh.load(&p).unwrap();
    let (a, b) = tch::no_grad(|| (m.forward_t(&x, false), fresh.forward_t(&x, false)));
    assert!(
        max_abs_diff(&a, &before) > 1e-4,
        "fresh model was already equal"
    );
    assert_eq!(max_abs_diff(&a, &b), 0.0);
    assert_eq!(predict(&m, &x, 5), predict(&fresh, &x, 16));
    let rm = |mm: &Model| {
        mm.named_state()
            .into_iter()
            .find(|(n, _)| n == "layer1.0.bn1.running_mean")
            .unwrap()
            .1
    };
    assert!(
        rm(&m).abs().max().double_value(&[]) > 0.0,
        "BN running mean not trained"
    );
    assert_eq!(max_abs_diff(&rm(&m), &rm(&fresh)), 0.0);
}

fn write_state(path: &Path, state: &[(String, Tensor)]) {
    Tensor::write_safetensors(state, path).unwrap();
}

#[test]
fn load_errors_name_the_problem_and_leave_the_model_unchanged() {
    tch::manual_seed(5);
    let dir = tempfile::tempdir().unwrap();
    let x = Tensor::rand([2, 1, 28, 28], (Kind::Float, Device::Cpu));
    let mut m = model(Arch::Smallcnn, 1, 10, 28);
    let before = tch::no_grad(|| m.forward_t(&x, false));

    // Wrong shape: a 5-class checkpoint into a 10-class model.
    let p5 = dir.path().join("k5.safetensors");
    model(Arch::Smallcnn, 1, 5, 28)
        .save(&p5, &BTreeMap::new())
        .unwrap();
    let e = m.load(&p5).unwrap_err();
    let msg = e.to_string();
    assert!(
        matches!(e, ModelError::Shape { .. })
            && msg.contains("classifier.fc3")
            && msg.contains("k5.safetensors"),
        "{msg}"
    );

    // Missing tensor.
    let other = model(Arch::Smallcnn, 1, 10, 28);
    let state: Vec<(String, Tensor)> = other
        .named_state()
        .into_iter()
        .filter(|(n, _)| n != "feature_extractor.conv3.bias")
        .collect();
    let pm = dir.path().join("missing.safetensors");
    write_state(&pm, &state);
    let e = m.load(&pm).unwrap_err();
    assert!(
        matches!(e, ModelError::Missing { .. })
            && e.to_string().contains("feature_extractor.conv3.bias"),
        "{e}"
    );

    // Unexpected tensor (strict like load_state_dict), but num_batches_tracked is accepted.
    let mut extra = other.named_state();
    extra.push((
        "classifier.fc4.weight".into(),
        Tensor::zeros([2], (Kind::Float, Device::Cpu)),
    ));
    let pe = dir.path().join("extra.safetensors");
    write_state(&pe, &extra);
    let e = m.load(&pe).unwrap_err();
    assert!(
        matches!(e, ModelError::Unexpected { .. })
            && e.to_string().contains("classifier.fc4.weight"),
        "{e}"
    );

    // Garbage bytes and a missing file.
    let pg = dir.path().join("garbage.safetensors");
    std::fs::write(&pg, b"this is not a safetensors file at all").unwrap();
    let e = m.load(&pg).unwrap_err();
    assert!(
        matches!(e, ModelError::Format { .. }) && e.to_string().contains("garbage.safetensors"),
        "{e}"
    );
    assert!(read_metadata(&pg).is_err());
    let e = m.load(&dir.path().join("nope.safetensors")).unwrap_err();
    assert!(
        matches!(e, ModelError::Io { .. }) && e.to_string().contains("nope.safetensors"),
        "{e}"
    );

    let after = tch::no_grad(|| m.forward_t(&x, false));
    assert_eq!(
        max_abs_diff(&before, &after),
        0.0,
        "failed loads modified the model"
    );

    // PyTorch-style file: f64 tensors plus num_batches_tracked buffers load fine.
    let mut torchy: Vec<(String, Tensor)> = other
        .named_state()
        .into_iter()
        .map(|(n, t)| (n, t.to_kind(Kind::Double)))
        .collect();
    torchy.push((
        "feature_extractor.num_batches_tracked".into(),
        Tensor::from_slice(&[3i64]),
    ));
    let pt = dir.path().join("torchy.safetensors");
    write_state(&pt, &torchy);
    m.load(&pt).unwrap();
    let (a, b) = tch::no_grad(|| (m.forward_t(&x, false), other.forward_t(&x, false)));
    assert!(max_abs_diff(&a, &b) < 1e-6);
}

#[test]
fn weight_average_is_the_elementwise_mix_including_bn_buffers() {
    tch::manual_seed(6);
    let a = model(Arch::PreactResnet18, 1, 2, 8);
    let b = model(Arch::PreactResnet18, 1, 2, 8);
    // Give every variable (BN running stats included) distinct random values in both models.
    tch::no_grad(|| {
        for m in [&a, &b] {
            for (_, mut t) in m.named_state() {
                let _ = t.uniform_(-1.0, 1.0);
            }
        }
    });
    let mut avg = WeightAverage::new(&a);
    avg.update(&b, 0.5);
    let sa: BTreeMap<String, Tensor> = a.named_state().into_iter().collect();
    let sb: BTreeMap<String, Tensor> = b.named_state().into_iter().collect();
    assert_eq!(avg.state().len(), sa.len());
    for (n, t) in avg.state() {
        let want = (&sa[n] + &sb[n]) * 0.5;
        assert!(max_abs_diff(t, &want) < 1e-6, "{n}");
    }
    assert!(avg
        .state()
        .iter()
        .any(|(n, _)| n == "layer2.0.bn2.running_var"));
    // decay 0.75 once more: 0.75 * mean + 0.25 * b.
    avg.update(&b, 0.75);
    let rv = "layer2.0.bn2.running_var";
    let want = (&sa[rv] + &sb[rv]) * 0.375 + &sb[rv] * 0.25;
    assert!(max_abs_diff(&avg.state().iter().find(|(n, _)| n == rv).unwrap().1, &want) < 1e-6);
    // The average is a copy: changing `a` afterwards does not change it; copy_into writes it.
    let mut target = model(Arch::PreactResnet18, 1, 2, 8);
    avg.copy_into(&mut target);
    for (n, t) in target.named_state() {
        let (_, s) = avg.state().iter().find(|(m, _)| *m == n).unwrap();
        assert_eq!(max_abs_diff(&t, s), 0.0, "{n}");
    }
}

// ---- PyTorch cross-check -------------------------------------------------------------------

fn python() -> PathBuf {
    match std::env::var_os("FAIRTAT_PYTHON") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(std::env::var("HOME").unwrap_or_default())
            .join(".cache/fairtat/torch-2.11.0/bin/python"),
    }
}

/// Run check_checkpoint.py; (exit status ok, stdout and stderr).
fn run_check(ck: &Path, inputs: &Path) -> (bool, String) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let py = python();
    let out = Command::new(&py)
        .arg(root.join("tests/py/check_checkpoint.py"))
        .arg(root.join("tests/py"))
        .arg(ck)
        .arg(inputs)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {} (set FAIRTAT_PYTHON to a python with torch): {e}",
                py.display()
            )
        });
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success() && text.contains("\"ok\": true"), text)
}

/// Train briefly, save, run the reference models.py on the same input, compare logits. With
/// `negative_control`, also check that the script rejects logits off by 1e-3.
fn cross_check(m: &Model, norm_json: Option<&str>, x: &Tensor, y: &Tensor, negative_control: bool) {
    train_briefly(m, x, y, 4);
    let dir = tempfile::tempdir().unwrap();
    let ck = dir.path().join("model.safetensors");
    m.save(&ck, &meta_for(m, norm_json)).unwrap();
    let logits = tch::no_grad(|| m.forward_t(x, false));
    let inputs = dir.path().join("inputs.safetensors");
    Tensor::write_safetensors(&[("x", x), ("logits", &logits)], &inputs).unwrap();
    let (ok, text) = run_check(&ck, &inputs);
    assert!(ok, "check_checkpoint.py failed for {:?}:\n{text}", m.arch);
    eprintln!("{text}");
    if negative_control {
        let off = &logits + 1e-3;
        let bad = dir.path().join("bad.safetensors");
        Tensor::write_safetensors(&[("x", x), ("logits", &off)], &bad).unwrap();
        let (ok, text) = run_check(&ck, &bad);
        assert!(!ok, "check_checkpoint.py accepted wrong logits:\n{text}");
    }
}

#[test]
fn smallcnn_logits_match_pytorch() {
    tch::manual_seed(7);
    let m = model(Arch::Smallcnn, 1, 10, 28);
    let x = Tensor::rand([8, 1, 28, 28], (Kind::Float, Device::Cpu));
    let y = Tensor::arange(8, (Kind::Int64, Device::Cpu));
    cross_check(&m, None, &x, &y, true);
}

#[test]
fn preact_resnet18_logits_match_pytorch_with_trained_bn_and_normalisation() {
    tch::manual_seed(8);
    let (mean, std) = (vec![0.4914, 0.4822, 0.4465], vec![0.2471, 0.2435, 0.2616]);
    let m = Model::new(
        Arch::PreactResnet18,
        3,
        10,
        16,
        Some((mean.clone(), std.clone())),
        Device::Cpu,
    )
    .unwrap();
    let x = Tensor::rand([8, 3, 16, 16], (Kind::Float, Device::Cpu));
    let y = Tensor::arange(8, (Kind::Int64, Device::Cpu));
    let norm = format!("{{\"mean\": {mean:?}, \"std\": {std:?}}}");
    cross_check(&m, Some(&norm), &x, &y, false);
}

#[test]
fn xcit_s12_logits_match_pytorch_after_training_steps() {
    tch::manual_seed(9);
    let m = model(Arch::XcitS12, 3, 10, 32);
    // XCiT-S12's 26 M trainable parameters (models.py's `XCiT()`, timm's xcit_small_12_p16).
    let params: i64 =
        m.vs.trainable_variables()
            .iter()
            .map(|t| t.numel() as i64)
            .sum();
    assert_eq!(params, 25_872_154);
    let x = Tensor::rand([8, 3, 32, 32], (Kind::Float, Device::Cpu));
    let y = Tensor::arange(8, (Kind::Int64, Device::Cpu));
    // Training moves BN stats, layer scales and temperatures off their init of 1.
    cross_check(&m, None, &x, &y, true);
    let state: BTreeMap<String, Tensor> = m.named_state().into_iter().collect();
    let gamma = &state["blocks.0.gamma1"];
    assert!(
        max_abs_diff(gamma, &gamma.ones_like()) > 0.0,
        "gamma1 never moved"
    );
}

#[test]
fn xcit_takes_other_image_sizes_and_grayscale() {
    tch::manual_seed(10);
    // Fashion-MNIST's 28x28x1: a 7x7 token grid.
    let m = model(Arch::XcitS12, 1, 10, 28);
    let x = Tensor::rand([2, 1, 28, 28], (Kind::Float, Device::Cpu));
    let logits = m.f_forward_t(&x, false).unwrap();
    assert_eq!(logits.size(), vec![2, 10]);
    assert!(logits.isfinite().all().int64_value(&[]) == 1);
}
