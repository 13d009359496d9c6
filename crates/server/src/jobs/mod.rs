//! The one job executor: a queue of jobs (train, resume, evaluate) over device slots, each job a
//! run of this program (`train --run-dir`, `train --resume`, `eval --run-dir`) as a child
//! process or a Slurm job (the supervisor's backends).
//!
//! [`Executor`] owns its state behind one mutex and never does file or process I/O under it
//! (mini-redis `db.rs`): the device is captured in the [`Job`] when it is queued, durable
//! markers are written before a job enters the queue, and processes are spawned after a job
//! leaves it. Starting processes and following them is the supervisor's work
//! (`server::supervisor`); this module knows nothing of the index, the hub or HTTP.

pub mod eval_slurm;
pub mod markers;
pub mod queue;
pub mod scheduler;
pub mod slots;

use std::sync::{Mutex, MutexGuard};

use serde::Serialize;

use fairtat_core::config::DeviceSpec;
use fairtat_core::runs::eval_key::EvalKey;
use fairtat_core::runs::RunId;
pub use queue::{Queue, Running};
pub use slots::{Devices, Slot};

/// What a job does to its run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobKind {
    /// `train --run-dir`: a fresh run.
    Train,
    /// `train --resume`: continue from the last committed checkpoint.
    Resume,
    /// `eval --run-dir --suite S --model M`.
    Evaluate(EvalKey),
}

impl JobKind {
    pub fn label(&self) -> String {
        match self {
            JobKind::Train => "train".into(),
            JobKind::Resume => "resume".into(),
            JobKind::Evaluate(k) => format!("eval {}", k.dir_name()),
        }
    }
}

/// Where a job enters the queue. An evaluation is short beside a training run and its result is
/// awaited now, so by default it starts before queued training runs (which keep their order);
/// the user may queue it as [`Priority::Normal`] instead (`priority=normal`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Priority {
    /// Ahead of every normal job, after the urgent ones already waiting.
    Urgent,
    /// At the end of the queue.
    Normal,
}

impl Priority {
    pub const NAMES: [&'static str; 2] = ["urgent", "normal"];

    /// The default of a job kind: evaluations urgent, training normal.
    pub fn of(kind: &JobKind) -> Priority {
        match kind {
            JobKind::Evaluate(_) => Priority::Urgent,
            JobKind::Train | JobKind::Resume => Priority::Normal,
        }
    }

    pub fn parse(s: &str) -> Option<Priority> {
        match s {
            "urgent" | "high" => Some(Priority::Urgent),
            "normal" => Some(Priority::Normal),
            _ => None,
        }
    }
}

/// A job: a run, what to do with it, and the device it asked for when it was queued.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Job {
    pub run: RunId,
    pub kind: JobKind,
    /// The run's `device` when the job was queued.
    pub device: DeviceSpec,
    /// The run starts from another run's checkpoint (`train.init_from_run`): it waits until
    /// that run has finished (`runs::deps`).
    pub needs_source: bool,
    /// Estimated GPU memory in MiB (`fairtat_core::config::gpu_memory`; 0 = unknown), what
    /// packing several jobs onto one GPU counts.
    pub gpu_mib: u64,
}

/// Errors of the executor; `ApiError` converts them for HTTP.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("{0}")]
    Conflict(String),
    #[error("run {0} not found")]
    NotFound(String),
    #[error("{message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// A marker the server would not write (a linked `evals/<x>`: `runs::safe_fs`).
    #[error(transparent)]
    Refused(#[from] fairtat_core::runs::safe_fs::Refusal),
}

/// A job as the API and the pages list it.
#[derive(Clone, Debug, Serialize)]
pub struct JobView {
    pub run: RunId,
    pub kind: String,
    pub device: String,
    /// `waiting` or `running`.
    pub state: &'static str,
    pub pid: Option<u32>,
    /// Estimated GPU memory in MiB (0 = unknown or not counted).
    pub gpu_mib: u64,
}

pub struct Executor {
    queue: Mutex<Queue>,
}

impl Executor {
    pub fn new(devices: &Devices) -> Executor {
        Executor {
            queue: Mutex::new(Queue::new(devices)),
        }
    }

    /// The executor of `--executor slurm` (see [`Queue::scheduled`]).
    pub fn scheduled() -> Executor {
        Executor {
            queue: Mutex::new(Queue::scheduled()),
        }
    }

    /// The bookkeeping, for short critical sections (no I/O while it is held).
    pub fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn gpus(&self) -> usize {
        self.lock().gpus()
    }

    /// Each GPU's load for the runs list, e.g. "cuda:0 (2 of at most 8 jobs, about 9.1 of
    /// 79.6 GiB estimated): a, b"; empty without GPUs.
    pub fn gpu_lines(&self) -> Vec<String> {
        let q = self.lock();
        let line = |(i, s): (usize, &Slot)| {
            let mut runs: Vec<&str> = q
                .running_all()
                .filter(|r| r.slot == Some(i))
                .map(|r| r.job.run.as_str())
                .collect();
            runs.sort_unstable();
            match runs.is_empty() {
                true => s.describe(),
                false => format!("{}: {}", s.describe(), runs.join(", ")),
            }
        };
        q.slots()
            .iter()
            .enumerate()
            .filter(|(_, s)| s.cuda.is_some())
            .map(line)
            .collect()
    }

    /// Every job, running ones first (by run id), then waiting ones in queue order.
    pub fn jobs(&self) -> Vec<JobView> {
        let q = self.lock();
        let mut running: Vec<JobView> = q
            .running_all()
            .map(|r| JobView {
                run: r.job.run.clone(),
                kind: r.job.kind.label(),
                device: r
                    .slot
                    .map_or(r.job.device.to_string(), |s| q.slots()[s].name.clone()),
                state: "running",
                pid: r.pid,
                gpu_mib: r.job.gpu_mib,
            })
            .collect();
        running.sort_by(|a, b| a.run.cmp(&b.run));
        let waiting = q.waiting().map(|j| JobView {
            run: j.run.clone(),
            kind: j.kind.label(),
            device: j.device.to_string(),
            state: "waiting",
            pid: None,
            gpu_mib: j.gpu_mib,
        });
        running.into_iter().chain(waiting).collect()
    }
}
