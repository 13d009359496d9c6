//! Where jobs run: child processes of this server ([`Local`](super::local::Local)) or Slurm
//! jobs ([`Slurm`](super::slurm_backend::Slurm)). The queue, its one pump (`supervisor::pump`), the
//! markers and the answers to the API are the same for both; a backend only starts the jobs
//! the pump hands it, stops started ones, and finds its jobs again after a restart.
//!
//! `--executor` is chosen once, at start-up; `supervisor::backend` is the one place that asks
//! which.

use std::future::Future;
use std::pin::Pin;

use crate::jobs::{Job, JobError, JobKind, Slot};
use crate::scan::Loaded;
use crate::state::AppState;
use fairtat_core::runs::RunId;

/// What became of a request to stop a run's started job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// Its process or Slurm job was told to stop (SIGTERM, `scancel`).
    Sent,
    /// No started job of the kinds asked for.
    NoJob,
    /// Its process is being started and has no pid yet.
    Starting,
    /// The process recorded for it no longer owns the run: it is ending on its own.
    Ending(u32),
}

/// Which started jobs to stop: those of `runs` whose kind `which` accepts; `mark` runs for each
/// job about to be stopped, before the signal, so that its final line can say who stopped it.
pub struct StopRequest<'a> {
    pub runs: &'a [RunId],
    pub which: &'a dyn Fn(&JobKind) -> bool,
    pub mark: &'a dyn Fn(&RunId),
}

/// A future that a backend returns from [`Backend::restore`].
pub type Restoring<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// Every method does I/O (processes, `sbatch`, files): callers run them off the async
/// runtime (`http::blocking`, `spawn_blocking` in the watchers).
pub trait Backend: Sync {
    /// Start the jobs the pump just took from the queue, each with the slot it holds. A job
    /// that cannot start is recorded as failed and its slot freed (`job_ended`).
    fn launch(&self, st: &AppState, jobs: Vec<(Job, Slot)>);

    /// Stop the started jobs `req` names; one answer per run, in order.
    fn stop(&self, st: &AppState, req: &StopRequest) -> Vec<Result<Stop, JobError>>;

    /// After a (re)start: follow the jobs a previous server left running, re-queue what has a
    /// queue marker, then pump.
    fn restore<'a>(&'a self, st: &'a AppState, loaded: Vec<Loaded>) -> Restoring<'a>;
}
