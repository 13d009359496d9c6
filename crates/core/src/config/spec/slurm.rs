//! The `[slurm]` section: the resources one run asks of Slurm (`fairtat serve --executor
//! slurm`). Empty values (and `cpus = 0`) take the server's defaults (`--slurm-*`); local runs
//! ignore the section. Values are checked here against Slurm's own syntax, so what reaches a
//! batch script is a time, a size or a plain name, never shell or `#SBATCH` syntax.

use serde::{Deserialize, Serialize};

use crate::config::error::ConfigError;
use crate::config::reader::Reader;
use crate::config::schema::{section, FieldKind, KeyType};

/// A Slurm option's value as text: a string, or what TOML reads as a number or a time of day
/// (`time = 30`, `--set slurm.time=01:00:00`, `mem = 4000`), kept as written.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SlurmText(pub String);

impl std::ops::Deref for SlurmText {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for SlurmText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for SlurmText {
    fn from(s: &str) -> Self {
        SlurmText(s.to_string())
    }
}

impl KeyType for SlurmText {
    const KIND: FieldKind = FieldKind::Text;
    fn read(r: &Reader, k: &str, d: Self, _: Option<(Self, Self)>) -> Result<Self, ConfigError> {
        Ok(SlurmText(r.text(k, &d.0)?.trim().to_string()))
    }
}

section! {
    /// Per-run Slurm resources; empty = the server's default.
    pub struct SlurmSpec in "slurm" as "slurm", keys SlurmKey {
        /// `--time`, in one of Slurm's formats ([`time_minutes`]).
        time: SlurmText = |_| SlurmText::default();
            "Slurm time limit (minutes, h:mm:ss, d-hh:mm); empty = the server's; local runs ignore it",
        /// `--partition`: one partition name.
        partition: SlurmText = |_| SlurmText::default();
            "Slurm partition; empty = the server's (or the cluster's default); local runs ignore it",
        /// `--gres`, e.g. `gpu:1` or `gpu:a100:2`; given, also a CPU run gets it.
        gres: SlurmText = |_| SlurmText::default();
            "Slurm generic resources, e.g. gpu:a100:2; empty = the server's for GPU runs; local runs ignore it",
        /// `--cpus-per-task`; the trainer sizes its thread pools from it.
        cpus: usize [0, 4096] = |_| 0;
            "Slurm CPUs per task (the trainer's threads follow); 0 = the server's; local runs ignore it",
        /// `--mem`, a size as Slurm reads it ([`mem_megabytes`]).
        mem: SlurmText = |_| SlurmText::default();
            "Slurm memory per node, e.g. 16G or 4000 (MB); empty = the server's; local runs ignore it",
        /// `--qos`: one QoS name.
        qos: SlurmText = |_| SlurmText::default();
            "Slurm quality of service; empty = the server's (or the account's); local runs ignore it",
    }
}

impl Default for SlurmSpec {
    /// No per-run resources: what runs created before the section read as.
    fn default() -> Self {
        SlurmSpec {
            time: SlurmText::default(),
            partition: SlurmText::default(),
            gres: SlurmText::default(),
            cpus: 0,
            mem: SlurmText::default(),
            qos: SlurmText::default(),
        }
    }
}

/// The time formats Slurm accepts, as error messages list them.
pub const TIME_FORMATS: &str =
    "minutes, minutes:seconds, hours:minutes:seconds, days-hours, days-hours:minutes, \
     days-hours:minutes:seconds, or UNLIMITED";

/// A time limit in whole minutes (Slurm rounds seconds up), `u64::MAX` for `UNLIMITED`,
/// `INFINITE` or `-1`; `None` when `text` is none of Slurm's formats ([`TIME_FORMATS`]).
/// Also reads what `sinfo -o %l` prints (`infinite`, `1-00:00:00`, `30:00`).
pub fn time_minutes(text: &str) -> Option<u64> {
    let t = text.trim();
    if ["unlimited", "infinite", "-1"].contains(&t.to_ascii_lowercase().as_str()) {
        return Some(u64::MAX);
    }
    let num = |s: &str| -> Option<u64> {
        (!s.is_empty() && s.len() <= 9 && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    let (days, rest) = match t.split_once('-') {
        Some((d, r)) => (Some(num(d)?), r),
        None => (None, t),
    };
    let parts: Vec<u64> = rest.split(':').map(num).collect::<Option<_>>()?;
    let secs = match (days, parts.as_slice()) {
        (None, [m]) => m * 60,
        (None, [m, s]) => m * 60 + s,
        (None, [h, m, s]) => h * 3600 + m * 60 + s,
        (Some(d), [h]) => d * 86_400 + h * 3600,
        (Some(d), [h, m]) => d * 86_400 + h * 3600 + m * 60,
        (Some(d), [h, m, s]) => d * 86_400 + h * 3600 + m * 60 + s,
        _ => return None,
    };
    Some(secs.div_ceil(60))
}

/// `minutes` as Slurm prints a limit: `d-hh:mm:ss` or `h:mm:ss`.
pub fn format_minutes(minutes: u64) -> String {
    if minutes == u64::MAX {
        return "UNLIMITED".into();
    }
    let (d, h, m) = (minutes / 1440, minutes / 60 % 24, minutes % 60);
    match d {
        0 => format!("{h}:{m:02}:00"),
        _ => format!("{d}-{h:02}:{m:02}:00"),
    }
}

/// A memory size in megabytes as Slurm reads `--mem`: a positive integer, megabytes without a
/// suffix, else `K`, `M`, `G` or `T` (either case). `None` for anything else.
pub fn mem_megabytes(text: &str) -> Option<u64> {
    let t = text.trim();
    let (digits, unit) = match t.char_indices().last()? {
        (i, c) if c.is_ascii_alphabetic() => (&t[..i], c.to_ascii_uppercase()),
        _ => (t, 'M'),
    };
    if digits.is_empty() || digits.len() > 12 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    let mb = match unit {
        'K' => n.div_ceil(1024),
        'M' => n,
        'G' => n.checked_mul(1024)?,
        'T' => n.checked_mul(1024 * 1024)?,
        _ => return None,
    };
    (mb > 0).then_some(mb)
}

/// A partition or QoS name: letters, digits, `_`, `-` and `.`, at most 64.
fn is_name(s: &str) -> bool {
    s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// A gres list: `name[:type]:count` items separated by commas.
fn is_gres(s: &str) -> bool {
    s.len() <= 128
        && s.split(',').all(|item| {
            !item.is_empty()
                && item
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'))
        })
}

impl SlurmSpec {
    /// Check every value (trimmed when read) against Slurm's syntax; the error names the key
    /// and what it accepts.
    pub(crate) fn check(self) -> Result<Self, ConfigError> {
        let bad = |k: SlurmKey, v: &str, allowed: &str| {
            Err(ConfigError::invalid(
                k.field().key,
                format!("{v:?} is not allowed; {allowed}"),
            ))
        };
        if !self.time.is_empty() && time_minutes(&self.time).is_none() {
            return bad(SlurmKey::time, &self.time, &format!("use {TIME_FORMATS}"));
        }
        if !self.mem.is_empty() && mem_megabytes(&self.mem).is_none() {
            return bad(
                SlurmKey::mem,
                &self.mem,
                "use a positive size in Slurm's form: megabytes, or a number with K, M, G or T \
                 (e.g. 16G)",
            );
        }
        let name_rule = "use one name of letters, digits, '_', '-' and '.' (at most 64)";
        if !is_name(&self.partition) {
            return bad(SlurmKey::partition, &self.partition, name_rule);
        }
        if !is_name(&self.qos) {
            return bad(SlurmKey::qos, &self.qos, name_rule);
        }
        if !self.gres.is_empty() && !is_gres(&self.gres) {
            return bad(
                SlurmKey::gres,
                &self.gres,
                "use name[:type]:count items separated by commas (e.g. gpu:1, gpu:a100:2)",
            );
        }
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::from_toml_str;

    #[test]
    fn times_in_every_slurm_format() {
        for (t, min) in [
            ("90", 90),
            ("90:30", 91),
            ("2:00:00", 120),
            ("1-0", 1440),
            ("1-02:30", 1590),
            ("1-00:00:01", 1441),
            ("UNLIMITED", u64::MAX),
            ("infinite", u64::MAX),
        ] {
            assert_eq!(time_minutes(t), Some(min), "{t}");
        }
        for t in [
            "", "1h", "1:2:3:4", "-5", "1--2", "a-1", "1-", ":", "1 0", "1e3",
        ] {
            assert_eq!(time_minutes(t), None, "{t:?}");
        }
        assert_eq!(format_minutes(1590), "1-02:30:00");
        assert_eq!(format_minutes(30), "0:30:00");
        assert_eq!(time_minutes(&format_minutes(4321)), Some(4321));
    }

    #[test]
    fn memory_sizes_as_slurm_reads_them() {
        for (m, mb) in [
            ("4000", 4000),
            ("16G", 16384),
            ("16g", 16384),
            ("1T", 1 << 20),
        ] {
            assert_eq!(mem_megabytes(m), Some(mb), "{m}");
        }
        assert_eq!(mem_megabytes("1536K"), Some(2));
        for m in [
            "",
            "0",
            "0G",
            "16GB",
            "G",
            "-1",
            "1.5G",
            "16 G",
            "99999999999999999T",
        ] {
            assert_eq!(mem_megabytes(m), None, "{m:?}");
        }
    }

    #[test]
    fn the_section_checks_each_key_and_names_it() {
        let ok = from_toml_str(
            "[slurm]\ntime = \" 1-00:00 \"\ncpus = 4\nmem = \"16G\"\npartition = \"gpu\"\n\
             qos = \"high\"\ngres = \"gpu:a100:2\"\n",
            &[],
        )
        .unwrap();
        assert_eq!((&*ok.slurm.time, ok.slurm.cpus), ("1-00:00", 4));
        // What TOML reads as a number or a time of day is the text as written.
        let sets = ["slurm.time=30", "slurm.mem=4000", "slurm.qos=01:00:00"].map(String::from);
        let s = from_toml_str("", &sets).unwrap_err();
        assert_eq!(s.key(), Some("slurm.qos"), "{s}");
        let ok = from_toml_str("", &sets[..2]).unwrap().slurm;
        assert_eq!((&*ok.time, &*ok.mem), ("30", "4000"));
        let t = from_toml_str("", &["slurm.time=01:30:00".into()]).unwrap();
        assert_eq!(&*t.slurm.time, "01:30:00");
        assert_eq!(from_toml_str("", &[]).unwrap().slurm, SlurmSpec::default());
        for (set, key, words) in [
            ("slurm.time=1h", "slurm.time", "days-hours"),
            ("slurm.mem=lots", "slurm.mem", "16G"),
            ("slurm.partition=a b", "slurm.partition", "one name"),
            ("slurm.qos=x;rm -rf", "slurm.qos", "one name"),
            (
                "slurm.gres=gpu:1 --wrap=x",
                "slurm.gres",
                "name[:type]:count",
            ),
            ("slurm.cpus=5000", "slurm.cpus", "4096"),
        ] {
            let e = from_toml_str("", &[set.to_string()]).unwrap_err();
            assert_eq!(e.key(), Some(key), "{set}: {e}");
            assert!(e.to_string().contains(words), "{set}: {e}");
        }
    }

    #[test]
    fn a_spec_saved_before_the_section_reads_with_no_resources() {
        let mut v = serde_json::to_value(from_toml_str("", &[]).unwrap()).unwrap();
        v.as_object_mut().unwrap().remove("slurm");
        let spec: crate::config::RunSpec = serde_json::from_value(v).unwrap();
        assert_eq!(spec.slurm, SlurmSpec::default());
    }
}
