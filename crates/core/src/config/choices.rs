//! Small closed sets of config values added with the reference-faithful baselines: where the
//! validation split comes from, and which models the per-epoch evaluation covers.

use serde::{Deserialize, Serialize};

/// Where the validation split is taken from in each class of the training files.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ValFrom {
    /// The first `val_per_class` images of each class (FAIR-TAT's `get_dataset`, CFA's
    /// `generate_validation.py`).
    #[default]
    First,
    /// The last `val_per_class` images of each class (boqili/WAT and hannxu123/fair_robust
    /// `data_loader.py`: 4,700 train + 300 validation per CIFAR-10 class).
    Last,
}

impl ValFrom {
    pub const NAMES: [&'static str; 2] = ["first", "last"];

    pub fn as_str(&self) -> &'static str {
        match self {
            ValFrom::First => "first",
            ValFrom::Last => "last",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "first" => Some(ValFrom::First),
            "last" => Some(ValFrom::Last),
            _ => None,
        }
    }
}

/// A model the per-epoch evaluation can cover.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EvalModel {
    /// The model being trained.
    Live,
    /// Its per-epoch EMA (`train.ema_decay`).
    Ema,
    /// CFA's FAWA average (`train.fawa_decay`).
    Fawa,
}

impl EvalModel {
    pub const NAMES: [&'static str; 3] = ["live", "ema", "fawa"];

    pub fn all() -> Vec<EvalModel> {
        vec![EvalModel::Live, EvalModel::Ema, EvalModel::Fawa]
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            EvalModel::Live => "live",
            EvalModel::Ema => "ema",
            EvalModel::Fawa => "fawa",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "live" => Some(EvalModel::Live),
            "ema" => Some(EvalModel::Ema),
            "fawa" => Some(EvalModel::Fawa),
            _ => None,
        }
    }
}
