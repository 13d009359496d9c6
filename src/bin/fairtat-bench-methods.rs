//! `make bench`, the methods: seconds per training step (the method's attack and loss, the
//! backward pass and the SGD step) of every method, SmallCNN on 1x28x28 at batch 128 with PGD-10,
//! as a ratio to PGD-AT's step on the same model and data; and the host-side cost per batch of
//! CFOL's class sampler (one batch's draws and its update). Per-epoch work outside the step
//! (WAT's and FRL's validation passes, DAFA's one-off weights) is not included.

use std::time::Instant;

use clap::Parser;
use tch::{Device, Kind, Tensor};

use fairtat::config::{from_toml_str, MethodKind};
use fairtat::methods::{build, Batch};
use fairtat::models::Model;
use fairtat::train::class_sampler::ClassSampler;
use fairtat::train::Sgd;
use fairtat::util::Rng;

#[derive(Parser)]
struct Args {
    /// Timed steps per method (after one warm-up step).
    #[arg(long, default_value_t = 5)]
    iters: usize,
    /// Only these methods (comma-separated names); all by default.
    #[arg(long)]
    only: Option<String>,
}

/// Seconds per step of `method` (its defaults, PGD-10, eps 8/255, step 2/255).
fn seconds_per_step(method: MethodKind, iters: usize) -> f64 {
    let sets = [
        format!("method.name={method}"),
        "train.init_checkpoint=unused.safetensors".into(),
        "attack.steps=10".into(),
        "attack.eps=8/255".into(),
        "attack.alpha=2/255".into(),
    ];
    let spec = from_toml_str("", &sets).expect("spec");
    tch::manual_seed(0);
    let model = Model::new(spec.model.arch, 1, 10, 28, None, Device::Cpu).expect("model");
    let mut opt = Sgd::new(&model.vs, 0.01, 0.9, 5e-4);
    let mut m = build(&spec);
    m.begin_epoch(0, None);
    let x = Tensor::rand([128, 1, 28, 28], (Kind::Float, Device::Cpu));
    let labels: Vec<i64> = (0..128).map(|i| i % 10).collect();
    let batch = Batch {
        x,
        y: Tensor::from_slice(&labels),
        labels,
    };
    let mut rng = Rng::new(0);
    let mut one = || {
        let out = m.step(&model, &batch, &mut rng).expect("step");
        opt.backward_step(&out.loss);
        m.after_step(&model, &batch);
    };
    one();
    let t = Instant::now();
    for _ in 0..iters {
        one();
    }
    t.elapsed().as_secs_f64() / iters as f64
}

/// Microseconds per batch of 128 of CFOL's sampler over 50,000 images of `k` classes.
fn cfol_micros(k: usize) -> f64 {
    let labels: Vec<i64> = (0..50_000).map(|i| (i % k) as i64).collect();
    let mut s = ClassSampler::new(&labels, k, 0.5, 5e-6);
    let preds: Vec<i64> = (0..128).map(|i| ((i * 7) % k) as i64).collect();
    let n = 2000;
    let t = Instant::now();
    for b in 0..n {
        let idx = s.batch(0, 0, b, 128);
        let ys: Vec<i64> = idx.iter().map(|&i| labels[i]).collect();
        s.update(&ys, &preds);
    }
    1e6 * t.elapsed().as_secs_f64() / n as f64
}

fn main() {
    let a = Args::parse();
    println!("threads: {}", tch::get_num_threads());
    let wanted = |m: &MethodKind| {
        a.only
            .as_deref()
            .is_none_or(|o| o.split(',').any(|n| n.trim() == m.as_str()))
    };
    // The first measurement of a process runs slower (allocator, caches): discard one.
    let _ = seconds_per_step(MethodKind::PgdAt, 2);
    let base = seconds_per_step(MethodKind::PgdAt, a.iters);
    println!("| method | s/step | img/s | vs PGD-AT |");
    println!("|---|---|---|---|");
    for m in MethodKind::ALL.iter().filter(|m| wanted(m)) {
        let s = if *m == MethodKind::PgdAt {
            base
        } else {
            seconds_per_step(*m, a.iters)
        };
        println!("| {m} | {s:.3} | {:.1} | {:.2} |", 128.0 / s, s / base);
    }
    for k in [10, 100] {
        println!(
            "CFOL sampler, {k} classes: {:.1} us per batch of 128",
            cfol_micros(k)
        );
    }
}
