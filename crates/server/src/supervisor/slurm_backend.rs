//! `--executor slurm` as a [`Backend`]: jobs leave the queue as `sbatch` submissions
//! (`slurm`), are stopped with `scancel` (`slurm_cancel`), and after a restart are found again
//! from their run directories and `squeue` (`slurm_boot`) while the poller (`slurm_poll`)
//! follows what the scheduler says of them.

use super::backend::{Backend, Restoring, Stop, StopRequest};
use super::slurm::{sched, submit_batch};
use crate::jobs::{Job, JobError, Slot};
use crate::scan::Loaded;
use crate::state::AppState;

pub struct Slurm;

impl Backend for Slurm {
    /// Submit the jobs off the runtime (`sbatch` talks to the controller); the slots of the
    /// Slurm executor's queue only count jobs.
    fn launch(&self, st: &AppState, jobs: Vec<(Job, Slot)>) {
        let st = st.clone();
        let batch = jobs.into_iter().map(|(job, _)| job).collect();
        tokio::task::spawn_blocking(move || submit_batch(&st, batch));
    }

    fn stop(&self, st: &AppState, req: &StopRequest) -> Vec<Result<Stop, JobError>> {
        super::slurm_cancel::cancel_many(st, req)
    }

    fn restore<'a>(&'a self, st: &'a AppState, loaded: Vec<Loaded>) -> Restoring<'a> {
        super::slurm_poll::spawn_poller(st, sched(st).clone());
        Box::pin(super::slurm_boot::restore(st, loaded))
    }
}
