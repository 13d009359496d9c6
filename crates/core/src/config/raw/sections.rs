//! Defaults and checks that follow the method's reference code: its validation split, its
//! count of clean train-mode forwards, FRL's required starting checkpoint; and the `[eval]`
//! section.

use super::Reader;
use crate::config::spec::{DatasetKind, EvalModel, EvalSpec, MethodKind, TrainSpec, ValFrom};
use crate::config::ConfigError;

/// Validation images per class. FAIR-TAT and CFA: 50000/K/50 (100 for CIFAR-10, 10 for
/// CIFAR-100, algorithms.md §1.7). WAT and FRL keep the last 300 of each CIFAR-10 class (WAT: 30
/// of each CIFAR-100 class; FRL has no CIFAR-100 code, so it gets WAT's 6% too), §3.4, §3.6.
pub(super) fn default_val_per_class(d: DatasetKind, m: MethodKind) -> usize {
    let own_split = matches!(m, MethodKind::Wat | MethodKind::FrlRw | MethodKind::FrlRwrm);
    match (d, own_split) {
        (DatasetKind::Cifar100, false) => 10,
        (DatasetKind::Cifar100, true) => 30,
        (_, false) => 100,
        (_, true) => 300,
    }
}

/// WAT's and FRL's `data_loader.py` take the validation images from the end of each class.
pub(super) fn default_val_from(m: MethodKind) -> ValFrom {
    match m {
        MethodKind::Wat | MethodKind::FrlRw | MethodKind::FrlRwrm => ValFrom::Last,
        _ => ValFrom::First,
    }
}

/// `train.clean_forwards` (0, 1 or 2), defaulting to the method's reference. The key that
/// preceded it, `method.clean_forward_after_step` (a bool, found in older run directories),
/// still reads as 0 or 1 when the new key is absent.
pub(super) fn clean_forwards(t: &Reader, me: &Reader, m: MethodKind) -> Result<usize, ConfigError> {
    let legacy = "clean_forward_after_step";
    let default = if me.table.contains_key(legacy) {
        usize::from(me.bool(legacy, false)?)
    } else {
        m.default_clean_forwards()
    };
    t.usize("clean_forwards", default, 0, 2)
}

/// FRL fine-tunes a trained model (hannxu123/fair_robust loads `hot_start.pt`, a TRADES model):
/// it refuses random weights. A grid row may name its source row with `train.init_from`.
pub(super) fn check_init(train: &TrainSpec, m: MethodKind) -> Result<(), ConfigError> {
    let given = [
        &train.init_checkpoint,
        &train.init_from,
        &train.init_from_run,
    ]
    .iter()
    .any(|s| !s.trim().is_empty());
    if m.needs_init_checkpoint() && !given {
        return Err(ConfigError::invalid(
            "train.init_checkpoint",
            format!(
                "{} fine-tunes a trained model and cannot start from random weights: set \
                 train.init_checkpoint to a TRADES run's checkpoints/last.safetensors, or in a \
                 grid train.init_from = \"trades\" (the same seed's TRADES row)",
                m.as_str()
            ),
        ));
    }
    Ok(())
}

/// The `[eval]` section; `eps` and `alpha` default to the training attack's.
pub(super) fn eval_section(e: &Reader, eps: f64, alpha: f64) -> Result<EvalSpec, ConfigError> {
    let models = match e.strings("models")? {
        v if v.is_empty() && !e.table.contains_key("models") => EvalModel::all(),
        v => {
            let mut out = Vec::new();
            for name in &v {
                let m = EvalModel::parse(name).ok_or_else(|| {
                    ConfigError::not_allowed("eval.models", name, &EvalModel::NAMES)
                })?;
                if !out.contains(&m) {
                    out.push(m);
                }
            }
            if out.is_empty() {
                return Err(ConfigError::invalid(
                    "eval.models",
                    "list at least one of live, ema, fawa",
                ));
            }
            out
        }
    };
    let spec = EvalSpec {
        eps: e.f64("eps", eps, 0.0, 1.0)?,
        alpha: e.f64("alpha", alpha, 0.0, 1.0)?,
        steps: e.usize("steps", 10, 0, 10_000)?,
        final_steps: e.usize("final_steps", 20, 0, 10_000)?,
        batch_size: e.usize("batch_size", 256, 1, 65_536)?,
        every: e.usize("every", 1, 1, 100_000)?,
        models,
    };
    e.finish()?;
    Ok(spec)
}
