//! Watchers of Slurm jobs. A training job is followed through its run's events like a local
//! one; its end comes from the poller, and a run that Slurm stopped (time limit, preemption)
//! is interrupted, resubmitted with `--slurm-requeue`. An evaluation job is waited for.

use std::sync::Arc;

use tokio::sync::watch;

use super::files::{history, job_file, slurm_dir};
use crate::follower::{follow, Liveness};
use crate::jobs::scheduler::{Ended, Scheduler};
use crate::jobs::{markers, Job, JobKind};
use crate::process::append_finished;
use crate::state::AppState;
use crate::supervisor::{control, job_ended};
use fairtat_core::runs::reader::last_seq;
use fairtat_core::runs::{RunDir, RunId, RunStatus};

pub async fn watch_train(
    st: &AppState,
    sched: &Arc<Scheduler>,
    job: &Job,
    rx: watch::Receiver<Option<Ended>>,
    mut seq: Option<u64>,
) {
    let dir = st.run_dir(&job.run);
    let end = loop {
        if !follow(st, dir.clone(), Liveness::Scheduler(rx.clone()), seq).await {
            return; // shutdown: the job goes on; the next server finds it again
        }
        // The run's final line. Slurm's verdict may come a poll later, or Slurm runs the job
        // again (requeue): then its trainer starts anew and is followed again.
        sched.wake.notify_one();
        match end_or_restart(st, &job.run, &dir, rx.clone()).await {
            Next::Ended(end) => break Some(end),
            Next::Done => break None,
            Next::Restarted(last) => seq = Some(last),
            Next::Shutdown => return,
        }
    };
    let (job, sched) = (job.clone(), sched.clone());
    st.blocking(move |st| {
        settle_train(st, &job, end);
        job_ended(st, &job.run);
        maybe_requeue(st, &sched, &job.run);
    })
    .await;
}

enum Next {
    Ended(Ended),
    /// The run finished or failed: the job only exits now (the poller still records how).
    Done,
    /// A new `started` line after the one-time final line (seq of that final line).
    Restarted(u64),
    Shutdown,
}

async fn end_or_restart(
    st: &AppState,
    run: &RunId,
    dir: &RunDir,
    mut rx: watch::Receiver<Option<Ended>>,
) -> Next {
    let events = dir.events();
    let run = run.clone();
    let (last, status) = st
        .blocking(move |st| {
            let status = st.index().get(&run).ok().flatten().map(|s| s.status);
            (last_seq(&events).unwrap_or(0), status)
        })
        .await;
    // A finished or failed run is done (a Slurm requeue kills the trainer, which then ends
    // `cancelled`); a cancelled or interrupted one waits for Slurm's word: time limit, requeue.
    if matches!(status, Some(RunStatus::Finished | RunStatus::Failed)) {
        return Next::Done;
    }
    loop {
        if let Some(e) = rx.borrow().clone() {
            return Next::Ended(e);
        }
        let events = dir.events();
        let now = tokio::task::spawn_blocking(move || last_seq(&events).unwrap_or(0))
            .await
            .unwrap_or(0);
        if now > last {
            return Next::Restarted(last);
        }
        tokio::select! {
            _ = st.shutdown_token().cancelled() => return Next::Shutdown,
            _ = tokio::time::sleep(st.poll() * 5) => {}
            r = rx.changed() => if r.is_err() {
                return rx.borrow().clone().map_or(Next::Shutdown, Next::Ended);
            },
        }
    }
}

/// After a training job: a trainer that Slurm stopped with SIGTERM at its time limit (no
/// warning signal) wrote `cancelled`; the run is interrupted, not cancelled by its user.
fn settle_train(st: &AppState, job: &Job, end: Option<Ended>) {
    let dir = st.run_dir(&job.run);
    let user_cancel = st
        .jobs()
        .lock()
        .running(&job.run)
        .is_some_and(|r| r.cancel_requested);
    if let Some(end) = &end {
        let summary = st.refresh(&job.run);
        let cancelled = summary
            .as_ref()
            .is_some_and(|s| s.status == RunStatus::Cancelled);
        if end.state.resumable() && cancelled && !user_cancel {
            let done = summary.map_or(0, |s| s.epochs_done);
            append_finished(
                &dir,
                RunStatus::Interrupted,
                done,
                format!("{}; resume continues from the last checkpoint", end.why),
            );
        }
    }
    markers::remove(&dir, &job.kind);
    let _ = std::fs::remove_file(job_file(&dir, &job.kind));
    st.refresh(&job.run);
}

/// After a training job ended: with `--slurm-requeue`, resubmit a run that Slurm stopped
/// (time limit, preemption, node failure) as `train --resume`, at most `max_requeues` times.
fn maybe_requeue(st: &AppState, sched: &Scheduler, run: &RunId) {
    if !sched.opts.requeue {
        return;
    }
    let Ok(Some(s)) = st.index().get(run) else {
        return;
    };
    if s.status != RunStatus::Interrupted {
        return;
    }
    let dir = st.run_dir(run);
    let done = std::fs::read_to_string(slurm_dir(&dir).join("history.log"))
        .map(|t| t.lines().filter(|l| l.contains("automatic resume")).count())
        .unwrap_or(0);
    let max = sched.opts.max_requeues;
    if done >= max {
        tracing::warn!(run = %run, done, "not resubmitting again (--slurm-max-requeues)");
        return;
    }
    history(&dir, &format!("automatic resume {} of {max}", done + 1));
    match control::resume(st, run) {
        Ok(_) => tracing::info!(run = %run, "resubmitted after Slurm stopped it"),
        Err(err) => tracing::warn!(run = %run, cause = %err, "cannot resubmit"),
    }
}

pub async fn watch_eval(st: &AppState, job: &Job, mut rx: watch::Receiver<Option<Ended>>) {
    let end = loop {
        if let Some(e) = rx.borrow().clone() {
            break e;
        }
        tokio::select! {
            _ = st.shutdown_token().cancelled() => return,
            r = rx.changed() => if r.is_err() { return },
        }
    };
    let job = job.clone();
    st.blocking(move |st| {
        let dir = st.run_dir(&job.run);
        if let JobKind::Evaluate(key) = &job.kind {
            let out = markers::eval_dir(&dir, key);
            let wrote = out.join("eval.json").exists() || out.join("error.txt").exists();
            if !wrote && !out.join("cancelled").exists() {
                let _ = std::fs::write(out.join("error.txt"), format!("{}\n", end.why));
            }
        }
        markers::remove(&dir, &job.kind);
        let _ = std::fs::remove_file(job_file(&dir, &job.kind));
        tracing::info!(run = %job.run, "Slurm evaluation ended");
        job_ended(st, &job.run);
        if let Ok(Some(summary)) = st.index().get(&job.run) {
            st.hub().status(&summary);
        }
    })
    .await;
}
