//! `make bench`: images per second of one PGD-10 adversarial-training step (batch 128) for
//! SmallCNN on 1x28x28, PreAct ResNet-18 and XCiT-S12 on 3x32x32, next to the PyTorch reference
//! (`bench/pytorch_reference.py`) run with the same libtorch in the same invocation, and
//! the cost of the per-step fairness bookkeeping (confusion counts from the step's own logits)
//! as a fraction of the step time.

use std::process::Command;
use std::time::Instant;

use clap::Parser;
use tch::{Device, Kind, Tensor};

use fairtat::attacks::{pgd, PgdConfig};
use fairtat::config::Arch;
use fairtat::fairness::ConfusionMatrix;
use fairtat::models::Model;
use fairtat::train::Sgd;

#[derive(Parser)]
struct Args {
    /// Python with torch (the venv `make` creates).
    #[arg(long)]
    python: Option<String>,
    /// Path to pytorch_reference.py.
    #[arg(long, default_value = "bench/pytorch_reference.py")]
    reference: String,
    /// Only this model: small, prn18 or xcit.
    #[arg(long)]
    only: Option<String>,
}

/// One AT step as the reference does it: PGD in eval mode, loss in train mode, SGD step.
/// Returns the loss and the logits the trainer's bookkeeping reads.
fn step(model: &Model, opt: &mut Sgd, x: &Tensor, y: &Tensor, eps: &Tensor) -> (Tensor, Tensor) {
    let cfg = PgdConfig {
        alpha: 2.0 / 255.0,
        steps: 10,
        random_start: true,
        bn_train: false,
    };
    let x_adv = pgd(model, x, y, eps, None, &cfg);
    let logits = model.forward_t(&x_adv, true);
    let loss = logits.cross_entropy_for_logits(y);
    opt.backward_step(&loss);
    (loss, logits)
}

/// What the trainer adds per step: loss and argmax to the host, confusion counts.
fn bookkeeping(loss: &Tensor, logits: &Tensor, labels: &[i64], cm: &mut ConfusionMatrix) {
    let _ = loss.double_value(&[]);
    let preds: Vec<i64> = Vec::try_from(&logits.argmax(-1, false).to_device(Device::Cpu)).unwrap();
    cm.add_batch(labels, &preds);
}

/// Seconds per AT step, and seconds per bookkeeping call (timed over many calls on its own,
/// since its cost is far below the step-to-step noise).
fn bench(arch: Arch, c: usize, hw: usize, iters: usize) -> (f64, f64) {
    tch::manual_seed(0);
    let model = Model::new(arch, c, 10, hw, None, Device::Cpu).expect("model");
    let mut opt = Sgd::new(&model.vs, 0.01, 0.9, 5e-4);
    let b = 128;
    let x = Tensor::rand(
        [b, c as i64, hw as i64, hw as i64],
        (Kind::Float, Device::Cpu),
    );
    let y = Tensor::randint(10, [b], (Kind::Int64, Device::Cpu));
    let labels: Vec<i64> = Vec::try_from(&y).unwrap();
    let eps = Tensor::full([b], 8.0 / 255.0, (Kind::Float, Device::Cpu));
    let mut last = step(&model, &mut opt, &x, &y, &eps); // warm-up
    let t = Instant::now();
    for _ in 0..iters {
        last = step(&model, &mut opt, &x, &y, &eps);
    }
    let per_step = t.elapsed().as_secs_f64() / iters as f64;
    let mut cm = ConfusionMatrix::new(10);
    let n = 1000;
    let t = Instant::now();
    for _ in 0..n {
        bookkeeping(&last.0, &last.1, &labels, &mut cm);
    }
    (per_step, t.elapsed().as_secs_f64() / n as f64)
}

fn reference(python: &str, script: &str, which: &str) -> Option<f64> {
    let out = Command::new(python).arg(script).arg(which).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find_map(|v| v["images_per_sec"].as_f64())
}

fn main() {
    let a = Args::parse();
    let python = a.python.clone().unwrap_or_else(|| "python3".into());
    println!("threads: {}", tch::get_num_threads());
    let cases = [
        ("small", "smallcnn-28x28x1", Arch::Smallcnn, 1, 28, 20),
        (
            "prn18",
            "preact-resnet18-32x32x3",
            Arch::PreactResnet18,
            3,
            32,
            2,
        ),
        ("xcit", "xcit-s12-32x32x3", Arch::XcitS12, 3, 32, 1),
    ];
    for (key, name, arch, c, hw, iters) in cases {
        if a.only.as_deref().is_some_and(|o| o != key) {
            continue;
        }
        let (per_step, book) = bench(arch, c, hw, iters);
        let ours = 128.0 / per_step;
        let overhead = 100.0 * book / per_step;
        let theirs = reference(&python, &a.reference, key);
        let ratio = theirs
            .map(|t| format!("{:.2}", ours / t))
            .unwrap_or_else(|| "n/a".into());
        let theirs = theirs
            .map(|t| format!("{t:.1}"))
            .unwrap_or_else(|| "n/a".into());
        println!(
            "{name}: fairtat {ours:.1} img/s, pytorch {theirs} img/s, ratio {ratio}; bookkeeping {:.1} us = {overhead:.3}% of step time",
            book * 1e6
        );
    }
}
