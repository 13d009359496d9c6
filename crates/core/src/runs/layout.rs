//! File names inside a run directory, in one place so writer, reader and server agree.

use std::path::{Path, PathBuf};

/// A run directory on disk. Cheap to clone; does no I/O by itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunDir {
    root: PathBuf,
}

crate::named_enum! {
    /// The checkpoints a trainer writes, by what they hold; the CLI, the evaluator and the
    /// server name them with these (file `checkpoints/<as_str>.safetensors`).
    #[derive(PartialOrd, Ord)]
    pub enum CheckpointKind {
        /// The live model at the last epoch end (or cancel).
        Last = "last",
        /// The exponential moving average of the weights (`train.ema_decay`).
        Ema = "ema",
        /// CFA's fairness-aware weight average (`train.fawa_decay`).
        Fawa = "fawa",
        /// The live model of the epoch with the best validation worst-class robust accuracy.
        BestWorstRobust = "best-worst-robust",
    }
}

impl std::str::FromStr for CheckpointKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        CheckpointKind::parse(s).ok_or_else(|| {
            format!(
                "{s:?} is not a checkpoint; allowed: {}",
                Self::NAMES.join(", ")
            )
        })
    }
}

impl<'de> serde::Deserialize<'de> for CheckpointKind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl RunDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        RunDir { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The run id is the directory's name.
    pub fn run_id(&self) -> Option<RunId> {
        self.id().parse().ok()
    }

    /// The directory's name (a [`RunId`] for every directory the server lists).
    pub fn id(&self) -> String {
        self.root
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// `checkpoints/<kind>.safetensors`.
    pub fn checkpoint(&self, kind: CheckpointKind) -> PathBuf {
        self.checkpoints().join(format!("{kind}.safetensors"))
    }

    /// Optimiser and loop state needed to resume (`checkpoints/state.json` + `optimizer.safetensors`).
    pub fn resume_state(&self) -> PathBuf {
        self.checkpoints().join("state.json")
    }

    pub fn report(&self, name: &str) -> PathBuf {
        self.reports().join(name)
    }
}

/// The files and folders directly under a run directory: one row each, `method => name`, so
/// a name is spelled once and every reader and writer goes through the same accessor.
macro_rules! run_dir_entries {
    ($($(#[$doc:meta])* $method:ident => $name:literal;)*) => {
        impl RunDir {
            $(
                $(#[$doc])*
                pub fn $method(&self) -> PathBuf {
                    self.root.join($name)
                }
            )*
        }
    };
}

run_dir_entries! {
    config_toml => "config.toml";
    spec_json => "spec.json";
    /// The user's edits (display name, tags, notes): [`super::meta::RunMeta`].
    meta_json => "meta.json";
    events => "events.jsonl";
    log => "train.log";
    checkpoints => "checkpoints";
    reports => "reports";
    /// Written by the server when it queues a run, removed when the run starts.
    queued_marker => "queued";
    /// Written by the server just before it stops the trainer for a user's Cancel, so the
    /// trainer's final line can say who stopped it; removed when a trainer starts.
    cancel_marker => "cancel-requested";
    /// Locked by the process that owns the directory (a trainer or an evaluation job) for its
    /// whole life; it names that process ([`super::lock`]).
    lock_file => "lock";
    /// `evals/`: one directory per evaluation (`<suite>-<model>`).
    evals => "evals";
}

/// A new, sortable, unique run id: `YYYYMMDD-HHMMSS-<slug of name>-<4 hex>`.
pub fn new_run_id(name: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs();
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    let t = secs % 86_400;
    let slug: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect::<String>()
        .split('-')
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("-");
    let slug: String = slug.chars().take(40).collect();
    let salt = (now.subsec_nanos() ^ std::process::id().rotate_left(16)) & 0xffff;
    format!(
        "{y:04}{m:02}{d:02}-{:02}{:02}{:02}-{}-{salt:04x}",
        t / 3600,
        t / 60 % 60,
        t % 60,
        if slug.is_empty() { "run" } else { &slug }
    )
}

/// A run's id, checked once where it enters (URL paths, forms, directory names): a single safe
/// path component ([`is_valid_run_id`]), so `runs_dir.join(id)` never leaves `runs_dir`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RunId(String);

impl RunId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for RunId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for RunId {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if is_valid_run_id(s) {
            Ok(RunId(s.to_string()))
        } else {
            Err(format!(
                "{:?} is not a run id (letters, digits, '-', '_', '.'; at most 120; not starting with '.')",
                s.chars().take(130).collect::<String>()
            ))
        }
    }
}

impl serde::Serialize for RunId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for RunId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// True for ids that are safe as a single path component (what the server accepts in URLs).
pub fn is_valid_run_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 120
        && id != "."
        && id != ".."
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        && !id.starts_with('.')
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar
/// (H. Hinnant, "chrono-Compatible Low-Level Date Algorithms").
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_ids() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        let id = new_run_id("FMNIST quick/fair-tat!");
        assert!(is_valid_run_id(&id), "{id}");
        assert!(id.contains("-fmnist-quick-fair-tat-"), "{id}");
        for bad in ["", "..", ".hidden", "a/b", "a\\b", "a b"] {
            assert!(!is_valid_run_id(bad), "{bad}");
        }
    }

    /// The names other builds and the server's index rely on (a run directory outlives builds).
    #[test]
    fn entry_names_are_stable() {
        let d = RunDir::new("r");
        let names = [
            (d.config_toml(), "config.toml"),
            (d.spec_json(), "spec.json"),
            (d.meta_json(), "meta.json"),
            (d.events(), "events.jsonl"),
            (d.log(), "train.log"),
            (d.queued_marker(), "queued"),
            (d.cancel_marker(), "cancel-requested"),
            (d.lock_file(), "lock"),
            (d.evals(), "evals"),
            (d.resume_state(), "checkpoints/state.json"),
            (d.report("x.csv"), "reports/x.csv"),
        ];
        for (path, name) in names {
            assert_eq!(path, Path::new("r").join(name));
        }
    }
}
