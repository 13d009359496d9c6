//! The Slurm executor backend: jobs are batch scripts submitted with `sbatch`, their state comes
//! from `squeue` (and `sacct` where accounting is on), cancel is `scancel`.
//!
//! This module knows Slurm and nothing of the server: [`script`] writes batch scripts, [`cli`]
//! runs the client commands and parses their machine-readable output, [`checks`] asks the
//! cluster before a submission, [`Resources`] is what a job asks, [`JobState`] is what the
//! scheduler says of a job. The supervisor (`server::supervisor::slurm`) binds it to runs.
//! Everything here is synchronous and meant for blocking threads: a Slurm command can take a
//! while when the controller is busy.

pub mod checks;
pub mod cli;
mod resources;
pub mod script;
mod state;

pub use cli::{SlurmError, Snapshot};
pub use resources::Resources;
pub use state::JobState;

/// How `fairtat serve --executor slurm` submits jobs (`--slurm-*` options or `[slurm]` in a
/// serve config file).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SlurmOptions {
    /// The defaults of a run's `[slurm]` keys. `--partition`; the cluster's default partition
    /// when empty.
    pub partition: String,
    /// `--gres` for GPU runs (e.g. `gpu:1`); runs with `device = "cpu"` never get it.
    pub gres: String,
    /// MiB of GPU memory one `shard` stands for: a GPU job's gres `shard` becomes `shard:N`,
    /// N from the job's memory estimate (0: `shard` stays as written).
    pub shard_mib: u64,
    /// `--time` (Slurm's formats: `minutes`, `hh:mm:ss`, `d-hh:mm`); the partition's default
    /// when empty.
    pub time: String,
    /// `--cpus-per-task`; 0: Slurm's default (one).
    pub cpus: usize,
    /// `--mem` (`16G`); the partition's default when empty.
    pub mem: String,
    /// `--qos`; the account's default when empty.
    pub qos: String,
    /// Limits on what a run may ask (`slurm.time`, `slurm.cpus`, `slurm.mem`); none when
    /// empty or 0.
    pub max_time: String,
    pub max_cpus: usize,
    pub max_mem: String,
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
}

/// A job id as Slurm prints it: `123`, or `123_4` for task 4 of array job 123.
pub type JobId = String;
