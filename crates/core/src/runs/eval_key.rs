//! Typed names of an evaluation: which suite on which checkpoint. The CLI writes
//! `evals/<suite>-<checkpoint>/`, the server queues and lists evaluations by the same key.

use serde::{Deserialize, Serialize};

use super::CheckpointKind;

crate::named_enum! {
    /// The suites a dashboard evaluation job runs (`fairtat eval --suite`).
    #[derive(PartialOrd, Ord)]
    pub enum EvalSuite {
        Quick = "quick",
        Standard = "standard",
        Corruptions = "corruptions",
    }
}

/// One evaluation of a run: its directory is `evals/<suite>-<model>/`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EvalKey {
    pub suite: EvalSuite,
    pub model: CheckpointKind,
}

impl EvalKey {
    pub fn dir_name(&self) -> String {
        format!("{}-{}", self.suite.as_str(), self.model.as_str())
    }

    /// The key of an `evals/` directory name (None for `custom-...` and other CLI outputs).
    pub fn from_dir_name(name: &str) -> Option<EvalKey> {
        let (suite, model) = name.split_once('-')?;
        Some(EvalKey {
            suite: EvalSuite::parse(suite)?,
            model: CheckpointKind::parse(model)?,
        })
    }
}

impl Serialize for EvalKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("EvalKey", 2)?;
        st.serialize_field("suite", self.suite.as_str())?;
        st.serialize_field("model", self.model.as_str())?;
        st.end()
    }
}

impl<'de> Deserialize<'de> for EvalSuite {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        EvalSuite::parse(&s).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "suite {s:?} is not known; allowed: {}",
                EvalSuite::NAMES.join(", ")
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dir_names_round_trip() {
        for suite in EvalSuite::ALL {
            for model in CheckpointKind::ALL {
                let k = EvalKey { suite, model };
                assert_eq!(EvalKey::from_dir_name(&k.dir_name()), Some(k));
            }
        }
        assert_eq!(EvalKey::from_dir_name("custom-last"), None);
        assert_eq!(EvalKey::from_dir_name("quick-nope"), None);
    }
}
