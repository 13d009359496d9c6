//! The `[method]` section, and each method's declaration ([`METHODS`]): its name, which of the
//! section's keys it reads (the form shows only those) and the defaults its reference code
//! implies for other sections. A method is one row of the `methods!` table at the end of this
//! file, which declares [`MethodKind`] too; nowhere else in this crate.

use crate::config::choices::{choices, BnMode, DatasetKind, TargetWeighting, ValFrom};
use crate::config::error::ConfigError;
use crate::config::schema::section;

section! {
    /// The training method and its options (each read only by the methods that declare it).
    pub struct MethodSpec in "method" as "method", keys MethodKey {
        /// Read before every other key: it decides defaults of other sections.
        name: MethodKind = |c| c.method; "Training method",
        /// FAIR-TAT: target weighting.
        targets: TargetWeighting = |_| TargetWeighting::Softmax;
            "FAIR-TAT target weighting from the previous epoch's C_FPS",
        /// FAIR-TAT: the factor inside softmax(scale * C_FPS); the reference uses 2.
        softmax_scale: f64 [0.0, 1000.0] = |_| 2.0;
            "Factor inside softmax(scale * C_FPS); reference: 2",
        /// Class-wise epsilon eps_k = (lambda1 + r_k) * eps (CFA's CCM; FAIR-TAT's
        /// `--adaptive_eps G-rob`).
        class_eps: bool = |c| c.method.def().class_eps;
            "Class-wise epsilon eps_k = (lambda1 + r_k) * eps",
        lambda1: f64 [0.0, 10.0] = |_| 0.5; "Base factor of the class-wise epsilon",
        /// First epoch (0-based) at which calibration from the previous epoch is used
        /// (reference: 1).
        calibration_start: usize [0, 100_000] = |c| c.method.def().calibration_start(c.epochs);
            "First epoch (0-based) using calibration from the previous epoch",
        /// Reference quirk: C_FPS targets are only updated when class-wise epsilon is on (§1.3).
        cfps_requires_class_eps: bool = |_| true;
            "Reference quirk: update C_FPS targets only with class-wise epsilon",
        /// TRADES: weight of the KL term (CFA/FAIR-TAT and TRADES use 6).
        beta: f64 [0.0, 100.0] = |c| c.method.def().beta;
            "TRADES weight of the KL term (0 to 100); reference: 6",
        /// TRADES: CFA's normalisation (1-b) CE + b KL with b = beta/(1+beta) (algorithms.md
        /// §2.3); false = original TRADES, CE + beta KL.
        trades_normalize: bool = |c| c.method.def().trades_normalize;
            "TRADES as CFA: (1-b) CE + b KL with b = beta/(1+beta); false = CE + beta KL",
        /// FAIR-TAT + TRADES: targeted CE descent toward sampled targets as the inner step;
        /// false = TRADES' untargeted KL ascent (with class-wise epsilon).
        trades_targeted: bool = |_| true;
            "FAIR-TAT + TRADES: targeted inner step toward sampled classes; false = KL ascent",
        /// FAT: per-sample budget of attack steps taken after the sample is misclassified.
        tau: usize [0, 1000] = |_| 3;
            "FAT: attack steps allowed after a sample is misclassified (0 to 1000); reference: 3",
        /// CFA's CCR: class-wise TRADES beta from the previous epoch's r_k (TRADES-loss methods).
        ccr: bool = |c| c.method.def().ccr;
            "CFA's CCR: class-wise TRADES beta from the previous epoch's robust accuracy (TRADES-loss methods)",
        /// CCR: beta_k = (lambda2 + r_k) beta / (1 + (lambda2 + r_k) beta).
        lambda2: f64 [0.0, 10.0] = |_| 0.5;
            "CCR base factor: beta_k = (lambda2 + r_k) beta / (1 + (lambda2 + r_k) beta); reference: 0.5",
        /// WAT: Hedge learning rate over the K+1 class-weight experts.
        eta: f64 [0.0, 100.0] = |_| 0.1;
            "WAT: Hedge learning rate of the class weights (0 to 100); reference: 0.1",
        /// FRL: tolerated excess of a class's clean error over the mean (tau0).
        frl_bound0: f64 [0.0, 1.0] = |c| c.method.def().frl_bound;
            "FRL: tolerated excess of a class's clean error over the mean (0 to 1)",
        /// FRL: tolerated excess of a class's boundary error over the mean (tau1).
        frl_bound1: f64 [0.0, 1.0] = |c| c.method.def().frl_bound;
            "FRL: tolerated excess of a class's boundary error over the mean (0 to 1)",
        /// FRL: step of the reweighting multipliers (halved every 40 epochs).
        frl_rate1: f64 [0.0, 10.0] = |_| 0.05;
            "FRL: reweighting multiplier step, halved every 40 epochs; reference: 0.05",
        /// FRL-RWRM: step of the remargin multipliers.
        frl_rate2: f64 [0.0, 10.0] = |c| c.method.def().frl_rate2;
            "FRL-RWRM: remargin multiplier step; reference: 0.2",
        /// FRL: the reweighting multipliers are projected to sum at most this.
        frl_lim: f64 [0.0, 1.0] = |_| 0.5;
            "FRL: the reweighting multipliers sum to at most this (0 to 1); reference: 0.5",
        /// DAFA, TRIX: lambda of the class weights W_i = 1 + lambda sum_j s_ij (rucy74/DAFA:
        /// 1 on CIFAR-10, 1.5 on CIFAR-100 and STL-10).
        dafa_lambda: f64 [0.0, 10.0] = |c| match c.dataset {
            DatasetKind::Cifar100 => 1.5,
            _ => 1.0,
        };
            "DAFA/TRIX: scale of the class weights W = 1 + lambda sum s (1 on CIFAR-10, 1.5 on CIFAR-100)",
        /// DAFA, TRIX: epochs of plain training; the class weights come from the last of them
        /// (reference: 70 of 110 epochs for DAFA, 70 of 150 for TRIX).
        dafa_warmup: usize [1, 100_000] = |c| c.method.def().warmup(c.epochs);
            "DAFA/TRIX: warm-up epochs; the class weights come from the last one",
        /// FAAL: radius r of the KL ball around uniform class weights (`--scale`).
        faal_r: f64 [0.0, 10.0] = |_| 0.5;
            "FAAL: KL radius r of the class-weight DRO (0 to 10); reference: 0.5",
    }
}

/// The key that preceded `train.clean_forwards`; still read from older run directories.
pub(crate) const LEGACY_CLEAN_FORWARD: &str = "clean_forward_after_step";

impl MethodSpec {
    /// The section's check beyond one key: CCR weights a TRADES loss.
    pub(crate) fn check(self) -> Result<Self, ConfigError> {
        if self.ccr && !self.name.def().reads(MethodKey::ccr) {
            let users: Vec<&str> = MethodKind::ALL
                .iter()
                .filter(|m| m.def().reads(MethodKey::ccr))
                .map(|m| m.as_str())
                .collect();
            return Err(ConfigError::invalid(
                MethodKey::ccr.field().key,
                format!(
                    "true needs a TRADES-loss method ({}), not {}",
                    users.join(", "),
                    self.name
                ),
            ));
        }
        Ok(self)
    }
}

/// One method: the `[method]` keys it reads and the defaults of its reference code.
#[derive(Clone, Copy, Debug)]
pub struct MethodDef {
    pub kind: MethodKind,
    /// The `[method]` keys it reads besides `name`, in groups.
    pub reads: &'static [&'static [MethodKey]],
    /// `method.class_eps`: FAIR-TAT's reference code calibrates epsilon, Rice et al.'s PGD-AT
    /// does not; CFA's CCM does.
    pub class_eps: bool,
    /// `method.ccr`: CFA's class-wise TRADES beta.
    pub ccr: bool,
    /// `method.beta`: 6 (TRADES, CFA, FAIR-TAT); FRL's `frlrw.py` uses 1.5.
    pub beta: f64,
    /// `method.trades_normalize`: CFA's normalised TRADES is FAIR-TAT's and CFA's; WAT's and
    /// BAT's reference code uses the original CE + beta KL.
    pub trades_normalize: bool,
    /// `method.frl_bound0`/`frl_bound1` and `frl_rate2` (frlrw.py / frlrmrw.py, §3.4).
    pub frl_bound: f64,
    pub frl_rate2: f64,
    /// `method.calibration_start` as a share of `train.epochs` (at least epoch 1): CFA calibrates
    /// from `begin` = 10 of 200 epochs (algorithms.md §2.1), the others from epoch 1.
    pub calibrate_from: f64,
    /// `train.clean_forwards`: CFA's `train_epoch` (AT, TRADES, FAT, CFA) runs one clean
    /// train-mode forward after each step; FAIR-TAT's one before and one after `opt.step()`;
    /// Rice et al.'s PGD-AT, WAT, BAT and FRL none. (The Table 1 AT rows are CFA's AT and set 1.)
    pub clean_forwards: usize,
    /// `train.fawa_decay`: FAIR-TAT's reference code averages with 0.85 (§1.7), CFA with 0.88
    /// (§2.1); the baselines' own recipes have no FAWA.
    pub fawa_decay: f64,
    /// `attack.bn_mode`: eval for TRADES' KL attack (TRADES, CFA, WAT, BAT, FRL). FAT is not
    /// among them: CFA's and FAIR-TAT's `fat_loss` never switch to eval mode (PKU-ML/CFA
    /// `attack.py`), unlike official FAT.
    pub bn_mode: BnMode,
    /// WAT's and FRL's `data_loader.py` keep the last 300 images of each CIFAR-10 class for
    /// validation (WAT: 30 of each CIFAR-100 class; FRL has no CIFAR-100 code, so it gets WAT's
    /// 6% too), §3.4, §3.6; FAIR-TAT and CFA the first 50000/K/50.
    pub last_300_split: bool,
    /// It fine-tunes a trained model and refuses random weights (FRL, FAAL).
    pub needs_init_checkpoint: bool,
    /// `method.dafa_warmup` as a share of `train.epochs` (DAFA 70/110, TRIX 70/150).
    pub warmup_share: f64,
}

impl MethodDef {
    /// Whether the method reads `key`.
    pub fn reads(&self, key: MethodKey) -> bool {
        key == MethodKey::name || self.reads.iter().any(|g| g.contains(&key))
    }

    /// Default `data.val_per_class`.
    pub fn val_per_class(&self, d: DatasetKind) -> usize {
        match (d, self.last_300_split) {
            (DatasetKind::Cifar100, false) => 10,
            (DatasetKind::Cifar100, true) => 30,
            (_, false) => 100,
            (_, true) => 300,
        }
    }

    /// Default `data.val_from`.
    pub fn val_from(&self) -> ValFrom {
        if self.last_300_split {
            ValFrom::Last
        } else {
            ValFrom::First
        }
    }

    /// Default `method.dafa_warmup` for a run of `epochs` (at least 1).
    pub fn warmup(&self, epochs: usize) -> usize {
        ((epochs as f64 * self.warmup_share).round() as usize).max(1)
    }

    /// Default `method.calibration_start` for a run of `epochs`.
    pub fn calibration_start(&self, epochs: usize) -> usize {
        ((epochs as f64 * self.calibrate_from).round() as usize).max(1)
    }
}

use MethodKey as K;
/// Class-wise epsilon (CCM) and when calibration starts.
const CALIBRATION: &[K] = &[K::class_eps, K::lambda1, K::calibration_start];
/// FAIR-TAT's targets from the previous epoch's C_FPS.
const TARGETS: &[K] = &[K::targets, K::softmax_scale, K::cfps_requires_class_eps];
const TRADES: &[K] = &[K::beta, K::trades_normalize];
const CCR: &[K] = &[K::ccr, K::lambda2];
const FRL: &[K] = &[
    K::beta,
    K::frl_bound0,
    K::frl_bound1,
    K::frl_rate1,
    K::frl_lim,
];

/// Rice et al.'s PGD-AT: what every method starts from.
const BASE: MethodDef = MethodDef {
    kind: MethodKind::PgdAt,
    reads: &[CALIBRATION],
    class_eps: false,
    ccr: false,
    beta: 6.0,
    trades_normalize: true,
    frl_bound: 0.1,
    frl_rate2: 0.1,
    calibrate_from: 0.0,
    clean_forwards: 0,
    fawa_decay: 0.0,
    bn_mode: BnMode::Train,
    last_300_split: false,
    needs_init_checkpoint: false,
    warmup_share: 0.0,
};
/// FAIR-TAT's reference code (`target_train_new.py`).
const FAIR: MethodDef = MethodDef {
    class_eps: true,
    clean_forwards: 2,
    fawa_decay: 0.85,
    ..BASE
};
/// TRADES' KL attack runs with BatchNorm in eval mode.
const KL: MethodDef = MethodDef {
    bn_mode: BnMode::Eval,
    ..BASE
};
/// WAT's and BAT's own code: the original TRADES scale.
const OWN: MethodDef = MethodDef {
    trades_normalize: false,
    ..KL
};
const FRL_RW: MethodDef = MethodDef {
    kind: MethodKind::FrlRw,
    reads: &[FRL],
    beta: 1.5,
    last_300_split: true,
    needs_init_checkpoint: true,
    ..KL
};

/// DAFA's class weights from a warm-up (rucy74/DAFA, `--dafa_lambda`, `--dafa_warmup`).
const DAFA: &[K] = &[K::dafa_lambda, K::dafa_warmup];

/// Declare every method once, in this order: [`MethodKind`] (the name as configs spell it) and
/// [`METHODS`] (its declaration, the `kind` filled in from the row).
macro_rules! methods {
    ($($(#[$meta:meta])* $variant:ident = $name:literal => $def:expr),+ $(,)?) => {
        choices! {
            /// The training method; what each one reads and defaults to is [`METHODS`].
            pub enum MethodKind {
                $($(#[$meta])* $variant = $name),+
            }
        }

        /// Every method, in [`MethodKind::ALL`] order.
        pub const METHODS: [MethodDef; MethodKind::ALL.len()] =
            [$(MethodDef { kind: MethodKind::$variant, ..$def }),+];
    };
}

methods! {
    PgdAt = "pgd-at" => BASE,
    FairTat = "fair-tat" => MethodDef {
        reads: &[CALIBRATION, TARGETS],
        ..FAIR
    },
    Trades = "trades" => MethodDef {
        reads: &[CALIBRATION, TRADES, CCR],
        clean_forwards: 1,
        ..KL
    },
    FairTatTrades = "fair-tat-trades" => MethodDef {
        reads: &[CALIBRATION, TARGETS, TRADES, CCR, &[K::trades_targeted]],
        bn_mode: BnMode::Eval,
        ..FAIR
    },
    Fat = "fat" => MethodDef {
        reads: &[CALIBRATION, &[K::tau]],
        clean_forwards: 1,
        ..BASE
    },
    FairTatFat = "fair-tat-fat" => MethodDef {
        reads: &[CALIBRATION, TARGETS, &[K::tau]],
        ..FAIR
    },
    Cfa = "cfa" => MethodDef {
        reads: &[CALIBRATION, TRADES, CCR],
        class_eps: true,
        ccr: true,
        calibrate_from: 0.05,
        clean_forwards: 1,
        fawa_decay: 0.88,
        ..KL
    },
    FairTatCfa = "fair-tat-cfa" => MethodDef {
        reads: &[CALIBRATION, TARGETS, TRADES, CCR, &[K::trades_targeted]],
        ccr: true,
        bn_mode: BnMode::Eval,
        ..FAIR
    },
    Wat = "wat" => MethodDef {
        reads: &[TRADES, &[K::eta]],
        last_300_split: true,
        ..OWN
    },
    Bat = "bat" => MethodDef {
        reads: &[TRADES],
        ..OWN
    },
    FrlRw = "frl-rw" => FRL_RW,
    FrlRwrm = "frl-rwrm" => MethodDef {
        reads: &[FRL, &[K::frl_rate2]],
        frl_bound: 0.07,
        frl_rate2: 0.2,
        ..FRL_RW
    },
    /// DAFA's `trades_loss` and `madry_loss`: attacks in eval mode, CE + beta KL unnormalised.
    Dafa = "dafa" => MethodDef {
        reads: &[&[K::beta], DAFA],
        warmup_share: 70.0 / 110.0,
        ..OWN
    },
    DafaPgdAt = "dafa-pgd-at" => MethodDef {
        reads: &[DAFA],
        warmup_share: 70.0 / 110.0,
        ..KL
    },
    /// TRIX's `mixed_trades_loss` after DAFA's warm-up of 70 of 150 epochs.
    Trix = "trix" => MethodDef {
        reads: &[&[K::beta], DAFA],
        warmup_share: 70.0 / 150.0,
        ..OWN
    },
    /// FAAL fine-tunes a PGD-AT or TRADES model; `ft_prn.py` attacks in eval mode.
    Faal = "faal" => MethodDef {
        reads: &[&[K::faal_r]],
        needs_init_checkpoint: true,
        ..KL
    },
}

impl MethodKind {
    /// The method's declaration.
    pub fn def(self) -> &'static MethodDef {
        &METHODS[self as usize]
    }
}
