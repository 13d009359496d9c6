//! One follower task per active run: polls `events.jsonl` with the [`Tailer`] (every `poll`,
//! at most 200 ms), folds lines into the run's summary, writes the index and publishes to the hub.
//!
//! It ends when the run's `finished` line arrives (after waiting briefly for the process to exit,
//! so its GPU memory is free before the slot is reused), when the process is gone without one
//! (our own child: the server writes a `failed` line with the exit signal; an adopted trainer:
//! the run is marked interrupted), or on shutdown.

use std::time::Duration;

use tokio::sync::watch;

use super::jobs::scheduler::Ended;
use super::process::append_missing_final;
use super::scan;
use super::state::AppState;
use fairtat_core::config::RunSpec;
use fairtat_core::runs::lock;
use fairtat_core::runs::reader::Tailer;
use fairtat_core::runs::summary::RunSummary;
use fairtat_core::runs::{RunDir, RunEvent, RunStatus};

/// How a watcher learns that a job's process is gone.
pub enum Liveness {
    /// Our own child: the waiter task sends the exit description.
    Child(watch::Receiver<Option<String>>),
    /// A process adopted after a restart: alive while it holds its run's lock.
    Lock(RunDir),
    /// A scheduler's job (Slurm): the poller sends how it ended.
    Scheduler(watch::Receiver<Option<Ended>>),
}

impl Liveness {
    /// `Some(description)` once the process is gone.
    pub fn gone(&self) -> Option<String> {
        match self {
            Liveness::Child(rx) => rx.borrow().clone(),
            Liveness::Lock(dir) => lock::probe(dir).is_none().then(|| {
                "the process is gone without a final event (it released the run's lock); \
                 resume continues from the last checkpoint"
                    .to_string()
            }),
            Liveness::Scheduler(rx) => rx.borrow().as_ref().map(|e| e.why.clone()),
        }
    }

    /// A job gone without a final line failed (the server writes why), unless it was an
    /// adopted process (its end is unknown) or the scheduler stopped it for its own reasons
    /// (time limit, preemption: the run is interrupted and resumable).
    fn gone_means_failed(&self) -> bool {
        match self {
            Liveness::Child(_) => true,
            Liveness::Lock(_) => false,
            Liveness::Scheduler(rx) => rx.borrow().as_ref().is_some_and(|e| !e.state.resumable()),
        }
    }

    pub async fn changed(&mut self, poll: Duration) {
        match self {
            Liveness::Child(rx) => {
                let _ = tokio::time::timeout(poll, rx.changed()).await;
            }
            Liveness::Lock(_) => tokio::time::sleep(poll).await,
            Liveness::Scheduler(rx) => {
                if let Ok(Err(_)) = tokio::time::timeout(poll, rx.changed()).await {
                    // The job was replaced (resubmitted): no more news on this channel.
                    tokio::time::sleep(poll).await;
                }
            }
        }
    }
}

/// Follow a run until its trainer ends. `history_seq` is the last seq written before this
/// trainer process started (None for an adopted process): a `finished` line up to it belongs
/// to an earlier process (a resumed run) and does not end the run. Returns true when the run
/// ended (false on shutdown).
pub async fn follow(
    state: &AppState,
    dir: RunDir,
    mut live: Liveness,
    history_seq: Option<u64>,
) -> bool {
    let id = dir.id();
    let mut tailer = Tailer::new(dir.events());
    // Start from the spec and fold every line: the same result as a rebuild.
    let spec = scan::read_spec(&dir);
    let mut summary = running_summary(&dir, spec.as_ref());
    let mut finished = false;
    let mut wrote_final = false;
    loop {
        // Check liveness before reading, so lines written just before exit are still drained.
        let gone = live.gone();
        let lines = match tailer.poll_located() {
            Ok(v) => v,
            Err(err) => {
                tracing::warn!(run = %id, cause = %err, "skipping an event line");
                vec![]
            }
        };
        if tailer.take_reset() {
            // The log was replaced or truncated: what was folded is no longer its history.
            tracing::warn!(run = %id, "events.jsonl was replaced; folding it again");
            state.store().remove(&id);
            summary = running_summary(&dir, spec.as_ref());
            finished = false;
        }
        let changed = !lines.is_empty();
        // The metrics store folds what was just read, so no request reads it again.
        state.store().append(&dir, &lines, tailer.offset());
        for (_, line) in lines {
            apply_line(&mut summary, &line, history_seq, &mut finished);
            state.hub().line(&id, line);
        }
        if changed {
            if let (true, Some(spec)) = (summary.method.is_empty(), &spec) {
                scan::fill_from_spec(&mut summary, spec);
            }
            state.index_summary(&summary);
            state.hub().status(&summary);
        }
        if tailer.more() {
            // A long backlog (an adopted run): drain it before judging whether the run ended.
            continue;
        }
        if finished {
            // A local slot is reused once the process has exited (its GPU memory freed); a
            // scheduler's job is the scheduler's to place, and its end comes from the poller.
            if !matches!(live, Liveness::Scheduler(_)) {
                wait_for_exit(state, &mut live).await;
            }
            return true;
        }
        if let Some(why) = gone {
            if !wrote_final && write_missing_final(state, &dir, &live, &summary, &why) {
                wrote_final = true;
                continue;
            }
            scan::mark_interrupted(&mut summary, Some(why));
            state.index_summary(&summary);
            state.hub().status(&summary);
            tracing::warn!(run = %id, "trainer gone without a final event; marked interrupted");
            return true;
        }
        tokio::select! {
            _ = state.shutdown_token().cancelled() => return false,
            _ = live.changed(state.poll()) => {}
        }
    }
}

/// The summary of a run whose log is about to be folded from its first line.
fn running_summary(dir: &RunDir, spec: Option<&RunSpec>) -> RunSummary {
    let mut summary = match spec {
        Some(spec) => scan::summary_from_spec(dir, spec),
        None => RunSummary::empty(dir),
    };
    summary.status = RunStatus::Running;
    summary
}

/// The trainer is gone without its final line: write it when the server knows how the run
/// ended (our SIGTERM after a cancel, or our own child's death); false when it does not.
fn write_missing_final(
    state: &AppState,
    dir: &RunDir,
    live: &Liveness,
    summary: &RunSummary,
    why: &str,
) -> bool {
    if cancel_requested(state, dir) {
        // Killed by our SIGTERM before it could write its final line; the process is gone, so
        // the server may write it.
        let msg = "cancelled before the trainer wrote its final event".into();
        append_missing_final(dir, RunStatus::Cancelled, summary.epochs_done, msg);
        return true;
    }
    if live.gone_means_failed() {
        // Our own child died without its final line (a signal, a crash): the server saw it
        // end, so the run failed, with the exit signal and the log's end.
        append_missing_final(dir, RunStatus::Failed, summary.epochs_done, why.to_string());
        return true;
    }
    false
}

/// Fold one event line into the summary; a `finished` line ends the run unless it belongs to
/// an earlier process (seq up to `history_seq`), and a `started` line reopens it.
fn apply_line(
    summary: &mut RunSummary,
    line: &fairtat_core::runs::EventLine,
    history_seq: Option<u64>,
    finished: &mut bool,
) {
    summary.apply(line);
    if matches!(line.event, RunEvent::Finished { .. }) {
        if history_seq.is_none_or(|h| line.seq > h) {
            *finished = true;
        } else {
            // An earlier process's end; this one is about to continue the run.
            summary.status = RunStatus::Running;
            summary.message = None;
        }
    } else if matches!(line.event, RunEvent::Started { .. }) {
        *finished = false;
    }
}

/// After the final line the trainer only flushes and exits; give it up to a minute.
async fn wait_for_exit(state: &AppState, live: &mut Liveness) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while live.gone().is_none() && tokio::time::Instant::now() < deadline {
        tokio::select! {
            _ = state.shutdown_token().cancelled() => return,
            _ = live.changed(state.poll()) => {}
        }
    }
}

fn cancel_requested(state: &AppState, dir: &RunDir) -> bool {
    dir.run_id().is_some_and(|run| {
        state
            .jobs()
            .lock()
            .running(&run)
            .is_some_and(|r| r.cancel_requested)
    })
}
