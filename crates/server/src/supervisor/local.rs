//! `--executor local`: each job is a child process of this server on one of this machine's
//! device slots; it is stopped with SIGTERM, and after a restart found again through its run's
//! lock (a process is adopted only while it holds the lock of its run directory).

use tokio::sync::watch;

use super::backend::{Backend, Restoring, Stop, StopRequest};
use super::{
    adopt, history_seq, job_ended, launch, owns, pump, push, record_failure, watch_eval,
    watch_trainer,
};
use crate::follower::Liveness;
use crate::jobs::{markers, Job, JobError, JobKind, Slot};
use crate::process::{signal, spawn_retrying};
use crate::scan::Loaded;
use crate::state::AppState;
use fairtat_core::runs::summary::RunSummary;
use fairtat_core::runs::{RunId, RunStatus};

pub struct Local;

impl Backend for Local {
    fn launch(&self, st: &AppState, jobs: Vec<(Job, Slot)>) {
        let gpus = st.jobs().gpus();
        for (job, slot) in jobs {
            if let Err(err) = spawn_job(st, &job, &slot, gpus) {
                tracing::error!(run = %job.run, cause = %err, kind = %job.kind.label(), "cannot start a job");
                record_failure(st, &job, &err.to_string());
                job_ended(st, &job.run);
            }
        }
    }

    fn stop(&self, st: &AppState, req: &StopRequest) -> Vec<Result<Stop, JobError>> {
        req.runs.iter().map(|r| stop_one(st, r, req)).collect()
    }

    /// Off the runtime: adoption reads locks and the pump may start processes.
    fn restore<'a>(&'a self, st: &'a AppState, loaded: Vec<Loaded>) -> Restoring<'a> {
        let st = st.clone();
        Box::pin(async move {
            let _ = tokio::task::spawn_blocking(move || restore(&st, loaded)).await;
        })
    }
}

/// SIGTERM to the process of `run`'s job, if it is ours: started by this server, or adopted
/// and still holding the run's lock (a pid reused by another program is never signalled).
fn stop_one(st: &AppState, run: &RunId, req: &StopRequest) -> Result<Stop, JobError> {
    let found = st
        .jobs()
        .lock()
        .running_mut(run)
        .filter(|r| (req.which)(&r.job.kind))
        .map(|r| {
            r.cancel_requested = r.pid.is_some();
            (r.pid, r.adopted)
        });
    let pid = match found {
        None => return Ok(Stop::NoJob),
        Some((None, _)) => return Ok(Stop::Starting),
        Some((Some(pid), true)) if !owns(&st.run_dir(run), pid) => return Ok(Stop::Ending(pid)),
        Some((Some(pid), _)) => pid,
    };
    (req.mark)(run);
    signal(pid, "TERM").map_err(|e| JobError::Conflict(e.to_string()))?;
    tracing::info!(run = %run, pid, "sent SIGTERM");
    Ok(Stop::Sent)
}

fn spawn_job(st: &AppState, job: &Job, slot: &Slot, gpus: usize) -> anyhow::Result<()> {
    let dir = st.run_dir(&job.run);
    let history_seq = history_seq(&dir, &job.kind);
    let mut cmd = launch::command(st.trainer(), &dir, job, slot, gpus)?;
    let mut child = spawn_retrying(&mut cmd)?;
    let pid = child.id();
    st.jobs().lock().set_pid(&job.run, pid);
    tracing::info!(run = %job.run, pid, slot = %slot.name, kind = %job.kind.label(), "job started");
    let (tx, rx) = watch::channel(None);
    let log_path = match &job.kind {
        JobKind::Evaluate(key) => markers::eval_rel(key).join("eval.log"),
        _ => "train.log".into(),
    };
    let log_dir = dir.clone();
    tokio::spawn(async move {
        let msg = match child.wait().await {
            Ok(st) => crate::process::exit_description(st, &log_dir, &log_path),
            Err(e) => format!("lost track of the process: {e}"),
        };
        let _ = tx.send(Some(msg));
    });
    match job.kind {
        JobKind::Evaluate(_) => {
            watch_eval(st.clone(), job.run.clone(), Liveness::Child(rx));
        }
        JobKind::Train | JobKind::Resume => {
            let mut summary = st
                .index()
                .get(&job.run)
                .ok()
                .flatten()
                .unwrap_or_else(|| RunSummary::empty(&dir));
            summary.status = RunStatus::Running;
            summary.message = None;
            st.index_summary(&summary);
            st.hub().status(&summary);
            watch_trainer(st.clone(), dir, Liveness::Child(rx), history_seq);
        }
    }
    Ok(())
}

/// Adopt the processes that hold their run's lock, re-queue what has a queue marker, then
/// start what fits.
fn restore(st: &AppState, loaded: Vec<Loaded>) {
    for l in loaded {
        let Some(run) = l.dir.run_id() else { continue };
        if let Some(owner) = &l.owner {
            adopt(st, &l.dir, &run, owner, l.summary.clone());
        }
        if let Some(kind) = l.queued {
            push(st, run.clone(), kind);
        }
        let running = l.owner.as_ref().map(|o| o.what.clone());
        for key in markers::read_evals(&l.dir) {
            if running.as_deref() != Some(&format!("eval {}", key.dir_name())) {
                push(st, run.clone(), JobKind::Evaluate(key));
            }
        }
    }
    pump(st);
}
