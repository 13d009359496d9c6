//! What one job asks of Slurm: the run's `[slurm]` keys over the server's defaults
//! (`--slurm-*`), within the server's limits (`--slurm-max-*`). Pure: the supervisor resolves
//! a job's [`Resources`] from its run's spec, admission refuses a run over a limit, and the
//! batch script and `sbatch --test-only` render the same options.

use fairtat_core::config::{
    format_minutes, mem_megabytes, time_minutes, ConfigError, DeviceSpec, SlurmKey, SlurmSpec,
};

use super::script::directive_value;
use super::SlurmOptions;

/// The resources of one job, every value already checked (a time, a size or a plain name).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Resources {
    pub partition: String,
    pub time: String,
    /// Empty for a CPU run unless the run asked for a gres itself.
    pub gres: String,
    /// `--cpus-per-task`; 0: Slurm's default (one).
    pub cpus: usize,
    pub mem: String,
    pub qos: String,
    /// A GPU run with a gres: an evaluation job runs on the `cuda:0` it gets.
    pub gpu: bool,
}

fn pick(run: &str, server: &str) -> String {
    if run.is_empty() { server } else { run }.to_string()
}

fn over(key: SlurmKey, value: &str, limit: &str, flag: &str) -> ConfigError {
    ConfigError::invalid(
        key.field().key,
        format!("{value} is over this server's limit of {limit} (fairtat serve {flag})"),
    )
}

impl SlurmOptions {
    /// The resources of a job of a run with `run`'s `[slurm]` on `device`, whose GPU memory
    /// is estimated at `gpu_mib`: the run's values where given, else the server's; the
    /// server's gres only for GPU runs. Refused, naming the key and the limit, when over a
    /// `--slurm-max-*`.
    pub fn resources(
        &self,
        run: &SlurmSpec,
        device: DeviceSpec,
        gpu_mib: u64,
    ) -> Result<Resources, ConfigError> {
        let gres = match (run.gres.is_empty(), device) {
            (false, _) => run.gres.to_string(),
            (true, DeviceSpec::Cpu) => String::new(),
            (true, _) => self.gres.clone(),
        };
        let gres = self.sharded(&gres, gpu_mib);
        let r = Resources {
            gpu: device != DeviceSpec::Cpu && !gres.is_empty(),
            partition: pick(&run.partition, &self.partition),
            time: pick(&run.time, &self.time),
            gres,
            cpus: if run.cpus > 0 { run.cpus } else { self.cpus },
            mem: pick(&run.mem, &self.mem),
            qos: pick(&run.qos, &self.qos),
        };
        self.check_limits(&r)?;
        Ok(r)
    }

    /// A gres item `shard` (no count) as the shards `gpu_mib` needs, at least one, when the
    /// server knows what a shard holds (`--slurm-shard-mib`): several runs then share a GPU
    /// as far as their estimates fit, as the local executor packs them.
    fn sharded(&self, gres: &str, gpu_mib: u64) -> String {
        if self.shard_mib == 0 {
            return gres.to_string();
        }
        let shards = gpu_mib.div_ceil(self.shard_mib).max(1);
        gres.split(',')
            .map(|item| match item {
                "shard" => format!("shard:{shards}"),
                other => other.to_string(),
            })
            .collect::<Vec<_>>()
            .join(",")
    }

    fn check_limits(&self, r: &Resources) -> Result<(), ConfigError> {
        // An empty time or memory is the partition's default: the cluster's to bound.
        let max_time = time_minutes(&self.max_time);
        if let (Some(max), Some(t)) = (max_time, time_minutes(&r.time)) {
            if t > max {
                let limit = format_minutes(max);
                return Err(over(SlurmKey::time, &r.time, &limit, "--slurm-max-time"));
            }
        }
        if self.max_cpus > 0 && r.cpus.max(1) > self.max_cpus {
            let v = format!("{} CPUs", r.cpus);
            let limit = format!("{} CPUs", self.max_cpus);
            return Err(over(SlurmKey::cpus, &v, &limit, "--slurm-max-cpus"));
        }
        if let (Some(max), Some(m)) = (mem_megabytes(&self.max_mem), mem_megabytes(&r.mem)) {
            if m > max {
                return Err(over(
                    SlurmKey::mem,
                    &r.mem,
                    &self.max_mem,
                    "--slurm-max-mem",
                ));
            }
        }
        Ok(())
    }

    /// The job's options as `(name, value)`, in a fixed order; `--signal` and `extra` apart.
    fn pairs(&self, r: &Resources) -> Vec<(&'static str, String)> {
        let cpus = match r.cpus {
            0 => String::new(),
            n => n.to_string(),
        };
        [
            ("partition", r.partition.clone()),
            ("time", r.time.clone()),
            ("account", self.account.clone()),
            ("gres", r.gres.clone()),
            ("cpus-per-task", cpus),
            ("mem", r.mem.clone()),
            ("qos", r.qos.clone()),
        ]
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .collect()
    }

    fn tail(&self) -> Vec<String> {
        let mut v = Vec::new();
        if self.signal_secs > 0 {
            v.push(format!("--signal=B:USR1@{}", self.signal_secs));
        }
        if self.requeue {
            // The script requeues itself after a resumable stop; a cluster whose
            // `JobRequeue=0` would refuse that for jobs that did not ask.
            v.push("--requeue".into());
        }
        v.extend(self.extra.iter().cloned());
        v
    }

    /// The job's `sbatch` options as command-line words (`sbatch --test-only`).
    pub fn sbatch_args(&self, r: &Resources) -> Vec<String> {
        let mut v: Vec<String> = self
            .pairs(r)
            .into_iter()
            .map(|(k, val)| format!("--{k}={val}"))
            .collect();
        v.extend(self.tail());
        v
    }

    /// The same options for `#SBATCH` lines, every value quoted ([`directive_value`]).
    pub fn directives(&self, r: &Resources) -> Vec<String> {
        let mut v: Vec<String> = self
            .pairs(r)
            .into_iter()
            .map(|(k, val)| format!("--{k}={}", directive_value(&val)))
            .collect();
        v.extend(self.tail());
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server() -> SlurmOptions {
        SlurmOptions {
            partition: "gpu".into(),
            gres: "gpu:1".into(),
            time: "1:00:00".into(),
            cpus: 2,
            ..SlurmOptions::new()
        }
    }

    #[test]
    fn the_runs_values_win_and_cpu_runs_get_no_default_gres() {
        let run = SlurmSpec {
            time: "30".into(),
            cpus: 8,
            mem: "16G".into(),
            ..SlurmSpec::default()
        };
        let r = server().resources(&run, DeviceSpec::Auto, 0).unwrap();
        assert_eq!(
            (
                r.partition.as_str(),
                r.time.as_str(),
                r.cpus,
                r.mem.as_str()
            ),
            ("gpu", "30", 8, "16G")
        );
        assert!(r.gpu);
        let cpu = server()
            .resources(&SlurmSpec::default(), DeviceSpec::Cpu, 0)
            .unwrap();
        assert_eq!((cpu.gres.as_str(), cpu.cpus), ("", 2));
        let asked = SlurmSpec {
            gres: "tmpdisk:10".into(),
            ..SlurmSpec::default()
        };
        let asked = server().resources(&asked, DeviceSpec::Cpu, 0).unwrap();
        assert_eq!((asked.gres.as_str(), asked.gpu), ("tmpdisk:10", false));
    }

    #[test]
    fn limits_refuse_naming_the_key_and_the_limit() {
        let o = SlurmOptions {
            max_time: "2:00:00".into(),
            max_cpus: 4,
            max_mem: "32G".into(),
            ..server()
        };
        let run = |set: fn(&mut SlurmSpec)| {
            let mut s = SlurmSpec {
                mem: "1G".into(),
                ..SlurmSpec::default()
            };
            set(&mut s);
            o.resources(&s, DeviceSpec::Cuda(0), 0)
        };
        assert!(run(|s| s.time = "120".into()).is_ok());
        // Empty: the partition's own default, which the cluster bounds.
        assert!(run(|s| s.mem = Default::default()).is_ok());
        for (set, key, words) in [
            (
                (|s: &mut SlurmSpec| s.time = "1-0".into()) as fn(&mut SlurmSpec),
                "slurm.time",
                "1-0 is over this server's limit of 2:00:00 (fairtat serve --slurm-max-time)",
            ),
            (|s| s.time = "UNLIMITED".into(), "slurm.time", "2:00:00"),
            (
                |s| s.cpus = 5,
                "slurm.cpus",
                "5 CPUs is over this server's limit of 4 CPUs",
            ),
            (|s| s.mem = "33G".into(), "slurm.mem", "limit of 32G"),
        ] {
            let e = run(set).unwrap_err();
            assert_eq!(e.key(), Some(key), "{e}");
            assert!(e.to_string().contains(words), "{e}");
        }
    }

    #[test]
    fn options_render_as_words_and_as_quoted_directives() {
        let o = SlurmOptions {
            account: "lab".into(),
            extra: vec!["--exclusive".into()],
            ..server()
        };
        let r = o
            .resources(
                &SlurmSpec {
                    qos: "high".into(),
                    mem: "4000".into(),
                    ..SlurmSpec::default()
                },
                DeviceSpec::Cuda(0),
                0,
            )
            .unwrap();
        assert_eq!(
            o.sbatch_args(&r),
            [
                "--partition=gpu",
                "--time=1:00:00",
                "--account=lab",
                "--gres=gpu:1",
                "--cpus-per-task=2",
                "--mem=4000",
                "--qos=high",
                "--signal=B:USR1@120",
                "--exclusive"
            ]
        );
        let d = o.directives(&r);
        assert_eq!(d[0], "--partition=\"gpu\"");
        assert_eq!(d[4], "--cpus-per-task=\"2\"");
        assert_eq!(d[7], "--signal=B:USR1@120");
    }

    /// With `--slurm-shard-mib`, `shard` asks what the job's estimate needs; counts given,
    /// other items and CPU runs stay as they are.
    #[test]
    fn a_shard_gres_asks_as_many_shards_as_the_estimate_needs() {
        let o = SlurmOptions {
            gres: "shard".into(),
            shard_mib: 10_240,
            ..server()
        };
        let gpu = DeviceSpec::Auto;
        let gres = |run: &str, mib| {
            let spec = SlurmSpec {
                gres: run.into(),
                ..SlurmSpec::default()
            };
            o.resources(&spec, gpu, mib).unwrap().gres
        };
        assert_eq!(gres("", 1_254), "shard:1");
        assert_eq!(gres("", 10_240), "shard:1");
        assert_eq!(gres("", 16_501), "shard:2");
        assert_eq!(gres("", 0), "shard:1", "an unknown estimate asks one");
        assert_eq!(gres("shard,tmpdisk:10", 30_000), "shard:3,tmpdisk:10");
        assert_eq!(gres("shard:4", 30_000), "shard:4", "a count given is kept");
        assert_eq!(gres("gpu:1", 30_000), "gpu:1");
        let cpu = o.resources(&SlurmSpec::default(), DeviceSpec::Cpu, 30_000);
        assert_eq!(cpu.unwrap().gres, "");
        // Without the shard size, `shard` goes to Slurm as written (one shard).
        let plain = SlurmOptions {
            shard_mib: 0,
            ..o.clone()
        };
        let r = plain.resources(&SlurmSpec::default(), gpu, 30_000).unwrap();
        assert_eq!((r.gres.as_str(), r.gpu), ("shard", true));
    }
}
