//! The supervisor binds the [`Executor`](crate::jobs::Executor) to the rest of the
//! server: one pump hands the jobs that may start to the backend (`backend`: child processes
//! in `local`, Slurm jobs in `slurm`), which starts and stops them; watchers follow them
//! (`follower` for trainers, a waiter for evaluations) and record what happened in the index
//! and the hub. Processes that a previous server or a shell left running are adopted.
//!
//! Adoption trusts only the run's lock (`runs::lock`): a process is adopted while it holds the
//! lock of its run directory, so a pid reused by another program is never adopted or signalled.

mod backend;
mod boot;
mod control;
mod launch;
mod local;
mod slurm;
mod slurm_arrays;
mod slurm_backend;
mod slurm_boot;
mod slurm_cancel;
mod slurm_check;
mod slurm_files;
mod slurm_poll;

use std::collections::HashSet;
use std::time::Duration;

use super::follower::{follow, Liveness};
use super::jobs::{markers, Job, JobKind, Slot};
use super::process::append_finished;
use super::scan;
use super::state::AppState;
use fairtat_core::config::gpu_memory::{self, Work};
use fairtat_core::config::DeviceSpec;
use fairtat_core::runs::deps::{dependency_state, DependencyState};
use fairtat_core::runs::lock::{self, LockOwner};
use fairtat_core::runs::safe_fs;
use fairtat_core::runs::summary::RunSummary;
use fairtat_core::runs::{RunDir, RunId, RunStatus};

pub use boot::start;
pub use control::{
    cancel_eval, cancel_run, cancel_runs, enqueue_eval, resume_run, submit, submit_all,
};
pub use slurm_check::preflight;
pub use slurm_files::{view as slurm_view, SlurmView};

/// The one pump: take every waiting job whose device has a free slot (first come, first
/// served) and hand them to the backend, which starts them.
pub fn pump(st: &AppState) {
    if st.shutdown_token().is_cancelled() {
        return;
    }
    let blocked = waiting_for_sources(st);
    let batch: Vec<(Job, Slot)> = {
        let mut q = st.jobs().lock();
        std::iter::from_fn(|| q.take_next(&blocked)).collect()
    };
    if !batch.is_empty() {
        backend(st).launch(st, batch);
    }
}

/// The backend that `--executor` chose (the one place that asks which).
fn backend(st: &AppState) -> &'static dyn backend::Backend {
    match st.scheduler() {
        Some(_) => &slurm_backend::Slurm,
        None => &local::Local,
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
        match dependency_state(st.runs_dir(), &spec) {
            DependencyState::Ready(_) => {}
            DependencyState::Waiting(source) => {
                say_waiting(st, &job.run, &source);
                blocked.insert(job.run);
            }
            DependencyState::Failed(why) => {
                let removed = st
                    .jobs()
                    .lock()
                    .remove_waiting(&job.run, |k| *k == job.kind);
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
            let out = markers::eval_rel(key);
            let _ = safe_fs::create_dir_all(&dir, &out);
            let why = format!("cannot start: {why}");
            let _ = safe_fs::write(&dir, out.join("error.txt"), why.as_bytes());
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

/// The last line of the run's events before this job (a `finished` up to it is an earlier
/// job's), for training jobs.
fn history_seq(dir: &RunDir, kind: &JobKind) -> Option<u64> {
    match kind {
        JobKind::Evaluate(_) => None,
        _ => fairtat_core::runs::reader::last_seq(&dir.events()),
    }
}

/// Follow a trainer until its run ends, then free its slot.
fn watch_trainer(st: AppState, dir: RunDir, live: Liveness, history_seq: Option<u64>) {
    tokio::spawn(async move {
        let Some(run) = dir.run_id() else { return };
        if follow(&st, dir, live, history_seq).await {
            ended(&st, &run).await;
        }
    });
}

/// Wait for an evaluation process to end, then free its slot and refresh the run's page.
fn watch_eval(st: AppState, run: RunId, mut live: Liveness) {
    tokio::spawn(async move {
        while live.gone().is_none() {
            tokio::select! {
                _ = st.shutdown_token().cancelled() => return,
                _ = live.changed(st.poll().max(Duration::from_millis(50))) => {}
            }
        }
        tracing::info!(run = %run, "evaluation ended");
        ended(&st, &run).await;
    });
}

/// [`job_ended`] from a watcher task, on a blocking thread: its pump may start processes.
async fn ended(st: &AppState, run: &RunId) {
    let (st, run) = (st.clone(), run.clone());
    let _ = tokio::task::spawn_blocking(move || job_ended(&st, &run)).await;
}

/// A job's process is gone (or its run ended): free the slot, tell the run's pages (its
/// controls change now: Resume, Evaluate; its event stream ends only then), start what waits.
pub fn job_ended(st: &AppState, run: &RunId) {
    if let Some(r) = st.jobs().lock().finish(run) {
        if let JobKind::Evaluate(key) = r.job.kind {
            markers::remove(&st.run_dir(run), &JobKind::Evaluate(key));
        }
    }
    if let Ok(Some(summary)) = st.index().get(run) {
        st.hub().status(&summary);
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
fn push(st: &AppState, run: RunId, kind: JobKind) {
    let spec = scan::read_spec(&st.run_dir(&run));
    let needs_source = kind == JobKind::Train
        && spec
            .as_ref()
            .is_some_and(|s| !s.train.init_from_run.is_empty());
    let work = match kind {
        JobKind::Evaluate(_) => Work::Evaluate,
        JobKind::Train | JobKind::Resume => Work::Train,
    };
    let job = Job {
        run,
        kind,
        device: spec.as_ref().map_or(DeviceSpec::Auto, |s| s.device),
        needs_source,
        gpu_mib: spec.map_or(0, |s| gpu_memory::estimate_mib(&s, work)),
    };
    match super::admission::check_device_here(st, job.device) {
        Ok(()) => st.jobs().lock().push(job),
        Err(err) => record_failure(st, &job, &err.to_string()),
    }
}

/// Count and follow a process that a previous server started (or a shell: `fairtat train`).
pub fn adopt(st: &AppState, dir: &RunDir, run: &RunId, owner: &LockOwner, summary: RunSummary) {
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
    let work = match kind {
        JobKind::Evaluate(_) => Work::Evaluate,
        _ => Work::Train,
    };
    let (device, gpu_mib) = scan::job_needs(dir, work);
    let job = Job {
        run: run.clone(),
        kind,
        device,
        needs_source: false,
        gpu_mib,
    };
    st.jobs().lock().adopt(job, owner.pid);
    tracing::info!(run = %run, pid = owner.pid, what = %owner.what, "adopted a running process");
    let live = Liveness::Lock(dir.clone());
    match kind {
        JobKind::Evaluate(_) => watch_eval(st.clone(), run.clone(), live),
        _ => {
            st.index_summary(&summary);
            watch_trainer(st.clone(), dir.clone(), live, None)
        }
    }
}

/// Whether the process recorded for a run still owns it (so a signal reaches the right one).
pub fn owns(dir: &RunDir, pid: u32) -> bool {
    lock::probe(dir).is_some_and(|o| o.pid == pid)
}

/// Set the run's status and message in the index while its trainer has not started (the
/// follower owns the summary once events arrive). `keep_running`: a found-again job whose
/// run already trains keeps its status. Shared by the Slurm submitter and its poller.
pub fn say(st: &AppState, run: &RunId, status: RunStatus, msg: String, keep_running: bool) {
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
