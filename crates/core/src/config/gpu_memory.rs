//! The GPU memory a job is expected to hold, so that the executor can pack several runs onto
//! one GPU (`fairtat serve --runs-per-gpu`, default: as many as the estimates fit).
//!
//! An estimate, not a measurement: the CUDA context and library workspaces, the weights with
//! their gradients, momentum and averaged copies (EMA/FAWA), and the activations autograd saves
//! for the backward pass, times a margin for the caching allocator. The per-image activations
//! come from `bench/activation_memory.py` (autograd's saved tensors of the reference modules in
//! `tests/py/models.py`, train mode, on CPU; fp32, and `--bf16` under bfloat16 autocast with
//! channels_last for `train.precision = "bf16"`, which saves about half). Two forward graphs
//! are counted for every method (TRADES' clean and adversarial terms), so the estimate errs
//! toward fewer runs per GPU for PGD-AT. The trainer holds one graph at a time: the attack's input-gradient graph is
//! freed before the training step builds its own.

use crate::config::choices::{Arch, DatasetKind, Precision};
use crate::config::spec::RunSpec;

/// What a job does with its model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Work {
    /// `fairtat train` (fresh or resumed): training batches plus per-epoch evaluation.
    Train,
    /// `fairtat eval`: attacks on a checkpoint at the evaluation batch size.
    Evaluate,
}

/// CUDA context, cuDNN/cuBLAS handles and workspaces of one process, MiB.
const CONTEXT_MIB: f64 = 700.0;
/// Fragmentation of the caching allocator.
const MARGIN: f64 = 1.3;

/// Parameters (millions) and saved activations of one training forward pass per image (MiB)
/// in fp32 and in bf16, at the size the script measured: 28x28x1 for SmallCNN, 32x32x3 for
/// the others.
fn measured(arch: Arch) -> (f64, [f64; 2], f64) {
    // (params in millions, MiB per image [fp32, bf16], pixels per channel of the measurement)
    match arch {
        Arch::Smallcnn => (0.312, [0.41, 0.23], 28.0 * 28.0),
        Arch::PreactResnet18 => (11.17, [9.60, 4.80], 32.0 * 32.0),
        Arch::Wrn34_10 => (46.16, [44.04, 22.03], 32.0 * 32.0),
        Arch::XcitS12 => (25.87, [48.39, 26.99], 32.0 * 32.0),
    }
}

/// Pixels per channel of the dataset's images: activations scale with them.
fn pixels(dataset: DatasetKind) -> f64 {
    match dataset {
        DatasetKind::FashionMnist => 28.0 * 28.0,
        DatasetKind::Cifar10 | DatasetKind::Cifar100 => 32.0 * 32.0,
    }
}

/// Saved activations of one training forward pass per image of `dataset` in `precision`, MiB.
fn per_image_mib(arch: Arch, dataset: DatasetKind, precision: Precision) -> f64 {
    let (_, per_image, at_pixels) = measured(arch);
    let per_image = match precision {
        Precision::Fp32 => per_image[0],
        Precision::Bf16 => per_image[1],
    };
    per_image * pixels(dataset) / at_pixels
}

/// `eval.batch_size = "auto"` on the CPU: the default from before `auto` (larger batches do
/// not run faster there, and keep more memory).
pub const AUTO_EVAL_CPU: usize = 256;
/// The largest automatic batch: AutoAttack at fra31's batch of 1,000 already ran 3.5x faster
/// than at 256 on an H200 (BENCHMARKS.md); beyond it, bigger batches mostly hold memory that
/// other runs on the GPU could use.
pub const AUTO_EVAL_MAX: usize = 1024;
/// The smallest automatic batch on a GPU: the fixed default before `auto`, so that no model
/// evaluates in smaller batches than it did (WRN-34-10 and XCiT-S12 stay there).
const AUTO_EVAL_MIN: usize = 256;
/// Saved activations an automatic evaluation batch may hold on a GPU, MiB: a PreAct
/// ResNet-18 job (batch 512 in fp32) is then estimated under 8 GiB, so 8 of them share an
/// 80 GiB GPU.
const AUTO_EVAL_ACTIVATIONS_MIB: f64 = 8192.0;

/// The batch `eval.batch_size = "auto"` means: on a GPU, the largest power of two from 256 to
/// 1,024 whose input-gradient graph (one at a time: PGD, APGD and FAB each differentiate one
/// batch) stays within [`AUTO_EVAL_ACTIVATIONS_MIB`] by the memory model; on the CPU, 256.
/// A function of the config alone, so the executor's estimate and the job agree on it.
pub fn auto_eval_batch(
    arch: Arch,
    dataset: DatasetKind,
    precision: Precision,
    on_gpu: bool,
) -> usize {
    if !on_gpu {
        return AUTO_EVAL_CPU;
    }
    let per_image = MARGIN * per_image_mib(arch, dataset, precision);
    let mut b = AUTO_EVAL_MAX;
    while b > AUTO_EVAL_MIN && b as f64 * per_image > AUTO_EVAL_ACTIVATIONS_MIB {
        b /= 2;
    }
    b
}

/// Estimated peak GPU memory of a job on `spec`'s model and data, MiB (on a GPU: an automatic
/// evaluation batch is counted at its GPU size).
pub fn estimate_mib(spec: &RunSpec, work: Work) -> u64 {
    let (params_m, _, _) = measured(spec.model.arch);
    let per_image = per_image_mib(spec.model.arch, spec.data.dataset, spec.train.precision);
    // Weights, gradients, momentum, EMA/FAWA copy and the checkpoint copy being written.
    let weights = params_m * 1e6 * 4.0 * 5.0 / (1024.0 * 1024.0);
    let eval_batch = spec.eval_batch(true);
    let batch = match work {
        Work::Train => spec.train.batch_size.max(eval_batch / 2),
        Work::Evaluate => eval_batch,
    } as f64;
    let graphs = match work {
        Work::Train => 2.0,
        Work::Evaluate => 1.0,
    };
    (CONTEXT_MIB + MARGIN * (weights + graphs * batch * per_image)).ceil() as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::from_toml_str;

    fn spec(toml: &str) -> RunSpec {
        from_toml_str(toml, &[]).unwrap()
    }

    #[test]
    fn bf16_saves_about_half_the_activations() {
        let toml = "[data]\ndataset = \"cifar10\"\n[train]\nbatch_size = 512\n";
        let fp32 = estimate_mib(&spec(toml), Work::Train);
        let bf16 = estimate_mib(&spec(&format!("{toml}precision = \"bf16\"\n")), Work::Train);
        // Weights and the context stay: less than fp32, more than half of it.
        assert!(
            bf16 < fp32 && 2 * bf16 > fp32,
            "fp32 {fp32} MiB, bf16 {bf16} MiB"
        );
    }

    #[test]
    fn estimates_grow_with_batch_and_model_and_fit_known_gpus() {
        let small = estimate_mib(&spec("[data]\ndataset = \"fashion-mnist\"\n"), Work::Train);
        let prn = spec("[data]\ndataset = \"cifar10\"\n[train]\nbatch_size = 128\n");
        let prn512 = spec("[data]\ndataset = \"cifar10\"\n[train]\nbatch_size = 512\n");
        let wrn = spec("[data]\ndataset = \"cifar10\"\n[model]\narch = \"wrn-34-10\"\n");
        let (p128, p512) = (
            estimate_mib(&prn, Work::Train),
            estimate_mib(&prn512, Work::Train),
        );
        let w = estimate_mib(&wrn, Work::Train);
        assert!(small < 1_500, "SmallCNN on Fashion-MNIST: {small} MiB");
        assert!(
            small < p128 && p128 < p512 && p128 < w,
            "{small} {p128} {p512} {w}"
        );
        // PRN-18 at batch 128 is known to train on 8 GiB cards; WRN-34-10 on 24 GiB ones.
        assert!(
            (2_000..8_000).contains(&p128),
            "PRN-18 batch 128: {p128} MiB"
        );
        assert!((8_000..24_000).contains(&w), "WRN-34-10 batch 128: {w} MiB");
        assert!(estimate_mib(&prn, Work::Evaluate) < p128 * 2);
    }

    #[test]
    fn auto_eval_batches_fit_the_model_on_a_gpu_and_stay_at_256_on_the_cpu() {
        use Arch::*;
        use DatasetKind::*;
        let fp32 = Precision::Fp32;
        let auto = |a, d, p| auto_eval_batch(a, d, p, true);
        for a in [Smallcnn, PreactResnet18, Wrn34_10, XcitS12] {
            for p in [fp32, Precision::Bf16] {
                assert_eq!(auto_eval_batch(a, Cifar100, p, false), AUTO_EVAL_CPU);
                let b = auto(a, Cifar100, p);
                assert!(b.is_power_of_two() && (AUTO_EVAL_MIN..=AUTO_EVAL_MAX).contains(&b));
                // The largest that fits (or the floor): twice as many would not (or the cap).
                let act = |b: usize| b as f64 * MARGIN * per_image_mib(a, Cifar100, p);
                assert!(b == AUTO_EVAL_MIN || act(b) <= AUTO_EVAL_ACTIVATIONS_MIB);
                assert!(b == AUTO_EVAL_MAX || act(2 * b) > AUTO_EVAL_ACTIVATIONS_MIB);
            }
        }
        assert_eq!(auto(Smallcnn, FashionMnist, fp32), 1024);
        assert_eq!(auto(PreactResnet18, Cifar10, fp32), 512);
        assert_eq!(auto(PreactResnet18, Cifar10, Precision::Bf16), 1024);
        assert_eq!(auto(Wrn34_10, Cifar10, fp32), 256);
        assert_eq!(auto(XcitS12, Cifar10, Precision::Bf16), 256);
    }

    #[test]
    fn the_estimate_counts_an_automatic_batch_at_its_gpu_size() {
        let prn = "[data]\ndataset = \"cifar10\"\n";
        let auto = spec(prn);
        let fixed = spec(&format!("{prn}[eval]\nbatch_size = 512\n"));
        let small = spec(&format!("{prn}[eval]\nbatch_size = 256\n"));
        assert_eq!(auto.eval_batch(true), 512);
        assert_eq!(auto.eval_batch(false), 256);
        for w in [Work::Train, Work::Evaluate] {
            assert_eq!(estimate_mib(&auto, w), estimate_mib(&fixed, w));
            assert!(estimate_mib(&small, w) < estimate_mib(&auto, w));
        }
    }
}
