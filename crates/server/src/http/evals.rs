//! Evaluation jobs over HTTP: queue one from the run page or the API, and the run page's
//! "Evaluations" fragment (the paper's Table 2 columns per evaluation, the AutoAttack stage
//! breakdown and the Table 3/4 corruption rows), re-fetched by `app.js` while a job runs.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use serde::Deserialize;

use super::files::{list_files, FileEntry};
use super::views::pct;
use super::{run_dir, RunPath};
use crate::error::ApiError;
use crate::evals::{eval_statuses, EvalStatus};
use crate::jobs::{eval_slurm, Priority};
use crate::state::AppState;
use crate::supervisor;
use fairtat_core::runs::eval_key::{EvalKey, EvalSuite};
use fairtat_core::runs::eval_report::EvalReport;
use fairtat_core::runs::{CheckpointKind, RunId};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/runs/{id}/evals", get(fragment))
        .route("/runs/{id}/evaluate", post(evaluate_form))
        .route("/runs/{id}/evals/{name}/cancel", post(cancel_form))
        .route("/api/runs/{id}/evaluate", post(evaluate_api))
        .route("/api/runs/{id}/evals", get(list_api))
        .route("/api/runs/{id}/evals/{name}/cancel", post(cancel_api))
}

#[derive(Deserialize)]
pub struct EvalRequest {
    pub suite: String,
    #[serde(default = "default_model")]
    pub model: String,
    /// `urgent` (default: before queued training runs) or `normal` (at the end of the queue).
    #[serde(default)]
    pub priority: Option<String>,
    /// The evaluation's own Slurm resources (`{"time": "1:00:00", "cpus": 4}`): the run's
    /// `[slurm]` keys; those not given take the run's.
    #[serde(default)]
    pub slurm: std::collections::BTreeMap<String, serde_json::Value>,
}

/// The checked `slurm.<key>=<value>` settings of a request's Slurm fields (strings or
/// numbers); under `--executor slurm` also checked with the cluster like a new run's.
async fn slurm_settings(
    st: &AppState,
    id: &RunId,
    fields: Vec<(String, String)>,
) -> Result<Vec<String>, ApiError> {
    let sets = eval_slurm::sets(&fields)?;
    if !sets.is_empty() {
        let spec = crate::scan::read_spec_with(&st.run_dir(id), &sets)?;
        supervisor::preflight(st, &[spec]).await?;
    }
    Ok(sets)
}

fn json_fields(
    map: &std::collections::BTreeMap<String, serde_json::Value>,
) -> Result<Vec<(String, String)>, ApiError> {
    map.iter()
        .map(|(k, v)| match v {
            serde_json::Value::String(s) => Ok((k.clone(), s.clone())),
            serde_json::Value::Number(n) => Ok((k.clone(), n.to_string())),
            _ => Err(ApiError::BadRequest(format!(
                "slurm.{k}: a string or a number, e.g. \"1:00:00\" or 4"
            ))),
        })
        .collect()
}

/// The queue priority a request asks for; evaluations are urgent unless it says `normal`.
fn priority_of(p: Option<&str>) -> Result<Priority, ApiError> {
    match p.filter(|s| !s.is_empty()) {
        None => Ok(Priority::Urgent),
        Some(s) => known("priority", s, Priority::parse, &Priority::NAMES),
    }
}

/// `value` read by `parse`, or a 400 naming the field and the `allowed` spellings.
fn known<T>(
    field: &str,
    value: &str,
    parse: impl Fn(&str) -> Option<T>,
    allowed: &[&str],
) -> Result<T, ApiError> {
    parse(value).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "{field} {value:?} is not known; allowed: {}",
            allowed.join(", ")
        ))
    })
}

fn default_model() -> String {
    "last".into()
}

/// The typed key of a request, with errors naming the field and the allowed values.
fn key_of(r: &EvalRequest) -> Result<EvalKey, ApiError> {
    let suite = known("suite", &r.suite, EvalSuite::parse, &EvalSuite::NAMES)?;
    let model = known(
        "model",
        &r.model,
        CheckpointKind::parse,
        &CheckpointKind::NAMES,
    )?;
    Ok(EvalKey { suite, model })
}

fn key_of_name(name: &str) -> Result<EvalKey, ApiError> {
    EvalKey::from_dir_name(name).ok_or_else(|| ApiError::NotFound(format!("evaluation {name:?}")))
}

/// The run page's form: one checkpoint and any number of suites (`suite=quick&suite=standard`),
/// each queued as its own evaluation.
async fn evaluate_form(
    State(st): State<AppState>,
    RunPath(id): RunPath,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Redirect, ApiError> {
    run_dir(&st, &id)?;
    let model = pairs
        .iter()
        .find(|(k, _)| k == "model")
        .map_or_else(default_model, |(_, v)| v.clone());
    let suites: Vec<String> = pairs
        .iter()
        .filter(|(k, _)| k == "suite")
        .map(|(_, v)| v.clone())
        .collect();
    if suites.is_empty() {
        return Err(ApiError::BadRequest(format!(
            "suite: choose at least one; allowed: {}",
            EvalSuite::NAMES.join(", ")
        )));
    }
    let field = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let priority = priority_of(field("priority"))?;
    let slurm_fields = pairs.iter().filter(|(k, _)| k.starts_with("slurm."));
    let sets = slurm_settings(&st, &id, slurm_fields.cloned().collect()).await?;
    let run = id.clone();
    let (queued, refused) = super::blocking(&st, move |st| {
        let (mut queued, mut refused) = (Vec::new(), Vec::new());
        for suite in suites {
            let r = EvalRequest {
                suite: suite.clone(),
                model: model.clone(),
                priority: None,
                slurm: Default::default(),
            };
            let enqueue = |k| Ok(supervisor::enqueue_eval(st, &run, k, priority, &sets)?);
            match key_of(&r).and_then(enqueue) {
                Ok(()) => queued.push(suite),
                Err(e) => refused.push(e),
            }
        }
        Ok((queued, refused))
    })
    .await?;
    match (queued.is_empty(), refused.into_iter().next()) {
        (_, None) => Ok(Redirect::to(&format!("/runs/{id}#evals"))),
        (true, Some(e)) => Err(e),
        (false, Some(e)) => Err(ApiError::Conflict(format!(
            "queued {}; not queued: {}",
            queued.join(", "),
            e.public_message()
        ))),
    }
}

async fn evaluate_api(
    State(st): State<AppState>,
    RunPath(id): RunPath,
    Json(r): Json<EvalRequest>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    run_dir(&st, &id)?;
    let key = key_of(&r)?;
    let priority = priority_of(r.priority.as_deref())?;
    let sets = slurm_settings(&st, &id, json_fields(&r.slurm)?).await?;
    let run = id.clone();
    super::blocking(&st, move |st| {
        Ok(supervisor::enqueue_eval(st, &run, key, priority, &sets)?)
    })
    .await?;
    let body = serde_json::json!({
        "run_id": id,
        "suite": key.suite.as_str(),
        "model": key.model.as_str(),
        "name": key.dir_name(),
    });
    Ok((StatusCode::ACCEPTED, Json(body)))
}

async fn cancel_form(
    State(st): State<AppState>,
    RunPath((id, name)): RunPath<(RunId, String)>,
) -> Result<Redirect, ApiError> {
    run_dir(&st, &id)?;
    cancel(&st, &id, &name).await?;
    Ok(Redirect::to(&format!("/runs/{id}#evals")))
}

async fn cancel_api(
    State(st): State<AppState>,
    RunPath((id, name)): RunPath<(RunId, String)>,
) -> Result<(StatusCode, Json<Vec<EvalStatus>>), ApiError> {
    run_dir(&st, &id)?;
    cancel(&st, &id, &name).await?;
    Ok((StatusCode::ACCEPTED, Json(eval_statuses(&st, &id))))
}

/// Cancel the evaluation `name` of run `id`, off the runtime.
async fn cancel(st: &AppState, id: &RunId, name: &str) -> Result<(), ApiError> {
    let (run, key) = (id.clone(), key_of_name(name)?);
    super::blocking(st, move |st| Ok(supervisor::cancel_eval(st, &run, key)?)).await
}

async fn list_api(
    State(st): State<AppState>,
    RunPath(id): RunPath,
) -> Result<Json<Vec<EvalStatus>>, ApiError> {
    run_dir(&st, &id)?;
    let st2 = st.clone();
    let v = tokio::task::spawn_blocking(move || eval_statuses(&st2, &id))
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(v))
}

async fn fragment(State(st): State<AppState>, RunPath(id): RunPath) -> Result<Response, ApiError> {
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
    /// The evaluation's reports (`evals/<name>/*.csv`, `eval.json`), as run downloads.
    files: Vec<EvalFile>,
}

struct EvalFile {
    /// Path in the run directory.
    name: String,
    download_as: String,
    /// The file name inside the evaluation directory.
    label: String,
}

#[derive(Template)]
#[template(path = "partials/evals.html")]
struct EvalsFragment {
    id: String,
    active: bool,
    /// Whether the form may start an evaluation now (not while the run trains).
    evaluate: bool,
    /// Under `--executor slurm`: the form offers the evaluation's own time limit.
    slurm: bool,
    suites: Vec<&'static str>,
    models: Vec<&'static str>,
    evals: Vec<EvalView>,
}

/// A row of the attacks or corruptions table: its name, then three accuracies in percent.
fn pct_row(name: &str, accuracies: [f64; 3]) -> Row {
    let mut cells = vec![name.to_string()];
    cells.extend(accuracies.map(|a| pct(Some(a))));
    Row { cells }
}

fn view(s: EvalStatus, files: &[FileEntry], waiting: &str) -> EvalView {
    let detail = match (&s.progress, &s.error, &s.report) {
        _ if s.status == "queued" => waiting.to_string(),
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
            attacks.push(pct_row(&e.attack, [m.overall, m.worst, m.worst10]));
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
            let worst = c.mean_worst_over_severities;
            corruptions.push(pct_row(&c.corruption, [c.overall, c.worst, worst]));
        }
    }
    let prefix = format!("evals/{}/", s.name);
    let files = files
        .iter()
        .filter_map(|f| {
            Some(EvalFile {
                label: f.name.strip_prefix(&prefix)?.to_string(),
                name: f.name.clone(),
                download_as: f.download_as.clone(),
            })
        })
        .collect();
    EvalView {
        files,
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
fn fragment_html(st: &AppState, id: &RunId) -> String {
    let evaluate = super::controls::for_run(st, id).evaluate;
    fragment_with(st, id, &list_files(&st.run_dir(id)), evaluate).0
}

/// The evaluation section with the run's downloadable `files` already listed, and whether an
/// evaluation is queued or running. `evaluate`: the run's controls offer Evaluate now.
pub fn fragment_with(
    st: &AppState,
    id: &RunId,
    files: &[FileEntry],
    evaluate: bool,
) -> (String, bool) {
    let statuses = eval_statuses(st, id);
    // What the run's first waiting job waits for (a queued evaluation shows it).
    let waiting = st.jobs().lock().wait_reason(id).unwrap_or_default();
    let active = statuses
        .iter()
        .any(|s| s.status == "queued" || s.status == "running");
    let html = EvalsFragment {
        id: id.to_string(),
        active,
        evaluate,
        slurm: st.scheduler().is_some(),
        suites: EvalSuite::NAMES.to_vec(),
        models: CheckpointKind::ALL
            .into_iter()
            .filter(|m| st.run_dir(id).checkpoint(*m).exists())
            .map(|m| m.as_str())
            .collect(),
        evals: statuses
            .into_iter()
            .map(|s| view(s, files, &waiting))
            .collect(),
    }
    .render()
    .unwrap_or_else(|e| format!("<p class=\"error\">template: {e}</p>"));
    (html, active)
}
