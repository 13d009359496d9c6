//! The supervisor binds the [`Executor`](crate::jobs::Executor) to the rest of the server: one
//! pump takes the jobs that may start off the queue and hands them to the state's
//! [`Backend`](crate::state::Backend) ([`local`]: child processes, [`slurm`]: Slurm jobs), which
//! starts and follows them (`follower` for trainers, a waiter for evaluations); it adopts the
//! processes that a previous server left running, and records what happened in the index and
//! the hub.
//!
//! Everything here that touches files, processes or SQLite is blocking and runs on blocking
//! threads ([`AppState::blocking`]); the API in [`control`] is async for the HTTP handlers.
//!
//! Adoption trusts only the run's lock (`runs::lock`): a process is adopted while it holds the
//! lock of its run directory, so a pid reused by another program is never adopted or signalled.

mod boot;
mod control;
mod launch;
mod local;
mod slurm;
mod watch;

use std::collections::HashSet;

use super::jobs::{markers, Job, JobKind};
use super::process::append_finished;
use super::scan;
use super::state::AppState;
use fairtat_core::runs::deps::{dependency_state, DependencyState};
use fairtat_core::runs::lock::{self, LockOwner};
use fairtat_core::runs::summary::RunSummary;
use fairtat_core::runs::{RunDir, RunId, RunStatus};

pub use boot::start;
pub use control::{
    cancel_eval, cancel_run, enqueue_eval, preflight, resume_run, submit, submit_all,
};

/// Take every waiting job whose device has a free slot (first come, first served) and hand
/// them to the backend together (under Slurm a grid's fresh runs become one job array).
/// Blocking.
fn pump(st: &AppState) {
    if st.shutdown_token().is_cancelled() {
        return;
    }
    let blocked = waiting_for_sources(st);
    let batch: Vec<_> = {
        let mut q = st.jobs().lock();
        std::iter::from_fn(|| q.take_next(&blocked)).collect()
    };
    if !batch.is_empty() {
        st.backend().start(st, batch);
    }
}

/// Runs whose source run (`train.init_from_run`) has not finished: they stay queued, saying
/// what they wait for. A run whose source failed or is missing fails with the reason. The
/// checks read files, so they run outside the executor's lock, only for jobs that need them.
fn waiting_for_sources(st: &AppState) -> HashSet<RunId> {
    let candidates: Vec<Job> = st
        .jobs()
        .lock()
        .waiting()
        .filter(|j| j.needs_source)
        .cloned()
        .collect();
    let mut blocked = HashSet::new();
    for job in candidates {
        let dir = st.run_dir(&job.run);
        let Some(spec) = scan::read_spec(&dir) else {
            continue;
        };
        match dependency_state(&st.runs_dir(), &spec) {
            DependencyState::Ready(_) => {}
            DependencyState::Waiting(source) => {
                say_waiting(st, &job.run, &source);
                blocked.insert(job.run);
            }
            DependencyState::Failed(why) => {
                let removed = st.jobs().lock().remove_waiting(&job.run, |k| *k == job.kind);
                if !removed.is_empty() {
                    record_failure(st, &job, &why);
                }
            }
        }
    }
    blocked
}

/// A queued run says what it waits for (once; the index keeps it).
fn say_waiting(st: &AppState, run: &RunId, source: &str) {
    let Ok(Some(mut s)) = st.index().get(run) else {
        return;
    };
    let msg = format!("waiting for run {source} to finish: this run starts from its checkpoint");
    if s.message.as_deref() != Some(msg.as_str()) {
        s.message = Some(msg);
        st.index_summary(&s);
        st.hub().status(&s);
    }
}

/// A job whose process could not even start: record why where its page looks.
fn record_failure(st: &AppState, job: &Job, why: &str) {
    let dir = st.run_dir(&job.run);
    markers::remove(&dir, &job.kind);
    match &job.kind {
        JobKind::Evaluate(key) => {
            let out = markers::eval_dir(&dir, key);
            let _ = std::fs::create_dir_all(&out);
            let _ = std::fs::write(out.join("error.txt"), format!("cannot start: {why}"));
        }
        JobKind::Train | JobKind::Resume => {
            // The trainer never ran, so the server may write the run's final line.
            let done = epochs_done(st, &job.run);
            append_finished(
                &dir,
                RunStatus::Failed,
                done,
                format!("cannot start trainer: {why}"),
            );
            st.refresh(&job.run);
        }
    }
}

/// A job's process is gone (or its run ended): free the slot, start what waits. Blocking.
fn job_ended(st: &AppState, run: &RunId) {
    if let Some(r) = st.jobs().lock().finish(run) {
        if let JobKind::Evaluate(key) = r.job.kind {
            markers::remove(&st.run_dir(run), &JobKind::Evaluate(key));
        }
    }
    pump(st);
}

fn epochs_done(st: &AppState, run: &RunId) -> usize {
    st.index()
        .get(run)
        .ok()
        .flatten()
        .map_or(0, |s| s.epochs_done)
}

/// Re-queue a job found on disk; one whose device is gone from this machine fails with the
/// reason instead of waiting forever.
fn push(st: &AppState, run: RunId, kind: JobKind, device: &str) {
    let needs_source = kind == JobKind::Train
        && scan::read_spec(&st.run_dir(&run)).is_some_and(|s| !s.train.init_from_run.is_empty());
    let job = Job {
        run,
        kind,
        device: device.to_string(),
        needs_source,
    };
    match st.backend().check_device(device) {
        Ok(()) => st.jobs().lock().push(job),
        Err(err) => record_failure(st, &job, &err.to_string()),
    }
}

fn device_of(s: &RunSummary) -> String {
    if s.device.is_empty() {
        "auto".into()
    } else {
        s.device.clone()
    }
}

/// Count and follow a process that a previous server started (or a shell: `fairtat train`).
fn adopt(
    st: &AppState,
    dir: &RunDir,
    run: &RunId,
    owner: &LockOwner,
    device: &str,
    summary: RunSummary,
) {
    if st.jobs().lock().running(run).is_some() {
        return;
    }
    let kind = match owner.what.strip_prefix("eval ") {
        Some(name) => match fairtat_core::runs::eval_key::EvalKey::from_dir_name(name) {
            Some(key) => JobKind::Evaluate(key),
            None => return, // a CLI evaluation with custom attacks: not ours to count
        },
        None => JobKind::Train,
    };
    let job = Job {
        run: run.clone(),
        kind,
        device: device.to_string(),
        needs_source: false,
    };
    st.jobs().lock().adopt(job, owner.pid);
    tracing::info!(run = %run, pid = owner.pid, what = %owner.what, "adopted a running process");
    let live = super::follower::Liveness::Lock(dir.clone());
    match kind {
        JobKind::Evaluate(_) => watch::watch_eval(st.clone(), run.clone(), live),
        _ => {
            st.index_summary(&summary);
            watch::watch_trainer(st.clone(), dir.clone(), live, None)
        }
    }
}

/// Whether the process recorded for a run still owns it (so a signal reaches the right one).
fn owns(dir: &RunDir, pid: u32) -> bool {
    lock::probe(dir).is_some_and(|o| o.pid == pid)
}

fn is_eval(kind: &JobKind) -> bool {
    matches!(kind, JobKind::Evaluate(_))
}
