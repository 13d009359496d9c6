//! Bookkeeping of the jobs a scheduler (Slurm) holds for runs: the job id, what the scheduler
//! last said of it, and a watch channel that tells the run's watcher when the job has ended.
//! Like the queue, it does no I/O: the supervisor polls Slurm and feeds [`Scheduler::observe`].

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use serde::Serialize;
use tokio::sync::{watch, Notify};

use super::JobKind;
use crate::slurm::{JobId, JobState, SlurmOptions};
use fairtat_core::runs::RunId;

/// How a scheduled job ended, for its watcher.
#[derive(Clone, Debug)]
pub struct Ended {
    pub state: JobState,
    /// `Slurm job 12 stopped at its time limit`.
    pub why: String,
}

struct Tracked {
    id: JobId,
    kind: JobKind,
    state: Option<JobState>,
    tx: watch::Sender<Option<Ended>>,
}

/// A scheduled job as the API and the run page show it.
#[derive(Clone, Debug, Serialize)]
pub struct ScheduledView {
    pub run: RunId,
    pub job_id: JobId,
    pub kind: String,
    /// `pending (Resources)`, `running on node7`, ...; `submitted` before the first poll.
    pub state: String,
    pub ended: bool,
}

pub struct Scheduler {
    pub opts: SlurmOptions,
    jobs: Mutex<HashMap<RunId, Tracked>>,
    /// Poll soon: a job was submitted or cancelled.
    pub wake: Notify,
}

impl Scheduler {
    pub fn new(opts: SlurmOptions) -> Scheduler {
        Scheduler {
            opts,
            jobs: Mutex::new(HashMap::new()),
            wake: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<RunId, Tracked>> {
        self.jobs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Follow job `id` of `run` (replacing an ended one); the receiver sees `Some` at its end.
    pub fn track(&self, run: &RunId, id: JobId, kind: JobKind) -> watch::Receiver<Option<Ended>> {
        let (tx, rx) = watch::channel(None);
        let t = Tracked {
            id,
            kind,
            state: None,
            tx,
        };
        self.lock().insert(run.clone(), t);
        self.wake.notify_one();
        rx
    }

    /// The job of `run` that has not ended, with its kind.
    pub fn active(&self, run: &RunId) -> Option<(JobId, JobKind)> {
        let jobs = self.lock();
        let t = jobs.get(run)?;
        let ended = t.state.as_ref().is_some_and(JobState::is_terminal);
        (!ended).then(|| (t.id.clone(), t.kind))
    }

    /// Jobs not known to have ended: what the poller asks Slurm about.
    pub fn polled(&self) -> Vec<(RunId, JobId)> {
        self.lock()
            .iter()
            .filter(|(_, t)| !t.state.as_ref().is_some_and(JobState::is_terminal))
            .map(|(r, t)| (r.clone(), t.id.clone()))
            .collect()
    }

    /// Record what Slurm says of `run`'s job `id`. Returns the state when it changed (and, for
    /// an end, tells the watcher).
    pub fn observe(&self, run: &RunId, id: &str, state: JobState) -> Option<(JobKind, JobState)> {
        let mut jobs = self.lock();
        let t = jobs.get_mut(run).filter(|t| t.id == id)?;
        if t.state.as_ref() == Some(&state) {
            return None;
        }
        t.state = Some(state.clone());
        if state.is_terminal() {
            let why = format!("Slurm job {id} {}", state.describe());
            let _ = t.tx.send(Some(Ended {
                state: state.clone(),
                why,
            }));
        }
        Some((t.kind, state))
    }

    /// What the scheduler said last of `run`'s job (also after it ended).
    pub fn view(&self, run: &RunId) -> Option<ScheduledView> {
        self.lock().get(run).map(|t| view(run, t))
    }

    pub fn views(&self) -> Vec<ScheduledView> {
        let mut v: Vec<ScheduledView> = self.lock().iter().map(|(r, t)| view(r, t)).collect();
        v.sort_by(|a, b| a.run.cmp(&b.run));
        v
    }
}

fn view(run: &RunId, t: &Tracked) -> ScheduledView {
    ScheduledView {
        run: run.clone(),
        job_id: t.id.clone(),
        kind: t.kind.label(),
        state: t
            .state
            .as_ref()
            .map_or_else(|| "submitted".into(), JobState::describe),
        ended: t.state.as_ref().is_some_and(JobState::is_terminal),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_end_reaches_the_watcher_once() {
        let s = Scheduler::new(SlurmOptions::new());
        let run: RunId = "r1".parse().unwrap();
        let rx = s.track(&run, "12".into(), JobKind::Train);
        let pending = JobState::Pending {
            reason: "Priority".into(),
        };
        assert!(s.observe(&run, "12", pending.clone()).is_some());
        assert!(s.observe(&run, "12", pending).is_none(), "unchanged");
        assert!(
            s.observe(&run, "99", JobState::Completed).is_none(),
            "other job"
        );
        assert_eq!(s.polled().len(), 1);
        assert!(rx.borrow().is_none());
        s.observe(&run, "12", JobState::Timeout);
        let end = rx.borrow().clone().unwrap();
        assert_eq!(end.why, "Slurm job 12 stopped at its time limit");
        assert!(s.polled().is_empty());
        assert!(s.active(&run).is_none());
        assert!(s.view(&run).unwrap().ended);
    }
}
