//! The run's controls (Cancel, Resume, Evaluate) derived from its state in one place: the full
//! run page, the live fragment (`GET /runs/{id}/live`, fetched on the run's SSE events) and the
//! evaluations section all render the set [`controls`] returns, so they cannot disagree.
//!
//! The state joins two sources that change at different moments: the run's status (folded from
//! `events.jsonl`) and the job queue (the trainer process). Between the trainer's `finished`
//! line and its process leaving the queue the run is *ending*: neither Cancel (the trainer is
//! already gone, a cancel would be a 409) nor Resume (the job has not ended, a resume would be a
//! 409) is offered, and the page asks again until the queue caught up.

use serde::Serialize;

use crate::scan;
use crate::state::AppState;
use fairtat_core::runs::summary::RunSummary;
use fairtat_core::runs::{CheckpointKind, RunId, RunStatus};

/// What decides a run's controls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunState {
    pub status: RunStatus,
    /// A training (or resume) job of the run waits or runs in the queue.
    pub training_job: bool,
    /// The run left the state file a resume restores from (`scan::can_resume`'s file check).
    pub resume_state: bool,
    /// At least one checkpoint file exists (something to evaluate).
    pub checkpoint: bool,
}

/// The controls a run page shows, carried by the live fragment as JSON too.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Controls {
    pub cancel: bool,
    pub resume: bool,
    pub evaluate: bool,
    /// The trainer wrote its final line but its job has not left the queue yet: the page asks
    /// again shortly (Resume and Evaluate appear then).
    pub ending: bool,
}

/// The one mapping from a run's state to its controls.
pub fn controls(s: RunState) -> Controls {
    let over = s.status.is_terminal();
    let idle = !s.training_job;
    let resumable = matches!(
        s.status,
        RunStatus::Interrupted | RunStatus::Failed | RunStatus::Cancelled
    );
    Controls {
        cancel: s.training_job && !over,
        resume: idle && resumable && s.resume_state,
        // The executor refuses evaluations while the run trains or waits to.
        evaluate: idle && s.checkpoint,
        ending: over && s.training_job,
    }
}

/// The state of the run `summary` describes, as the executor and its directory say now.
/// Blocking (file checks): call it where the page's other file reads are.
pub fn run_state(st: &AppState, summary: &RunSummary) -> RunState {
    let dir = st.summary_dir(summary);
    let training_job = summary
        .id
        .parse::<RunId>()
        .is_ok_and(|r| st.jobs().lock().training(&r));
    RunState {
        status: summary.status,
        training_job,
        resume_state: scan::can_resume(&dir, summary),
        checkpoint: CheckpointKind::ALL
            .into_iter()
            .any(|k| dir.checkpoint(k).exists()),
    }
}

/// The controls of the run `summary` describes.
pub fn for_summary(st: &AppState, summary: &RunSummary) -> Controls {
    controls(run_state(st, summary))
}

/// The controls of run `id` (none for a run the index does not know).
pub fn for_run(st: &AppState, id: &RunId) -> Controls {
    match st.index().get(id) {
        Ok(Some(summary)) => for_summary(st, &summary),
        _ => Controls::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(status: RunStatus, training_job: bool) -> RunState {
        RunState {
            status,
            training_job,
            resume_state: true,
            checkpoint: true,
        }
    }

    /// (cancel, resume, evaluate, ending) for every status, with and without a job in the
    /// queue, when the run has a checkpoint and a resume state.
    #[test]
    fn every_state_maps_to_its_controls() {
        let want = |status, job| -> (bool, bool, bool, bool) {
            use RunStatus::*;
            match (status, job) {
                (Queued | Running, true) => (true, false, false, false),
                // A status that says "active" without a job (a run the server does not own).
                (Queued | Running, false) => (false, false, true, false),
                (Finished | Failed | Cancelled | Interrupted, true) => (false, false, false, true),
                (Finished, false) => (false, false, true, false),
                (Failed | Cancelled | Interrupted, false) => (false, true, true, false),
            }
        };
        for status in RunStatus::ALL {
            for job in [true, false] {
                let c = controls(state(status, job));
                assert_eq!(
                    (c.cancel, c.resume, c.evaluate, c.ending),
                    want(status, job),
                    "{status:?}, job {job}"
                );
            }
        }
    }

    #[test]
    fn an_ended_run_offers_cancel_and_resume_never_together() {
        for status in RunStatus::ALL {
            for job in [true, false] {
                for resume_state in [true, false] {
                    let c = controls(RunState {
                        resume_state,
                        ..state(status, job)
                    });
                    assert!(!(c.cancel && c.resume), "{status:?} {job} {resume_state}");
                    assert!(!(c.cancel && status.is_terminal()), "{status:?}");
                }
            }
        }
    }

    #[test]
    fn no_resume_without_its_state_and_no_evaluate_without_a_checkpoint() {
        let bare = RunState {
            status: RunStatus::Failed,
            training_job: false,
            resume_state: false,
            checkpoint: false,
        };
        assert_eq!(controls(bare), Controls::default());
        let c = controls(RunState {
            checkpoint: true,
            ..bare
        });
        assert!(c.evaluate && !c.resume);
    }
}
