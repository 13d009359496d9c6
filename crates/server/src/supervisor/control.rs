//! What the API and the pages ask of the executor: queue, cancel and resume runs; queue and
//! cancel evaluations. Markers are written before a job enters the queue and removed after it
//! leaves, outside the executor's lock.

use super::backend::{Stop, StopRequest};
use super::{backend, pump};
use crate::jobs::{eval_slurm, markers, Job, JobError, JobKind, Priority};
use crate::process::append_finished;
use crate::scan;
use crate::state::AppState;
use fairtat_core::config::gpu_memory::Work;
use fairtat_core::runs::eval_key::EvalKey;
use fairtat_core::runs::safe_fs;
use fairtat_core::runs::summary::RunSummary;
use fairtat_core::runs::{RunId, RunStatus};

/// Queue a job (writing its durable marker first) and start it if a slot is free.
pub fn submit(st: &AppState, job: Job) -> Result<(), JobError> {
    submit_all(st, vec![job])
}

/// Queue several jobs, then pump once: under Slurm, a grid's runs leave the queue together
/// and become one job array.
pub fn submit_all(st: &AppState, jobs: Vec<Job>) -> Result<(), JobError> {
    let jobs = jobs.into_iter().map(|j| {
        let p = Priority::of(&j.kind);
        (j, p)
    });
    submit_with(st, jobs.collect())
}

/// [`submit_all`] with each job's place in the queue chosen by the caller.
fn submit_with(st: &AppState, jobs: Vec<(Job, Priority)>) -> Result<(), JobError> {
    for (job, _) in &jobs {
        markers::write(&st.run_dir(&job.run), &job.kind)?;
    }
    {
        let mut q = st.jobs().lock();
        for (job, priority) in jobs {
            q.push_with(job, priority);
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

fn training(kind: &JobKind) -> bool {
    !matches!(kind, JobKind::Evaluate(_))
}

/// A run still waiting in the server's queue leaves it, cancelled (`None`: it was not waiting).
fn cancel_waiting(st: &AppState, run: &RunId) -> Option<Result<RunSummary, JobError>> {
    if st.jobs().lock().remove_waiting(run, training).is_empty() {
        return None;
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
    Some(st.refresh(run).map_or_else(|| summary(st, run), Ok))
}

/// Cancel many runs in one request: each waiting one at once, then every started one through
/// the backend (under Slurm a single `scancel`). One answer per run, in order.
pub fn cancel_runs(st: &AppState, runs: &[RunId]) -> Vec<(RunId, Result<RunSummary, JobError>)> {
    // Waiting runs first: a running one that stops frees its slot, and the queue would hand it
    // to a run of this same request (seen: "the run is starting; try again").
    let mut done = Vec::new();
    let mut started = Vec::new();
    for run in runs {
        match cancel_waiting(st, run) {
            Some(r) => done.push((run.clone(), r)),
            None => started.push(run.clone()),
        }
    }
    // Lets the trainer's final line say that the user cancelled it.
    let mark = |run: &RunId| {
        let _ = safe_fs::write(&st.run_dir(run), "cancel-requested", b"cancel\n");
    };
    let req = StopRequest {
        runs: &started,
        which: &training,
        mark: &mark,
    };
    let stopped = backend(st).stop(st, &req);
    done.extend(started.into_iter().zip(stopped).map(|(run, stop)| {
        let r = stop.and_then(|s| stopped_run(st, &run, s));
        (run, r)
    }));
    let order = |r: &RunId| runs.iter().position(|x| x == r);
    done.sort_by_key(|(r, _)| order(r));
    done
}

/// The answer to cancelling a started run: its summary once it was told to stop.
fn stopped_run(st: &AppState, run: &RunId, stop: Stop) -> Result<RunSummary, JobError> {
    match stop {
        Stop::Sent => summary(st, run),
        Stop::NoJob => Err(JobError::Conflict(format!(
            "run {run} is neither queued nor running"
        ))),
        Stop::Starting => Err(JobError::Conflict("the run is starting; try again".into())),
        Stop::Ending(pid) => Err(JobError::Conflict(format!(
            "process {pid} no longer owns run {run}; it is ending"
        ))),
    }
}

/// Cancel a queued run (at once) or a running one (SIGTERM or `scancel`: the trainer finishes
/// its batch, checkpoints and writes its final line). Returns the summary as it is now.
pub fn cancel_run(st: &AppState, run: &RunId) -> Result<RunSummary, JobError> {
    cancel_runs(st, std::slice::from_ref(run))
        .pop()
        .map_or_else(|| Err(JobError::NotFound(run.to_string())), |(_, a)| a)
}

/// Queue an interrupted, failed or cancelled run to continue from its last checkpoint.
pub fn resume_run(st: &AppState, run: &RunId) -> Result<RunSummary, JobError> {
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
    let (device, gpu_mib) = scan::job_needs(&st.run_dir(run), Work::Train);
    submit(
        st,
        Job {
            run: run.clone(),
            kind: JobKind::Resume,
            device,
            // A resumed run continues from its own checkpoint.
            needs_source: false,
            gpu_mib,
        },
    )?;
    Ok(st.index().get(run).ok().flatten().unwrap_or(s))
}

/// Queue an evaluation of a run's checkpoint; several may wait per run, one runs at a time.
/// `priority`: [`Priority::Urgent`] starts it before queued training runs. `slurm`: its own
/// Slurm resources, already checked (`jobs::eval_slurm`), kept for its submission.
pub fn enqueue_eval(
    st: &AppState,
    run: &RunId,
    key: EvalKey,
    priority: Priority,
    slurm: &[String],
) -> Result<(), JobError> {
    let dir = st.run_dir(run);
    if !dir.checkpoint(key.model).exists() {
        return Err(JobError::Conflict(format!(
            "run {run} has no {} checkpoint yet",
            key.model
        )));
    }
    let (device, gpu_mib) = scan::job_needs(&dir, Work::Evaluate);
    {
        let q = st.jobs().lock();
        if q.training(run) {
            return Err(JobError::Conflict(format!(
                "run {run} is still training; evaluate it when it has finished"
            )));
        }
        let kind = JobKind::Evaluate(key);
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
        kind: JobKind::Evaluate(key),
        device,
        needs_source: false,
        gpu_mib,
    };
    safe_fs::create_dir_all(&dir, markers::eval_rel(&key))?;
    eval_slurm::write(&dir, &key, slurm)?;
    submit_with(st, vec![(job, priority)])
}

/// Cancel a queued evaluation (at once) or a running one (SIGTERM to the `fairtat eval` that
/// owns the run, or `scancel`). The evaluation's directory says `cancelled`.
pub fn cancel_eval(st: &AppState, run: &RunId, key: EvalKey) -> Result<(), JobError> {
    let dir = st.run_dir(run);
    let kind = JobKind::Evaluate(key);
    let queued = !st
        .jobs()
        .lock()
        .remove_waiting(run, |k| *k == kind)
        .is_empty();
    if queued {
        markers::remove(&dir, &kind);
        markers::write_cancelled(&dir, &key);
        return Ok(());
    }
    let mark = |_: &RunId| markers::write_cancelled(&dir, &key);
    let which = |k: &JobKind| *k == kind;
    let req = StopRequest {
        runs: std::slice::from_ref(run),
        which: &which,
        mark: &mark,
    };
    let stop = backend(st)
        .stop(st, &req)
        .pop()
        .unwrap_or(Ok(Stop::NoJob))?;
    match stop {
        Stop::Sent => {
            tracing::info!(run = %run, eval = %key.dir_name(), "evaluation cancelled");
            Ok(())
        }
        Stop::Ending(_) => {
            // The process is already gone; its waiter frees the slot.
            markers::write_cancelled(&dir, &key);
            Ok(())
        }
        Stop::Starting => Err(JobError::Conflict(
            "the evaluation is starting; try again".into(),
        )),
        Stop::NoJob => Err(JobError::Conflict(format!(
            "run {run} has no {} evaluation queued or running",
            key.dir_name()
        ))),
    }
}
