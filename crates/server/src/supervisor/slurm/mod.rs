//! The Slurm backend (`--executor slurm`): jobs leave the queue as `sbatch` submissions
//! instead of child processes. Each job's batch script and id live in its run directory
//! ([`files`]), so a restarted server finds its jobs again ([`boot`]). The scheduler's state
//! comes from the poller ([`poll`]); a run's progress comes from `events.jsonl` as with local
//! jobs ([`watch`]). Fresh training jobs taken from the queue together become one job array
//! (a grid), with the configured concurrency limit ([`submit`]).

mod boot;
mod files;
mod poll;
mod submit;
mod watch;

use std::sync::Arc;

use crate::admission::check_scheduled_device;
use crate::error::ApiError;
use crate::jobs::scheduler::{ScheduledView, Scheduler};
use crate::jobs::{markers, Job, JobError, JobKind, Slot};
use crate::scan::Loaded;
use crate::slurm::{cli, JobId, SlurmOptions};
use crate::state::{AppState, Backend};
use fairtat_core::runs::{RunId, RunStatus};
use files::history;

pub struct Slurm {
    sched: Arc<Scheduler>,
}

impl Slurm {
    pub fn new(opts: SlurmOptions) -> Slurm {
        Slurm {
            sched: Arc::new(Scheduler::new(opts)),
        }
    }
}

impl Backend for Slurm {
    fn name(&self) -> &'static str {
        "slurm"
    }

    fn start(&self, st: &AppState, jobs: Vec<(Job, Slot)>) {
        submit::submit_batch(st, &self.sched, jobs.into_iter().map(|(j, _)| j).collect());
    }

    /// `scancel`: a running trainer gets SIGTERM, checkpoints and writes its final line; a
    /// pending job is removed.
    fn cancel(&self, st: &AppState, run: &RunId, kind: &JobKind) -> Result<(), JobError> {
        let what = match kind {
            JobKind::Evaluate(key) => {
                markers::write_cancelled(&st.run_dir(run), key);
                format!("{} evaluation pending or running in Slurm", key.dir_name())
            }
            _ => "Slurm job pending or running".into(),
        };
        let same = |k: &JobKind| k == kind || (!super::is_eval(k) && !super::is_eval(kind));
        let Some((id, kind)) = self.sched.active(run).filter(|(_, k)| same(k)) else {
            return Err(JobError::Conflict(format!("run {run} has no {what}")));
        };
        if let Some(r) = st.jobs().lock().running_mut(run) {
            r.cancel_requested = true;
        }
        let dir = st.run_dir(run);
        let _ = std::fs::write(dir.cancel_marker(), "cancel\n");
        cli::scancel(&id).map_err(|e| JobError::Conflict(format!("scancel {id}: {e}")))?;
        history(&dir, &format!("scancel {} job {id}", kind.label()));
        self.sched.wake.notify_one();
        tracing::info!(run = %run, job = %id, "cancelled the Slurm job");
        Ok(())
    }

    fn restore(&self, st: &AppState, loaded: Vec<Loaded>) {
        poll::spawn_poller(st, self.sched.clone());
        boot::restore(st, &self.sched, loaded);
    }

    /// A job sees the GPU Slurm gives it as `cuda:0`.
    fn check_device(&self, device: &str) -> Result<(), ApiError> {
        check_scheduled_device(device)
    }

    /// The data lives on the nodes, which this server may not see.
    fn data_here(&self) -> bool {
        false
    }

    /// `sbatch --test-only` with the job options: a wrong partition, account or gres (or no
    /// `sbatch` at all) is refused with Slurm's own words.
    fn preflight(&self, gpu: bool) -> Result<(), ApiError> {
        cli::test_submission(&self.sched.opts.sbatch_args(gpu))
            .map_err(|e| ApiError::BadRequest(format!("cannot submit to Slurm: {e}")))
    }

    fn view(&self, run: &RunId) -> Option<ScheduledView> {
        self.sched.view(run)
    }

    fn views(&self) -> Vec<ScheduledView> {
        self.sched.views()
    }
}

/// Track job `id` and start its watcher (a submission, or a job found again at start-up).
fn follow_job(
    st: &AppState,
    sched: &Arc<Scheduler>,
    job: &Job,
    id: JobId,
    seq: Option<u64>,
    adopted: bool,
) {
    let rx = sched.track(&job.run, id.clone(), job.kind);
    st.jobs().lock().start_scheduled(job.clone());
    if !super::is_eval(&job.kind) {
        let msg = format!("Slurm job {id}: submitted");
        say(st, &job.run, RunStatus::Queued, msg, adopted);
    }
    let (st, sched, job) = (st.clone(), sched.clone(), job.clone());
    tokio::spawn(async move {
        match job.kind {
            JobKind::Evaluate(_) => watch::watch_eval(&st, &job, rx).await,
            _ => watch::watch_train(&st, &sched, &job, rx, seq).await,
        }
    });
}

/// Set the run's status and message in the index while its trainer has not started (the
/// follower owns the summary once events arrive). `keep_running`: a found-again job whose
/// run already trains keeps its status. Blocking.
fn say(st: &AppState, run: &RunId, status: RunStatus, msg: String, keep_running: bool) {
    let Ok(Some(mut s)) = st.index().get(run) else {
        return;
    };
    if keep_running && s.status == RunStatus::Running {
        return;
    }
    if s.status.is_terminal() || s.status == RunStatus::Interrupted || s.status == RunStatus::Queued
    {
        s.status = status;
        s.message = Some(msg);
        st.index_summary(&s);
        st.hub().status(&s);
    }
}
