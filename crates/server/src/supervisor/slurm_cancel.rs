//! Cancelling Slurm jobs: one `scancel` for every job of a request, so a grid cancel of 200
//! runs costs one call, and one wake of the poller (which paces itself, see `slurm_poll`).
//! Called off the runtime, like all of the executor's control (`http::blocking`).

use super::backend::{Stop, StopRequest};
use super::slurm_files::history;
use crate::jobs::{JobError, JobKind};
use crate::slurm::{cli, JobId, SlurmError};
use crate::state::AppState;

/// Cancel the Slurm jobs `req` names with a single `scancel` (a running trainer gets SIGTERM,
/// checkpoints and writes its final line; a pending job is removed); `req.mark` runs first for
/// each. One answer per run, in order.
pub fn cancel_many(st: &AppState, req: &StopRequest) -> Vec<Result<Stop, JobError>> {
    let runs = req.runs;
    let Some(sched) = st.scheduler() else {
        return runs.iter().map(|_| Ok(Stop::NoJob)).collect();
    };
    let jobs: Vec<Option<(JobId, JobKind)>> = runs
        .iter()
        .map(|r| sched.active(r).filter(|(_, k)| (req.which)(k)))
        .collect();
    let ids: Vec<JobId> = jobs.iter().flatten().map(|(id, _)| id.clone()).collect();
    for (run, _) in runs.iter().zip(&jobs).filter(|(_, j)| j.is_some()) {
        if let Some(r) = st.jobs().lock().running_mut(run) {
            r.cancel_requested = true;
        }
        (req.mark)(run);
    }
    let result = cli::scancel(&ids);
    let out = runs
        .iter()
        .zip(jobs)
        .map(|(run, job)| {
            let Some((id, kind)) = job else {
                return Ok(Stop::NoJob);
            };
            outcome(&result, &id).map(|_| {
                history(
                    &st.run_dir(run),
                    &format!("scancel {} job {id}", kind.label()),
                );
                tracing::info!(run = %run, job = %id, "cancelled the Slurm job");
                Stop::Sent
            })
        })
        .collect();
    sched.wake.notify_one();
    out
}

/// What one `scancel` of many ids means for job `id`: Slurm names each id it refused and goes
/// on with the others; any other failure (no controller, no command) fails every job.
fn outcome(result: &Result<(), SlurmError>, id: &str) -> Result<(), JobError> {
    match result {
        Ok(()) => Ok(()),
        Err(e @ SlurmError::Refused(msg)) if msg.contains("job id ") && !names(msg, id) => {
            tracing::debug!(job = %id, cause = %e, "scancel refused other jobs");
            Ok(())
        }
        Err(e) => Err(JobError::Conflict(format!("scancel {id}: {e}"))),
    }
}

/// Whether Slurm's message is about job `id` (`... job id 12_3: ...`; `12_3` is not `12_30`).
fn names(msg: &str, id: &str) -> bool {
    msg.contains(&format!("job id {id}:")) || msg.contains(&format!("job id {id} "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_fails_only_the_jobs_it_names() {
        let refused = Err(SlurmError::Refused(
            "Kill job error on job id 12_3: Job/step already completing or completed".into(),
        ));
        assert!(outcome(&refused, "12_3").is_err());
        assert!(outcome(&refused, "12_30").is_ok());
        assert!(outcome(&refused, "12_1").is_ok());
        assert!(outcome(&Ok(()), "12_3").is_ok());
        let missing = Err(SlurmError::Missing("scancel"));
        assert!(outcome(&missing, "12_1").is_err(), "nothing was cancelled");
        let down = Err(SlurmError::Refused(
            "Unable to contact slurm controller".into(),
        ));
        assert!(
            outcome(&down, "12_1").is_err(),
            "no job was named: none was cancelled"
        );
    }
}
