//! What the models keep per image for the backward pass, as `bench/activation_memory.py`
//! measured it (autograd's saved tensors of the reference modules in `tests/py/models.py`,
//! train mode, on CPU, fp32 and bf16), and the evaluation batch `eval.batch_size = "auto"`
//! chooses from it. Plain arithmetic on the config's choices: the job estimate
//! ([`super::gpu_memory`]) and the config's batch ([`super::eval_batch`]) both read it.

use crate::config::choices::{Arch, DatasetKind, Precision};

/// Fragmentation of the caching allocator.
pub(crate) const MARGIN: f64 = 1.3;

/// Parameters (millions) and saved activations of one training forward pass per image (MiB)
/// in fp32 and in bf16, at the size the script measured: 28x28x1 for SmallCNN, 32x32x3 for
/// the others.
pub(crate) fn measured(arch: Arch) -> (f64, [f64; 2], f64) {
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
pub(crate) fn per_image_mib(arch: Arch, dataset: DatasetKind, precision: Precision) -> f64 {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
