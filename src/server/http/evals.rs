//! Evaluation jobs over HTTP: queue one from the run page or the API, and the run page's
//! "Evaluations" fragment (the paper's Table 2 columns per evaluation, the AutoAttack stage
//! breakdown and the Table 3/4 corruption rows), re-fetched by `app.js` while a job runs.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use serde::Deserialize;

use super::run_dir;
use super::views::pct;
use crate::runs::eval_report::EvalReport;
use crate::server::error::ApiError;
use crate::server::evals::{EvalJob, EvalStatus, MODELS, SUITES};
use crate::server::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/runs/{id}/evals", get(fragment))
        .route("/runs/{id}/evaluate", post(evaluate_form))
        .route("/api/runs/{id}/evaluate", post(evaluate_api))
        .route("/api/runs/{id}/evals", get(list_api))
}

#[derive(Deserialize)]
pub struct EvalRequest {
    pub suite: String,
    #[serde(default = "default_model")]
    pub model: String,
}

fn default_model() -> String {
    "last".into()
}

fn job(st: &AppState, id: &str, r: EvalRequest) -> Result<EvalJob, ApiError> {
    run_dir(st, id)?;
    Ok(EvalJob {
        run_id: id.to_string(),
        suite: r.suite,
        model: r.model,
    })
}

async fn evaluate_form(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Form(r): Form<EvalRequest>,
) -> Result<Redirect, ApiError> {
    st.enqueue_eval(job(&st, &id, r)?)?;
    Ok(Redirect::to(&format!("/runs/{id}#evals")))
}

async fn evaluate_api(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Json(r): Json<EvalRequest>,
) -> Result<(StatusCode, Json<EvalJob>), ApiError> {
    let j = job(&st, &id, r)?;
    st.enqueue_eval(j.clone())?;
    Ok((StatusCode::ACCEPTED, Json(j)))
}

async fn list_api(
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Vec<EvalStatus>>, ApiError> {
    run_dir(&st, &id)?;
    let st2 = st.clone();
    let v = tokio::task::spawn_blocking(move || st2.eval_statuses(&id))
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(v))
}

async fn fragment(
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    run_dir(&st, &id)?;
    let st2 = st.clone();
    let html = tokio::task::spawn_blocking(move || fragment_html(&st2, &id))
        .await
        .map_err(ApiError::internal)?;
    Ok(Html(html).into_response())
}

struct Row {
    cells: Vec<String>,
}

struct EvalView {
    name: String,
    status: String,
    detail: String,
    attacks: Vec<Row>,
    stages: Vec<Row>,
    corruptions: Vec<Row>,
}

#[derive(Template)]
#[template(path = "partials/evals.html")]
struct EvalsFragment {
    id: String,
    active: bool,
    suites: Vec<&'static str>,
    models: Vec<&'static str>,
    evals: Vec<EvalView>,
}

fn view(s: EvalStatus) -> EvalView {
    let detail = match (&s.progress, &s.error, &s.report) {
        (Some(p), _, _) if s.status == "running" => {
            format!("{}: {}/{}", p.stage, p.done, p.total)
        }
        (_, Some(e), _) => e.lines().last().unwrap_or_default().to_string(),
        (_, _, Some(r)) => describe(r),
        _ => String::new(),
    };
    let (mut attacks, mut stages, mut corruptions) = (vec![], vec![], vec![]);
    if let Some(r) = &s.report {
        for e in &r.evals {
            let m = &e.metrics;
            attacks.push(Row {
                cells: vec![
                    e.attack.clone(),
                    pct(Some(m.overall)),
                    pct(Some(m.worst)),
                    pct(Some(m.worst10)),
                ],
            });
        }
        for st in &r.autoattack {
            let m = &st.metrics;
            stages.push(Row {
                cells: vec![
                    st.stage.clone(),
                    st.broken.to_string(),
                    pct(Some(m.overall)),
                    pct(Some(m.worst)),
                    format!("{:.1}", st.seconds),
                ],
            });
        }
        for c in &r.corruption_summary {
            corruptions.push(Row {
                cells: vec![
                    c.corruption.clone(),
                    pct(Some(c.overall)),
                    pct(Some(c.worst)),
                    pct(Some(c.mean_worst_over_severities)),
                ],
            });
        }
    }
    EvalView {
        name: s.name,
        status: s.status,
        detail,
        attacks,
        stages,
        corruptions,
    }
}

fn describe(r: &EvalReport) -> String {
    format!(
        "{} test images, eps {:.4}, seed {}, {:.0} s",
        r.images, r.eps, r.seed, r.seconds
    )
}

/// The run page's evaluation section.
pub fn fragment_html(st: &AppState, id: &str) -> String {
    let statuses = st.eval_statuses(id);
    let active = statuses
        .iter()
        .any(|s| s.status == "queued" || s.status == "running");
    EvalsFragment {
        id: id.to_string(),
        active,
        suites: SUITES.to_vec(),
        models: MODELS
            .iter()
            .copied()
            .filter(|m| st.run_dir(id).checkpoint(m).exists())
            .collect(),
        evals: statuses.into_iter().map(view).collect(),
    }
    .render()
    .unwrap_or_else(|e| format!("<p class=\"error\">template: {e}</p>"))
}
