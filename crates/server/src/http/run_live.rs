//! The run page's live parts: the header (status, epochs, ETA, what a queued run waits for,
//! the actions its state allows), the downloads (each checkpoint with the epoch it holds and
//! the rule that chose it), the evaluations and the log tail. `GET /runs/{id}/live` renders
//! them all as one JSON object of HTML fragments (and the run's [`Controls`] as data); `app.js`
//! fetches it on the run's SSE events, so the page never reloads itself.

use askama::Template;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use super::controls::{self, Controls};
use super::files::{list_files, FileEntry};
use super::views::{pct, RunRow};
use super::{indexed_run, RunPath};
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::RunFold;
use fairtat_core::runs::summary::RunSummary;
use fairtat_core::runs::{RunId, RunStatus};

pub fn router() -> Router<AppState> {
    Router::new().route("/runs/{id}/live", get(live))
}

/// Lines of `train.log` the page shows.
pub const LOG_LINES: usize = 60;

#[derive(Template)]
#[template(path = "partials/run_head.html")]
struct Head {
    row: RunRow,
    controls: Controls,
    waiting: String,
    scheduler: String,
}

/// The header of the run page for `summary` as the executor sees it now, with the buttons of
/// `controls` (from [`controls::for_summary`]).
pub fn head_html(st: &AppState, summary: &RunSummary, controls: Controls) -> String {
    let run = summary.id.parse::<RunId>().ok();
    let waiting = run.as_ref().and_then(|r| st.jobs().lock().wait_reason(r));
    let scheduler = run
        .as_ref()
        .and_then(|r| st.scheduler()?.view(r))
        .map(|v| format!("Slurm job {}: {}", v.job_id, v.state))
        .unwrap_or_default();
    let waiting = waiting
        .filter(|_| summary.status == RunStatus::Queued && scheduler.is_empty())
        .unwrap_or_default();
    Head {
        row: RunRow::of(summary),
        controls,
        waiting,
        scheduler,
    }
    .render()
    .unwrap_or_else(|e| format!("<p class=\"error\">template: {e}</p>"))
}

#[derive(Template)]
#[template(path = "partials/files.html")]
struct Files<'a> {
    id: &'a RunId,
    files: &'a [FileEntry],
}

pub fn files_html(id: &RunId, files: &[FileEntry]) -> String {
    Files { id, files }
        .render()
        .unwrap_or_else(|e| format!("<li class=\"error\">template: {e}</li>"))
}

/// Say which epoch each checkpoint holds and why it is that one.
pub fn note_checkpoints(files: &mut [FileEntry], f: &RunFold) {
    for file in files.iter_mut() {
        let Some(kind) = file
            .name
            .strip_prefix("checkpoints/")
            .and_then(|n| n.strip_suffix(".safetensors"))
        else {
            continue;
        };
        let Some((epoch, val_worst)) = f.checkpoint(kind) else {
            continue;
        };
        file.note = match kind {
            "last" => {
                format!("epoch {epoch}: the latest finished epoch (Resume continues after it)")
            }
            "ema" => format!("epoch {epoch}: the exponential moving average of the weights"),
            "fawa" => format!("epoch {epoch}: FAWA's average of the accepted epochs"),
            "best-worst-robust" => format!(
                "epoch {epoch}: best validation worst-class PGD accuracy ({}%); a tie goes to \
                 the better validation clean accuracy, then to the later epoch",
                pct(val_worst)
            ),
            _ => format!("epoch {epoch}"),
        };
    }
}

#[derive(Serialize)]
struct Live {
    status: String,
    epochs_done: usize,
    head: String,
    /// The buttons `head` shows, as data (tests, and the page's "ask again while ending").
    controls: Controls,
    files: String,
    evals: String,
    /// Whether an evaluation is queued or running (the page keeps polling while one is).
    evals_active: bool,
    log: String,
}

async fn live(State(st): State<AppState>, RunPath(id): RunPath) -> Result<Json<Live>, ApiError> {
    let (dir, summary) = indexed_run(&st, &id)?;
    let st2 = st.clone();
    let out = tokio::task::spawn_blocking(move || {
        let mut files = list_files(&dir);
        let controls = controls::for_summary(&st2, &summary);
        let (evals, evals_active) =
            super::evals::fragment_with(&st2, &id, &files, controls.evaluate);
        note_checkpoints(&mut files, &st2.store().run(&dir).fold());
        Live {
            status: summary.status.as_str().to_string(),
            epochs_done: summary.epochs_done,
            head: head_html(&st2, &summary, controls),
            controls,
            files: files_html(&id, &files),
            evals_active,
            evals,
            log: crate::process::log_tail(&dir, "train.log".as_ref(), LOG_LINES),
        }
    })
    .await
    .map_err(ApiError::internal)?;
    Ok(Json(out))
}
