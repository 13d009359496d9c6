//! The executor options of `fairtat serve`: `--executor local|slurm` with `--slurm-*`, or the
//! same in a serve config file (`--config FILE`, keys `executor` and `[slurm]`); flags on the
//! command line win over the file.

use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use serde::{Deserialize, Serialize};

use crate::slurm::SlurmOptions;
use fairtat_core::config::{
    mem_megabytes, time_minutes, DeviceSpec, SlurmSpec, SlurmText, TIME_FORMATS,
};

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
    /// TOML file with `executor = "slurm"` and a `[slurm]` table (partition, gres, time, cpus,
    /// mem, qos, max_time, max_cpus, max_mem, account, extra, array_limit, signal_secs,
    /// requeue, max_requeues, poll_secs).
    #[arg(long = "config", value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub slurm: SlurmSettings,
}

/// The Slurm settings, declared once for both places they come from: the `--slurm-<key>` flags
/// and the `[slurm]` table of a serve config file (`<key>`, the field's name). A flag wins over
/// the file.
#[derive(Args, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SlurmSettings {
    /// Slurm partition (default: the cluster's default partition).
    #[arg(long = "slurm-partition", value_name = "SLURM_PARTITION")]
    pub partition: Option<String>,
    /// Generic resources of GPU runs, e.g. `gpu:1` (CPU runs never get them).
    #[arg(long = "slurm-gres", value_name = "SLURM_GRES")]
    pub gres: Option<String>,
    /// GPU memory in MiB one `shard` of the cluster stands for (a GPU's memory divided by its
    /// shard Count in gres.conf): a GPU run whose gres is `shard` then asks as many shards as
    /// its memory estimate needs [default: none; `shard` asks one].
    #[arg(long = "slurm-shard-mib", value_name = "SLURM_SHARD_MIB")]
    pub shard_mib: Option<u64>,
    /// Time limit per job in Slurm's format (`minutes`, `hh:mm:ss`, `days-hh:mm`).
    #[arg(long = "slurm-time", value_name = "SLURM_TIME")]
    pub time: Option<String>,
    /// CPUs per task of a run that sets no `slurm.cpus` [default: Slurm's, one].
    #[arg(long = "slurm-cpus", value_name = "SLURM_CPUS")]
    pub cpus: Option<usize>,
    /// Memory of a run that sets no `slurm.mem`, e.g. `16G` [default: the partition's].
    #[arg(long = "slurm-mem", value_name = "SLURM_MEM")]
    pub mem: Option<String>,
    /// QoS of a run that sets no `slurm.qos` [default: the account's].
    #[arg(long = "slurm-qos", value_name = "SLURM_QOS")]
    pub qos: Option<String>,
    /// Longest `slurm.time` a run may ask (Slurm's time formats) [default: no limit].
    #[arg(long = "slurm-max-time", value_name = "SLURM_MAX_TIME")]
    pub max_time: Option<String>,
    /// Most `slurm.cpus` a run may ask [default: no limit].
    #[arg(long = "slurm-max-cpus", value_name = "SLURM_MAX_CPUS")]
    pub max_cpus: Option<usize>,
    /// Most `slurm.mem` a run may ask, e.g. `64G` [default: no limit].
    #[arg(long = "slurm-max-mem", value_name = "SLURM_MAX_MEM")]
    pub max_mem: Option<String>,
    #[arg(long = "slurm-account", value_name = "SLURM_ACCOUNT")]
    pub account: Option<String>,
    /// More sbatch options, e.g. "--qos=high --constraint=a100" (a value starting with `-`
    /// is taken as the value, not as another flag).
    #[arg(
        long = "slurm-extra",
        value_name = "SLURM_EXTRA",
        allow_hyphen_values = true
    )]
    pub extra: Option<String>,
    /// Most tasks of a grid's job array running at once (`--array=0-N%M`; 0: no limit).
    #[arg(long = "slurm-array-limit", value_name = "SLURM_ARRAY_LIMIT")]
    pub array_limit: Option<usize>,
    /// Seconds before the time limit when Slurm sends SIGUSR1 (the trainer checkpoints and
    /// stops resumably) [default: 120; 0: no warning].
    #[arg(long = "slurm-signal-secs", value_name = "SLURM_SIGNAL_SECS")]
    pub signal_secs: Option<u32>,
    /// Resubmit runs whose job hit its time limit or was preempted (`train --resume`).
    #[arg(long = "slurm-requeue")]
    #[serde(default)]
    pub requeue: bool,
    /// Most automatic resubmissions of one run [default: 5].
    #[arg(long = "slurm-max-requeues", value_name = "SLURM_MAX_REQUEUES")]
    pub max_requeues: Option<usize>,
    /// Seconds between squeue polls while jobs are active [default: 2; backs off to 60].
    #[arg(long = "slurm-poll-secs", value_name = "SLURM_POLL_SECS")]
    pub poll_secs: Option<f64>,
}

impl SlurmSettings {
    /// The settings in declaration order, as (flag without `--`, file key).
    fn names() -> Vec<(String, String)> {
        let cmd = SlurmSettings::augment_args(clap::Command::new("serve"));
        cmd.get_arguments()
            .filter_map(|a| {
                let key = a.get_id().as_str().to_string();
                Some((a.get_long()?.to_string(), key))
            })
            .collect()
    }

    /// The first setting given (declaration order), as its flag: for the local executor.
    fn first_given(&self) -> Option<String> {
        let given = serde_json::to_value(self).unwrap_or_default();
        Self::names()
            .into_iter()
            .find_map(|(flag, key)| match given.get(&key) {
                None | Some(serde_json::Value::Null | serde_json::Value::Bool(false)) => None,
                Some(_) => Some(format!("--{flag}")),
            })
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServeFile {
    executor: Option<ExecutorKind>,
    slurm: Option<SlurmSettings>,
}

fn read_file(path: &Path) -> anyhow::Result<ServeFile> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read the serve config {}: {e}", path.display()))?;
    toml::from_str(&text).map_err(|e| {
        let keys: Vec<String> = SlurmSettings::names().into_iter().map(|(_, k)| k).collect();
        anyhow::anyhow!(
            "serve config {}: {e}(allowed: executor = \"local\" | \"slurm\", and [slurm] with {})",
            path.display(),
            keys.join(", ")
        )
    })
}

impl ExecutorArgs {
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
            if let Some(flag) = self.slurm.first_given() {
                anyhow::bail!("{flag} needs --executor slurm (the executor is local)");
            }
            return Ok(None);
        }
        // c: the flags, f: the file's [slurm] table; a flag wins.
        let (c, f) = (&self.slurm, file.slurm.unwrap_or_default());
        let pick =
            |cli: &Option<String>, file: Option<String>| cli.clone().or(file).unwrap_or_default();
        let mut o = SlurmOptions::new();
        o.partition = pick(&c.partition, f.partition);
        o.gres = pick(&c.gres, f.gres);
        o.shard_mib = c.shard_mib.or(f.shard_mib).unwrap_or(0);
        o.time = pick(&c.time, f.time);
        o.cpus = c.cpus.or(f.cpus).unwrap_or(0);
        o.mem = pick(&c.mem, f.mem);
        o.qos = pick(&c.qos, f.qos);
        o.max_time = pick(&c.max_time, f.max_time);
        o.max_cpus = c.max_cpus.or(f.max_cpus).unwrap_or(0);
        o.max_mem = pick(&c.max_mem, f.max_mem);
        o.account = pick(&c.account, f.account);
        o.extra = pick(&c.extra, f.extra)
            .split_whitespace()
            .map(str::to_string)
            .collect();
        o.array_limit = c.array_limit.or(f.array_limit).unwrap_or(0);
        o.signal_secs = c.signal_secs.or(f.signal_secs).unwrap_or(o.signal_secs);
        o.requeue = c.requeue || f.requeue;
        o.max_requeues = c.max_requeues.or(f.max_requeues).unwrap_or(o.max_requeues);
        o.poll_secs = c.poll_secs.or(f.poll_secs).unwrap_or(o.poll_secs);
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
        ("mem", &o.mem),
        ("qos", &o.qos),
        ("account", &o.account),
    ] {
        if v.chars().any(|c| c.is_whitespace() || c.is_control()) {
            anyhow::bail!("slurm {name} must be one word without spaces, got {v:?}");
        }
    }
    if let Some(bad) = o.extra.iter().find(|w| !w.starts_with('-')) {
        anyhow::bail!("slurm extra must be sbatch options such as --qos=high, got {bad:?}");
    }
    check_resources(o)
}

/// The defaults and limits read as a run's `[slurm]` would (same formats), and the defaults
/// within the limits.
fn check_resources(o: &SlurmOptions) -> anyhow::Result<()> {
    for (name, v) in [("time", &o.time), ("max_time", &o.max_time)] {
        if !v.is_empty() && time_minutes(v).is_none() {
            anyhow::bail!("slurm {name} {v:?} is not a Slurm time; use {TIME_FORMATS}");
        }
    }
    for (name, v) in [("mem", &o.mem), ("max_mem", &o.max_mem)] {
        if !v.is_empty() && mem_megabytes(v).is_none() {
            anyhow::bail!("slurm {name} {v:?} is not a size; use e.g. 16G or 4000 (megabytes)");
        }
    }
    // The defaults are what a run without `[slurm]` asks: checked like one.
    let run = SlurmSpec {
        time: SlurmText(o.time.clone()),
        mem: SlurmText(o.mem.clone()),
        qos: SlurmText(o.qos.clone()),
        cpus: o.cpus,
        ..SlurmSpec::default()
    };
    o.resources(&run, DeviceSpec::Cpu, 0)
        .map(drop)
        .map_err(|e| anyhow::anyhow!("the server's Slurm defaults exceed its limits: {e}"))
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
            slurm: SlurmSettings {
                partition: Some("b".into()),
                extra: Some("--qos=high  --exclusive".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        let o = a.resolve().unwrap().unwrap();
        assert_eq!((o.partition.as_str(), o.time.as_str()), ("b", "10"));
        assert_eq!(o.extra, ["--qos=high", "--exclusive"]);
        let local = ExecutorArgs {
            executor: Some(ExecutorKind::Local),
            slurm: SlurmSettings {
                gres: Some("gpu:1".into()),
                ..Default::default()
            },
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
        let keys = "and [slurm] with partition, gres, shard_mib, time, cpus, mem, qos, max_time, max_cpus, \
                    max_mem, account, extra, array_limit, signal_secs, requeue, max_requeues, \
                    poll_secs)";
        assert!(err.to_string().ends_with(keys), "{err}");
    }

    /// The local executor names the first Slurm setting given, in the flags' order; an unset
    /// `--slurm-requeue` (false) is not given.
    #[test]
    fn the_first_slurm_flag_given_is_named() {
        let first = |s: SlurmSettings| s.first_given();
        assert_eq!(first(SlurmSettings::default()), None);
        let s = SlurmSettings {
            qos: Some("q".into()),
            gres: Some("gpu:1".into()),
            ..Default::default()
        };
        assert_eq!(first(s).as_deref(), Some("--slurm-gres"));
        let s = SlurmSettings {
            requeue: true,
            poll_secs: Some(1.0),
            ..Default::default()
        };
        assert_eq!(first(s).as_deref(), Some("--slurm-requeue"));
    }

    #[test]
    fn defaults_and_limits_are_read_as_runs_are() {
        let a = |extra: &[&str]| {
            let mut argv = vec!["x", "--executor=slurm"];
            argv.extend_from_slice(extra);
            use clap::Parser;
            Cli::try_parse_from(argv).unwrap().exec.resolve()
        };
        let o = a(&[
            "--slurm-cpus=4",
            "--slurm-max-cpus=8",
            "--slurm-max-time=2-0",
        ])
        .unwrap()
        .unwrap();
        assert_eq!((o.cpus, o.max_cpus, o.max_time.as_str()), (4, 8, "2-0"));
        for (argv, words) in [
            (["--slurm-time=1h", ""], "not a Slurm time"),
            (["--slurm-max-mem=lots", ""], "not a size"),
            (["--slurm-cpus=9", "--slurm-max-cpus=8"], "9 CPUs is over"),
            (
                ["--slurm-time=3-0", "--slurm-max-time=2-0"],
                "limit of 2-00:00:00",
            ),
        ] {
            let argv: Vec<&str> = argv.into_iter().filter(|s| !s.is_empty()).collect();
            let e = a(&argv).unwrap_err().to_string();
            assert!(e.contains(words), "{argv:?}: {e}");
        }
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
