//! AutoAttack components (APGD-CE/-T, FAB-T, Square) and the sequential driver: L-inf ball and
//! image range respected, each attack lowers the accuracy of a trained tiny model, AA is at
//! least as strong as its own APGD-CE stage, Square breaks a model with zero gradients, the
//! pure schedules and losses match algorithms.md §4, and few-class / all-misclassified batches
//! run without panicking. Iterations and queries are reduced to keep CPU time small.

use std::sync::Mutex;

use fairtat::attacks::{
    apgd, apgd_checkpoints, ce_loss, dlr_loss, dlr_loss_targeted, fab_targeted, margin,
    p_selection, per_sample_eps, pgd, projection_linf, square, window_side, AaStage, AaVersion,
    ApgdConfig, ApgdLoss, AutoAttack, AutoAttackConfig, Classifier, FabConfig, PgdConfig,
    SquareConfig,
};
use fairtat::config::Arch;
use fairtat::models::Model;
use tch::nn::OptimizerConfig;
use tch::{nn, Device, Kind, Tensor};

const SIDE: i64 = 16;
const EPS: f64 = 0.1;

/// tch's RNG is process-global and the harness runs tests in parallel threads; holding this
/// lock for a whole test keeps each test's random draws deterministic.
static RNG_LOCK: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    let guard = RNG_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    // Tests run one at a time under the lock; one intra-op thread avoids oversubscribing a
    // small, busy CI machine (tiny tensors gain nothing from more).
    tch::set_num_threads(1);
    guard
}

/// A separable synthetic task with `k` classes: a fixed random template per class plus noise.
fn synthetic(templates: &Tensor, k: i64, n: i64) -> (Tensor, Tensor) {
    let y = Tensor::randint(k, [n], (Kind::Int64, Device::Cpu));
    let noise = Tensor::rand([n, 1, SIDE, SIDE], (Kind::Float, Device::Cpu));
    let x = (templates.index_select(0, &y) * 0.6 + noise * 0.4).clamp(0.0, 1.0);
    (x, y)
}

/// Plain data (name, shape, values) is Sync, unlike `Tensor`, so it can live in a static.
type Named = Vec<(String, Vec<i64>, Vec<f32>)>;
static TRAINED: Mutex<Vec<(i64, Named)>> = Mutex::new(Vec::new());

/// SmallCNN with `k` classes trained briefly on the synthetic task, plus a held-out batch of 60.
/// Trained once per `k` and test binary; later calls copy the saved weights. Callers hold
/// [`serial`].
fn trained_model(k: i64) -> (Model, Tensor, Tensor) {
    let to_data = |n: &str, t: &Tensor| {
        let v = Vec::<f32>::try_from(&t.flatten(0, -1).to_kind(Kind::Float)).unwrap();
        (n.to_string(), t.size(), v)
    };
    tch::manual_seed(k);
    let m = Model::new(
        Arch::Smallcnn,
        1,
        k as usize,
        SIDE as usize,
        None,
        Device::Cpu,
    )
    .unwrap();
    let mut cache = TRAINED.lock().unwrap_or_else(|p| p.into_inner());
    if !cache.iter().any(|(kk, _)| *kk == k) {
        let templates = Tensor::rand([k, 1, SIDE, SIDE], (Kind::Float, Device::Cpu));
        let mut opt = nn::Adam::default().build(&m.vs, 2e-3).unwrap();
        for _ in 0..60 {
            let (x, y) = synthetic(&templates, k, 32);
            opt.backward_step(&m.forward_t(&x, true).cross_entropy_for_logits(&y));
        }
        let (x, y) = synthetic(&templates, k, 60);
        let mut saved: Named = m
            .named_state()
            .iter()
            .map(|(n, t)| to_data(n, &t.detach()))
            .collect();
        saved.push(to_data("data.x", &x));
        saved.push(to_data("data.y", &y));
        cache.push((k, saved));
    }
    let saved = &cache.iter().find(|(kk, _)| *kk == k).unwrap().1;
    let get = |name: &str| {
        let (_, shape, values) = saved.iter().find(|(n, _, _)| n == name).unwrap();
        Tensor::from_slice(values).view(shape.as_slice())
    };
    tch::no_grad(|| {
        for (name, mut t) in m.named_state() {
            t.copy_(&get(&name));
        }
    });
    (m, get("data.x"), get("data.y").to_kind(Kind::Int64))
}

/// Per-point "still correctly classified".
fn correct<C: Classifier>(m: &C, x: &Tensor, y: &Tensor) -> Vec<bool> {
    let pred = tch::no_grad(|| m.logits(x).argmax(-1, false));
    let eq = Vec::<i64>::try_from(&pred.eq_tensor(y).to_kind(Kind::Int64)).unwrap();
    eq.into_iter().map(|v| v != 0).collect()
}

fn count(flags: &[bool]) -> usize {
    flags.iter().filter(|f| **f).count()
}

fn assert_valid(x: &Tensor, x_adv: &Tensor, eps: f64) {
    assert_eq!(x.size(), x_adv.size());
    assert!(!x_adv.requires_grad(), "result must be detached");
    let d = (x_adv - x).abs().max().double_value(&[]);
    assert!(d <= eps + 1e-6, "|delta|_inf {d} > eps {eps}");
    let (lo, hi) = (x_adv.min().double_value(&[]), x_adv.max().double_value(&[]));
    assert!(lo >= 0.0 && hi <= 1.0, "left [0,1]: [{lo}, {hi}]");
}

/// `x_adv` is a valid attack on `x` (see [`assert_valid`]) that leaves at least `by` fewer of
/// the points correct than `clean`.
fn assert_breaks(name: &str, m: &Model, (x, y): (&Tensor, &Tensor), x_adv: &Tensor, by: usize) {
    assert_valid(x, x_adv, EPS);
    let clean = count(&correct(m, x, y));
    let robust = count(&correct(m, x_adv, y));
    eprintln!("{name}: clean {clean}/60, robust {robust}/60");
    assert!(
        robust + by <= clean,
        "{name} did not hurt: {clean} -> {robust}"
    );
}

fn apgd_cfg(loss: ApgdLoss, n_iter: usize) -> ApgdConfig {
    ApgdConfig {
        n_iter,
        seed: 3,
        n_target_classes: 2,
        ..ApgdConfig::new(EPS, loss)
    }
}

/// A reduced standard AA: same stages, `n_iter` iterations, `n_queries` Square queries.
fn small_aa(eps: f64, seed: u64, n_iter: usize, n_queries: usize) -> AutoAttackConfig {
    AutoAttackConfig {
        eps,
        stages: vec![
            AaStage::ApgdCe {
                n_iter,
                n_restarts: 1,
            },
            AaStage::ApgdT {
                n_iter,
                n_restarts: 1,
                n_targets: 9,
            },
            AaStage::FabT {
                n_iter,
                n_restarts: 1,
                n_targets: 9,
            },
            AaStage::Square {
                n_queries,
                n_restarts: 1,
            },
        ],
        seed,
    }
}

#[test]
fn dlr_and_margin_match_the_formulas_on_hand_made_logits() {
    let _serial = serial();
    let z = Tensor::from_slice(&[1.0f32, 5.0, 3.0, 0.0, 4.0, 2.0, 1.0, 3.0]).view([2, 4]);
    let y = Tensor::from_slice(&[1i64, 1]);
    let t = Tensor::from_slice(&[2i64, 3]);
    let v = |t: Tensor| Vec::<f64>::try_from(&t.to_kind(Kind::Double)).unwrap();
    let close = |a: &[f64], b: &[f64]| a.iter().zip(b).all(|(a, b)| (a - b).abs() < 1e-5);
    // Row 0: y is the top class, so the other logit is the 2nd (3); sorted 5,3,1,0.
    // Row 1: the top other logit is 4; sorted 4,3,2,1.
    let dlr = v(dlr_loss(&z, &y));
    assert!(
        close(
            &dlr,
            &[-(5.0 - 3.0) / (5.0 - 1.0), -(2.0 - 4.0) / (4.0 - 2.0)]
        ),
        "{dlr:?}"
    );
    let tdlr = v(dlr_loss_targeted(&z, &y, &t));
    let want = [
        -(5.0 - 3.0) / (5.0 - 0.5 * (1.0 + 0.0)),
        -(2.0 - 3.0) / (4.0 - 0.5 * (2.0 + 1.0)),
    ];
    assert!(close(&tdlr, &want), "{tdlr:?} vs {want:?}");
    let m = v(margin(&z, &y));
    assert!(close(&m, &[2.0, -2.0]), "{m:?}");
    let lse = |r: &[f64]| r.iter().map(|v| v.exp()).sum::<f64>().ln();
    let ce = v(ce_loss(&z, &y));
    assert!(close(
        &ce,
        &[
            lse(&[1.0, 5.0, 3.0, 0.0]) - 5.0,
            lse(&[4.0, 2.0, 1.0, 3.0]) - 2.0
        ]
    ));
}

#[test]
fn apgd_checkpoints_and_square_schedule_match_the_reference() {
    assert_eq!(apgd_checkpoints(100), vec![22, 41, 57, 70, 80, 87, 93, 99]);
    assert!(apgd_checkpoints(10).iter().all(|&c| c <= 10));
    let its = [
        0, 10, 11, 50, 51, 200, 201, 500, 501, 1000, 1001, 2000, 2001, 4000, 4001,
    ];
    let div = [1, 1, 2, 2, 4, 4, 8, 8, 16, 16, 32, 32, 64, 64, 128];
    for (it, d) in its.iter().zip(div) {
        let p = p_selection(0.8, *it, 5000, false);
        assert!((p - 0.8 / d as f64).abs() < 1e-12, "it {it}: p {p}");
    }
    assert!((p_selection(0.8, 6001, 10000, false) - 0.8 / 256.0).abs() < 1e-12);
    assert!((p_selection(0.8, 9000, 10000, false) - 0.8 / 512.0).abs() < 1e-12);
    // resc_schedule=True runs twice as fast with 5000 queries: query 2500 acts as 5000.
    assert!((p_selection(0.8, 2500, 5000, true) - 0.8 / 128.0).abs() < 1e-12);
    let phases = [0, 11, 51, 201, 501, 1001, 2001, 4001];
    let sides: Vec<usize> = phases
        .iter()
        .map(|&it| window_side(p_selection(0.8, it, 5000, false), 32, 32))
        .collect();
    assert_eq!(sides, vec![29, 20, 14, 10, 7, 5, 4, 3]);
    assert_eq!(window_side(0.8, 4, 64), 4, "capped at the shorter side");
}

#[test]
fn projection_linf_reaches_the_hyperplane_inside_the_box() {
    let _serial = serial();
    tch::manual_seed(5);
    let (n, d) = (64, 50);
    let t = Tensor::rand([n, d], (Kind::Float, Device::Cpu));
    let w = Tensor::randn([n, d], (Kind::Float, Device::Cpu));
    // Target values between w.t and w.(a corner), so the box can reach the plane.
    let corner = w.gt(0.0).to_kind(Kind::Float);
    let (wt, wc) = (
        (&w * &t).sum_dim_intlist(1, false, Kind::Float),
        (&w * &corner).sum_dim_intlist(1, false, Kind::Float),
    );
    let b = &wt + (&wc - &wt) * 0.3;
    let step = projection_linf(&t, &w, &b);
    let z = &t + &step;
    let reached = (&w * &z).sum_dim_intlist(1, false, Kind::Float) - &b;
    assert!(
        reached.abs().max().double_value(&[]) < 1e-3,
        "off the plane by {}",
        reached.abs().max().double_value(&[])
    );
    assert!(z.min().double_value(&[]) >= -1e-6 && z.max().double_value(&[]) <= 1.0 + 1e-6);
    // No L-inf step shorter than |w.t - b| / ||w||_1 reaches the plane: the projection is
    // within a small factor of that bound when the box does not bind much.
    let lower = (&wt - &b).abs() / w.abs().sum_dim_intlist(1, false, Kind::Float);
    let got = step.abs().amax([1i64].as_slice(), false);
    assert!(
        (&got - &lower + 1e-5).min().double_value(&[]) >= 0.0,
        "shorter than possible"
    );
}

#[test]
fn apgd_ce_and_apgd_t_stay_in_the_ball_and_lower_accuracy() {
    let _serial = serial();
    let (m, x, y) = trained_model(5);
    let clean = count(&correct(&m, &x, &y));
    assert!(clean >= 50, "model not trained: {clean}/60 correct");
    for loss in [
        ApgdLoss::Ce,
        ApgdLoss::Dlr,
        ApgdLoss::TargetedDlr,
        ApgdLoss::TargetedCe,
    ] {
        let x_adv = apgd(&m, &x, &y, &apgd_cfg(loss, 10)).unwrap();
        assert_breaks(&format!("{loss:?}"), &m, (&x, &y), &x_adv, 20);
    }
    // Same seed, same result.
    let a = apgd(&m, &x, &y, &apgd_cfg(ApgdLoss::Ce, 5)).unwrap();
    let b = apgd(&m, &x, &y, &apgd_cfg(ApgdLoss::Ce, 5)).unwrap();
    assert_eq!(
        (a - b).abs().max().double_value(&[]),
        0.0,
        "not deterministic"
    );
}

#[test]
fn fab_t_stays_in_the_ball_and_lowers_accuracy() {
    let _serial = serial();
    let (m, x, y) = trained_model(5);
    let cfg = FabConfig {
        n_iter: 10,
        n_target_classes: 1,
        ..FabConfig::new(EPS)
    };
    let x_adv = fab_targeted(&m, &x, &y, &cfg);
    assert_breaks("FAB-T", &m, (&x, &y), &x_adv, 20);
    // FAB minimises the distance: with a tiny eps almost nothing counts as broken.
    let tiny = fab_targeted(&m, &x, &y, &FabConfig { eps: 1e-3, ..cfg });
    assert_valid(&x, &tiny, 1e-3);
}

#[test]
fn square_stays_in_the_ball_and_lowers_accuracy() {
    let _serial = serial();
    let (m, x, y) = trained_model(5);
    let cfg = SquareConfig {
        n_queries: 500,
        seed: 1,
        ..SquareConfig::new(EPS)
    };
    let x_adv = square(&m, &x, &y, &cfg);
    assert_breaks("Square", &m, (&x, &y), &x_adv, 15);
}

#[test]
fn autoattack_is_at_least_as_strong_as_its_apgd_ce_stage_and_pgd() {
    let _serial = serial();
    let (m, x, y) = trained_model(5);
    // A smaller radius than elsewhere, so that the stages after APGD-CE have points to attack.
    let eps = 0.05;
    let aa = AutoAttack::new(small_aa(eps, 7, 20, 300));
    let mut calls = Vec::new();
    let res = aa
        .run(&m, &x, &y, |s: &str, done, total| {
            calls.push((s.to_string(), done, total))
        })
        .unwrap();
    let x_adv = res.x_adv.as_ref().unwrap();
    assert_valid(&x, x_adv, eps);
    assert_eq!(
        res.stages,
        ["clean", "apgd-ce", "apgd-t", "fab-t", "square"]
    );
    assert_eq!(calls.len(), 5);
    assert_eq!(calls[4], ("done".to_string(), 4, 4));
    // The reported flags agree with the final images.
    assert_eq!(res.robust_flags(), correct(&m, x_adv, &y));

    let ce = apgd(
        &m,
        &x,
        &y,
        &ApgdConfig {
            n_iter: 20,
            seed: 7,
            ..ApgdConfig::new(eps, ApgdLoss::Ce)
        },
    )
    .unwrap();
    let ce_robust = count(&correct(&m, &ce, &y));
    let eps_t = per_sample_eps(&[eps; 5], &y);
    let pgd_cfg = PgdConfig {
        alpha: eps / 4.0,
        steps: 10,
        random_start: true,
        bn_train: false,
    };
    let x_pgd = pgd(&m, &x, &y, &eps_t, None, &pgd_cfg);
    let pgd_robust = count(&correct(&m, &x_pgd, &y));
    let by_stage = |s: &str| {
        res.broken_by
            .iter()
            .filter(|b| b.as_deref() == Some(s))
            .count()
    };
    eprintln!(
        "robust of 60: AA {}, APGD-CE alone {ce_robust}, PGD-10 {pgd_robust}; broken by clean {}, apgd-ce {}, apgd-t {}, fab-t {}, square {}",
        res.robust_count(),
        by_stage("clean"),
        by_stage("apgd-ce"),
        by_stage("apgd-t"),
        by_stage("fab-t"),
        by_stage("square")
    );
    // AA's first stage is this very APGD-CE run (same seed, same points), later stages can
    // only break more points: guaranteed.
    assert!(res.robust_count() <= ce_robust);
    // Not guaranteed point by point (PGD may find points AA misses), but AA's 4 stages
    // dominate 10-step PGD by a clear margin here.
    assert!(
        res.robust_count() <= pgd_robust,
        "AA {} vs PGD {pgd_robust}",
        res.robust_count()
    );

    // Per-stage metrics: monotone, first is clean accuracy, last is the AA robust accuracy.
    let metrics = res.per_stage_metrics();
    assert_eq!(metrics.len(), 5);
    assert!((metrics[0].metrics.overall - count(&correct(&m, &x, &y)) as f64 / 60.0).abs() < 1e-12);
    assert!((metrics[4].metrics.overall - res.robust_accuracy()).abs() < 1e-12);
    for w in metrics.windows(2) {
        assert!(w[1].metrics.overall <= w[0].metrics.overall);
        for (a, b) in w[1].metrics.class_acc.iter().zip(&w[0].metrics.class_acc) {
            assert!(a <= b);
        }
    }
    let json = serde_json::to_string(&res).unwrap();
    assert!(json.contains("\"broken_by\"") && !json.contains("x_adv"));
}

/// SmallCNN behind an input quantisation: `round` has a zero gradient everywhere, so gradient
/// attacks get no signal, but small changes still move the prediction.
struct Quantized<'a>(&'a Model);

impl Classifier for Quantized<'_> {
    fn logits(&self, x: &Tensor) -> Tensor {
        self.0.forward_t(&((x * 64.0).round() / 64.0), false)
    }
    fn device(&self) -> Device {
        self.0.device()
    }
}

#[test]
fn square_breaks_a_zero_gradient_model_where_apgd_fails() {
    let _serial = serial();
    let (m, x, y) = trained_model(5);
    let q = Quantized(&m);
    let xg = x.copy().set_requires_grad(true);
    let g = Tensor::run_backward(&[q.logits(&xg).sum(Kind::Float)], &[&xg], false, false);
    assert_eq!(
        g[0].abs().max().double_value(&[]),
        0.0,
        "gradient is not zero"
    );

    let clean = count(&correct(&q, &x, &y));
    let x_ce = apgd(&q, &x, &y, &apgd_cfg(ApgdLoss::Ce, 10)).unwrap();
    assert_valid(&x, &x_ce, EPS);
    let ce_robust = count(&correct(&q, &x_ce, &y));
    let x_sq = square(
        &q,
        &x,
        &y,
        &SquareConfig {
            n_queries: 500,
            seed: 1,
            ..SquareConfig::new(EPS)
        },
    );
    assert_valid(&x, &x_sq, EPS);
    let sq_robust = count(&correct(&q, &x_sq, &y));
    eprintln!("zero-gradient model: clean {clean}/60, APGD-CE {ce_robust}, Square {sq_robust}");
    assert!(
        ce_robust + 5 >= clean,
        "APGD-CE should get (almost) nowhere: {clean} -> {ce_robust}"
    );
    assert!(
        sq_robust + 15 <= ce_robust,
        "Square {sq_robust} vs APGD-CE {ce_robust}"
    );
}

#[test]
fn few_classes_and_all_misclassified_batches_run_through_autoattack() {
    let _serial = serial();
    // Untrained models: only "does not panic" matters here.
    tch::manual_seed(11);
    let x = Tensor::rand([24, 1, SIDE, SIDE], (Kind::Float, Device::Cpu));
    for k in [2i64, 3] {
        let m = Model::new(
            Arch::Smallcnn,
            1,
            k as usize,
            SIDE as usize,
            None,
            Device::Cpu,
        )
        .unwrap();
        let y = Tensor::arange(24, (Kind::Int64, Device::Cpu)).remainder(k);
        let res = AutoAttack::new(small_aa(EPS, 0, 5, 30))
            .run(&m, &x, &y, |_: &str, _, _| {})
            .unwrap();
        assert_valid(&x, res.x_adv.as_ref().unwrap(), EPS);
        eprintln!(
            "K={k}: robust {}/24, notes {:?}",
            res.robust_count(),
            res.notes
        );
        assert!(
            res.notes.iter().any(|n| n.contains("targeted CE")),
            "{:?}",
            res.notes
        );
        assert_eq!(res.per_stage_metrics().len(), 5);
        // Every point misclassified: nothing left to attack after "clean".
        let pred = tch::no_grad(|| m.forward_t(&x, false).argmax(-1, false));
        let wrong = (pred + 1).remainder(k);
        let res = AutoAttack::new(small_aa(EPS, 0, 5, 30))
            .run(&m, &x, &wrong, |_: &str, _, _| {})
            .unwrap();
        assert!(res.broken_by.iter().all(|b| b.as_deref() == Some("clean")));
        assert_eq!(res.robust_count(), 0);
        // Stand-alone targeted DLR refuses instead of panicking.
        assert!(apgd(&m, &x, &y, &apgd_cfg(ApgdLoss::TargetedDlr, 2)).is_err());
    }
}

#[test]
fn versions_and_named_subsets() {
    let std = AutoAttackConfig::new(8.0 / 255.0, AaVersion::Standard, 0);
    let names: Vec<&str> = std.stages.iter().map(AaStage::name).collect();
    assert_eq!(names, ["apgd-ce", "apgd-t", "fab-t", "square"]);
    assert!(std.stages.contains(&AaStage::Square {
        n_queries: 5000,
        n_restarts: 1
    }));
    let only = std.clone().only(&["square"]).unwrap();
    assert_eq!(
        only.stages,
        vec![AaStage::Square {
            n_queries: 5000,
            n_restarts: 1
        }]
    );
    assert!(std.only(&["pgd"]).is_err());
    let quick = AutoAttackConfig::new(8.0 / 255.0, AaVersion::Quick, 0);
    assert!(quick.stages.len() < 4);
}
