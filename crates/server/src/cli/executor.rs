//! The executor options of `fairtat serve`: `--executor local|slurm` with `--slurm-*`, or the
//! same in a serve config file (`--config FILE`, keys `executor` and `[slurm]`); flags on the
//! command line win over the file.

use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use serde::Deserialize;

use crate::slurm::SlurmOptions;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExecutorKind {
    /// Child processes of the server, on its host (GPU slots, `--max-cpu-runs`).
    Local,
    /// `sbatch` jobs on a Slurm cluster; the runs folder must be shared with the nodes.
    Slurm,
}

#[derive(Args, Debug, Default)]
pub struct ExecutorArgs {
    /// Where jobs run [default: local].
    #[arg(long, value_enum)]
    pub executor: Option<ExecutorKind>,
    /// TOML file with `executor = "slurm"` and a `[slurm]` table (partition, gres, time,
    /// account, extra, array_limit, signal_secs, requeue, max_requeues, poll_secs).
    #[arg(long = "config", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Slurm partition (default: the cluster's default partition).
    #[arg(long)]
    pub slurm_partition: Option<String>,
    /// Generic resources of GPU runs, e.g. `gpu:1` (CPU runs never get them).
    #[arg(long)]
    pub slurm_gres: Option<String>,
    /// Time limit per job in Slurm's format (`minutes`, `hh:mm:ss`, `days-hh:mm`).
    #[arg(long)]
    pub slurm_time: Option<String>,
    #[arg(long)]
    pub slurm_account: Option<String>,
    /// More sbatch options, e.g. "--qos=high --constraint=a100" (a value starting with `-`
    /// is taken as the value, not as another flag).
    #[arg(long, allow_hyphen_values = true)]
    pub slurm_extra: Option<String>,
    /// Most tasks of a grid's job array running at once (`--array=0-N%M`; 0: no limit).
    #[arg(long)]
    pub slurm_array_limit: Option<usize>,
    /// Seconds before the time limit when Slurm sends SIGUSR1 (the trainer checkpoints and
    /// stops resumably) [default: 120; 0: no warning].
    #[arg(long)]
    pub slurm_signal_secs: Option<u32>,
    /// Resubmit runs whose job hit its time limit or was preempted (`train --resume`).
    #[arg(long)]
    pub slurm_requeue: bool,
    /// Most automatic resubmissions of one run [default: 5].
    #[arg(long)]
    pub slurm_max_requeues: Option<usize>,
    /// Seconds between squeue polls while jobs are active [default: 2; backs off to 60].
    #[arg(long)]
    pub slurm_poll_secs: Option<f64>,
}

/// `[slurm]` of a serve config file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SlurmFile {
    partition: Option<String>,
    gres: Option<String>,
    time: Option<String>,
    account: Option<String>,
    extra: Option<String>,
    array_limit: Option<usize>,
    signal_secs: Option<u32>,
    requeue: Option<bool>,
    max_requeues: Option<usize>,
    poll_secs: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServeFile {
    executor: Option<ExecutorKind>,
    slurm: Option<SlurmFile>,
}

fn read_file(path: &Path) -> anyhow::Result<ServeFile> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read the serve config {}: {e}", path.display()))?;
    toml::from_str(&text).map_err(|e| {
        anyhow::anyhow!(
            "serve config {}: {e}(allowed: executor = \"local\" | \"slurm\", and [slurm] with \
             partition, gres, time, account, extra, array_limit, signal_secs, requeue, \
             max_requeues, poll_secs)",
            path.display()
        )
    })
}

impl ExecutorArgs {
    fn any_slurm_flag(&self) -> Option<&'static str> {
        [
            (self.slurm_partition.is_some(), "--slurm-partition"),
            (self.slurm_gres.is_some(), "--slurm-gres"),
            (self.slurm_time.is_some(), "--slurm-time"),
            (self.slurm_account.is_some(), "--slurm-account"),
            (self.slurm_extra.is_some(), "--slurm-extra"),
            (self.slurm_array_limit.is_some(), "--slurm-array-limit"),
            (self.slurm_signal_secs.is_some(), "--slurm-signal-secs"),
            (self.slurm_requeue, "--slurm-requeue"),
            (self.slurm_max_requeues.is_some(), "--slurm-max-requeues"),
            (self.slurm_poll_secs.is_some(), "--slurm-poll-secs"),
        ]
        .into_iter()
        .find_map(|(set, name)| set.then_some(name))
    }

    /// The Slurm options, or None for the local executor.
    pub fn resolve(&self) -> anyhow::Result<Option<SlurmOptions>> {
        let file = match &self.config {
            Some(p) => read_file(p)?,
            None => ServeFile::default(),
        };
        let kind = self
            .executor
            .or(file.executor)
            .unwrap_or(ExecutorKind::Local);
        if kind == ExecutorKind::Local {
            if let Some(flag) = self.any_slurm_flag() {
                anyhow::bail!("{flag} needs --executor slurm (the executor is local)");
            }
            return Ok(None);
        }
        let f = file.slurm.unwrap_or_default();
        let pick =
            |cli: &Option<String>, file: Option<String>| cli.clone().or(file).unwrap_or_default();
        let mut o = SlurmOptions::new();
        o.partition = pick(&self.slurm_partition, f.partition);
        o.gres = pick(&self.slurm_gres, f.gres);
        o.time = pick(&self.slurm_time, f.time);
        o.account = pick(&self.slurm_account, f.account);
        o.extra = pick(&self.slurm_extra, f.extra)
            .split_whitespace()
            .map(str::to_string)
            .collect();
        o.array_limit = self.slurm_array_limit.or(f.array_limit).unwrap_or(0);
        o.signal_secs = self
            .slurm_signal_secs
            .or(f.signal_secs)
            .unwrap_or(o.signal_secs);
        o.requeue = self.slurm_requeue || f.requeue.unwrap_or(false);
        o.max_requeues = self
            .slurm_max_requeues
            .or(f.max_requeues)
            .unwrap_or(o.max_requeues);
        o.poll_secs = self.slurm_poll_secs.or(f.poll_secs).unwrap_or(o.poll_secs);
        check(&o)?;
        Ok(Some(o))
    }
}

fn check(o: &SlurmOptions) -> anyhow::Result<()> {
    if !(o.poll_secs.is_finite() && (0.1..=600.0).contains(&o.poll_secs)) {
        anyhow::bail!(
            "slurm poll_secs must be between 0.1 and 600, got {}",
            o.poll_secs
        );
    }
    for (name, v) in [
        ("partition", &o.partition),
        ("gres", &o.gres),
        ("time", &o.time),
        ("account", &o.account),
    ] {
        if v.chars().any(|c| c.is_whitespace() || c.is_control()) {
            anyhow::bail!("slurm {name} must be one word without spaces, got {v:?}");
        }
    }
    if let Some(bad) = o.extra.iter().find(|w| !w.starts_with('-')) {
        anyhow::bail!("slurm extra must be sbatch options such as --qos=high, got {bad:?}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_win_over_the_file_and_local_refuses_slurm_flags() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("serve.toml");
        std::fs::write(
            &f,
            "executor = \"slurm\"\n[slurm]\npartition = \"a\"\ntime = \"10\"\n",
        )
        .unwrap();
        let a = ExecutorArgs {
            config: Some(f.clone()),
            slurm_partition: Some("b".into()),
            slurm_extra: Some("--qos=high  --exclusive".into()),
            ..Default::default()
        };
        let o = a.resolve().unwrap().unwrap();
        assert_eq!((o.partition.as_str(), o.time.as_str()), ("b", "10"));
        assert_eq!(o.extra, ["--qos=high", "--exclusive"]);
        let local = ExecutorArgs {
            executor: Some(ExecutorKind::Local),
            slurm_gres: Some("gpu:1".into()),
            ..Default::default()
        };
        let err = local.resolve().unwrap_err().to_string();
        assert!(err.contains("--slurm-gres needs --executor slurm"), "{err}");
        std::fs::write(&f, "executor = \"slurm\"\n[slurm]\nqueue = \"a\"\n").unwrap();
        let err = ExecutorArgs {
            config: Some(f),
            ..Default::default()
        }
        .resolve()
        .unwrap_err();
        assert!(err.to_string().contains("partition, gres"), "{err}");
    }

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        exec: ExecutorArgs,
    }

    #[test]
    fn slurm_extra_takes_a_value_that_starts_with_a_hyphen() {
        use clap::Parser;
        // The README's example, as a shell passes it.
        let argvs: [&[&str]; 2] = [
            &[
                "x",
                "--executor=slurm",
                "--slurm-extra",
                "--qos=normal --exclusive",
            ],
            &[
                "x",
                "--slurm-extra=--qos=normal --exclusive",
                "--executor=slurm",
            ],
        ];
        for argv in argvs {
            let cli = Cli::try_parse_from(argv).unwrap();
            let o = cli.exec.resolve().unwrap().unwrap();
            assert_eq!(o.extra, ["--qos=normal", "--exclusive"], "{argv:?}");
        }
    }
}
