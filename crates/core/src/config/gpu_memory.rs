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

/// Estimated peak GPU memory of a job on `spec`'s model and data, MiB.
pub fn estimate_mib(spec: &RunSpec, work: Work) -> u64 {
    let (params_m, per_image, at_pixels) = measured(spec.model.arch);
    let per_image = match spec.train.precision {
        Precision::Fp32 => per_image[0],
        Precision::Bf16 => per_image[1],
    };
    let per_image = per_image * pixels(spec.data.dataset) / at_pixels;
    // Weights, gradients, momentum, EMA/FAWA copy and the checkpoint copy being written.
    let weights = params_m * 1e6 * 4.0 * 5.0 / (1024.0 * 1024.0);
    let batch = match work {
        Work::Train => spec.train.batch_size.max(spec.eval.batch_size / 2),
        Work::Evaluate => spec.eval.batch_size,
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
}
