//! What Slurm says of a job, from `squeue`'s or `sacct`'s state names
//! (<https://slurm.schedmd.com/squeue.html#SECTION_JOB-STATE-CODES>).

use serde::Serialize;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum JobState {
    /// Submitted; the scheduler's reason (`Resources`, `Priority`, `JobArrayTaskLimit` ...).
    Pending {
        reason: String,
    },
    Running {
        node: String,
    },
    /// Requeued by Slurm (preemption with `PreemptMode=REQUEUE`, or a node failure): it will
    /// run again under the same id.
    Requeued {
        reason: String,
    },
    Completed,
    Failed {
        exit_code: i32,
        signal: i32,
    },
    Cancelled,
    Timeout,
    Preempted,
    NodeFail,
    OutOfMemory,
    /// Neither `squeue` nor `sacct` knows the job any more (it ended and was purged, and
    /// accounting is off).
    Gone,
    /// A state this version does not know, verbatim.
    Other {
        name: String,
    },
}

impl JobState {
    /// From `squeue`'s `State` (long names; `sacct` adds ` by <uid>` to CANCELLED), `Reason`,
    /// `NodeList` and the raw wait status in `exit_code`.
    pub fn parse(state: &str, reason: &str, node: &str, exit_raw: i64) -> JobState {
        let reason = if reason == "None" || reason == "(null)" {
            String::new()
        } else {
            reason.to_string()
        };
        let name = state
            .split_whitespace()
            .next()
            .unwrap_or("")
            .trim_end_matches('+');
        match name {
            "PENDING" | "CONFIGURING" | "REQUEUE_HOLD" | "SUSPENDED" => {
                JobState::Pending { reason }
            }
            "RUNNING" | "COMPLETING" | "STAGE_OUT" | "SIGNALING" | "RESIZING" => {
                JobState::Running {
                    node: node.to_string(),
                }
            }
            "REQUEUED" | "REQUEUE_FED" => JobState::Requeued { reason },
            "COMPLETED" => JobState::Completed,
            "FAILED" | "BOOT_FAIL" | "DEADLINE" | "SPECIAL_EXIT" => JobState::Failed {
                exit_code: ((exit_raw >> 8) & 0xff) as i32,
                signal: (exit_raw & 0x7f) as i32,
            },
            "CANCELLED" => JobState::Cancelled,
            "TIMEOUT" => JobState::Timeout,
            "PREEMPTED" => JobState::Preempted,
            "NODE_FAIL" => JobState::NodeFail,
            "OUT_OF_MEMORY" => JobState::OutOfMemory,
            other => JobState::Other {
                name: other.to_string(),
            },
        }
    }

    /// The job will not run (again) under this id.
    pub fn is_terminal(&self) -> bool {
        // An unknown state is polled again rather than taken as the end.
        matches!(
            self,
            JobState::Completed
                | JobState::Failed { .. }
                | JobState::Cancelled
                | JobState::Timeout
                | JobState::Preempted
                | JobState::NodeFail
                | JobState::OutOfMemory
                | JobState::Gone
        )
    }

    /// The job stopped for the scheduler's reasons, not the run's: it can continue from its
    /// last checkpoint (and is re-submitted automatically with `--slurm-requeue`).
    pub fn resumable(&self) -> bool {
        matches!(
            self,
            JobState::Timeout | JobState::Preempted | JobState::NodeFail | JobState::Gone
        )
    }

    /// For the run page: `pending (Resources)`, `running on node7`, `failed (exit code 2)`.
    pub fn describe(&self) -> String {
        match self {
            JobState::Pending { reason } if reason.is_empty() => "pending".into(),
            JobState::Pending { reason } => format!("pending ({reason})"),
            JobState::Running { node } if node.is_empty() => "running".into(),
            JobState::Running { node } => format!("running on {node}"),
            JobState::Requeued { .. } => "requeued by Slurm".into(),
            JobState::Completed => "completed".into(),
            JobState::Failed { signal, .. } if *signal > 0 => {
                format!("failed (signal {signal})")
            }
            JobState::Failed { exit_code, .. } => format!("failed (exit code {exit_code})"),
            JobState::Cancelled => "cancelled".into(),
            JobState::Timeout => "stopped at its time limit".into(),
            JobState::Preempted => "preempted".into(),
            JobState::NodeFail => "its node failed".into(),
            JobState::OutOfMemory => "out of memory".into(),
            JobState::Gone => "no longer known to Slurm".into(),
            JobState::Other { name } => name.to_lowercase(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_from_squeue_names() {
        let p = JobState::parse("PENDING", "JobArrayTaskLimit", "", 0);
        assert_eq!(p.describe(), "pending (JobArrayTaskLimit)");
        assert!(!p.is_terminal());
        let r = JobState::parse("RUNNING", "None", "node7", 0);
        assert_eq!(r.describe(), "running on node7");
        let f = JobState::parse("FAILED", "NonZeroExitCode", "vm", 768);
        assert_eq!(
            f,
            JobState::Failed {
                exit_code: 3,
                signal: 0
            }
        );
        assert!(f.is_terminal() && !f.resumable());
        let c = JobState::parse("CANCELLED by 0", "None", "vm", 0);
        assert_eq!(c, JobState::Cancelled);
        assert!(JobState::parse("TIMEOUT", "TimeLimit", "vm", 0).resumable());
        assert!(JobState::parse("PREEMPTED", "", "vm", 0).resumable());
        assert!(!JobState::parse("REQUEUED", "", "", 0).is_terminal());
        assert_eq!(
            JobState::parse("FAILED", "", "vm", 9).describe(),
            "failed (signal 9)"
        );
    }
}
