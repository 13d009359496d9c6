//! The closed sets of config values, each declared once with [`choices!`]: the enum, its
//! spellings (`NAMES`, `as_str`, `parse`), `Display`, and serde as those spellings, so a value
//! is never written twice.

/// Declare an enum whose variants are spelled as config values: [`crate::named_enum!`] plus
/// serde's `Deserialize` (naming the allowed values) and the config reader's `KeyType`:
///
/// ```ignore
/// choices! {
///     /// Doc of the enum.
///     pub enum Mode {
///         /// Doc of the variant.
///         Fast = "fast",
///         Slow = "slow",
///     }
/// }
/// ```
macro_rules! choices {
    ($(#[$meta:meta])* pub enum $name:ident {
        $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)?
    }) => {
        $crate::named_enum! {
            $(#[$meta])*
            pub enum $name {
                $($(#[$vmeta])* $variant = $text),+
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
                $name::parse(&s).ok_or_else(|| {
                    serde::de::Error::custom(format!(
                        "{s:?} is not allowed; allowed values: {}",
                        $name::NAMES.join(", ")
                    ))
                })
            }
        }

        impl $crate::config::schema::KeyType for $name {
            const KIND: $crate::config::schema::FieldKind =
                $crate::config::schema::FieldKind::Choice;
            const CHOICES: &'static [&'static str] = &$name::NAMES;

            fn read(
                r: &$crate::config::reader::Reader,
                k: &str,
                default: Self,
                _: Option<(Self, Self)>,
            ) -> Result<Self, $crate::config::error::ConfigError> {
                r.choice(k, &$name::NAMES, default.as_str(), $name::parse)
            }
        }
    };
}
pub(crate) use choices;

choices! {
    /// The data set a run trains on.
    pub enum DatasetKind {
        FashionMnist = "fashion-mnist",
        Cifar10 = "cifar10",
        Cifar100 = "cifar100",
    }
}

impl DatasetKind {
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

choices! {
    /// Padding of the random crop.
    pub enum PaddingMode {
        Zero = "zero",
        Reflect = "reflect",
    }
}

choices! {
    /// Where the validation split is taken from in each class of the training files.
    #[derive(Default)]
    pub enum ValFrom {
        #[default]
        /// The first `val_per_class` images of each class (FAIR-TAT's `get_dataset`, CFA's
        /// `generate_validation.py`).
        First = "first",
        /// The last `val_per_class` images of each class (boqili/WAT and hannxu123/fair_robust
        /// `data_loader.py`: 4,700 train + 300 validation per CIFAR-10 class).
        Last = "last",
    }
}

choices! {
    /// The network architecture.
    pub enum Arch {
        Smallcnn = "smallcnn",
        PreactResnet18 = "preact-resnet18",
        Wrn34_10 = "wrn-34-10",
        /// XCiT-S12 with patch size 4 (timm names; the robust-ViT adaptation to 32x32).
        XcitS12 = "xcit-s12",
    }
}

choices! {
    /// The learning-rate schedule.
    pub enum LrSchedule {
        /// 1x until 50% of epochs, 0.1x until 75%, 0.01x after (Rice et al.; reference `step3`).
        Piecewise = "piecewise",
        /// /10 at 25%, 50%, 75% (reference `step4`).
        Step4 = "step4",
        Constant = "constant",
        /// x0.1 from epoch 75, x0.01 from 90, x0.001 from 100 (1-based epochs, whatever the
        /// run's length): yaodongyu/TRADES `adjust_learning_rate`, used by WAT and BAT as well.
        Step75_90_100 = "step-75-90-100",
        /// x0.1 for the last 11 epochs, x0.01 for the last 6 (1-based epochs from
        /// `epochs - 10` and `epochs - 5`): DAFA's and TRIX's `bag_of_tricks` (lr drops at 100
        /// and 105 of 110).
        DropLast10_5 = "drop-last-10-5",
        /// x0.1 from half the epochs on, per epoch: FAAL's `multistep` for its 2- and 4-epoch
        /// fine-tuning (MultiStepLR with the milestone at `epochs / 2`).
        StepHalf = "step-half",
    }
}

choices! {
    /// The arithmetic of a model's forward and backward passes (training, its attacks and the
    /// evaluation attacks alike).
    #[derive(Default)]
    pub enum Precision {
        #[default]
        /// float32 throughout.
        Fp32 = "fp32",
        /// bfloat16 autocast (libtorch's mixed precision) over float32 weights, with
        /// channels_last convolutions: the weights and their updates stay float32.
        Bf16 = "bf16",
    }
}

choices! {
    /// How an epoch's training batches are drawn.
    pub enum ClassSampling {
        /// Every image once, in an order fixed by seed and epoch.
        Shuffle = "shuffle",
        /// CFOL's class sampler: classes from `gamma u + (1 - gamma) q`, q by Exp3 on the
        /// classes' adversarial errors, images with replacement.
        Cfol = "cfol",
    }
}

choices! {
    /// BatchNorm's mode while the training attack runs.
    pub enum BnMode {
        /// Batch statistics, running stats updated (FAIR-TAT, CFA, Rice et al.).
        Train = "train",
        /// Running stats (TRADES, FAT, evaluation).
        Eval = "eval",
    }
}

choices! {
    /// How FAIR-TAT turns the previous epoch's C_FPS into target-sampling weights.
    pub enum TargetWeighting {
        /// softmax(scale * C_FPS): the reference code (algorithms.md §1.4).
        Softmax = "softmax",
        /// Proportional to C_FPS: the paper's wording.
        Proportional = "proportional",
        /// Uniform over the other classes (the random-target ablation).
        Uniform = "uniform",
    }
}

choices! {
    /// A model the per-epoch evaluation can cover.
    pub enum EvalModel {
        /// The model being trained.
        Live = "live",
        /// Its per-epoch EMA (`train.ema_decay`).
        Ema = "ema",
        /// CFA's FAWA average (`train.fawa_decay`).
        Fawa = "fawa",
    }
}

impl EvalModel {
    pub fn all() -> Vec<EvalModel> {
        EvalModel::ALL.to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::MethodKind;

    #[test]
    fn names_parse_back_and_serialise_as_spelled() {
        for m in MethodKind::ALL {
            assert_eq!(MethodKind::parse(m.as_str()), Some(m));
            assert_eq!(m.to_string(), m.as_str());
        }
        assert_eq!(Arch::parse("wrn-34-10"), Some(Arch::Wrn34_10));
        assert_eq!(LrSchedule::parse("nope"), None);
        let json = serde_json::to_string(&LrSchedule::Step75_90_100).unwrap();
        assert_eq!(json, "\"step-75-90-100\"");
        let back: LrSchedule = serde_json::from_str(&json).unwrap();
        assert_eq!(back, LrSchedule::Step75_90_100);
        let e = serde_json::from_str::<BnMode>("\"x\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("train, eval"), "{e}");
    }
}
