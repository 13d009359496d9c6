//! The device a run or a job asks for (`device` in a config, `--device` on the command line):
//! parsed once here, so the config reader, the trainer's device selection and the executor's
//! slots agree on what `auto`, `cpu` and `cuda:N` mean. Written as those spellings everywhere
//! (config files, `spec.json`, the API), so nothing on disk changes.

use std::fmt;
use std::str::FromStr;

use super::error::ConfigError;
use super::reader::Reader;
use super::schema::{FieldKind, KeyType};

/// The spellings a device may have, for error messages.
pub const DEVICE_FORMS: [&str; 3] = ["auto", "cpu", "cuda:N"];

/// Where to run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum DeviceSpec {
    /// A GPU when there is one, else the CPU (the trainer: the first CUDA device; the
    /// executor: the GPU with the most room).
    #[default]
    Auto,
    Cpu,
    /// CUDA device `N` as this machine (or, under Slurm, the job) numbers them.
    Cuda(usize),
}

impl DeviceSpec {
    /// The CUDA index this asks for by number, if any.
    pub fn cuda_index(self) -> Option<usize> {
        match self {
            DeviceSpec::Cuda(n) => Some(n),
            _ => None,
        }
    }

    /// `text` as a device, or the error naming `key` and the allowed forms.
    pub fn parse_for(key: &str, text: &str) -> Result<DeviceSpec, ConfigError> {
        text.parse()
            .map_err(|_| ConfigError::not_allowed(key, text, &DEVICE_FORMS))
    }
}

impl FromStr for DeviceSpec {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "auto" => Ok(DeviceSpec::Auto),
            "cpu" => Ok(DeviceSpec::Cpu),
            _ => {
                let n = s.strip_prefix("cuda:").ok_or(())?;
                // Digits only: `cuda:+1` and `cuda: 1` are not spellings anyone means.
                if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(());
                }
                n.parse().map(DeviceSpec::Cuda).map_err(|_| ())
            }
        }
    }
}

impl fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceSpec::Auto => f.write_str("auto"),
            DeviceSpec::Cpu => f.write_str("cpu"),
            DeviceSpec::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

impl serde::Serialize for DeviceSpec {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for DeviceSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
        s.parse().map_err(|_| {
            serde::de::Error::custom(format!(
                "{s:?} is not allowed; allowed values: {}",
                DEVICE_FORMS.join(", ")
            ))
        })
    }
}

impl KeyType for DeviceSpec {
    const KIND: FieldKind = FieldKind::Text;
    fn read(r: &Reader, k: &str, d: Self, _: Option<(Self, Self)>) -> Result<Self, ConfigError> {
        let text = r.string(k, &d.to_string())?;
        DeviceSpec::parse_for(k, &text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_reads_back_as_written() {
        for (text, d) in [
            ("auto", DeviceSpec::Auto),
            ("cpu", DeviceSpec::Cpu),
            ("cuda:0", DeviceSpec::Cuda(0)),
            ("cuda:12", DeviceSpec::Cuda(12)),
        ] {
            assert_eq!(text.parse::<DeviceSpec>(), Ok(d));
            assert_eq!(d.to_string(), text);
            let json = serde_json::to_string(&d).unwrap();
            assert_eq!(json, format!("{text:?}"));
            assert_eq!(serde_json::from_str::<DeviceSpec>(&json).unwrap(), d);
        }
    }

    #[test]
    fn other_spellings_are_refused_naming_the_key_and_the_forms() {
        for bad in [
            "", "gpu", "cuda", "cuda:", "cuda:x", "cuda:-1", "cuda:+1", "CPU", "cuda:0 ",
        ] {
            assert!(bad.parse::<DeviceSpec>().is_err(), "{bad:?}");
        }
        let err = DeviceSpec::parse_for("device", "gpu")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("device") && err.contains("auto, cpu, cuda:N"),
            "{err}"
        );
        let err = serde_json::from_str::<DeviceSpec>("\"tpu\"").unwrap_err();
        assert!(err.to_string().contains("auto, cpu, cuda:N"), "{err}");
    }
}
