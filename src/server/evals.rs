//! Evaluation jobs: `<trainer> eval --run-dir DIR --suite S --model M` as a child process in the
//! same device slots as training runs, started after every training run queued before it.
//!
//! A job writes only under `runs/<id>/evals/<suite>-<model>/` (`progress.json` while it runs,
//! `eval.json` and CSVs when done, `error.txt` if it failed), so the run's own record is never
//! touched and the page can always be rebuilt from disk. The evaluation queue lives in memory: a
//! server restart forgets queued evaluations (nothing measured is lost; re-queue them).

use std::process::Stdio;

use serde::Serialize;

use super::error::ApiError;
use super::process::spawn_retrying;
use super::scan;
use super::state::AppState;
use crate::runs::eval_report::{EvalProgress, EvalReport};
use crate::runs::RunDir;

/// Suites the dashboard offers (`fairtat eval --suite`).
pub const SUITES: [&str; 3] = ["quick", "standard", "corruptions"];
/// Checkpoints a job may evaluate.
pub const MODELS: [&str; 4] = ["last", "ema", "fawa", "best-worst-robust"];

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EvalJob {
    pub run_id: String,
    pub suite: String,
    pub model: String,
}

impl EvalJob {
    /// Executor key; one evaluation per run at a time.
    pub fn key(&self) -> String {
        format!("eval:{}", self.run_id)
    }

    pub fn dir_name(&self) -> String {
        format!("{}-{}", self.suite, self.model)
    }
}

/// One evaluation of a run as the page shows it.
#[derive(Debug, Serialize)]
pub struct EvalStatus {
    pub name: String,
    /// `queued`, `running`, `finished` or `failed`.
    pub status: String,
    pub progress: Option<EvalProgress>,
    pub error: Option<String>,
    pub report: Option<EvalReport>,
}

impl AppState {
    /// Validate and queue an evaluation of a finished (or stopped) run's checkpoint.
    pub fn enqueue_eval(&self, job: EvalJob) -> Result<(), ApiError> {
        if !SUITES.contains(&job.suite.as_str()) {
            return Err(ApiError::BadRequest(format!(
                "suite {:?} is not known; allowed: {}",
                job.suite,
                SUITES.join(", ")
            )));
        }
        if !MODELS.contains(&job.model.as_str()) {
            return Err(ApiError::BadRequest(format!(
                "model {:?} is not known; allowed: {}",
                job.model,
                MODELS.join(", ")
            )));
        }
        let dir = self.run_dir(&job.run_id);
        if !dir.checkpoint(&job.model).exists() {
            return Err(ApiError::Conflict(format!(
                "run {} has no {} checkpoint yet",
                job.run_id, job.model
            )));
        }
        {
            let mut ex = self.mutex_exec();
            if ex.is_active(&job.run_id) {
                return Err(ApiError::Conflict(format!(
                    "run {} is still training; evaluate it when it has finished",
                    job.run_id
                )));
            }
            if ex.is_running(&job.key()) || ex.evals.iter().any(|j| j.run_id == job.run_id) {
                return Err(ApiError::Conflict(format!(
                    "run {} already has an evaluation queued or running",
                    job.run_id
                )));
            }
            ex.evals.push_back(job);
        }
        self.pump();
        Ok(())
    }

    /// Start queued evaluations while their device has a free slot (called by `pump`).
    pub(crate) fn pump_evals(&self) {
        if self.shutdown.is_cancelled() {
            return;
        }
        loop {
            let next = {
                let mut ex = self.mutex_exec();
                let mut pick = None;
                for (i, job) in ex.evals.iter().enumerate() {
                    let device = scan::read_spec(&self.run_dir(&job.run_id))
                        .map(|s| s.device)
                        .unwrap_or_else(|| "auto".into());
                    if let Some(slot) = ex.free_slot(&device) {
                        pick = Some((i, slot));
                        break;
                    }
                }
                let Some((i, slot)) = pick else { return };
                let job = ex.evals.remove(i).expect("index from the loop above");
                ex.occupy(&job.key(), slot);
                (job, ex.slots[slot].clone(), ex.gpus())
            };
            let (job, slot, gpus) = next;
            if let Err(err) = self.spawn_eval(&job, slot.cuda, gpus) {
                tracing::error!(run = %job.run_id, cause = %err, "cannot start evaluation");
                let out = self
                    .run_dir(&job.run_id)
                    .root()
                    .join("evals")
                    .join(job.dir_name());
                let _ = std::fs::create_dir_all(&out);
                let _ = std::fs::write(out.join("error.txt"), format!("cannot start: {err}"));
                self.run_ended(&job.key());
            }
        }
    }

    fn spawn_eval(&self, job: &EvalJob, cuda: Option<usize>, gpus: usize) -> anyhow::Result<()> {
        let dir = self.run_dir(&job.run_id);
        let out = dir.root().join("evals").join(job.dir_name());
        std::fs::create_dir_all(&out)?;
        let log = std::fs::File::create(out.join("eval.log"))?;
        let mut cmd = tokio::process::Command::new(&self.trainer);
        cmd.arg("eval")
            .arg("--run-dir")
            .arg(dir.root())
            .args(["--suite", &job.suite, "--model", &job.model])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0)
            .kill_on_drop(false);
        match cuda {
            Some(g) => {
                cmd.env("CUDA_VISIBLE_DEVICES", g.to_string())
                    .args(["--device", "cuda:0"]);
            }
            None => {
                if gpus > 0 {
                    cmd.env("CUDA_VISIBLE_DEVICES", "");
                }
                cmd.args(["--device", "cpu"]);
            }
        }
        let mut child = spawn_retrying(&mut cmd)?;
        let key = job.key();
        self.mutex_exec().set_pid(&key, child.id());
        tracing::info!(run = %job.run_id, suite = %job.suite, model = %job.model, "evaluation started");
        let state = self.clone();
        let run_id = job.run_id.clone();
        tokio::spawn(async move {
            let status = child.wait().await;
            tracing::info!(run = %run_id, ?status, "evaluation ended");
            state.run_ended(&key);
            // Tell run pages to refresh their evaluation section.
            if let Ok(Some(summary)) = state.index.get(&run_id) {
                state.hub.status(&summary);
            }
        });
        Ok(())
    }

    /// Every evaluation of a run: on disk (finished, failed, running) and in the queue.
    pub fn eval_statuses(&self, run_id: &str) -> Vec<EvalStatus> {
        let (queued, running): (Vec<String>, bool) = {
            let ex = self.mutex_exec();
            (
                ex.evals
                    .iter()
                    .filter(|j| j.run_id == run_id)
                    .map(EvalJob::dir_name)
                    .collect(),
                ex.is_running(&format!("eval:{run_id}")),
            )
        };
        let mut out = read_statuses(&self.run_dir(run_id), running);
        for name in queued {
            out.push(EvalStatus {
                name,
                status: "queued".into(),
                progress: None,
                error: None,
                report: None,
            });
        }
        out
    }
}

/// Statuses from `evals/*/`: a report means finished, `error.txt` failed, `progress.json` (while
/// a job holds the run's slot) running; a directory with none of these is a job that died.
pub fn read_statuses(dir: &RunDir, job_running: bool) -> Vec<EvalStatus> {
    let Ok(rd) = std::fs::read_dir(dir.root().join("evals")) else {
        return vec![];
    };
    let mut v: Vec<EvalStatus> = rd
        .filter_map(Result::ok)
        .filter(|e| e.path().is_dir())
        .map(|e| {
            let p = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            let report: Option<EvalReport> = std::fs::read(p.join("eval.json"))
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok());
            let error = std::fs::read_to_string(p.join("error.txt")).ok();
            let progress: Option<EvalProgress> = std::fs::read(p.join("progress.json"))
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok());
            let status = if progress.is_some() && job_running {
                "running"
            } else if error.is_some() {
                "failed"
            } else if report.is_some() {
                "finished"
            } else if job_running {
                "running"
            } else {
                "failed"
            };
            EvalStatus {
                name,
                status: status.into(),
                progress,
                error: error.or_else(|| {
                    (status == "failed")
                        .then(|| "the evaluation stopped without a report; see eval.log".into())
                }),
                report,
            }
        })
        .collect();
    v.sort_by(|a, b| a.name.cmp(&b.name));
    v
}
