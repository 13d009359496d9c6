//! Form metadata for every config key: its group, input kind, allowed values and a one-line help.
//!
//! The dashboard's "New run" form is generated from [`FIELDS`], so a key added to
//! [`super::raw::SECTIONS`] only needs a line here (a unit test fails until it has one).
//! Values travel as strings: the validator in `raw.rs` accepts "8/255", "5" and "true" for
//! numeric and boolean keys, so the form needs no typing of its own.

use super::spec::{Arch, DatasetKind, LrSchedule, MethodKind, TargetWeighting, ValFrom};

/// How a field is entered in the form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldKind {
    /// A number; fractions such as "8/255" are allowed where the help says so.
    Number,
    /// One of a closed set of values ([`Field::choices`]).
    Choice,
    /// true / false.
    Bool,
    /// Free text (paths, names, comma-separated tags).
    Text,
}

impl FieldKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            FieldKind::Number => "number",
            FieldKind::Choice => "choice",
            FieldKind::Bool => "bool",
            FieldKind::Text => "text",
        }
    }
}

/// One config key as the form shows it.
#[derive(Clone, Copy, Debug)]
pub struct Field {
    /// Dotted key as in `--set` (`train.epochs`, or `name` for top-level keys).
    pub key: &'static str,
    /// Form group (the section name, `run` for top-level keys).
    pub group: &'static str,
    pub kind: FieldKind,
    /// Allowed values for [`FieldKind::Choice`] (and `true`/`false` for booleans).
    pub choices: &'static [&'static str],
    pub help: &'static str,
}

const BOOL: &[&str] = &["true", "false"];

const fn f(key: &'static str, group: &'static str, kind: FieldKind, help: &'static str) -> Field {
    Field {
        key,
        group,
        kind,
        choices: if matches!(kind, FieldKind::Bool) {
            BOOL
        } else {
            &[]
        },
        help,
    }
}

const fn c(
    key: &'static str,
    group: &'static str,
    choices: &'static [&'static str],
    help: &'static str,
) -> Field {
    Field {
        key,
        group,
        kind: FieldKind::Choice,
        choices,
        help,
    }
}

use FieldKind::{Bool, Number, Text};

/// Form groups in display order.
pub const GROUPS: [&str; 7] = ["run", "data", "model", "method", "attack", "train", "eval"];

/// Every config key, in form order within its group.
pub const FIELDS: &[Field] = &[
    f(
        "name",
        "run",
        Text,
        "Run name shown in the dashboard (1 to 80 characters)",
    ),
    f(
        "tags",
        "run",
        Text,
        "Comma-separated tags used to filter runs",
    ),
    f(
        "seed",
        "run",
        Number,
        "Random seed for initialisation, splits and attacks",
    ),
    f("device", "run", Text, "auto, cpu or cuda:N"),
    c(
        "data.dataset",
        "data",
        &DatasetKind::NAMES,
        "Dataset to train on",
    ),
    f(
        "data.dir",
        "data",
        Text,
        "Directory holding the dataset files",
    ),
    f(
        "data.train_subset",
        "data",
        Number,
        "Class-balanced training subset size; 0 = all",
    ),
    f(
        "data.val_per_class",
        "data",
        Number,
        "Validation images per class taken from the training set; WAT/FRL default to 300 (30 on CIFAR-100)",
    ),
    c(
        "data.val_from",
        "data",
        &ValFrom::NAMES,
        "Validation images from the start (FAIR-TAT, CFA) or the end (WAT, FRL) of each class",
    ),
    f(
        "data.test_subset",
        "data",
        Number,
        "Class-balanced test subset for per-epoch evaluation; 0 = all",
    ),
    f(
        "data.crop_padding",
        "data",
        Number,
        "Random-crop padding in pixels; 0 = no crop",
    ),
    c(
        "data.padding_mode",
        "data",
        &["zero", "reflect"],
        "Padding used by the random crop",
    ),
    f("data.flip", "data", Bool, "Random horizontal flips"),
    f(
        "data.normalize",
        "data",
        Bool,
        "Per-dataset mean/std normalisation inside the model",
    ),
    c("model.arch", "model", &Arch::NAMES, "Network architecture"),
    c(
        "method.name",
        "method",
        &MethodKind::NAMES,
        "Training method",
    ),
    c(
        "method.targets",
        "method",
        &TargetWeighting::NAMES,
        "FAIR-TAT target weighting from the previous epoch's C_FPS",
    ),
    f(
        "method.softmax_scale",
        "method",
        Number,
        "Factor inside softmax(scale * C_FPS); reference: 2",
    ),
    f(
        "method.class_eps",
        "method",
        Bool,
        "Class-wise epsilon eps_k = (lambda1 + r_k) * eps",
    ),
    f(
        "method.lambda1",
        "method",
        Number,
        "Base factor of the class-wise epsilon",
    ),
    f(
        "method.calibration_start",
        "method",
        Number,
        "First epoch (0-based) using calibration from the previous epoch",
    ),
    f(
        "method.cfps_requires_class_eps",
        "method",
        Bool,
        "Reference quirk: update C_FPS targets only with class-wise epsilon",
    ),
    f(
        "method.beta",
        "method",
        Number,
        "TRADES weight of the KL term (0 to 100); reference: 6",
    ),
    f(
        "method.trades_normalize",
        "method",
        Bool,
        "TRADES as CFA: (1-b) CE + b KL with b = beta/(1+beta); false = CE + beta KL",
    ),
    f(
        "method.trades_targeted",
        "method",
        Bool,
        "FAIR-TAT + TRADES: targeted inner step toward sampled classes; false = KL ascent",
    ),
    f(
        "method.tau",
        "method",
        Number,
        "FAT: attack steps allowed after a sample is misclassified (0 to 1000); reference: 3",
    ),
    f(
        "method.ccr",
        "method",
        Bool,
        "CFA's CCR: class-wise TRADES beta from the previous epoch's robust accuracy (TRADES-loss methods)",
    ),
    f(
        "method.lambda2",
        "method",
        Number,
        "CCR base factor: beta_k = (lambda2 + r_k) beta / (1 + (lambda2 + r_k) beta); reference: 0.5",
    ),
    f(
        "method.eta",
        "method",
        Number,
        "WAT: Hedge learning rate of the class weights (0 to 100); reference: 0.1",
    ),
    f(
        "method.frl_bound0",
        "method",
        Number,
        "FRL: tolerated excess of a class's clean error over the mean (0 to 1)",
    ),
    f(
        "method.frl_bound1",
        "method",
        Number,
        "FRL: tolerated excess of a class's boundary error over the mean (0 to 1)",
    ),
    f(
        "method.frl_rate1",
        "method",
        Number,
        "FRL: reweighting multiplier step, halved every 40 epochs; reference: 0.05",
    ),
    f(
        "method.frl_rate2",
        "method",
        Number,
        "FRL-RWRM: remargin multiplier step; reference: 0.2",
    ),
    f(
        "method.frl_lim",
        "method",
        Number,
        "FRL: the reweighting multipliers sum to at most this (0 to 1); reference: 0.5",
    ),
    f(
        "attack.eps",
        "attack",
        Number,
        "Training attack radius (L-inf), e.g. 8/255",
    ),
    f(
        "attack.alpha",
        "attack",
        Number,
        "PGD step size, e.g. 2/255",
    ),
    f(
        "attack.steps",
        "attack",
        Number,
        "PGD steps during training",
    ),
    f(
        "attack.random_start",
        "attack",
        Bool,
        "Start PGD from a random point in the ball",
    ),
    c(
        "attack.bn_mode",
        "attack",
        &["train", "eval"],
        "BatchNorm mode while attacking; default train (PGD-AT, FAIR-TAT, FAT as CFA), eval (KL attacks)",
    ),
    f("train.epochs", "train", Number, "Number of epochs"),
    f("train.batch_size", "train", Number, "Mini-batch size"),
    f("train.lr", "train", Number, "Initial learning rate"),
    c(
        "train.lr_schedule",
        "train",
        &LrSchedule::NAMES,
        "Learning-rate schedule",
    ),
    f("train.momentum", "train", Number, "SGD momentum"),
    f("train.weight_decay", "train", Number, "L2 weight decay"),
    f(
        "train.ema_decay",
        "train",
        Number,
        "Per-epoch EMA decay of the weights; 0 = no EMA",
    ),
    f(
        "train.fawa_decay",
        "train",
        Number,
        "FAWA decay (CFA); 0 = off; FAIR-TAT 0.85, CFA 0.88",
    ),
    f(
        "train.fawa_threshold",
        "train",
        Number,
        "FAWA averages an epoch only if its worst validation class (PGD) reaches this (0 to 1.01)",
    ),
    f(
        "train.init_checkpoint",
        "train",
        Text,
        "Start from this .safetensors checkpoint of another run (FRL needs one); empty = random init",
    ),
    f(
        "train.init_from",
        "train",
        Text,
        "In a grid: start from the last checkpoint of this row (e.g. trades), same seed",
    ),
    f(
        "train.init_from_run",
        "train",
        Text,
        "Run (name, same grid) whose last checkpoint this run starts from; set by the grid",
    ),
    f(
        "train.clean_forwards",
        "train",
        Number,
        "Clean train-mode forwards per step (BN stats only): 0 Rice, 1 CFA, 2 FAIR-TAT code",
    ),
    f(
        "train.log_every",
        "train",
        Number,
        "Progress event every this many batches",
    ),
    f(
        "train.threads",
        "train",
        Number,
        "libtorch intra-op threads; 0 = default",
    ),
    f("eval.eps", "eval", Number, "Evaluation attack radius"),
    f("eval.alpha", "eval", Number, "Evaluation PGD step size"),
    f(
        "eval.steps",
        "eval",
        Number,
        "PGD steps for the per-epoch evaluation",
    ),
    f(
        "eval.final_steps",
        "eval",
        Number,
        "PGD steps for the final evaluation",
    ),
    f("eval.batch_size", "eval", Number, "Evaluation batch size"),
    f(
        "eval.every",
        "eval",
        Number,
        "Test-set evaluation every this many epochs, and always after the last",
    ),
    f(
        "eval.models",
        "eval",
        Text,
        "Models the per-epoch test evaluation covers: live, ema, fawa (comma-separated)",
    ),
];

/// The field for a dotted key.
pub fn field(key: &str) -> Option<&'static Field> {
    FIELDS.iter().find(|f| f.key == key)
}

/// Flatten a config table (e.g. `toml::from_str(&spec.to_toml())`) to dotted key -> form string.
/// Arrays of strings become comma-separated text; nested sections one level deep.
pub fn flatten(table: &toml::Table) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (k, v) in table {
        match v {
            toml::Value::Table(t) => {
                for (k2, v2) in t {
                    out.push((format!("{k}.{k2}"), value_text(v2)));
                }
            }
            other => out.push((k.clone(), value_text(other))),
        }
    }
    out
}

fn value_text(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        toml::Value::Array(a) => a
            .iter()
            .map(|x| {
                x.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| x.to_string())
            })
            .collect::<Vec<_>>()
            .join(", "),
        other => other.to_string(),
    }
}

/// Turn form pairs (dotted key -> text) into a config table of strings; empty values are left
/// out so the validator's defaults apply. Unknown keys are kept so validation reports them.
pub fn table_from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> toml::Table {
    let mut table = toml::Table::new();
    for (k, v) in pairs {
        let v = v.trim();
        if v.is_empty() || k.is_empty() {
            continue;
        }
        let value = toml::Value::String(v.to_string());
        match k.split_once('.') {
            Some((section, key)) => {
                let entry = table
                    .entry(section.to_string())
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()));
                if let toml::Value::Table(t) = entry {
                    t.insert(key.to_string(), value);
                }
            }
            None => {
                table.insert(k.to_string(), value);
            }
        }
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::raw::SECTIONS;
    use crate::config::{from_toml_str, RawConfig};

    #[test]
    fn every_config_key_has_a_field() {
        for (section, keys) in SECTIONS {
            for k in keys {
                let key = format!("{section}.{k}");
                let fd = field(&key).unwrap_or_else(|| panic!("no form field for {key}"));
                assert_eq!(fd.group, section);
                assert!(GROUPS.contains(&fd.group));
                assert!(!fd.help.is_empty());
            }
        }
        for fd in FIELDS {
            assert!(
                fd.kind != FieldKind::Choice || !fd.choices.is_empty(),
                "{}",
                fd.key
            );
        }
    }

    #[test]
    fn flattened_defaults_validate_back_to_the_same_spec() {
        let spec = from_toml_str("", &[]).unwrap();
        let table: toml::Table = spec.to_toml().parse().unwrap();
        let pairs = flatten(&table);
        for (k, _) in &pairs {
            assert!(field(k).is_some(), "spec key {k} has no form field");
        }
        let t = table_from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let back = RawConfig::from_table(t).unwrap().validate().unwrap();
        assert_eq!(back, spec);
    }

    #[test]
    fn bad_form_value_names_the_key() {
        let t = table_from_pairs([("train.epochs", "many"), ("name", "x")]);
        let err = RawConfig::from_table(t).unwrap().validate().unwrap_err();
        assert_eq!(err.key(), Some("train.epochs"));
    }
}
