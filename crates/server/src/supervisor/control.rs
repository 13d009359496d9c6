//! What the API and the pages ask of the executor: queue, cancel and resume runs; queue and
//! cancel evaluations. Each request runs on a blocking thread (markers, SQLite, signals,
//! Slurm commands). Markers are written before a job enters the queue and removed after it
//! leaves, outside the executor's lock.

use super::{device_of, is_eval, pump};
use crate::error::ApiError;
use crate::jobs::{markers, Job, JobError, JobKind};
use crate::process::append_finished;
use crate::scan;
use crate::state::AppState;
use fairtat_core::runs::eval_key::EvalKey;
use fairtat_core::runs::summary::RunSummary;
use fairtat_core::runs::{RunId, RunStatus};

/// Queue a job (writing its durable marker first) and start it if a slot is free.
pub async fn submit(st: &AppState, job: Job) -> Result<(), JobError> {
    submit_all(st, vec![job]).await
}

/// Queue several jobs, then pump once: under Slurm, a grid's runs leave the queue together
/// and become one job array.
pub async fn submit_all(st: &AppState, jobs: Vec<Job>) -> Result<(), JobError> {
    st.blocking(move |st| queue(st, jobs)).await
}

/// Cancel a queued run (at once) or a running one (the trainer finishes its batch, checkpoints
/// and writes its final line). Returns the summary as it is now.
pub async fn cancel_run(st: &AppState, run: &RunId) -> Result<RunSummary, JobError> {
    let run = run.clone();
    st.blocking(move |st| cancel_training(st, &run)).await
}

/// Queue an interrupted, failed or cancelled run to continue from its last checkpoint.
pub async fn resume_run(st: &AppState, run: &RunId) -> Result<RunSummary, JobError> {
    let run = run.clone();
    st.blocking(move |st| resume(st, &run)).await
}

/// Queue an evaluation of a run's checkpoint; several may wait per run, one runs at a time.
pub async fn enqueue_eval(st: &AppState, run: &RunId, key: EvalKey) -> Result<(), JobError> {
    let run = run.clone();
    st.blocking(move |st| queue_eval(st, &run, key)).await
}

/// Cancel a queued evaluation (at once) or a running one. The evaluation's directory says
/// `cancelled`.
pub async fn cancel_eval(st: &AppState, run: &RunId, key: EvalKey) -> Result<(), JobError> {
    let run = run.clone();
    st.blocking(move |st| cancel_evaluation(st, &run, key))
        .await
}

/// Before creating runs: whether the backend would accept their jobs (under Slurm,
/// `sbatch --test-only`, so a wrong partition is refused on the form with Slurm's words).
pub async fn preflight(st: &AppState, gpu: bool) -> Result<(), ApiError> {
    st.blocking(move |st| st.backend().preflight(gpu)).await
}

fn queue(st: &AppState, jobs: Vec<Job>) -> Result<(), JobError> {
    for job in &jobs {
        markers::write(&st.run_dir(&job.run), &job.kind)?;
    }
    {
        let mut q = st.jobs().lock();
        for job in jobs {
            q.push(job);
        }
    }
    pump(st);
    Ok(())
}

fn summary(st: &AppState, run: &RunId) -> Result<RunSummary, JobError> {
    st.index()
        .get(run)
        .map_err(|e| JobError::Io(std::io::Error::other(e)))?
        .ok_or_else(|| JobError::NotFound(run.to_string()))
}

fn cancel_training(st: &AppState, run: &RunId) -> Result<RunSummary, JobError> {
    let queued = !st
        .jobs()
        .lock()
        .remove_waiting(run, |k| !is_eval(k))
        .is_empty();
    if !queued {
        st.backend().cancel(st, run, &JobKind::Train)?;
        return summary(st, run);
    }
    let dir = st.run_dir(run);
    markers::remove(&dir, &JobKind::Train);
    let done = summary(st, run).map_or(0, |s| s.epochs_done);
    append_finished(
        &dir,
        RunStatus::Cancelled,
        done,
        "cancelled by you while queued".into(),
    );
    match st.refresh(run) {
        Some(s) => Ok(s),
        None => summary(st, run),
    }
}

/// Blocking body of [`resume_run`] (also for a backend that resubmits a run it saw stop).
pub(super) fn resume(st: &AppState, run: &RunId) -> Result<RunSummary, JobError> {
    let mut s = summary(st, run)?;
    if st.jobs().lock().active(run) {
        return Err(JobError::Conflict(format!(
            "run {run} is {} but its job has not ended yet; resume it in a moment",
            s.status.as_str()
        )));
    }
    if !scan::resumable(&s) {
        return Err(JobError::Conflict(format!(
            "run {run} is {}; only interrupted, failed or cancelled runs can be resumed",
            s.status.as_str()
        )));
    }
    s.status = RunStatus::Queued;
    s.message = None;
    st.index_summary(&s);
    st.hub().status(&s);
    let job = Job {
        run: run.clone(),
        kind: JobKind::Resume,
        device: device_of(&s),
        // A resumed run continues from its own checkpoint.
        needs_source: false,
    };
    queue(st, vec![job])?;
    Ok(st.index().get(run).ok().flatten().unwrap_or(s))
}

fn queue_eval(st: &AppState, run: &RunId, key: EvalKey) -> Result<(), JobError> {
    let dir = st.run_dir(run);
    if !dir.checkpoint(key.model).exists() {
        return Err(JobError::Conflict(format!(
            "run {run} has no {} checkpoint yet",
            key.model
        )));
    }
    let kind = JobKind::Evaluate(key);
    let summary = st.index().get(run).ok().flatten();
    // A run whose final line is written only waits for its job to exit (a trainer flushing,
    // Slurm's verdict): the evaluation queues behind that job.
    let ended = summary.as_ref().is_some_and(|s| s.status.is_terminal());
    {
        let q = st.jobs().lock();
        if q.training(run) && !ended {
            return Err(JobError::Conflict(format!(
                "run {run} is still training; evaluate it when it has finished"
            )));
        }
        let dup = q.running(run).is_some_and(|r| r.job.kind == kind)
            || q.waiting().any(|j| &j.run == run && j.kind == kind);
        if dup {
            return Err(JobError::Conflict(format!(
                "run {run} already has the {} evaluation queued or running",
                key.dir_name()
            )));
        }
    }
    let job = Job {
        run: run.clone(),
        kind,
        device: summary.map_or_else(|| "auto".into(), |s| device_of(&s)),
        needs_source: false,
    };
    queue(st, vec![job])
}

fn cancel_evaluation(st: &AppState, run: &RunId, key: EvalKey) -> Result<(), JobError> {
    let kind = JobKind::Evaluate(key);
    let queued = !st
        .jobs()
        .lock()
        .remove_waiting(run, |k| *k == kind)
        .is_empty();
    if !queued {
        return st.backend().cancel(st, run, &kind);
    }
    let dir = st.run_dir(run);
    markers::remove(&dir, &kind);
    markers::write_cancelled(&dir, &key);
    Ok(())
}
