//! The raw config (what the user typed) and its validation into a [`RunSpec`].
//!
//! Validation walks the TOML table section by section, so every error carries the full dotted
//! key (`train.epochs`) and unknown keys are reported with the keys that section allows.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::path::PathBuf;

use super::spec::*;
use super::value::{parse_fraction, short_number};
use super::ConfigError;

/// Sections and the keys each allows (the form groups follow this order).
pub const SECTIONS: [(&str, &[&str]); 6] = [
    (
        "data",
        &[
            "dataset",
            "dir",
            "train_subset",
            "val_per_class",
            "val_from",
            "test_subset",
            "crop_padding",
            "padding_mode",
            "flip",
            "normalize",
        ],
    ),
    ("model", &["arch"]),
    (
        "train",
        &[
            "epochs",
            "batch_size",
            "lr",
            "lr_schedule",
            "momentum",
            "weight_decay",
            "ema_decay",
            "fawa_decay",
            "fawa_threshold",
            "init_checkpoint",
            "init_from",
            "init_from_run",
            "clean_forwards",
            "log_every",
            "threads",
        ],
    ),
    (
        "attack",
        &["eps", "alpha", "steps", "random_start", "bn_mode"],
    ),
    (
        "method",
        &[
            "name",
            "targets",
            "softmax_scale",
            "class_eps",
            "lambda1",
            "calibration_start",
            "cfps_requires_class_eps",
            "beta",
            "trades_normalize",
            "trades_targeted",
            "tau",
            "ccr",
            "lambda2",
            "eta",
            "frl_bound0",
            "frl_bound1",
            "frl_rate1",
            "frl_rate2",
            "frl_lim",
        ],
    ),
    (
        "eval",
        &[
            "eps",
            "alpha",
            "steps",
            "final_steps",
            "batch_size",
            "every",
            "models",
        ],
    ),
];
pub(crate) const TOP_KEYS: [&str; 4] = ["name", "tags", "seed", "device"];

/// A config as typed: a TOML table, not yet checked.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RawConfig {
    pub table: toml::Table,
}

impl RawConfig {
    pub fn from_table(table: toml::Table) -> Result<Self, ConfigError> {
        Ok(RawConfig { table })
    }

    /// Check every field and derive the [`RunSpec`].
    pub fn validate(&self) -> Result<RunSpec, ConfigError> {
        let empty = toml::Table::new();
        for (k, v) in &self.table {
            let known_top = TOP_KEYS.contains(&k.as_str());
            let known_section = SECTIONS.iter().any(|(s, _)| s == k);
            if k == "grid" {
                return Err(ConfigError::invalid(
                    "grid",
                    "a [grid] config creates one run per combination; start it with \
                     `fairtat train --config FILE` or the dashboard, not as a single run",
                ));
            }
            if !known_top && !known_section {
                let mut allowed: Vec<&str> = TOP_KEYS.to_vec();
                allowed.extend(SECTIONS.iter().map(|(s, _)| *s));
                return Err(ConfigError::UnknownKey {
                    key: k.clone(),
                    hint: format!("; allowed: {}", allowed.join(", ")),
                });
            }
            if known_section && !v.is_table() {
                return Err(ConfigError::invalid(
                    k,
                    "must be a section ([name] in TOML)",
                ));
            }
        }
        let section = |name: &'static str| Reader {
            prefix: name,
            table: self
                .table
                .get(name)
                .and_then(|v| v.as_table())
                .unwrap_or(&empty),
            allowed: SECTIONS
                .iter()
                .find(|(s, _)| *s == name)
                .map(|(_, k)| *k)
                .unwrap_or(&[]),
            used: RefCell::new(BTreeSet::new()),
        };
        let top = Reader {
            prefix: "",
            table: &self.table,
            allowed: &TOP_KEYS,
            used: RefCell::new(BTreeSet::new()),
        };

        // The method decides some defaults (validation split, FAWA decay, BN mode of the attack,
        // clean forwards), so its name is read first; the section's other keys are read below.
        let me = section("method");
        let method_name = me.choice("name", &MethodKind::NAMES, "fair-tat", MethodKind::parse)?;

        let d = section("data");
        let dataset = d.choice(
            "dataset",
            &DatasetKind::NAMES,
            "fashion-mnist",
            DatasetKind::parse,
        )?;
        let data = DataSpec {
            dataset,
            dir: PathBuf::from(d.string("dir", dataset.default_dir())?),
            train_subset: d.usize("train_subset", 0, 0, usize::MAX)?,
            val_per_class: d.usize(
                "val_per_class",
                default_val_per_class(dataset, method_name),
                0,
                10_000,
            )?,
            val_from: d.choice(
                "val_from",
                &ValFrom::NAMES,
                default_val_from(method_name).as_str(),
                ValFrom::parse,
            )?,
            test_subset: d.usize("test_subset", 0, 0, usize::MAX)?,
            crop_padding: d.usize(
                "crop_padding",
                if dataset == DatasetKind::FashionMnist {
                    0
                } else {
                    4
                },
                0,
                16,
            )?,
            padding_mode: d.choice(
                "padding_mode",
                &["zero", "reflect"],
                "reflect",
                |s| match s {
                    "zero" => Some(PaddingMode::Zero),
                    "reflect" => Some(PaddingMode::Reflect),
                    _ => None,
                },
            )?,
            flip: d.bool("flip", dataset != DatasetKind::FashionMnist)?,
            normalize: d.bool("normalize", false)?,
        };
        d.finish()?;

        let m = section("model");
        let model = ModelSpec {
            arch: m.choice(
                "arch",
                &Arch::NAMES,
                if dataset == DatasetKind::FashionMnist {
                    "smallcnn"
                } else {
                    "preact-resnet18"
                },
                Arch::parse,
            )?,
        };
        m.finish()?;

        let t = section("train");
        let train = TrainSpec {
            epochs: t.usize("epochs", 200, 1, 100_000)?,
            batch_size: t.usize("batch_size", 128, 1, 65_536)?,
            lr: t.f64("lr", 0.1, 0.0, 10.0)?,
            lr_schedule: t.choice(
                "lr_schedule",
                &LrSchedule::NAMES,
                "piecewise",
                |s| match s {
                    "piecewise" => Some(LrSchedule::Piecewise),
                    "step4" => Some(LrSchedule::Step4),
                    "constant" => Some(LrSchedule::Constant),
                    "step-75-90-100" => Some(LrSchedule::Step75_90_100),
                    _ => None,
                },
            )?,
            momentum: t.f64("momentum", 0.9, 0.0, 0.999_999)?,
            weight_decay: t.f64("weight_decay", 5e-4, 0.0, 1.0)?,
            ema_decay: t.f64("ema_decay", 0.85, 0.0, 0.999_999)?,
            fawa_decay: t.f64(
                "fawa_decay",
                method_name.default_fawa_decay(),
                0.0,
                0.999_999,
            )?,
            fawa_threshold: t.f64("fawa_threshold", 0.2, 0.0, 1.01)?,
            init_checkpoint: t.string("init_checkpoint", "")?,
            init_from: t.string("init_from", "")?.trim().to_string(),
            init_from_run: t.string("init_from_run", "")?.trim().to_string(),
            clean_forwards: clean_forwards(&t, &me, method_name)?,
            log_every: t.usize("log_every", 10, 1, 1_000_000)?,
            threads: t.usize("threads", 0, 0, 1024)?,
        };
        t.finish()?;
        check_init(&train, method_name)?;

        let a = section("attack");
        let eps = a.f64("eps", 8.0 / 255.0, 0.0, 1.0)?;
        let attack = AttackSpec {
            eps,
            alpha: a.f64("alpha", 2.0 / 255.0, 0.0, 1.0)?,
            steps: a.usize("steps", 10, 0, 1000)?,
            random_start: a.bool("random_start", true)?,
            bn_mode: a.choice(
                "bn_mode",
                &["train", "eval"],
                if method_name.attacks_in_eval_mode() {
                    "eval"
                } else {
                    "train"
                },
                parse_bn,
            )?,
        };
        a.finish()?;

        // FAIR-TAT's reference code calibrates epsilon; Rice et al.'s PGD-AT does not, so the
        // defaults follow the chosen method. Its TRADES/FAT combinations keep the class-wise
        // epsilon. (The clean forwards are `train.clean_forwards`, read above.)
        let is_cfa = matches!(method_name, MethodKind::Cfa | MethodKind::FairTatCfa);
        let is_frl = matches!(method_name, MethodKind::FrlRw | MethodKind::FrlRwrm);
        let rwrm = method_name == MethodKind::FrlRwrm;
        // CFA calibrates from `begin` = 10 of 200 epochs (algorithms.md §2.1): 5% of the run,
        // so shorter runs calibrate proportionally earlier (at least from epoch 1).
        let default_start = if method_name == MethodKind::Cfa {
            ((train.epochs as f64 * 0.05).round() as usize).max(1)
        } else {
            1
        };
        let method = MethodSpec {
            name: method_name,
            targets: me.choice("targets", &TargetWeighting::NAMES, "softmax", |s| match s {
                "softmax" => Some(TargetWeighting::Softmax),
                "proportional" => Some(TargetWeighting::Proportional),
                "uniform" => Some(TargetWeighting::Uniform),
                _ => None,
            })?,
            softmax_scale: me.f64("softmax_scale", 2.0, 0.0, 1000.0)?,
            class_eps: me.bool(
                "class_eps",
                method_name.is_fair_tat_family() || method_name == MethodKind::Cfa,
            )?,
            lambda1: me.f64("lambda1", 0.5, 0.0, 10.0)?,
            calibration_start: me.usize("calibration_start", default_start, 0, 100_000)?,
            cfps_requires_class_eps: me.bool("cfps_requires_class_eps", true)?,
            beta: me.f64("beta", if is_frl { 1.5 } else { 6.0 }, 0.0, 100.0)?,
            // CFA's normalised TRADES is FAIR-TAT's and CFA's; the other baselines' reference
            // code uses the original CE + beta KL.
            trades_normalize: me.bool("trades_normalize", !method_name.original_trades_scale())?,
            trades_targeted: me.bool("trades_targeted", true)?,
            tau: me.usize("tau", 3, 0, 1000)?,
            ccr: me.bool("ccr", is_cfa)?,
            lambda2: me.f64("lambda2", 0.5, 0.0, 10.0)?,
            eta: me.f64("eta", 0.1, 0.0, 100.0)?,
            // frlrw.py / frlrmrw.py defaults (algorithms.md §3.4).
            frl_bound0: me.f64("frl_bound0", if rwrm { 0.07 } else { 0.1 }, 0.0, 1.0)?,
            frl_bound1: me.f64("frl_bound1", if rwrm { 0.07 } else { 0.1 }, 0.0, 1.0)?,
            frl_rate1: me.f64("frl_rate1", 0.05, 0.0, 10.0)?,
            frl_rate2: me.f64("frl_rate2", if rwrm { 0.2 } else { 0.1 }, 0.0, 10.0)?,
            frl_lim: me.f64("frl_lim", 0.5, 0.0, 1.0)?,
        };
        if method.ccr && !method_name.uses_trades_loss() {
            return Err(ConfigError::invalid(
                "method.ccr",
                format!(
                    "true needs a TRADES-loss method (trades, fair-tat-trades, cfa, fair-tat-cfa), not {}",
                    method_name.as_str()
                ),
            ));
        }
        me.finish()?;

        let eval = sections::eval_section(&section("eval"), eps, attack.alpha)?;

        let name = top.string(
            "name",
            &format!(
                "{}-{}-{}",
                dataset.as_str(),
                model.arch.as_str(),
                method.name.as_str()
            ),
        )?;
        if name.trim().is_empty() || name.len() > 80 {
            return Err(ConfigError::invalid("name", "must be 1 to 80 characters"));
        }
        let device = top.string("device", "auto")?;
        if !(device == "auto"
            || device == "cpu"
            || device
                .strip_prefix("cuda:")
                .is_some_and(|n| n.parse::<usize>().is_ok()))
        {
            return Err(ConfigError::not_allowed(
                "device",
                &device,
                &["auto", "cpu", "cuda:N"],
            ));
        }
        let spec = RunSpec {
            name,
            tags: top.strings("tags")?,
            seed: top.usize("seed", 0, 0, u32::MAX as usize)? as u64,
            device,
            data,
            model,
            train,
            attack,
            method,
            eval,
        };
        // Cross-field checks.
        if spec.data.dataset != DatasetKind::FashionMnist
            && spec.model.arch == Arch::Smallcnn
            && spec.data.crop_padding > 8
        {
            return Err(ConfigError::invalid(
                "data.crop_padding",
                "at most 8 for smallcnn",
            ));
        }
        Ok(spec)
    }
}

fn parse_bn(s: &str) -> Option<BnMode> {
    match s {
        "train" => Some(BnMode::Train),
        "eval" => Some(BnMode::Eval),
        _ => None,
    }
}

use sections::{check_init, clean_forwards, default_val_from, default_val_per_class};

/// Reads typed values out of one section and remembers which keys were used.
struct Reader<'a> {
    prefix: &'static str,
    table: &'a toml::Table,
    allowed: &'static [&'static str],
    used: RefCell<BTreeSet<String>>,
}

impl Reader<'_> {
    fn key(&self, k: &str) -> String {
        if self.prefix.is_empty() {
            k.to_string()
        } else {
            format!("{}.{k}", self.prefix)
        }
    }

    fn get(&self, k: &str) -> Option<&toml::Value> {
        self.used.borrow_mut().insert(k.to_string());
        self.table.get(k)
    }

    fn f64(&self, k: &str, default: f64, min: f64, max: f64) -> Result<f64, ConfigError> {
        let key = self.key(k);
        let v = match self.get(k) {
            None => return Ok(default),
            Some(toml::Value::Float(f)) => *f,
            Some(toml::Value::Integer(i)) => *i as f64,
            Some(toml::Value::String(s)) => parse_fraction(s).ok_or_else(|| {
                ConfigError::invalid(
                    &key,
                    format!("{s:?} is not a number (use 0.031 or \"8/255\")"),
                )
            })?,
            Some(other) => {
                return Err(ConfigError::invalid(
                    &key,
                    format!("expected a number, got {}", other.type_str()),
                ))
            }
        };
        if !v.is_finite() || v < min || v > max {
            return Err(ConfigError::invalid(
                &key,
                format!(
                    "{} is out of range; allowed: {} to {}",
                    short_number(v),
                    short_number(min),
                    short_number(max)
                ),
            ));
        }
        Ok(v)
    }

    fn usize(&self, k: &str, default: usize, min: usize, max: usize) -> Result<usize, ConfigError> {
        let key = self.key(k);
        let v = match self.get(k) {
            None => return Ok(default),
            Some(toml::Value::Integer(i)) => *i,
            Some(toml::Value::String(s)) => s
                .trim()
                .parse::<i64>()
                .map_err(|_| ConfigError::invalid(&key, format!("{s:?} is not a whole number")))?,
            Some(other) => {
                return Err(ConfigError::invalid(
                    &key,
                    format!("expected a whole number, got {}", other.type_str()),
                ))
            }
        };
        if v < min as i64 || (v as u64) > max as u64 {
            let hi = if max == usize::MAX {
                "no limit".to_string()
            } else {
                max.to_string()
            };
            return Err(ConfigError::invalid(
                &key,
                format!("{v} is out of range; allowed: {min} to {hi}"),
            ));
        }
        Ok(v as usize)
    }

    fn bool(&self, k: &str, default: bool) -> Result<bool, ConfigError> {
        let key = self.key(k);
        match self.get(k) {
            None => Ok(default),
            Some(toml::Value::Boolean(b)) => Ok(*b),
            Some(toml::Value::String(s)) => match s.as_str() {
                "true" | "on" | "1" | "yes" => Ok(true),
                "false" | "off" | "0" | "no" => Ok(false),
                _ => Err(ConfigError::not_allowed(&key, s, &["true", "false"])),
            },
            Some(other) => Err(ConfigError::not_allowed(
                &key,
                &other.to_string(),
                &["true", "false"],
            )),
        }
    }

    fn string(&self, k: &str, default: &str) -> Result<String, ConfigError> {
        match self.get(k) {
            None => Ok(default.to_string()),
            Some(toml::Value::String(s)) => Ok(s.clone()),
            Some(other) => Err(ConfigError::invalid(
                &self.key(k),
                format!("expected a string, got {}", other.type_str()),
            )),
        }
    }

    fn strings(&self, k: &str) -> Result<Vec<String>, ConfigError> {
        let key = self.key(k);
        match self.get(k) {
            None => Ok(vec![]),
            Some(toml::Value::String(s)) => Ok(s
                .split(',')
                .map(|t| t.trim().to_string())
                .filter(|t| !t.is_empty())
                .collect()),
            Some(toml::Value::Array(a)) => a
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| ConfigError::invalid(&key, "expected a list of strings"))
                })
                .collect(),
            Some(other) => Err(ConfigError::invalid(
                &key,
                format!("expected a list of strings, got {}", other.type_str()),
            )),
        }
    }

    fn choice<T>(
        &self,
        k: &str,
        allowed: &[&str],
        default: &str,
        parse: impl Fn(&str) -> Option<T>,
    ) -> Result<T, ConfigError> {
        let s = self.string(k, default)?;
        parse(s.trim()).ok_or_else(|| ConfigError::not_allowed(&self.key(k), &s, allowed))
    }

    /// Fail on keys that no reader asked for.
    fn finish(&self) -> Result<(), ConfigError> {
        let used = self.used.borrow();
        for k in self.table.keys() {
            if !used.contains(k) && !self.allowed.contains(&k.as_str()) {
                return Err(ConfigError::UnknownKey {
                    key: self.key(k),
                    hint: format!(
                        "; allowed in [{}]: {}",
                        self.prefix,
                        self.allowed.join(", ")
                    ),
                });
            }
        }
        Ok(())
    }
}

mod sections;
#[cfg(test)]
mod tests;
