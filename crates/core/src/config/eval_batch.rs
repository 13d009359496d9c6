//! `eval.batch_size` and `fairtat eval --batch-size`: a number, or `auto`, which sizes the
//! batch for the device the evaluation runs on ([`activations::auto_eval_batch`]). Written as
//! the number or `"auto"` everywhere (config files, `spec.json`, the API), so the numbers in
//! run directories written before `auto` existed read back unchanged.

use std::fmt;

use super::activations;
use super::choices::{Arch, DatasetKind, Precision};
use super::error::ConfigError;
use super::reader::Reader;
use super::schema::{FieldKind, KeyType};

/// The largest batch a config may ask for.
pub const MAX_BATCH: usize = 65_536;

/// How large the evaluation batches are.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum EvalBatch {
    /// Chosen for the device: 256 on the CPU, the batch the memory model fits on a GPU.
    #[default]
    Auto,
    Fixed(usize),
}

impl EvalBatch {
    /// `text` as a batch size, or the error naming `key` and the allowed values.
    pub fn parse_for(key: &str, text: &str) -> Result<EvalBatch, ConfigError> {
        let text = text.trim();
        if text == "auto" {
            return Ok(EvalBatch::Auto);
        }
        match text.parse::<usize>() {
            Ok(n) if (1..=MAX_BATCH).contains(&n) => Ok(EvalBatch::Fixed(n)),
            _ => Err(ConfigError::invalid(
                key,
                format!("{text:?} is not allowed; allowed: auto, or a whole number from 1 to {MAX_BATCH}"),
            )),
        }
    }

    /// The batch an evaluation of `arch` on `dataset` in `precision` uses on a GPU (`on_gpu`)
    /// or on the CPU.
    pub fn resolve(
        self,
        arch: Arch,
        dataset: DatasetKind,
        precision: Precision,
        on_gpu: bool,
    ) -> usize {
        match self {
            EvalBatch::Fixed(n) => n,
            EvalBatch::Auto => activations::auto_eval_batch(arch, dataset, precision, on_gpu),
        }
    }
}

impl fmt::Display for EvalBatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EvalBatch::Auto => f.write_str("auto"),
            EvalBatch::Fixed(n) => write!(f, "{n}"),
        }
    }
}

impl std::str::FromStr for EvalBatch {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, ConfigError> {
        EvalBatch::parse_for("batch size", s)
    }
}

impl serde::Serialize for EvalBatch {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            EvalBatch::Auto => s.serialize_str("auto"),
            EvalBatch::Fixed(n) => s.serialize_u64(*n as u64),
        }
    }
}

impl<'de> serde::Deserialize<'de> for EvalBatch {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Written {
            Number(u64),
            Text(String),
        }
        let text = match Written::deserialize(d)? {
            Written::Number(n) => n.to_string(),
            Written::Text(s) => s,
        };
        EvalBatch::parse_for("batch_size", &text).map_err(serde::de::Error::custom)
    }
}

impl KeyType for EvalBatch {
    const KIND: FieldKind = FieldKind::Text;
    fn read(r: &Reader, k: &str, d: Self, _: Option<(Self, Self)>) -> Result<Self, ConfigError> {
        let text = r.text(k, &d.to_string())?;
        EvalBatch::parse_for(&r.key(k), &text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_auto_read_back_as_written_and_old_numbers_still_load() {
        for (json, b) in [
            ("\"auto\"", EvalBatch::Auto),
            ("512", EvalBatch::Fixed(512)),
        ] {
            assert_eq!(serde_json::to_string(&b).unwrap(), json);
            assert_eq!(serde_json::from_str::<EvalBatch>(json).unwrap(), b);
        }
        // A form sends text; `spec.json` of older builds holds a number.
        assert_eq!(
            serde_json::from_str::<EvalBatch>("\"64\"").unwrap(),
            EvalBatch::Fixed(64)
        );
        assert_eq!(" auto ".parse::<EvalBatch>().unwrap(), EvalBatch::Auto);
    }

    #[test]
    fn other_values_are_refused_naming_the_key_and_the_allowed_values() {
        for bad in ["0", "-3", "big", "65537", "1.5", ""] {
            let err = EvalBatch::parse_for("eval.batch_size", bad)
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("eval.batch_size") && err.contains("auto") && err.contains("65536"),
                "{bad:?}: {err}"
            );
        }
        assert!(serde_json::from_str::<EvalBatch>("0").is_err());
    }

    #[test]
    fn a_fixed_batch_is_used_as_given_on_every_device() {
        let b = EvalBatch::Fixed(100);
        for gpu in [false, true] {
            let n = b.resolve(Arch::XcitS12, DatasetKind::Cifar100, Precision::Fp32, gpu);
            assert_eq!(n, 100);
        }
    }
}
