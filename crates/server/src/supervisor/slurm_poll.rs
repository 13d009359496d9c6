//! The Slurm status poller: one `squeue` for all of this user's jobs per tick (plus `sacct`
//! for jobs that `squeue` no longer lists, where accounting is on), never one per request.
//! It polls every `poll_secs` while states change, backs off to 30 s while nothing changes and
//! to 60 s while the scheduler does not answer, and sleeps until woken while no job is active.
//! Also here: the automatic resubmission of runs that Slurm stopped at their time limit.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::say;
use crate::jobs::scheduler::Scheduler;
use crate::jobs::JobKind;
use crate::slurm::{cli, JobId, JobState, SlurmError};
use crate::state::AppState;
use fairtat_core::runs::{RunId, RunStatus};

const IDLE_CHECK: Duration = Duration::from_secs(5);
const MAX_QUIET: Duration = Duration::from_secs(30);
const MAX_FAILING: Duration = Duration::from_secs(60);

pub fn spawn_poller(st: &AppState, sched: Arc<Scheduler>) {
    let st = st.clone();
    tokio::spawn(async move {
        let base = Duration::from_secs_f64(sched.opts.poll_secs);
        let mut wait = base;
        let accounting = Arc::new(AtomicBool::new(true));
        loop {
            let jobs = sched.polled();
            if jobs.is_empty() {
                wait = base;
                tokio::select! {
                    _ = st.shutdown_token().cancelled() => return,
                    _ = sched.wake.notified() => {}
                    _ = tokio::time::sleep(IDLE_CHECK) => {}
                }
                continue;
            }
            let acct = accounting.clone();
            let ids: Vec<JobId> = jobs.iter().map(|(_, id)| id.clone()).collect();
            let polled = tokio::task::spawn_blocking(move || poll_once(&ids, &acct)).await;
            wait = match polled {
                Ok(Ok(states)) => {
                    if apply(&st, &sched, &jobs, &states) {
                        base
                    } else {
                        (wait.mul_f64(1.5)).min(MAX_QUIET).max(base)
                    }
                }
                Ok(Err(err)) => {
                    tracing::warn!(cause = %err, "cannot read job states from Slurm");
                    (wait * 2).min(MAX_FAILING)
                }
                Err(_) => wait,
            };
            tokio::select! {
                _ = st.shutdown_token().cancelled() => return,
                _ = sched.wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    });
}

/// The states of `ids`: from `squeue`, then `sacct` for the rest; jobs neither knows are
/// `Gone`.
fn poll_once(
    ids: &[JobId],
    accounting: &AtomicBool,
) -> Result<HashMap<JobId, JobState>, SlurmError> {
    let mut snap = cli::squeue()?;
    let missing: Vec<JobId> = ids
        .iter()
        .filter(|i| !snap.contains_key(*i))
        .cloned()
        .collect();
    if !missing.is_empty() && accounting.load(Ordering::Relaxed) {
        match cli::sacct(&missing) {
            Ok(more) => snap.extend(more),
            Err(SlurmError::NoAccounting) => accounting.store(false, Ordering::Relaxed),
            Err(err) => tracing::warn!(cause = %err, "sacct failed"),
        }
    }
    Ok(ids
        .iter()
        .map(|id| {
            let state = snap.get(id).map_or(JobState::Gone, |(s, _)| s.clone());
            (id.clone(), state)
        })
        .collect())
}

/// Feed the states to the scheduler's table; say pending reasons and nodes on the run page
/// until the trainer starts. Returns whether anything changed.
fn apply(
    st: &AppState,
    sched: &Scheduler,
    jobs: &[(RunId, JobId)],
    states: &HashMap<JobId, JobState>,
) -> bool {
    let mut changed = false;
    for (run, id) in jobs {
        let Some(state) = states.get(id) else {
            continue;
        };
        let Some((kind, state)) = sched.observe(run, id, state.clone()) else {
            continue;
        };
        changed = true;
        tracing::info!(run = %run, job = %id, state = %state.describe(), "Slurm job state");
        if state.is_terminal() {
            let dir = st.run_dir(run);
            let line = format!("ended: Slurm job {id} {}", state.describe());
            tokio::task::spawn_blocking(move || super::slurm_files::history(&dir, &line));
        }
        if matches!(kind, JobKind::Evaluate(_)) {
            if let Ok(Some(s)) = st.index().get(run) {
                st.hub().status(&s);
            }
            continue;
        }
        match &state {
            JobState::Pending { .. } | JobState::Requeued { .. } | JobState::Running { .. } => say(
                st,
                run,
                RunStatus::Queued,
                format!("Slurm job {id}: {}", state.describe()),
                true,
            ),
            _ => {}
        }
    }
    changed
}

/// After a training job ended: with `--slurm-requeue`, resubmit a run that Slurm stopped
/// (time limit, preemption, node failure) as `train --resume`, at most `max_requeues` times.
pub fn maybe_requeue(st: &AppState, run: &RunId) {
    let Some(sched) = st.scheduler() else {
        return;
    };
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
    let done = std::fs::read_to_string(super::slurm_files::slurm_dir(&dir).join("history.log"))
        .map(|t| t.lines().filter(|l| l.contains("automatic resume")).count())
        .unwrap_or(0);
    if done >= sched.opts.max_requeues {
        tracing::warn!(run = %run, done, "not resubmitting again (--slurm-max-requeues)");
        return;
    }
    super::slurm_files::history(
        &dir,
        &format!(
            "automatic resume {} of {}",
            done + 1,
            sched.opts.max_requeues
        ),
    );
    match super::resume_run(st, run) {
        Ok(_) => tracing::info!(run = %run, "resubmitted after Slurm stopped it"),
        Err(err) => tracing::warn!(run = %run, cause = %err, "cannot resubmit"),
    }
}
