//! `make bench`: images per second of one PGD-10 adversarial-training step (batch 128) for
//! SmallCNN on 1x28x28, PreAct ResNet-18 and XCiT-S12 on 3x32x32, next to the PyTorch reference
//! (`bench/pytorch_reference.py`) run with the same libtorch in the same invocation, and
//! the cost of the per-step fairness bookkeeping (confusion counts from the step's own logits)
//! as a fraction of the step time.
//!
//! `--device cuda --batch 512 --precision bf16` measures both sides on a GPU, in bfloat16
//! autocast (`train.precision = "bf16"`; the reference with `torch.autocast` and
//! channels_last). `--cudnn-benchmark` turns on cuDNN's autotuner on both sides (off by
//! default in PyTorch and in fairtat), to measure what it would give. In bf16 a step's attack
//! and loss forward share one autocast region on both sides, as in training;
//! `--autocast-per-forward` opens one per forward instead (each forward casts the weights again).

use std::process::Command;
use std::time::Instant;

use clap::Parser;
use tch::{Device, Kind, Tensor};

use fairtat::attacks::{pgd, PgdConfig};
use fairtat::config::{Arch, DeviceSpec, Precision};
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
    /// auto, cpu or cuda:N (the reference runs on the same device type).
    #[arg(long, default_value = "cpu")]
    device: String,
    #[arg(long, default_value_t = 128)]
    batch: i64,
    /// fp32 or bf16.
    #[arg(long, default_value = "fp32")]
    precision: String,
    /// cuDNN's autotuner on (both sides; CUDA only).
    #[arg(long)]
    cudnn_benchmark: bool,
    /// bf16: one autocast region per forward instead of one per step (both sides).
    #[arg(long)]
    autocast_per_forward: bool,
}

/// One AT step as the reference does it: PGD in eval mode, loss in train mode, SGD step.
/// Returns the loss and the logits the trainer's bookkeeping reads.
fn step(
    model: &Model,
    per_forward: bool,
    opt: &mut Sgd,
    (x, y, eps): (&Tensor, &Tensor, &Tensor),
) -> (Tensor, Tensor) {
    let cfg = PgdConfig {
        alpha: 2.0 / 255.0,
        steps: 10,
        random_start: true,
        bn_train: false,
    };
    let logits = {
        // As in training: one bf16 region over the attack and the loss forward.
        let _scope = (!per_forward).then(|| model.precision_scope());
        let x_adv = pgd(model, x, y, eps, None, &cfg);
        model.forward_t(&x_adv, true)
    };
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
fn bench(arch: Arch, (c, hw): (usize, usize), iters: usize, on: &On) -> (f64, f64) {
    tch::manual_seed(0);
    let mut model = Model::new(arch, c, 10, hw, None, on.device).expect("model");
    model.set_precision(on.precision);
    let mut opt = Sgd::new(&model.vs, 0.01, 0.9, 5e-4);
    let (b, dev) = (on.batch, on.device);
    let x = Tensor::rand([b, c as i64, hw as i64, hw as i64], (Kind::Float, dev));
    let y = Tensor::randint(10, [b], (Kind::Int64, dev));
    let labels: Vec<i64> = Vec::try_from(&y.to_device(Device::Cpu)).unwrap();
    let eps = Tensor::full([b], 8.0 / 255.0, (Kind::Float, dev));
    let data = (&x, &y, &eps);
    let mut last = step(&model, on.per_forward, &mut opt, data); // warm-up
    on.sync();
    let t = Instant::now();
    for _ in 0..iters {
        last = step(&model, on.per_forward, &mut opt, data);
    }
    on.sync();
    let per_step = t.elapsed().as_secs_f64() / iters as f64;
    let mut cm = ConfusionMatrix::new(10);
    let n = 1000;
    let t = Instant::now();
    for _ in 0..n {
        bookkeeping(&last.0, &last.1, &labels, &mut cm);
    }
    (per_step, t.elapsed().as_secs_f64() / n as f64)
}

/// Where and how the steps run.
struct On {
    device: Device,
    batch: i64,
    precision: Precision,
    cudnn_benchmark: bool,
    per_forward: bool,
}

impl On {
    /// Wait for the GPU's queued work, so the clock reads finished steps.
    fn sync(&self) {
        if let Device::Cuda(n) = self.device {
            tch::Cuda::synchronize(n as i64);
        }
    }

    /// The reference's options for the same device type, batch and precision.
    fn reference_args(&self) -> Vec<String> {
        let device = if self.device.is_cuda() { "cuda" } else { "cpu" };
        let mut v = vec!["--device".into(), device.into()];
        v.extend(["--batch".into(), self.batch.to_string()]);
        if self.precision == Precision::Bf16 {
            v.push("--bf16".into());
        }
        if self.cudnn_benchmark {
            v.push("--cudnn-benchmark".into());
        }
        if self.per_forward {
            v.push("--autocast-per-forward".into());
        }
        v
    }
}

fn reference(python: &str, script: &str, which: &str, on: &On) -> Option<f64> {
    let out = Command::new(python)
        .arg(script)
        .arg(which)
        .args(on.reference_args())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find_map(|v| v["images_per_sec"].as_f64())
}

fn main() {
    let a = Args::parse();
    let python = a.python.clone().unwrap_or_else(|| "python3".into());
    let device: DeviceSpec = DeviceSpec::parse_for("--device", &a.device).unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(2)
    });
    let on = On {
        device: fairtat::train::device::select(device).expect("device"),
        batch: a.batch.max(1),
        precision: Precision::parse(&a.precision).unwrap_or_else(|| {
            eprintln!(
                "--precision: allowed values: {}",
                Precision::NAMES.join(", ")
            );
            std::process::exit(2)
        }),
        cudnn_benchmark: a.cudnn_benchmark,
        per_forward: a.autocast_per_forward,
    };
    if on.device.is_cuda() {
        tch::Cuda::cudnn_set_benchmark(on.cudnn_benchmark);
    }
    println!(
        "threads: {}, device {:?}, batch {}, precision {}, cudnn benchmark {}, autocast per {}",
        tch::get_num_threads(),
        on.device,
        on.batch,
        on.precision,
        on.cudnn_benchmark,
        if on.per_forward { "forward" } else { "step" }
    );
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
        // Fewer timed steps on the CPU, where one PRN-18 step takes seconds.
        let iters = if on.device.is_cuda() {
            iters * 10
        } else {
            iters
        };
        let (per_step, book) = bench(arch, (c, hw), iters, &on);
        let ours = on.batch as f64 / per_step;
        let overhead = 100.0 * book / per_step;
        let theirs = reference(&python, &a.reference, key, &on);
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
