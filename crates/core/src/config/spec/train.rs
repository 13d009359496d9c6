//! The `[train]` and `[attack]` sections, and their checks.

use crate::config::choices::{BnMode, ClassSampling, LrSchedule, Precision};
use crate::config::error::ConfigError;
use crate::config::schema::section;
use crate::config::spec::MethodKind;

section! {
    /// The optimiser, its schedule, weight averages and where the weights start.
    pub struct TrainSpec in "train" as "train", keys TrainKey {
        epochs: usize [1, 100_000] = |_| 200; "Number of epochs",
        batch_size: usize [1, 65_536] = |_| 128; "Mini-batch size",
        lr: f64 [0.0, 10.0] = |_| 0.1; "Initial learning rate",
        lr_schedule: LrSchedule = |_| LrSchedule::Piecewise; "Learning-rate schedule",
        momentum: f64 [0.0, 0.999_999] = |_| 0.9; "SGD momentum",
        weight_decay: f64 [0.0, 1.0] = |_| 5e-4; "L2 weight decay",
        /// Per-epoch EMA decay of the whole state (weights and BN buffers); 0 = no EMA.
        ema_decay: f64 [0.0, 0.999_999] = |_| 0.85;
            "Per-epoch EMA decay of the weights; 0 = no EMA",
        /// FAWA (CFA's fairness-aware weight averaging, algorithms.md §2.4) decay; 0 = no FAWA.
        fawa_decay: f64 [0.0, 0.999_999] = |c| c.method.def().fawa_decay;
            "FAWA decay (CFA); 0 = off; FAIR-TAT 0.85, CFA 0.88",
        /// FAWA only averages an epoch whose worst validation class under PGD-k reaches this.
        fawa_threshold: f64 [0.0, 1.01] = |_| 0.2;
            "FAWA averages an epoch only if its worst validation class (PGD) reaches this (0 to 1.01)",
        /// Start from this checkpoint's weights (another run's `.safetensors`); empty = random
        /// init.
        init_checkpoint: String = |_| String::new();
            "Start from this .safetensors checkpoint of another run (FRL needs one); empty = random init",
        /// In a grid: start from the last checkpoint of the row named here, same seed (FRL
        /// fine-tunes its grid's TRADES run). Resolved by grid expansion into `init_from_run`.
        #[serde(default)]
        init_from: String = |_| String::new();
            "In a grid: start from the last checkpoint of this row (e.g. trades), same seed",
        /// The run (by name, same grid) whose `last` checkpoint this run starts from; set by grid
        /// expansion from `init_from`, and what the executor waits for ([`crate::runs::deps`]).
        #[serde(default)]
        init_from_run: String = |_| String::new();
            "Run (name, same grid) whose last checkpoint this run starts from; set by the grid",
        /// Extra train-mode forwards of the clean batch per step, which only move BatchNorm's
        /// running statistics: 0 (Rice et al.), 1 after `opt.step()` (CFA's `train_epoch`, which
        /// the paper used for AT, TRADES and FAT), 2 = one before and one after `opt.step()`
        /// (FAIR-TAT's `target_train_new.py`). An older run's `method.clean_forward_after_step`
        /// still reads as 0 or 1 when this key is absent.
        #[serde(default)]
        clean_forwards: usize [0, 2] = |c| match c.legacy_clean_forward {
            Some(after_step) => usize::from(after_step),
            None => c.method.def().clean_forwards,
        };
            "Clean train-mode forwards per step (BN stats only): 0 Rice, 1 CFA, 2 FAIR-TAT code",
        /// How an epoch's batches are drawn: a seeded shuffle, or CFOL's class sampler
        /// (Pethick et al., TMLR 2023), which composes with every method.
        class_sampler: ClassSampling = |_| ClassSampling::Shuffle;
            "Batches: shuffle, or cfol (CFOL's class sampler; composes with every method)",
        /// CFOL: share of the uniform distribution in `gamma u + (1 - gamma) q`.
        cfol_gamma: f64 [0.0, 1.0] = |_| 0.5;
            "CFOL: share of uniform classes in the sampler (0 to 1); reference: 0.5",
        /// CFOL: Exp3 step per misclassified training adversarial example (`class_sampler_lr`,
        /// 5e-6 in the reference's CIFAR commands).
        cfol_eta: f64 [0.0, 1.0] = |_| 5e-6;
            "CFOL: Exp3 step per misclassified adversarial example (0 to 1); reference: 5e-6",
        /// Mixed precision (issue 22): fp32 stays the default until bf16's fidelity against fp32
        /// is measured on a GPU. Absent from runs created before the key: fp32.
        #[serde(default)]
        precision: Precision = |_| Precision::Fp32;
            "Arithmetic: fp32, or bf16 (autocast over fp32 weights, channels_last; for GPUs)",
        /// Emit a progress event every this many batches.
        log_every: usize [1, 1_000_000] = |_| 10; "Progress event every this many batches",
        /// libtorch threads; 0 = the CPUs this process was given (`SLURM_CPUS_PER_TASK`, else
        /// its CPU affinity), not the host's.
        threads: usize [0, 1024] = |_| 0;
            "libtorch threads; 0 = the CPUs given (SLURM_CPUS_PER_TASK, else the CPU affinity)",
    }
}

impl TrainSpec {
    /// The section's checks beyond one key: names are trimmed, and FRL refuses random weights.
    pub(crate) fn check(mut self, m: MethodKind) -> Result<Self, ConfigError> {
        self.init_from = self.init_from.trim().to_string();
        self.init_from_run = self.init_from_run.trim().to_string();
        let given = [&self.init_checkpoint, &self.init_from, &self.init_from_run]
            .iter()
            .any(|s| !s.trim().is_empty());
        if m.def().needs_init_checkpoint && !given {
            // FRL and FAAL fine-tune a trained model (hannxu123/fair_robust loads
            // `hot_start.pt`, a TRADES model; TrustAI/FAAL a PGD-AT or TRADES one). A grid row
            // may name its source row with `train.init_from`.
            return Err(ConfigError::invalid(
                TrainKey::init_checkpoint.field().key,
                format!(
                    "{m} fine-tunes a trained model and cannot start from random weights: set \
                     train.init_checkpoint to a robust run's checkpoints/last.safetensors (e.g. \
                     {t}), or in a grid train.init_from = \"{t}\" (the same seed's row)",
                    t = MethodKind::Trades
                ),
            ));
        }
        Ok(self)
    }
}

section! {
    /// The training-time attack.
    pub struct AttackSpec in "attack" as "attack", keys AttackKey {
        eps: f64 [0.0, 1.0] = |_| 8.0 / 255.0; "Training attack radius (L-inf), e.g. 8/255",
        alpha: f64 [0.0, 1.0] = |_| 2.0 / 255.0; "PGD step size, e.g. 2/255",
        steps: usize [0, 1000] = |_| 10; "PGD steps during training",
        random_start: bool = |_| true; "Start PGD from a random point in the ball",
        bn_mode: BnMode = |c| c.method.def().bn_mode;
            "BatchNorm mode while attacking; default train (PGD-AT, FAIR-TAT, FAT as CFA), eval (KL attacks)",
    }
}
