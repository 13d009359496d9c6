//! PGD / FGSM behaviour: per-sample L-inf balls and the image range are respected, untargeted
//! PGD lowers accuracy, targeted PGD moves predictions toward the target, BN mode during the
//! attack is explicit, and no gradient leaks into the model parameters.

use std::sync::OnceLock;

use fairtat::attacks::{fgsm, per_sample_eps, pgd, try_per_sample_eps, PgdConfig};
use fairtat::config::Arch;
use fairtat::models::{predict, Model};
use tch::nn::OptimizerConfig;
use tch::{nn, Device, Kind, Tensor};

const K: i64 = 3;

/// tch's RNG is process-global and the test harness runs tests in parallel threads; holding this
/// lock for a whole test keeps each test's random draws (data, init, random starts) deterministic.
static RNG_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    RNG_LOCK
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
const SIDE: i64 = 16;

/// A separable synthetic task: each class is a fixed random template plus noise.
fn synthetic(templates: &Tensor, n: i64) -> (Tensor, Tensor) {
    let y = Tensor::randint(K, [n], (Kind::Int64, Device::Cpu));
    let noise = Tensor::rand([n, 1, SIDE, SIDE], (Kind::Float, Device::Cpu));
    let x = (templates.index_select(0, &y) * 0.6 + noise * 0.4).clamp(0.0, 1.0);
    (x, y)
}

/// SmallCNN trained briefly on the synthetic task, plus a held-out batch. Trained once per test
/// binary; later calls copy the saved weights and data into a fresh model. Callers hold
/// [`serial`].
fn trained_model() -> (Model, Tensor, Tensor) {
    // Plain data (name, shape, values) is Sync, unlike `Tensor`, so it can live in a static.
    type Named = Vec<(String, Vec<i64>, Vec<f32>)>;
    static TRAINED: OnceLock<Named> = OnceLock::new();
    let to_data = |n: &str, t: &Tensor| {
        (
            n.to_string(),
            t.size(),
            Vec::<f32>::try_from(&t.flatten(0, -1)).unwrap(),
        )
    };
    tch::manual_seed(0);
    let m = Model::new(
        Arch::Smallcnn,
        1,
        K as usize,
        SIDE as usize,
        None,
        Device::Cpu,
    )
    .unwrap();
    let saved = TRAINED.get_or_init(|| {
        let templates = Tensor::rand([K, 1, SIDE, SIDE], (Kind::Float, Device::Cpu));
        let mut opt = nn::Adam::default().build(&m.vs, 2e-3).unwrap();
        for _ in 0..40 {
            let (x, y) = synthetic(&templates, 32);
            opt.backward_step(&m.forward_t(&x, true).cross_entropy_for_logits(&y));
        }
        let (x, y) = synthetic(&templates, 60);
        let mut saved: Named = m
            .named_state()
            .iter()
            .map(|(n, t)| to_data(n, &t.detach()))
            .collect();
        saved.push(to_data("data.x", &x));
        saved.push(to_data("data.y", &y.to_kind(Kind::Float)));
        saved
    });
    let get = |name: &str| {
        let (_, shape, values) = saved.iter().find(|(n, _, _)| n == name).unwrap();
        Tensor::from_slice(values).view(shape.as_slice())
    };
    tch::no_grad(|| {
        for (name, mut t) in m.named_state() {
            t.copy_(&get(&name));
        }
    });
    tch::manual_seed(0);
    (m, get("data.x"), get("data.y").to_kind(Kind::Int64))
}

fn accuracy(m: &Model, x: &Tensor, y: &Tensor) -> f64 {
    let pred = predict(m, x, 64);
    let y = Vec::<i64>::try_from(y).unwrap();
    pred.iter().zip(&y).filter(|(p, t)| p == t).count() as f64 / y.len() as f64
}

/// max_i over pixels of |a - b| for each sample: [B].
fn per_sample_linf(a: &Tensor, b: &Tensor) -> Vec<f64> {
    let d = (a - b).abs().flatten(1, -1).amax([1i64].as_slice(), false);
    Vec::<f64>::try_from(&d.to_kind(Kind::Double)).unwrap()
}

fn assert_in_balls(x: &Tensor, x_adv: &Tensor, eps: &Tensor) {
    let eps = Vec::<f64>::try_from(&eps.to_kind(Kind::Double)).unwrap();
    for (i, (d, e)) in per_sample_linf(x_adv, x).iter().zip(&eps).enumerate() {
        assert!(*d <= e + 1e-6, "sample {i}: |delta| {d} > eps {e}");
    }
    assert!(
        x_adv.min().double_value(&[]) >= 0.0 && x_adv.max().double_value(&[]) <= 1.0,
        "left [0,1]"
    );
}

fn cfg(alpha: f64, steps: usize, random_start: bool) -> PgdConfig {
    PgdConfig {
        alpha,
        steps,
        random_start,
        bn_train: false,
    }
}

#[test]
fn per_sample_eps_indexes_class_radii_by_label() {
    let _serial = serial();
    let labels = Tensor::from_slice(&[2i64, 0, 1, 2]);
    let eps = per_sample_eps(&[0.1, 0.2, 0.3], &labels);
    assert_eq!(eps.kind(), Kind::Float);
    let v = Vec::<f64>::try_from(&eps.to_kind(Kind::Double)).unwrap();
    let want = [0.3, 0.1, 0.2, 0.3];
    assert!(
        v.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-7),
        "{v:?}"
    );
    assert!(
        try_per_sample_eps(&[0.1, 0.2], &labels).is_err(),
        "label 2 is outside two radii"
    );
}

#[test]
fn pgd_keeps_each_sample_in_its_own_ball_and_the_image_range() {
    let _serial = serial();
    let (m, x, y) = trained_model();
    // Include images at the borders of [0,1] so that the range clip matters.
    let x = Tensor::cat(
        &[
            x.narrow(0, 0, 30),
            x.narrow(0, 30, 1).zeros_like(),
            x.narrow(0, 31, 1).ones_like(),
        ],
        0,
    );
    let y = y.narrow(0, 0, 32);
    let class_eps = [0.01, 0.05, 0.1];
    let eps = per_sample_eps(&class_eps, &y);
    let x_adv = pgd(&m, &x, &y, &eps, None, &cfg(0.02, 10, true));
    assert_eq!(x_adv.size(), x.size());
    assert!(!x_adv.requires_grad(), "result must be detached");
    assert_in_balls(&x, &x_adv, &eps);
    // Each sample uses (nearly) its whole own radius: the radii really are per sample.
    let eps_v = Vec::<f64>::try_from(&eps.to_kind(Kind::Double)).unwrap();
    for (i, (d, e)) in per_sample_linf(&x_adv, &x).iter().zip(&eps_v).enumerate() {
        assert!(*d >= 0.9 * e, "sample {i}: moved only {d} of eps {e}");
    }
}

#[test]
fn untargeted_pgd_lowers_accuracy() {
    let _serial = serial();
    let (m, x, y) = trained_model();
    let clean = accuracy(&m, &x, &y);
    assert!(clean >= 0.9, "model not trained: clean accuracy {clean}");
    let eps = per_sample_eps(&[0.1; K as usize], &y);
    let x_adv = pgd(&m, &x, &y, &eps, None, &cfg(0.025, 10, true));
    let adv = accuracy(&m, &x_adv, &y);
    eprintln!("clean accuracy {clean}, PGD accuracy {adv}");
    assert!(
        adv <= clean - 0.3,
        "PGD did not hurt: clean {clean}, adversarial {adv}"
    );
    // A random point in the same ball hurts far less than PGD (the gradient matters).
    let x_rand = pgd(&m, &x, &y, &eps, None, &cfg(0.025, 0, true));
    assert!(accuracy(&m, &x_rand, &y) > adv + 0.2);
}

#[test]
fn targeted_pgd_raises_the_target_probability() {
    let _serial = serial();
    let (m, x, y) = trained_model();
    let target = (&y + 1).remainder(K);
    let eps = per_sample_eps(&[0.1; K as usize], &y);
    let p_target = |xx: &Tensor| -> f64 {
        tch::no_grad(|| {
            m.forward_t(xx, false)
                .softmax(-1, Kind::Float)
                .gather(1, &target.unsqueeze(1), false)
                .mean(Kind::Float)
                .double_value(&[])
        })
    };
    let before = p_target(&x);
    let x_adv = pgd(&m, &x, &y, &eps, Some(&target), &cfg(0.025, 10, true));
    assert_in_balls(&x, &x_adv, &eps);
    let after = p_target(&x_adv);
    eprintln!("mean target probability {before} -> {after}");
    assert!(
        after > before + 0.3,
        "target probability {before} -> {after}"
    );
    let hit = predict(&m, &x_adv, 64)
        .iter()
        .zip(Vec::<i64>::try_from(&target).unwrap())
        .filter(|(p, t)| **p == *t)
        .count();
    eprintln!("{hit}/60 reach the target");
    assert!(hit as f64 / 60.0 > 0.4, "only {hit}/60 reach the target");
}

#[test]
fn fgsm_takes_one_full_eps_step() {
    let _serial = serial();
    let (m, x, y) = trained_model();
    let eps = per_sample_eps(&[0.02, 0.04, 0.06], &y);
    let x_adv = fgsm(&m, &x, &y, &eps, false);
    assert_in_balls(&x, &x_adv, &eps);
    let eps_v = Vec::<f64>::try_from(&eps.to_kind(Kind::Double)).unwrap();
    for (d, e) in per_sample_linf(&x_adv, &x).iter().zip(&eps_v) {
        assert!((d - e).abs() < 1e-6, "FGSM moved {d}, eps {e}");
    }
    let loss = |xx: &Tensor| {
        tch::no_grad(|| {
            m.forward_t(xx, false)
                .cross_entropy_for_logits(&y)
                .double_value(&[])
        })
    };
    assert!(loss(&x_adv) > loss(&x), "FGSM did not increase the loss");
}

#[test]
fn zero_steps_returns_x_or_a_random_point_in_the_ball() {
    let _serial = serial();
    let (m, x, y) = trained_model();
    let eps = per_sample_eps(&[0.05; K as usize], &y);
    let same = pgd(&m, &x, &y, &eps, None, &cfg(0.01, 0, false));
    assert_eq!((&same - &x).abs().max().double_value(&[]), 0.0);
    let start = pgd(&m, &x, &y, &eps, None, &cfg(0.01, 0, true));
    assert_in_balls(&x, &start, &eps);
    assert!(
        (&start - &x).abs().max().double_value(&[]) > 0.04,
        "no random start"
    );
}

fn bn_buffers(m: &Model) -> Vec<(String, Tensor)> {
    m.named_state()
        .into_iter()
        .filter(|(n, _)| n.contains("running_"))
        .map(|(n, t)| (n, t.copy()))
        .collect()
}

#[test]
fn bn_mode_is_explicit_and_parameters_get_no_gradient() {
    let _serial = serial();
    tch::manual_seed(1);
    let m = Model::new(Arch::PreactResnet18, 1, 3, 8, None, Device::Cpu).unwrap();
    let x = Tensor::rand([6, 1, 8, 8], (Kind::Float, Device::Cpu));
    let y = Tensor::from_slice(&[0i64, 1, 2, 0, 1, 2]);
    let eps = per_sample_eps(&[8.0 / 255.0; 3], &y);
    let weights: Vec<Tensor> =
        m.vs.trainable_variables()
            .iter()
            .map(|t| t.detach().copy())
            .collect();
    let changed = |before: &[(String, Tensor)]| -> usize {
        let now = bn_buffers(&m);
        before
            .iter()
            .zip(&now)
            .filter(|((_, a), (_, b))| (a - b).abs().max().double_value(&[]) > 0.0)
            .count()
    };

    // The same 3-step PGD with BatchNorm in eval mode, then in train mode.
    let attack = |bn_train: bool| {
        let cfg = PgdConfig {
            alpha: 2.0 / 255.0,
            steps: 3,
            random_start: true,
            bn_train,
        };
        let _ = pgd(&m, &x, &y, &eps, None, &cfg);
    };
    let before = bn_buffers(&m);
    attack(false);
    assert_eq!(
        changed(&before),
        0,
        "eval-mode attack changed BN running stats"
    );

    attack(true);
    assert_eq!(
        changed(&before),
        before.len(),
        "train-mode attack must update every BN buffer"
    );

    let _ = fgsm(&m, &x, &y, &eps, false);
    for (w, now) in weights.iter().zip(m.vs.trainable_variables()) {
        assert!(
            !now.grad().defined() || now.grad().abs().max().double_value(&[]) == 0.0,
            "attack accumulated a parameter gradient"
        );
        assert_eq!(
            (w - &now).abs().max().double_value(&[]),
            0.0,
            "attack changed a weight"
        );
    }
}
