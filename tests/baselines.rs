//! Baselines pinned to their reference code (CPU, tiny synthetic data, fixed seeds):
//! - BatchNorm running-statistics updates per step: attack forwards in train mode, the loss's
//!   forwards (TRADES: natural, adversarial, natural) and `train.clean_forwards` (CFA's
//!   `train_epoch`: 1, FAIR-TAT's: 2, Rice et al.: 0), counted from the running mean itself;
//! - FAT's attack BatchNorm mode (train by default, as CFA's `fat_loss`);
//! - TRADES' BN update order;
//! - FRL refuses random weights; a grid's FRL row starts from its TRADES run's checkpoint;
//! - no selection on the test set without a validation split; `eval.every`, `eval.models`.

use fairtat::config::{from_toml_str, RunSpec};
use fairtat::data::{make_batch, Dataset, Splits};
use fairtat::runs::events::MemorySink;
use fairtat::runs::{EpochRecord, EventSink};
use fairtat::train::{Outcome, TrainError};
use tch::{Device, Kind, Tensor};
pub use tiny_run::TINY;
use tiny_run::{epoch_records, train_into};

#[path = "baselines/grid_init.rs"]
mod grid_init;
#[path = "baselines/selection.rs"]
mod selection;
#[path = "common/tiny_run.rs"]
mod tiny_run;

/// tch's RNG is process-global and tests run in parallel threads: each test holds this lock.
static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

fn spec(sets: &[&str]) -> RunSpec {
    let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
    from_toml_str("", &sets).unwrap()
}

pub fn tiny_splits(side: usize, val_per_class: usize) -> Splits {
    Splits {
        train: Dataset::synthetic(10, 4, 1, side, side, 21),
        val: Dataset::synthetic(10, val_per_class, 1, side, side, 22),
        test: Dataset::synthetic(10, 4, 1, side, side, 23),
    }
}

/// Train `spec` on `splits` into `dir`; the outcome, epoch records and every event.
pub fn run_spec(
    spec: &RunSpec,
    splits: Splits,
    dir: &std::path::Path,
    sink: &mut dyn EventSink,
) -> Result<Outcome, TrainError> {
    train_into(spec, splits, dir, false, sink)
}

pub fn epochs(sink: &MemorySink) -> Vec<EpochRecord> {
    epoch_records(&sink.events)
}

/// Updates of `layer1.0.bn1`'s running mean during one epoch of one batch, with learning rate
/// and epsilon 0 so that every train-mode forward sees the same input through the same weights:
/// the running mean after n updates from 0 is `mu (1 - 0.9^n)`, mu the batch mean of
/// `conv1(x)` (PreAct ResNet-18's first BatchNorm input).
fn bn_updates_per_step(sets: &[&str]) -> f64 {
    let mut all: Vec<&str> = TINY.to_vec();
    all.extend([
        "model.arch=preact-resnet18",
        "train.batch_size=40",
        "train.epochs=1",
        "train.lr=0",
        "train.ema_decay=0",
        "attack.eps=0",
        "eval.steps=1",
        "eval.final_steps=1",
    ]);
    all.extend(sets);
    let s = spec(&all);
    let splits = tiny_splits(8, 1);
    let x = make_batch(&splits.train, &(0..40).collect::<Vec<_>>(), None).0;
    let tmp = tempfile::tempdir().unwrap();
    let out = run_spec(&s, splits, tmp.path(), &mut MemorySink::default()).unwrap();
    assert!(matches!(out, Outcome::Finished { epochs_done: 1 }));
    let ck = Tensor::read_safetensors(tmp.path().join("checkpoints/last.safetensors")).unwrap();
    let get = |n: &str| ck.iter().find(|(k, _)| k == n).unwrap().1.shallow_clone();
    let w = get("conv1.weight");
    let mu = x
        .conv2d(&w, None::<Tensor>, [1, 1], [1, 1], [1, 1], 1)
        .mean_dim([0i64, 2, 3].as_slice(), false, Kind::Float);
    let rm = get("layer1.0.bn1.running_mean");
    let mu: Vec<f64> = Vec::try_from(&mu.to_kind(Kind::Double)).unwrap();
    let rm: Vec<f64> = Vec::try_from(&rm.to_kind(Kind::Double)).unwrap();
    let top = mu.iter().fold(0.0f64, |a, b| a.max(b.abs()));
    let mut n: Vec<f64> = mu
        .iter()
        .zip(&rm)
        .filter(|(m, _)| m.abs() > 0.2 * top)
        .map(|(m, r)| (1.0 - r / m).ln() / 0.9f64.ln())
        .collect();
    assert!(n.len() > 4, "{n:?}");
    n.sort_by(f64::total_cmp);
    n[n.len() / 2]
}

#[test]
fn bn_updates_per_step_follow_each_methods_reference() {
    let _g = serial();
    // (settings, train-mode forwards per step): attack (steps = 2, when its BN is in train mode)
    // + the loss's forwards + train.clean_forwards.
    let cases: [(&[&str], f64); 9] = [
        // Rice et al.: PGD in train mode, CE; no clean forward.
        (&["method.name=pgd-at"], 2.0 + 1.0),
        // CFA's AT (the Table 1 AT rows): one clean forward after the step.
        (
            &["method.name=pgd-at", "train.clean_forwards=1"],
            2.0 + 1.0 + 1.0,
        ),
        // FAIR-TAT's code: clean forwards before and after opt.step().
        (&["method.name=fair-tat"], 2.0 + 1.0 + 2.0),
        // TRADES (CFA's code): eval-mode KL attack; natural, adversarial, natural; one clean.
        (&["method.name=trades"], 3.0 + 1.0),
        (&["method.name=cfa"], 3.0 + 1.0),
        (&["method.name=fair-tat-trades"], 3.0 + 2.0),
        // FAT: CFA's fat_loss attacks in train mode (tau 3 > steps: nobody freezes).
        (&["method.name=fat"], 2.0 + 1.0 + 1.0),
        (&["method.name=fair-tat-fat"], 2.0 + 1.0 + 2.0),
        // Official FAT's eval-mode attack remains an option.
        (&["method.name=fat", "attack.bn_mode=eval"], 1.0 + 1.0),
    ];
    for (sets, want) in cases {
        let got = bn_updates_per_step(sets);
        assert!(
            (got - want).abs() < 0.05,
            "{sets:?}: {got} updates, want {want}"
        );
    }
}

#[test]
fn clean_forwards_defaults_and_range() {
    for (m, n) in [
        ("pgd-at", 0),
        ("fair-tat", 2),
        ("fair-tat-cfa", 2),
        ("fair-tat-fat", 2),
        ("trades", 1),
        ("fat", 1),
        ("cfa", 1),
        ("wat", 0),
        ("bat", 0),
    ] {
        assert_eq!(
            spec(&[&format!("method.name={m}")]).train.clean_forwards,
            n,
            "{m}"
        );
    }
    let fat = spec(&["method.name=fat"]);
    assert_eq!(fat.attack.bn_mode, fairtat::config::BnMode::Train);
    let e = from_toml_str("", &["train.clean_forwards=3".into()]).unwrap_err();
    assert_eq!(e.key(), Some("train.clean_forwards"));
    // The key it replaced still reads, from older run directories.
    let old = "[method]\nname = \"fair-tat\"\nclean_forward_after_step = true\n";
    assert_eq!(from_toml_str(old, &[]).unwrap().train.clean_forwards, 1);
}

/// Running mean and variance of every BatchNorm layer.
fn bn_stats(m: &fairtat::models::Model) -> Vec<(String, Tensor)> {
    m.named_state()
        .into_iter()
        .filter(|(n, _)| n.contains("running_"))
        .collect()
}

fn max_diff(a: &[(String, Tensor)], b: &[(String, Tensor)]) -> f64 {
    a.iter()
        .zip(b)
        .map(|((_, x), (_, y))| (x - y).abs().max().double_value(&[]))
        .fold(0.0, f64::max)
}

#[test]
fn trades_updates_bn_natural_adversarial_natural() {
    use fairtat::attacks::per_sample_eps;
    use fairtat::methods::{build, trades_adversarial, train_pgd_config, Batch};
    use fairtat::models::Model;
    let _g = serial();
    let s = spec(&[
        "method.name=trades",
        "model.arch=preact-resnet18",
        "attack.eps=0.3",
        "attack.alpha=0.1",
        "attack.steps=2",
    ]);
    let fresh = || {
        tch::manual_seed(1);
        Model::new(s.model.arch, 1, 10, 8, None, Device::Cpu).unwrap()
    };
    let (a, replay, short) = (fresh(), fresh(), fresh());
    let ds = Dataset::synthetic(10, 2, 1, 8, 8, 3);
    let (x, y) = make_batch(&ds, &(0..20).collect::<Vec<_>>(), None);
    let labels = Vec::<i64>::try_from(&y).unwrap();
    let batch = Batch { x, y, labels };
    // The KL attack runs in eval mode, so it leaves the statistics alone and replays exactly.
    let eps = per_sample_eps(&[0.3; 10], &batch.y);
    tch::manual_seed(9);
    let x_adv = trades_adversarial(
        &replay,
        &batch.x,
        &batch.y,
        &eps,
        None,
        &train_pgd_config(&s.attack),
    );
    tch::manual_seed(9);
    let mut method = build(&s);
    method.begin_epoch(0, None);
    let _ = method
        .step(&a, &batch, &mut fairtat::util::Rng::new(1))
        .unwrap();
    tch::no_grad(|| {
        for x in [&batch.x, &x_adv, &batch.x] {
            let _ = replay.forward_t(x, true);
        }
        for x in [&batch.x, &x_adv] {
            let _ = short.forward_t(x, true);
        }
    });
    let d = max_diff(&bn_stats(&a), &bn_stats(&replay));
    assert!(d < 1e-5, "natural, adversarial, natural: {d}");
    let d2 = max_diff(&bn_stats(&a), &bn_stats(&short));
    assert!(d2 > 1e-3, "two forwards would leave other statistics: {d2}");
}
