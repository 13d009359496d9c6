//! The local backend: each job is a child process of this server (`<trainer> train|eval ...`,
//! see `launch`) in its own process group, on the slot the queue gave it; cancel is SIGTERM to
//! a process that still owns its run.

use tokio::sync::watch;

use super::watch::{watch_eval, watch_trainer};
use super::{adopt, device_of, is_eval, job_ended, owns, push, record_failure};
use crate::error::ApiError;
use crate::follower::Liveness;
use crate::jobs::{markers, Job, JobError, JobKind, Slot};
use crate::process::{exit_description, signal, spawn_retrying};
use crate::scan::Loaded;
use crate::state::{AppState, Backend};
use fairtat_core::runs::summary::RunSummary;
use fairtat_core::runs::{RunId, RunStatus};

pub struct Local {
    /// GPUs of this host (`nvidia-smi -L`): the devices a job may ask for.
    gpus: usize,
}

impl Local {
    pub fn new(gpus: usize) -> Local {
        Local { gpus }
    }
}

impl Backend for Local {
    fn name(&self) -> &'static str {
        "local"
    }

    fn start(&self, st: &AppState, jobs: Vec<(Job, Slot)>) {
        for (job, slot) in jobs {
            if let Err(err) = spawn_job(st, &job, &slot, self.gpus) {
                tracing::error!(run = %job.run, cause = %err, kind = %job.kind.label(), "cannot start a job");
                record_failure(st, &job, &err.to_string());
                job_ended(st, &job.run);
            }
        }
    }

    fn cancel(&self, st: &AppState, run: &RunId, kind: &JobKind) -> Result<(), JobError> {
        let dir = st.run_dir(run);
        let training = !is_eval(kind);
        let pid = st
            .jobs()
            .lock()
            .running_mut(run)
            .filter(|r| match training {
                true => !is_eval(&r.job.kind),
                false => r.job.kind == *kind,
            })
            .map(|r| {
                // A trainer that dies without a final line was then cancelled, not failed.
                r.cancel_requested |= training && r.pid.is_some();
                (r.pid, r.adopted)
            });
        match (pid, kind) {
            (Some((Some(pid), adopted)), _) if !adopted || owns(&dir, pid) => {
                match kind {
                    JobKind::Evaluate(key) => markers::write_cancelled(&dir, key),
                    // Lets the trainer's final line say that the user cancelled it.
                    _ => {
                        let _ = std::fs::write(dir.cancel_marker(), "cancel\n");
                    }
                }
                signal(pid, "TERM").map_err(|e| JobError::Conflict(e.to_string()))?;
                tracing::info!(run = %run, pid, kind = %kind.label(), "sent SIGTERM");
                Ok(())
            }
            (Some((Some(_), _)), JobKind::Evaluate(key)) => {
                // The process is already gone; its waiter frees the slot.
                markers::write_cancelled(&dir, &key);
                Ok(())
            }
            (Some((Some(pid), _)), _) => Err(JobError::Conflict(format!(
                "process {pid} no longer owns run {run}; it is ending"
            ))),
            (Some((None, _)), JobKind::Evaluate(_)) => Err(JobError::Conflict(
                "the evaluation is starting; try again".into(),
            )),
            (Some((None, _)), _) => {
                Err(JobError::Conflict("the run is starting; try again".into()))
            }
            (None, JobKind::Evaluate(key)) => Err(JobError::Conflict(format!(
                "run {run} has no {} evaluation queued or running",
                key.dir_name()
            ))),
            (None, _) => Err(JobError::Conflict(format!(
                "run {run} is neither queued nor running"
            ))),
        }
    }

    /// Adopt the processes that hold their run's lock, re-queue what has a queue marker.
    fn restore(&self, st: &AppState, loaded: Vec<Loaded>) {
        for l in loaded {
            let Some(run) = l.dir.run_id() else { continue };
            let device = device_of(&l.summary);
            if let Some(owner) = &l.owner {
                adopt(st, &l.dir, &run, owner, &device, l.summary.clone());
            }
            if let Some(kind) = l.queued {
                push(st, run.clone(), kind, &device);
            }
            let running = l.owner.as_ref().map(|o| o.what.clone());
            for key in markers::read_evals(&l.dir) {
                if running.as_deref() != Some(&format!("eval {}", key.dir_name())) {
                    push(st, run.clone(), JobKind::Evaluate(key), &device);
                }
            }
        }
    }

    fn check_device(&self, device: &str) -> Result<(), ApiError> {
        crate::admission::check_device(device, self.gpus)
    }

    fn data_here(&self) -> bool {
        true
    }
}

/// Spawn the job's process, then wait for it and follow it from the runtime.
fn spawn_job(st: &AppState, job: &Job, slot: &Slot, gpus: usize) -> anyhow::Result<()> {
    let dir = st.run_dir(&job.run);
    // The last line before this process: a `finished` up to it is an earlier process's.
    let history_seq = match job.kind {
        JobKind::Evaluate(_) => None,
        _ => fairtat_core::runs::reader::last_seq(&dir.events()),
    };
    let mut cmd = super::launch::command(&st.trainer(), &dir, job, slot, gpus)?;
    let mut child = spawn_retrying(&mut cmd)?;
    let pid = child.id();
    st.jobs().lock().set_pid(&job.run, pid);
    tracing::info!(run = %job.run, pid, slot = %slot.name, kind = %job.kind.label(), "job started");
    let (tx, rx) = watch::channel(None);
    let log_path = match &job.kind {
        JobKind::Evaluate(key) => markers::eval_dir(&dir, key).join("eval.log"),
        _ => dir.log(),
    };
    tokio::spawn(async move {
        let msg = match child.wait().await {
            Ok(status) => tokio::task::spawn_blocking(move || exit_description(status, &log_path))
                .await
                .unwrap_or_else(|e| format!("lost track of the process: {e}")),
            Err(e) => format!("lost track of the process: {e}"),
        };
        let _ = tx.send(Some(msg));
    });
    match job.kind {
        JobKind::Evaluate(_) => watch_eval(st.clone(), job.run.clone(), Liveness::Child(rx)),
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
