//! The Slurm executor backend: jobs are batch scripts submitted with `sbatch`, their state comes
//! from `squeue` (and `sacct` where accounting is on), cancel is `scancel`.
//!
//! This module knows Slurm and nothing of the server: [`script`] writes batch scripts, [`cli`]
//! runs the client commands and parses their machine-readable output, [`JobState`] is what the
//! scheduler says of a job. The supervisor (`server::supervisor::slurm`) binds it to runs.
//! Everything here is synchronous and meant for blocking threads: a Slurm command can take a
//! while when the controller is busy.

pub mod cli;
pub mod script;
mod state;

pub use cli::{SlurmError, Snapshot};
pub use state::JobState;

/// How `fairtat serve --executor slurm` submits jobs (`--slurm-*` options or `[slurm]` in a
/// serve config file).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SlurmOptions {
    /// `--partition`; the cluster's default partition when empty.
    pub partition: String,
    /// `--gres` for GPU runs (e.g. `gpu:1`); runs with `device = "cpu"` never get it.
    pub gres: String,
    /// `--time` (Slurm's formats: `minutes`, `hh:mm:ss`, `d-hh:mm`); the partition's default
    /// when empty.
    pub time: String,
    /// `--account`; none when empty.
    pub account: String,
    /// More `sbatch` options, one per whitespace-separated word (e.g. `--qos=high`).
    pub extra: Vec<String>,
    /// `%M` of `--array=0-N%M`: most tasks of a grid running at once (0: no limit).
    pub array_limit: usize,
    /// Seconds before the time limit at which Slurm sends SIGUSR1, so the trainer checkpoints
    /// and stops resumably (`--signal=B:USR1@N`; 0: no warning).
    pub signal_secs: u32,
    /// Re-submit (`train --resume`) a run whose job hit its time limit or was preempted.
    pub requeue: bool,
    /// Most automatic re-submissions per run (a run that never progresses stops).
    pub max_requeues: usize,
    /// Seconds between status polls while jobs are active (the poller backs off up to 60 s
    /// while nothing changes or the scheduler does not answer).
    pub poll_secs: f64,
}

impl SlurmOptions {
    pub fn new() -> SlurmOptions {
        SlurmOptions {
            signal_secs: 120,
            max_requeues: 5,
            poll_secs: 2.0,
            ..SlurmOptions::default()
        }
    }

    /// The `sbatch` options of a job; `gpu` is whether it gets the configured gres.
    pub fn sbatch_args(&self, gpu: bool) -> Vec<String> {
        let mut v = Vec::new();
        let mut opt = |name: &str, value: &str| {
            if !value.is_empty() {
                v.push(format!("--{name}={value}"));
            }
        };
        opt("partition", &self.partition);
        opt("time", &self.time);
        opt("account", &self.account);
        if gpu {
            opt("gres", &self.gres);
        }
        if self.signal_secs > 0 {
            v.push(format!("--signal=B:USR1@{}", self.signal_secs));
        }
        v.extend(self.extra.iter().cloned());
        v
    }
}

/// A job id as Slurm prints it: `123`, or `123_4` for task 4 of array job 123.
pub type JobId = String;
