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
//! freed before the training step builds its own. The per-image figures and the automatic
//! evaluation batch are in [`super::activations`].

use crate::config::activations::{measured, per_image_mib, MARGIN};
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
