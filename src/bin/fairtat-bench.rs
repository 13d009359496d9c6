//! `make bench`: images per second of one PGD-10 adversarial-training step (batch 128) for
//! SmallCNN on 1x28x28 and PreAct ResNet-18 on 3x32x32, next to the PyTorch reference
//! (`shared/bench/pytorch_reference.py`) run with the same libtorch in the same invocation, and
//! the cost of the per-step fairness bookkeeping (confusion counts from the step's own logits).

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
    #[arg(long, default_value = "../shared/bench/pytorch_reference.py")]
    reference: String,
    /// Only this model: small or prn18.
    #[arg(long)]
    only: Option<String>,
}

/// One AT step as the reference does it: PGD in eval mode, loss in train mode, SGD step.
/// With `bookkeeping`, also what the trainer adds: loss to host, argmax to host, confusion counts.
fn step(
    model: &Model,
    opt: &mut Sgd,
    x: &Tensor,
    y: &Tensor,
    labels: &[i64],
    eps: &Tensor,
    cm: Option<&mut ConfusionMatrix>,
) {
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
    if let Some(cm) = cm {
        let _ = loss.double_value(&[]);
        let preds: Vec<i64> =
            Vec::try_from(&logits.argmax(-1, false).to_device(Device::Cpu)).unwrap();
        cm.add_batch(labels, &preds);
    }
}

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
    let mut cm = ConfusionMatrix::new(10);
    step(&model, &mut opt, &x, &y, &labels, &eps, Some(&mut cm)); // warm-up
    let mut time = |book: bool, cm: &mut ConfusionMatrix| {
        let t = Instant::now();
        for _ in 0..iters {
            step(
                &model,
                &mut opt,
                &x,
                &y,
                &labels,
                &eps,
                book.then_some(&mut *cm),
            );
        }
        t.elapsed().as_secs_f64() / iters as f64
    };
    // Interleave to spread machine noise over both variants.
    let (mut plain, mut book) = (0.0, 0.0);
    for _ in 0..2 {
        plain += time(false, &mut cm);
        book += time(true, &mut cm);
    }
    (plain / 2.0, book / 2.0)
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
        ("small", "smallcnn-28x28x1", Arch::Smallcnn, 1, 28, 10),
        (
            "prn18",
            "preact-resnet18-32x32x3",
            Arch::PreactResnet18,
            3,
            32,
            2,
        ),
    ];
    for (key, name, arch, c, hw, iters) in cases {
        if a.only.as_deref().is_some_and(|o| o != key) {
            continue;
        }
        let (plain, book) = bench(arch, c, hw, iters);
        let ours = 128.0 / plain;
        let overhead = 100.0 * (book - plain) / plain;
        let theirs = reference(&python, &a.reference, key);
        let ratio = theirs
            .map(|t| format!("{:.2}", ours / t))
            .unwrap_or_else(|| "n/a".into());
        println!(
            "{name}: fairtat {ours:.1} img/s, pytorch {} img/s, ratio {ratio}; bookkeeping {overhead:+.2}% of step time",
            theirs.map(|t| format!("{t:.1}")).unwrap_or_else(|| "n/a".into())
        );
    }
}
