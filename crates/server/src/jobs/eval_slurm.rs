//! An evaluation's own Slurm resources (issue 21): a 200-epoch run asks for days, its
//! evaluation for an hour, and a shorter time limit starts sooner. The request's `slurm` keys
//! (`time`, `cpus`, ...) are checked as the run's `[slurm]` section is: they are applied to the
//! run's config as `--set slurm.<key>=<value>` (`scan::read_spec_with`). They are kept beside
//! the queued marker, in `evals/<suite>-<model>/slurm.set` (one `slurm.<key>=<value>` per
//! line), so a restarted server and an automatic rerun ask the same; keys not given take the
//! run's.

use fairtat_core::config::{ConfigError, SlurmSpec};
use fairtat_core::runs::eval_key::EvalKey;
use fairtat_core::runs::safe_fs::{self, Refusal};
use fairtat_core::runs::RunDir;

use super::markers::eval_rel;

const FILE: &str = "slurm.set";

/// `slurm.<key>=<value>` settings from a request's `(key, value)` pairs (keys with or without
/// the `slurm.` prefix); an unknown key is refused with the allowed ones.
pub fn sets(fields: &[(String, String)]) -> Result<Vec<String>, ConfigError> {
    let mut out = Vec::new();
    for (k, v) in fields {
        let key = k.strip_prefix("slurm.").unwrap_or(k);
        if !SlurmSpec::KEY_NAMES.contains(&key) {
            return Err(ConfigError::not_allowed(
                "slurm",
                key,
                &SlurmSpec::KEY_NAMES,
            ));
        }
        let v = v.trim();
        if v.chars().any(char::is_control) {
            return Err(ConfigError::invalid(
                &format!("slurm.{key}"),
                "one line of text",
            ));
        }
        if !v.is_empty() {
            out.push(format!("slurm.{key}={v}"));
        }
    }
    Ok(out)
}

/// Keep the evaluation's settings (none: remove an earlier request's).
pub fn write(dir: &RunDir, key: &EvalKey, sets: &[String]) -> Result<(), Refusal> {
    let path = eval_rel(key).join(FILE);
    if sets.is_empty() {
        return safe_fs::remove_file(dir, path);
    }
    let mut text = sets.join("\n");
    text.push('\n');
    safe_fs::write(dir, path, text.as_bytes())
}

/// The evaluation's settings (none when it asked nothing of its own).
pub fn read(dir: &RunDir, key: &EvalKey) -> Vec<String> {
    safe_fs::read_text(dir, eval_rel(key).join(FILE), safe_fs::TEXT_CAP)
        .map(|t| {
            t.lines()
                .filter(|l| !l.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::read_spec_with as spec_with;

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn settings_are_checked_as_the_runs_slurm_keys() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = RunDir::new(tmp.path());
        std::fs::write(
            dir.root().join("config.toml"),
            "[slurm]\ntime = \"2-00:00:00\"\ncpus = 8\n",
        )
        .unwrap();
        let s = sets(&pairs(&[
            ("time", "1:00:00"),
            ("slurm.mem", "8G"),
            ("qos", ""),
        ]))
        .unwrap();
        assert_eq!(s, ["slurm.time=1:00:00", "slurm.mem=8G"]);
        let spec = spec_with(&dir, &s).unwrap();
        assert_eq!(
            (&*spec.slurm.time, spec.slurm.cpus),
            ("1:00:00", 8),
            "cpus stay the run's"
        );
        let unknown = sets(&pairs(&[("nodes", "2")])).unwrap_err().to_string();
        assert!(
            unknown.contains("nodes") && unknown.contains("time, partition"),
            "{unknown}"
        );
        let bad = spec_with(&dir, &sets(&pairs(&[("time", "soon")])).unwrap());
        assert!(bad.unwrap_err().to_string().contains("slurm.time"));
        assert!(sets(&pairs(&[("time", "1\n#SBATCH --x")])).is_err());
    }

    #[test]
    fn settings_survive_in_the_evaluations_folder() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = RunDir::new(tmp.path());
        let key = EvalKey::from_dir_name("quick-last").unwrap();
        safe_fs::create_dir_all(&dir, eval_rel(&key)).unwrap();
        let s = vec!["slurm.time=30".to_string()];
        write(&dir, &key, &s).unwrap();
        assert_eq!(read(&dir, &key), s);
        write(&dir, &key, &[]).unwrap();
        assert!(read(&dir, &key).is_empty());
    }
}
