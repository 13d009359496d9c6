//! Evaluations of a run as the page and the API list them: what is on disk under
//! `runs/<id>/evals/<suite>-<model>/` (`progress.json` while it runs, `eval.json` and CSVs when
//! done, `error.txt` if it failed, `cancelled` if cancelled) and what waits in the executor.
//! Queueing and cancelling are `supervisor`'s; queued evaluations survive a restart through
//! their `queued` marker.

use serde::Serialize;

use super::state::AppState;
use crate::jobs::JobKind;
use fairtat_core::runs::eval_key::EvalKey;
use fairtat_core::runs::eval_report::{EvalProgress, EvalReport};
use fairtat_core::runs::safe_fs::{self, EntryKind};
use fairtat_core::runs::{RunDir, RunId};

/// One evaluation of a run as the page shows it.
#[derive(Debug, Serialize)]
pub struct EvalStatus {
    pub name: String,
    /// `queued`, `running`, `finished`, `failed` or `cancelled`.
    pub status: String,
    pub progress: Option<EvalProgress>,
    pub error: Option<String>,
    pub report: Option<EvalReport>,
}

/// Every evaluation of a run: on disk (finished, failed, cancelled, running) and waiting.
pub fn eval_statuses(st: &AppState, run: &RunId) -> Vec<EvalStatus> {
    let (waiting, running): (Vec<EvalKey>, Option<EvalKey>) = {
        let q = st.jobs().lock();
        let waiting = q
            .waiting()
            .filter(|j| j.run == *run)
            .filter_map(|j| match j.kind {
                JobKind::Evaluate(k) => Some(k),
                _ => None,
            })
            .collect();
        let running = q.running(run).and_then(|r| match r.job.kind {
            JobKind::Evaluate(k) => Some(k),
            _ => None,
        });
        (waiting, running)
    };
    let mut out = read_statuses(&st.run_dir(run), running, &waiting);
    for key in waiting {
        if !out.iter().any(|s| s.name == key.dir_name()) {
            out.push(EvalStatus::queued(key.dir_name()));
        }
    }
    out
}

impl EvalStatus {
    fn queued(name: String) -> EvalStatus {
        EvalStatus {
            name,
            status: "queued".into(),
            progress: None,
            error: None,
            report: None,
        }
    }
}

/// Statuses from `evals/*/`: the running job's directory is running, a waiting job's is queued;
/// otherwise a report means finished, `cancelled` cancelled, `error.txt` failed, and a
/// directory with none of these is a job that died.
pub fn read_statuses(
    dir: &RunDir,
    running: Option<EvalKey>,
    waiting: &[EvalKey],
) -> Vec<EvalStatus> {
    let Ok(entries) = safe_fs::list_dir(dir, "evals") else {
        return vec![];
    };
    // A linked `evals/<x>` is listed as failed with the reason: nothing is read through it.
    let mut v: Vec<EvalStatus> = entries
        .into_iter()
        .filter(|(_, k)| *k != EntryKind::File)
        .map(|(name, _)| {
            let p = std::path::Path::new("evals").join(&name);
            let (report, refused) = read_json::<EvalReport>(dir, &p.join("eval.json"));
            let (progress, _) = read_json::<EvalProgress>(dir, &p.join("progress.json"));
            let error = match safe_fs::read_text(dir, p.join("error.txt"), safe_fs::TEXT_CAP) {
                Ok(text) => Some(text),
                Err(e) if e.is_missing() => refused,
                Err(e) => Some(format!("not shown: {e}")),
            };
            let key = EvalKey::from_dir_name(&name);
            let cancelled = safe_fs::is_file(dir, p.join("cancelled"));
            let status = if key.is_some() && key == running {
                "running"
            } else if key.is_some_and(|k| waiting.contains(&k)) {
                "queued"
            } else if report.is_some() {
                "finished"
            } else if cancelled {
                "cancelled"
            } else if error.is_some() {
                "failed"
            } else if safe_fs::is_file(dir, p.join("queued")) {
                // Queued before a restart that has not re-queued it yet.
                "queued"
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

/// `rel` as JSON, or why the server would not read it (missing or malformed: neither).
fn read_json<T: serde::de::DeserializeOwned>(
    dir: &RunDir,
    rel: &std::path::Path,
) -> (Option<T>, Option<String>) {
    match safe_fs::read(dir, rel, safe_fs::TEXT_CAP) {
        Ok(b) => (serde_json::from_slice(&b).ok(), None),
        Err(e) if e.is_missing() => (None, None),
        Err(e) => (None, Some(format!("not shown: {e}"))),
    }
}
