//! One follower task per active run: polls `events.jsonl` with the [`Tailer`] (every `poll`,
//! at most 200 ms), folds lines into the run's summary, writes the index and publishes to the hub.
//! Each poll (the file read, the index write) runs on a blocking thread; the task only waits.
//!
//! It ends when the run's `finished` line arrives (after waiting briefly for the process to exit,
//! so its GPU memory is free before the slot is reused), when the process is gone without one
//! (our own child: the server writes a `failed` line with the exit signal; an adopted trainer:
//! the run is marked interrupted), or on shutdown.

use std::time::Duration;

use tokio::sync::watch;

use super::jobs::scheduler::Ended;
use super::process::append_finished;
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
    /// `Some(description)` once the process is gone. Blocking for an adopted process (it reads
    /// the run's lock).
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

    /// [`Liveness::gone`] without blocking the runtime.
    pub async fn gone_async(&self) -> Option<String> {
        match self {
            Liveness::Lock(dir) => {
                let live = Liveness::Lock(dir.clone());
                tokio::task::spawn_blocking(move || live.gone())
                    .await
                    .unwrap_or(None)
            }
            other => other.gone(),
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
    live: Liveness,
    history_seq: Option<u64>,
) -> bool {
    let mut f = state
        .blocking(move |_| Follower::open(dir, live, history_seq))
        .await;
    loop {
        let (back, step) = state
            .blocking(move |st| {
                let step = f.poll(st);
                (f, step)
            })
            .await;
        f = back;
        match step {
            Step::More => continue,
            Step::Finished => {
                // A local slot is reused once the process has exited (its GPU memory freed); a
                // scheduler's job is the scheduler's to place, and its end comes from the poller.
                if !matches!(f.live, Liveness::Scheduler(_)) {
                    wait_for_exit(state, &mut f.live).await;
                }
                return true;
            }
            Step::Ended => return true,
            Step::Wait => {}
        }
        tokio::select! {
            _ = state.shutdown_token().cancelled() => return false,
            _ = f.live.changed(state.poll()) => {}
        }
    }
}

/// What one poll of a follower found.
enum Step {
    /// Poll again at once: a backlog to drain, or a final line just written.
    More,
    /// Nothing new: wait for the next poll.
    Wait,
    /// This process's `finished` line arrived.
    Finished,
    /// The process is gone without one: the run is marked interrupted.
    Ended,
}

/// A follower's state between polls.
struct Follower {
    dir: RunDir,
    id: String,
    tailer: Tailer,
    spec: Option<RunSpec>,
    summary: RunSummary,
    live: Liveness,
    history_seq: Option<u64>,
    finished: bool,
    wrote_final: bool,
}

impl Follower {
    /// Start from the spec and fold every line: the same result as a rebuild. Blocking.
    fn open(dir: RunDir, live: Liveness, history_seq: Option<u64>) -> Follower {
        let spec = scan::read_spec(&dir);
        let mut summary = match &spec {
            Some(spec) => scan::summary_from_spec(&dir, spec),
            None => RunSummary::empty(&dir),
        };
        summary.status = RunStatus::Running;
        Follower {
            id: dir.id(),
            tailer: Tailer::new(dir.events()),
            dir,
            spec,
            summary,
            live,
            history_seq,
            finished: false,
            wrote_final: false,
        }
    }

    /// Read what the trainer wrote and judge whether its run ended. Blocking.
    fn poll(&mut self, state: &AppState) -> Step {
        // Check liveness before reading, so lines written just before exit are still drained.
        let gone = self.live.gone();
        self.read(state);
        if self.tailer.more() {
            // A long backlog (an adopted run): drain it before judging whether the run ended.
            return Step::More;
        }
        if self.finished {
            return Step::Finished;
        }
        match gone {
            Some(why) => self.gone(state, why),
            None => Step::Wait,
        }
    }

    /// Fold new lines into the summary, the metrics store and the hub; update the index.
    fn read(&mut self, state: &AppState) {
        let lines = self.tailer.poll_located().unwrap_or_else(|err| {
            tracing::warn!(run = %self.id, cause = %err, "skipping an event line");
            vec![]
        });
        // The metrics store folds what was just read, so no request reads it again.
        state.store().append(&self.dir, &lines, self.tailer.offset());
        if lines.is_empty() {
            return;
        }
        for (_, line) in lines {
            self.summary.apply(&line);
            if matches!(line.event, RunEvent::Finished { .. }) {
                if self.history_seq.is_none_or(|h| line.seq > h) {
                    self.finished = true;
                } else {
                    // An earlier process's end; this one is about to continue the run.
                    self.summary.status = RunStatus::Running;
                    self.summary.message = None;
                }
            } else if matches!(line.event, RunEvent::Started { .. }) {
                self.finished = false;
            }
            state.hub().line(&self.id, line);
        }
        if let (true, Some(spec)) = (self.summary.method.is_empty(), &self.spec) {
            scan::fill_from_spec(&mut self.summary, spec);
        }
        if let Err(err) = state.index().upsert(&self.summary) {
            tracing::error!(run = %self.id, cause = %err, "index update failed");
        }
        state.hub().status(&self.summary);
    }

    /// The process is gone before this process's final line.
    fn gone(&mut self, state: &AppState, why: String) -> Step {
        if !self.wrote_final && cancel_requested(state, &self.dir) {
            self.wrote_final = true;
            // Killed by our SIGTERM before it could write its final line; the process is
            // gone, so the server may write it.
            let msg = "cancelled before the trainer wrote its final event".into();
            append_finished(
                &self.dir,
                RunStatus::Cancelled,
                self.summary.epochs_done,
                msg,
            );
            return Step::More;
        }
        if !self.wrote_final && self.live.gone_means_failed() {
            self.wrote_final = true;
            // Our own child died without its final line (a signal, a crash): the server saw
            // it end, so the run failed, with the exit signal and the log's end.
            append_finished(&self.dir, RunStatus::Failed, self.summary.epochs_done, why);
            return Step::More;
        }
        scan::mark_interrupted(&mut self.summary, Some(why));
        state.index_summary(&self.summary);
        state.hub().status(&self.summary);
        tracing::warn!(run = %self.id, "trainer gone without a final event; marked interrupted");
        Step::Ended
    }
}

/// After the final line the trainer only flushes and exits; give it up to a minute.
async fn wait_for_exit(state: &AppState, live: &mut Liveness) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while live.gone_async().await.is_none() && tokio::time::Instant::now() < deadline {
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
