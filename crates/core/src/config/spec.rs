//! The validated run specification. Serialises to the same key layout as the config file, so the
//! `config.toml` saved in a run directory is itself a valid config (and "clone run" is a read).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use super::choices::{EvalModel, ValFrom};

/// A fully checked run configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunSpec {
    pub name: String,
    pub tags: Vec<String>,
    pub seed: u64,
    /// `auto`, `cpu` or `cuda:N`.
    pub device: String,
    pub data: DataSpec,
    pub model: ModelSpec,
    pub train: TrainSpec,
    pub attack: AttackSpec,
    pub method: MethodSpec,
    pub eval: EvalSpec,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DatasetKind {
    FashionMnist,
    Cifar10,
    Cifar100,
}

impl DatasetKind {
    pub const NAMES: [&'static str; 3] = ["fashion-mnist", "cifar10", "cifar100"];

    pub fn as_str(&self) -> &'static str {
        match self {
            DatasetKind::FashionMnist => "fashion-mnist",
            DatasetKind::Cifar10 => "cifar10",
            DatasetKind::Cifar100 => "cifar100",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "fashion-mnist" => DatasetKind::FashionMnist,
            "cifar10" => DatasetKind::Cifar10,
            "cifar100" => DatasetKind::Cifar100,
            _ => return None,
        })
    }

    /// Where the data is looked for when `data.dir` is not given.
    pub fn default_dir(&self) -> &'static str {
        match self {
            DatasetKind::FashionMnist => "/usr/share/datasets/fashion-mnist",
            DatasetKind::Cifar10 => "data/cifar-10-batches-bin",
            DatasetKind::Cifar100 => "data/cifar-100-binary",
        }
    }

    pub fn num_classes(&self) -> usize {
        match self {
            DatasetKind::Cifar100 => 100,
            _ => 10,
        }
    }

    /// Per-channel mean and std used when `data.normalize = true` (algorithms.md §1.5, §5).
    pub fn normalization(&self) -> (Vec<f64>, Vec<f64>) {
        match self {
            DatasetKind::FashionMnist => (vec![0.2860], vec![0.3530]),
            DatasetKind::Cifar10 => (vec![0.4914, 0.4822, 0.4465], vec![0.2471, 0.2435, 0.2616]),
            DatasetKind::Cifar100 => (vec![0.5071, 0.4867, 0.4408], vec![0.2675, 0.2565, 0.2761]),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PaddingMode {
    Zero,
    Reflect,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DataSpec {
    pub dataset: DatasetKind,
    pub dir: PathBuf,
    /// Class-balanced training subset size; 0 = everything left after the validation split.
    pub train_subset: usize,
    /// Validation images per class of the training files (algorithms.md §1.7, §3.4, §3.6).
    pub val_per_class: usize,
    /// Which images of each class form the validation split: the first in file order
    /// (FAIR-TAT, CFA) or the last (WAT's and FRL's `data_loader.py`).
    #[serde(default)]
    pub val_from: ValFrom,
    /// Class-balanced test subset for per-epoch evaluation; 0 = the whole test set.
    pub test_subset: usize,
    /// Random-crop padding in pixels; 0 = no crop.
    pub crop_padding: usize,
    pub padding_mode: PaddingMode,
    pub flip: bool,
    /// Per-dataset mean/std normalisation inside the model.
    pub normalize: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Arch {
    Smallcnn,
    #[serde(rename = "preact-resnet18")]
    PreactResnet18,
    #[serde(rename = "wrn-34-10")]
    Wrn34_10,
}

impl Arch {
    pub const NAMES: [&'static str; 3] = ["smallcnn", "preact-resnet18", "wrn-34-10"];

    pub fn as_str(&self) -> &'static str {
        match self {
            Arch::Smallcnn => "smallcnn",
            Arch::PreactResnet18 => "preact-resnet18",
            Arch::Wrn34_10 => "wrn-34-10",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "smallcnn" => Arch::Smallcnn,
            "preact-resnet18" => Arch::PreactResnet18,
            "wrn-34-10" => Arch::Wrn34_10,
            _ => return None,
        })
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelSpec {
    pub arch: Arch,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LrSchedule {
    /// 1x until 50% of epochs, 0.1x until 75%, 0.01x after (Rice et al.; reference `step3`).
    Piecewise,
    /// /10 at 25%, 50%, 75% (reference `step4`).
    Step4,
    Constant,
    /// x0.1 from epoch 75, x0.01 from 90, x0.001 from 100 (1-based epochs, whatever the run's
    /// length): yaodongyu/TRADES `adjust_learning_rate`, used by WAT and BAT as well.
    #[serde(rename = "step-75-90-100")]
    Step75_90_100,
}

impl LrSchedule {
    pub const NAMES: [&'static str; 4] = ["piecewise", "step4", "constant", "step-75-90-100"];
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainSpec {
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f64,
    pub lr_schedule: LrSchedule,
    pub momentum: f64,
    pub weight_decay: f64,
    /// Per-epoch EMA decay of the whole state (weights and BN buffers); 0 = no EMA.
    pub ema_decay: f64,
    /// FAWA (CFA's fairness-aware weight averaging, algorithms.md §2.4) decay; 0 = no FAWA.
    pub fawa_decay: f64,
    /// FAWA only averages an epoch whose worst validation class under PGD-k reaches this.
    pub fawa_threshold: f64,
    /// Start from this checkpoint's weights (another run's `.safetensors`); empty = random init.
    pub init_checkpoint: String,
    /// In a grid: start from the last checkpoint of the row named here, same seed (FRL
    /// fine-tunes its grid's TRADES run). Resolved by grid expansion into `init_from_run`.
    #[serde(default)]
    pub init_from: String,
    /// The run (by name, same grid) whose `last` checkpoint this run starts from; set by grid
    /// expansion from `init_from`, and what the executor waits for ([`crate::runs::deps`]).
    #[serde(default)]
    pub init_from_run: String,
    /// Extra train-mode forwards of the clean batch per step, which only move BatchNorm's
    /// running statistics: 0 (Rice et al.), 1 after `opt.step()` (CFA's `train_epoch`, which
    /// the paper used for AT, TRADES and FAT), 2 = one before and one after `opt.step()`
    /// (FAIR-TAT's `target_train_new.py`).
    #[serde(default)]
    pub clean_forwards: usize,
    /// Emit a progress event every this many batches.
    pub log_every: usize,
    /// libtorch intra-op threads; 0 = libtorch's default.
    pub threads: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BnMode {
    /// BatchNorm uses batch statistics and updates running stats during the attack (FAIR-TAT,
    /// CFA, Rice et al.).
    Train,
    /// BatchNorm uses running stats (TRADES, FAT, evaluation).
    Eval,
}

/// The training-time attack.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AttackSpec {
    pub eps: f64,
    pub alpha: f64,
    pub steps: usize,
    pub random_start: bool,
    pub bn_mode: BnMode,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MethodKind {
    PgdAt,
    FairTat,
    Trades,
    FairTatTrades,
    Fat,
    FairTatFat,
    Cfa,
    FairTatCfa,
    Wat,
    Bat,
    FrlRw,
    FrlRwrm,
}

impl MethodKind {
    pub const NAMES: [&'static str; 12] = [
        "pgd-at",
        "fair-tat",
        "trades",
        "fair-tat-trades",
        "fat",
        "fair-tat-fat",
        "cfa",
        "fair-tat-cfa",
        "wat",
        "bat",
        "frl-rw",
        "frl-rwrm",
    ];
    const ALL: [MethodKind; 12] = [
        MethodKind::PgdAt,
        MethodKind::FairTat,
        MethodKind::Trades,
        MethodKind::FairTatTrades,
        MethodKind::Fat,
        MethodKind::FairTatFat,
        MethodKind::Cfa,
        MethodKind::FairTatCfa,
        MethodKind::Wat,
        MethodKind::Bat,
        MethodKind::FrlRw,
        MethodKind::FrlRwrm,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            MethodKind::PgdAt => "pgd-at",
            MethodKind::FairTat => "fair-tat",
            MethodKind::Trades => "trades",
            MethodKind::FairTatTrades => "fair-tat-trades",
            MethodKind::Fat => "fat",
            MethodKind::FairTatFat => "fair-tat-fat",
            MethodKind::Cfa => "cfa",
            MethodKind::FairTatCfa => "fair-tat-cfa",
            MethodKind::Wat => "wat",
            MethodKind::Bat => "bat",
            MethodKind::FrlRw => "frl-rw",
            MethodKind::FrlRwrm => "frl-rwrm",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.as_str() == s)
    }

    /// FAIR-TAT and its combinations: class-wise epsilon on by default, targets from C_FPS.
    pub fn is_fair_tat_family(&self) -> bool {
        matches!(
            self,
            MethodKind::FairTat
                | MethodKind::FairTatTrades
                | MethodKind::FairTatFat
                | MethodKind::FairTatCfa
        )
    }

    /// Baselines whose reference code uses the original TRADES scale CE + beta KL.
    pub fn original_trades_scale(&self) -> bool {
        matches!(self, MethodKind::Wat | MethodKind::Bat)
    }

    /// Methods whose outer loss is TRADES' (where CCR's class-wise beta applies).
    pub fn uses_trades_loss(&self) -> bool {
        matches!(
            self,
            MethodKind::Trades
                | MethodKind::FairTatTrades
                | MethodKind::Cfa
                | MethodKind::FairTatCfa
        )
    }

    /// Default `train.clean_forwards`: the count of the reference code each method's preset
    /// follows. CFA's `train_epoch` (AT, TRADES, FAT, CFA) runs one clean train-mode forward
    /// after each step; FAIR-TAT's runs one before and one after `opt.step()`; Rice et al.'s
    /// PGD-AT, WAT, BAT and FRL run none. (The Table 1 AT rows are CFA's AT and set 1.)
    pub fn default_clean_forwards(&self) -> usize {
        match self {
            m if m.is_fair_tat_family() => 2,
            MethodKind::Trades | MethodKind::Fat | MethodKind::Cfa => 1,
            _ => 0,
        }
    }

    /// Methods that fine-tune a trained model and refuse to start from random weights.
    pub fn needs_init_checkpoint(&self) -> bool {
        matches!(self, MethodKind::FrlRw | MethodKind::FrlRwrm)
    }

    /// Default FAWA decay: FAIR-TAT's reference code averages with 0.85 (algorithms.md §1.7),
    /// CFA with 0.88 (§2.1); the baselines' own recipes have no FAWA, so it is off for them.
    pub fn default_fawa_decay(&self) -> f64 {
        match self {
            MethodKind::Cfa => 0.88,
            m if m.is_fair_tat_family() => 0.85,
            _ => 0.0,
        }
    }

    /// Methods whose reference attacks run with BatchNorm in eval mode (TRADES' KL attack in
    /// TRADES, CFA, WAT, BAT, FRL). FAT is not among them: CFA's and FAIR-TAT's `fat_loss`
    /// never switch to eval mode (PKU-ML/CFA `attack.py`), unlike official FAT.
    pub fn attacks_in_eval_mode(&self) -> bool {
        matches!(
            self,
            MethodKind::Trades
                | MethodKind::FairTatTrades
                | MethodKind::Cfa
                | MethodKind::FairTatCfa
                | MethodKind::Wat
                | MethodKind::Bat
                | MethodKind::FrlRw
                | MethodKind::FrlRwrm
        )
    }
}

/// How FAIR-TAT turns the previous epoch's C_FPS into target-sampling weights.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TargetWeighting {
    /// softmax(scale * C_FPS): the reference code (algorithms.md §1.4).
    Softmax,
    /// Proportional to C_FPS: the paper's wording.
    Proportional,
    /// Uniform over the other classes (the random-target ablation).
    Uniform,
}

impl TargetWeighting {
    pub const NAMES: [&'static str; 3] = ["softmax", "proportional", "uniform"];
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MethodSpec {
    pub name: MethodKind,
    /// FAIR-TAT: target weighting.
    pub targets: TargetWeighting,
    /// FAIR-TAT: the factor inside softmax(scale * C_FPS); the reference uses 2.
    pub softmax_scale: f64,
    /// Class-wise epsilon eps_k = (lambda1 + r_k) * eps (CFA's CCM; FAIR-TAT's `--adaptive_eps G-rob`).
    pub class_eps: bool,
    pub lambda1: f64,
    /// First epoch (0-based) at which calibration from the previous epoch is used (reference: 1).
    pub calibration_start: usize,
    /// Reference quirk: C_FPS targets are only updated when class-wise epsilon is on (§1.3).
    pub cfps_requires_class_eps: bool,
    /// TRADES: weight of the KL term (CFA/FAIR-TAT and TRADES use 6).
    pub beta: f64,
    /// TRADES: CFA's normalisation (1-b) CE + b KL with b = beta/(1+beta) (algorithms.md §2.3);
    /// false = original TRADES, CE + beta KL.
    pub trades_normalize: bool,
    /// FAIR-TAT + TRADES: targeted CE descent toward sampled targets as the inner step; false =
    /// TRADES' untargeted KL ascent (with class-wise epsilon).
    pub trades_targeted: bool,
    /// FAT: per-sample budget of attack steps taken after the sample is misclassified.
    pub tau: usize,
    /// CFA's CCR: class-wise TRADES beta from the previous epoch's r_k (TRADES-loss methods).
    pub ccr: bool,
    /// CCR: beta_k = (lambda2 + r_k) beta / (1 + (lambda2 + r_k) beta).
    pub lambda2: f64,
    /// WAT: Hedge learning rate over the K+1 class-weight experts.
    pub eta: f64,
    /// FRL: tolerated excess of a class's clean error over the mean (tau0).
    pub frl_bound0: f64,
    /// FRL: tolerated excess of a class's boundary error over the mean (tau1).
    pub frl_bound1: f64,
    /// FRL: step of the reweighting multipliers (halved every 40 epochs).
    pub frl_rate1: f64,
    /// FRL-RWRM: step of the remargin multipliers.
    pub frl_rate2: f64,
    /// FRL: the reweighting multipliers are projected to sum at most this.
    pub frl_lim: f64,
}

/// Evaluation done every epoch and at the end.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalSpec {
    pub eps: f64,
    pub alpha: f64,
    /// PGD steps for the per-epoch evaluation (PGD-10).
    pub steps: usize,
    /// PGD steps for the final evaluation (PGD-20).
    pub final_steps: usize,
    pub batch_size: usize,
    /// Evaluate on the test set every this many epochs, and always after the last one.
    #[serde(default = "one")]
    pub every: usize,
    /// Which models the per-epoch test evaluation covers.
    #[serde(default = "EvalModel::all")]
    pub models: Vec<EvalModel>,
}

fn one() -> usize {
    1
}

impl RunSpec {
    /// Number of classes of the configured dataset.
    pub fn num_classes(&self) -> usize {
        self.data.dataset.num_classes()
    }

    /// The spec in config-file form.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("RunSpec always serialises to TOML")
    }
}
