//! The Slurm status poller: one `squeue` for all of this user's jobs per tick (plus `sacct`
//! for jobs that `squeue` no longer lists, where accounting is on), never one per request.
//! It polls every `poll_secs` while states change, backs off to 30 s while nothing changes and
//! to 60 s while the scheduler does not answer, and sleeps until woken while no job is active.
//! Actions (submissions, cancels, a trainer's end) only wake it: polls stay at least
//! `poll_secs` apart however many arrive ([`paced`]).
//! Also here: the automatic resubmission of runs and evaluations that Slurm stopped at their
//! time limit.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::say;
use crate::jobs::scheduler::Scheduler;
use crate::jobs::{eval_slurm, JobKind, Priority};
use crate::slurm::{cli, JobId, JobState, SlurmError};
use crate::state::AppState;
use fairtat_core::runs::eval_key::EvalKey;
use fairtat_core::runs::{RunId, RunStatus};

const IDLE_CHECK: Duration = Duration::from_secs(5);
const MAX_QUIET: Duration = Duration::from_secs(30);
const MAX_FAILING: Duration = Duration::from_secs(60);

/// What one tick of the poller found.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Tick {
    /// No job to ask about: sleep until woken.
    Idle,
    Changed,
    Quiet,
    Failed,
}

pub fn spawn_poller(st: &AppState, sched: Arc<Scheduler>) {
    let st = st.clone();
    tokio::spawn(async move {
        let base = Duration::from_secs_f64(sched.opts.poll_secs);
        let accounting = Arc::new(AtomicBool::new(true));
        let stop = st.shutdown_token().clone();
        let wake = sched.clone();
        paced(base, &wake.wake, &stop, || {
            let (st, sched, acct) = (st.clone(), sched.clone(), accounting.clone());
            async move { tick(&st, &sched, &acct).await }
        })
        .await;
    });
}

/// One poll of every job not known to have ended.
async fn tick(st: &AppState, sched: &Arc<Scheduler>, acct: &Arc<AtomicBool>) -> Tick {
    let jobs = sched.polled();
    if jobs.is_empty() {
        return Tick::Idle;
    }
    let ids: Vec<JobId> = jobs.iter().map(|(_, id)| id.clone()).collect();
    let acct = acct.clone();
    match tokio::task::spawn_blocking(move || poll_once(&ids, &acct)).await {
        Ok(Ok(states)) if apply(st, sched, &jobs, &states) => Tick::Changed,
        Ok(Ok(_)) => Tick::Quiet,
        Ok(Err(err)) => {
            tracing::warn!(cause = %err, "cannot read job states from Slurm");
            Tick::Failed
        }
        Err(_) => Tick::Quiet,
    }
}

/// The poller's clock: `poll` runs every `base` while states change, backs off to 30 s while
/// nothing changes and to 60 s while Slurm does not answer. A wake (a submission, a cancel, a
/// trainer's final line) brings the next poll forward, but never closer than `base` to the
/// last one: however many actions arrive, Slurm sees at most one `squeue` (and one `sacct`)
/// per `base` (issue 21: 201 cancels made 69 `squeue` calls in 10.7 s).
pub async fn paced<F, Fut>(base: Duration, wake: &Notify, stop: &CancellationToken, mut poll: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Tick>,
{
    let mut wait = base;
    let mut last: Option<Instant> = None;
    loop {
        if let Some(last) = last {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep_until(last + base) => {}
            }
        }
        let tick = poll().await;
        if tick != Tick::Idle {
            // Only a tick that asked Slurm counts: an idle one costs nothing.
            last = Some(Instant::now());
        }
        wait = match tick {
            Tick::Idle => IDLE_CHECK,
            Tick::Changed => base,
            Tick::Quiet => (wait.mul_f64(1.5)).min(MAX_QUIET).max(base),
            Tick::Failed => (wait * 2).min(MAX_FAILING),
        };
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = wake.notified() => {}
            _ = tokio::time::sleep(wait) => {}
        }
        if tick == Tick::Idle {
            wait = base;
        }
    }
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
            // A short job's trainer may have written its final line before a poll sees the job
            // running: Slurm's word is a poll behind, and the run's own end stands.
            JobState::Running { .. } if run_ended(st, run) => {}
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

fn run_ended(st: &AppState, run: &RunId) -> bool {
    let status = st.index().get(run).ok().flatten().map(|s| s.status);
    status.is_some_and(|s| s.is_terminal())
}

/// With `--slurm-requeue`, whether `run` may be resubmitted once more for `what` (`automatic
/// resume`, `automatic rerun of evaluation <key>`): fewer than `max_requeues` such lines in its
/// history. The line is written when it may.
fn allow_resubmission(st: &AppState, run: &RunId, what: &str) -> bool {
    let Some(sched) = st.scheduler() else {
        return false;
    };
    if !sched.opts.requeue {
        return false;
    }
    let dir = st.run_dir(run);
    let max = sched.opts.max_requeues;
    let done = super::slurm_files::read_history(&dir)
        .lines()
        .filter(|l| l.contains(what))
        .count();
    if done >= max {
        tracing::warn!(run = %run, done, what, "not resubmitting again (--slurm-max-requeues)");
        return false;
    }
    super::slurm_files::history(&dir, &format!("{what} {} of {max}", done + 1));
    true
}

/// After a training job ended: with `--slurm-requeue`, resubmit a run that Slurm stopped
/// (time limit, preemption, node failure) as `train --resume`, at most `max_requeues` times.
/// (A stop after the time-limit warning is requeued by the job's own script, under its id.)
pub fn maybe_requeue(st: &AppState, run: &RunId) {
    let Ok(Some(s)) = st.index().get(run) else {
        return;
    };
    if s.status != RunStatus::Interrupted || !allow_resubmission(st, run, "automatic resume") {
        return;
    }
    match super::resume_run(st, run) {
        Ok(_) => tracing::info!(run = %run, "resubmitted after Slurm stopped it"),
        Err(err) => tracing::warn!(run = %run, cause = %err, "cannot resubmit"),
    }
}

/// After an evaluation job ended: with `--slurm-requeue`, queue the evaluation again when
/// Slurm stopped it (time limit without the warning, preemption, node failure), before the
/// queued training runs, at most `max_requeues` times.
pub fn maybe_rerun_eval(st: &AppState, run: &RunId, key: EvalKey, end: &JobState) {
    let what = format!("automatic rerun of evaluation {}", key.dir_name());
    if !end.resumable() || !allow_resubmission(st, run, &what) {
        return;
    }
    // The same resources as the job Slurm stopped (its own, if the request gave any).
    let slurm = eval_slurm::read(&st.run_dir(run), &key);
    match super::enqueue_eval(st, run, key, Priority::Urgent, &slurm) {
        Ok(()) => tracing::info!(run = %run, eval = %key.dir_name(), "evaluation queued again"),
        Err(err) => tracing::warn!(run = %run, cause = %err, "cannot queue the evaluation again"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// The poller under `paced` with a counting poll; returns the poll times.
    fn start(base: Duration) -> (Arc<Notify>, CancellationToken, Arc<Mutex<Vec<Instant>>>) {
        let wake = Arc::new(Notify::new());
        let stop = CancellationToken::new();
        let polls = Arc::new(Mutex::new(Vec::new()));
        let (w, s, p) = (wake.clone(), stop.clone(), polls.clone());
        tokio::spawn(async move {
            paced(base, &w, &s, || {
                p.lock().unwrap().push(Instant::now());
                async { Tick::Quiet }
            })
            .await
        });
        (wake, stop, polls)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_storm_of_actions_polls_at_most_once_per_interval() {
        let base = Duration::from_millis(100);
        let (wake, stop, polls) = start(base);
        let t0 = Instant::now();
        // 200 actions in about a second, each waking the poller (what 200 cancels do).
        for _ in 0..200 {
            wake.notify_one();
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let elapsed = t0.elapsed();
        stop.cancel();
        let polls = polls.lock().unwrap().clone();
        let most = (elapsed.as_secs_f64() / base.as_secs_f64()).floor() as usize + 1;
        assert!(polls.len() <= most, "{} polls in {elapsed:?}", polls.len());
        for w in polls.windows(2) {
            assert!(w[1] - w[0] >= base, "polls {:?} apart", w[1] - w[0]);
        }
        // The wakes kept the poller at its base interval instead of its quiet back-off.
        assert!(
            polls.len() >= most / 2,
            "{} polls in {elapsed:?}",
            polls.len()
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_wake_after_a_quiet_spell_polls_within_the_interval() {
        let base = Duration::from_millis(100);
        let (wake, stop, polls) = start(base);
        // Nothing changes: the poller backs off (0.1, 0.15, 0.23, ... s between polls).
        tokio::time::sleep(Duration::from_millis(2500)).await;
        let quiet = polls.lock().unwrap().len();
        assert!(quiet < 10, "{quiet} polls while nothing changed");
        let t = Instant::now();
        wake.notify_one();
        tokio::time::sleep(Duration::from_millis(400)).await;
        stop.cancel();
        let after: Vec<Instant> = polls.lock().unwrap()[quiet..].to_vec();
        assert!(
            after
                .first()
                .is_some_and(|p| *p - t < Duration::from_millis(300)),
            "no poll soon after the wake: {after:?}"
        );
    }
}
