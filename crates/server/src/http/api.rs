//! JSON API: list, get, create (validated like the form), cancel, resume, edit and delete
//! (`manage`), metrics, and the all-runs CSV. Errors are `{error, field}` with 4xx codes.

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::files::attachment;
use super::{indexed_run, run_dir, RunPath};
use crate::admission;
use crate::error::ApiError;
use crate::index::{ListQuery, RunFilter};
use crate::jobs::{Job, JobKind};
use crate::scan;
use crate::state::AppState;
use crate::supervisor;
use fairtat_core::config::gpu_memory::{self, Work};
use fairtat_core::config::{self, ConfigError, RawConfig, RunSpec};
use fairtat_core::runs::reports::summary_csv;
use fairtat_core::runs::summary::RunSummary;
use fairtat_core::runs::{is_valid_run_id, new_run_id, RunId, RunStatus};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/runs", get(list).post(create))
        .route("/api/runs.csv", get(runs_csv))
        .route("/api/jobs", get(jobs))
        .route("/api/scheduler", get(scheduler))
        .route(
            "/api/runs/{id}",
            get(get_run)
                .patch(super::manage::patch_api)
                .delete(super::manage::delete_api),
        )
        .route("/api/runs/{id}/cancel", post(cancel))
        .route("/api/runs/{id}/resume", post(resume))
        .route("/api/runs/{id}/metrics", get(get_metrics))
        .route("/api/presets", get(presets))
}

/// Query parameters of the runs list (API and page).
#[derive(Debug, Default, Deserialize)]
pub struct ListParams {
    #[serde(flatten)]
    pub filter: RunFilter,
    pub sort: Option<String>,
    /// `asc` or `desc`.
    pub order: Option<String>,
    /// Config keys shown as extra columns on the runs page (`run_cols`), comma-separated.
    pub cols: Option<String>,
}

impl ListParams {
    pub fn query(&self) -> ListQuery {
        ListQuery {
            filter: self.filter.clone(),
            sort: self.sort.clone(),
            desc: self.order.as_deref() != Some("asc"),
            limit: None,
        }
    }
}

async fn list(
    State(st): State<AppState>,
    Query(p): Query<ListParams>,
) -> Result<Json<Vec<RunSummary>>, ApiError> {
    Ok(Json(st.index().list(&p.query())?))
}

async fn runs_csv(
    State(st): State<AppState>,
    Query(p): Query<ListParams>,
) -> Result<impl IntoResponse, ApiError> {
    let rows = st.index().list(&p.query())?;
    Ok(attachment(
        summary_csv(&rows),
        "text/csv; charset=utf-8",
        "fairtat-runs-summary.csv",
    ))
}

/// The executor's queue: running jobs (with their slot and pid), then waiting ones in order.
async fn jobs(State(st): State<AppState>) -> Json<Vec<crate::jobs::JobView>> {
    Json(st.jobs().jobs())
}

/// The executor and, under Slurm, every job it follows with the scheduler's last word on it.
async fn scheduler(State(st): State<AppState>) -> Json<Value> {
    match &st.scheduler() {
        Some(s) => Json(json!({ "executor": "slurm", "jobs": s.views() })),
        None => Json(json!({ "executor": "local", "jobs": [] })),
    }
}

async fn get_run(
    State(st): State<AppState>,
    RunPath(id): RunPath,
) -> Result<Json<Value>, ApiError> {
    let (dir, summary) = indexed_run(&st, &id)?;
    let resumable = scan::can_resume(&dir, &summary) && !st.is_active(&id);
    let spec = tokio::task::spawn_blocking(move || scan::read_spec(&dir))
        .await
        .map_err(ApiError::internal)?;
    let slurm_job = st.scheduler().and_then(|s| s.view(&id));
    Ok(Json(json!({
        "summary": summary,
        "resumable": resumable,
        "spec": spec,
        "slurm_job": slurm_job,
    })))
}

/// Cancel a known run (the API's and the run page's button), off the runtime.
pub(super) async fn cancel_run(st: &AppState, id: RunId) -> Result<RunSummary, ApiError> {
    super::blocking(st, move |st| {
        run_dir(st, &id)?;
        Ok(supervisor::cancel_run(st, &id)?)
    })
    .await
}

/// Resume a known run that admission lets resume (the API's and the run page's button), off
/// the runtime.
pub(super) async fn resume_run(st: &AppState, id: RunId) -> Result<RunSummary, ApiError> {
    super::blocking(st, move |st| {
        let dir = run_dir(st, &id)?;
        admission::check_resume(st, &dir, &id)?;
        Ok(supervisor::resume_run(st, &id)?)
    })
    .await
}

async fn cancel(
    State(st): State<AppState>,
    RunPath(id): RunPath,
) -> Result<(StatusCode, Json<RunSummary>), ApiError> {
    Ok((StatusCode::ACCEPTED, Json(cancel_run(&st, id).await?)))
}

async fn resume(
    State(st): State<AppState>,
    RunPath(id): RunPath,
) -> Result<(StatusCode, Json<RunSummary>), ApiError> {
    Ok((StatusCode::ACCEPTED, Json(resume_run(&st, id).await?)))
}

/// The run's [`Metrics`](crate::metrics::Metrics), serialised straight from the store.
async fn get_metrics(
    State(st): State<AppState>,
    RunPath(id): RunPath,
) -> Result<Response, ApiError> {
    let dir = run_dir(&st, &id)?;
    let body = tokio::task::spawn_blocking(move || {
        let entry = st.store().run(&dir);
        let f = entry.fold();
        serde_json::to_vec(f.metrics())
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(ApiError::internal)?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

async fn presets(State(st): State<AppState>) -> Json<Vec<String>> {
    Json(preset_names(&st))
}

/// `POST /api/runs`: either a config object (`{"train": {"epochs": 5}, ...}`), or
/// `{"preset": "fmnist-quick-fairtat", "set": {"train.epochs": 2}}`, or `{"toml": "..."}`.
/// A config with a `[grid]` table creates one run per combination and answers
/// `{"grid": ID, "runs": [...]}`.
async fn create(State(st): State<AppState>, body: Bytes) -> Result<Response, ApiError> {
    let v = super::strict_json::parse(&body)?;
    // Deep nesting first: its message says more than "nothing named" about a bad body.
    config::keys::check_json_depth(&v)?;
    refuse_unnamed(&v)?;
    let gid = new_run_id("grid");
    if let Some(specs) = grid_from_json(&st, &v, &gid)? {
        let runs = create_grid(&st, specs).await?;
        let body = serde_json::json!({ "grid": gid, "runs": runs });
        return Ok((StatusCode::CREATED, Json(body)).into_response());
    }
    let spec = spec_from_json(&st, v)?;
    let summary = create_run(&st, spec).await?;
    Ok((StatusCode::CREATED, Json(summary)).into_response())
}

/// A create request must say what to run: a preset, a TOML config, or config sections. An
/// empty object (or only `set`/`tags`) would start the defaults, a 200-epoch FAIR-TAT run on
/// the whole training set, which nobody asks for by sending nothing.
fn refuse_unnamed(v: &Value) -> Result<(), ApiError> {
    let Value::Object(obj) = v else {
        return Ok(());
    };
    let names_something = obj.keys().any(|k| !matches!(k.as_str(), "set" | "tags"));
    if names_something {
        return Ok(());
    }
    Err(ApiError::Invalid(ConfigError::invalid(
        "preset",
        "the request names nothing to run: give `preset` (a name from GET /api/presets), \
         `toml` (a config) or config sections such as {\"data\": ..., \"train\": ...}",
    )))
}

/// The runs of a grid body (a `toml`/`preset` with a `[grid]` table, or an object with a
/// `grid` key), `None` for a single-run body.
fn grid_from_json(st: &AppState, v: &Value, gid: &str) -> Result<Option<Vec<RunSpec>>, ApiError> {
    let Value::Object(obj) = v else {
        return Ok(None);
    };
    if obj.contains_key("preset") || obj.contains_key("set") || obj.contains_key("toml") {
        let text = match (obj.get("preset"), obj.get("toml")) {
            (Some(Value::String(name)), _) => read_preset(st, name)?,
            (_, Some(Value::String(t))) => t.clone(),
            _ => String::new(),
        };
        let sets = sets_from_json(obj.get("set"))?;
        // Errors before the grid is seen (syntax, --set) are the single-run path's errors too.
        let loader = config::grid::presets_in(st.configs_dir());
        return Ok(config::grid::expand_with(&text, &sets, gid, &loader)?);
    }
    if !obj.contains_key("grid") {
        return Ok(None);
    }
    config::keys::check_json_depth(v)?;
    let table: toml::Table = serde_json::from_value(v.clone())
        .map_err(|e| ApiError::BadRequest(format!("config cannot be expressed as TOML: {e}")))?;
    let loader = config::grid::presets_in(st.configs_dir());
    Ok(config::grid::expand_table_with(table, gid, &loader)?)
}

/// Create and queue every run of a grid (validated as a whole before this). Every run
/// directory exists before the first is queued, so a row that starts from another row
/// (`train.init_from`) finds its source whatever the grid's order.
pub async fn create_grid(st: &AppState, specs: Vec<RunSpec>) -> Result<Vec<RunSummary>, ApiError> {
    let _places = admission::admit(st, &specs)?;
    supervisor::preflight(st, &specs).await?;
    let mut made = Vec::with_capacity(specs.len());
    for spec in specs {
        made.push(prepare_run(st, spec).await?);
    }
    let runs: Vec<_> = made.iter().map(|(j, _)| j.run.clone()).collect();
    let jobs = made.iter().map(|(j, _)| j.clone()).collect();
    super::blocking(st, move |st| Ok(supervisor::submit_all(st, jobs)?)).await?;
    let mut out = Vec::with_capacity(made.len());
    for ((_, summary), run) in made.into_iter().zip(runs) {
        out.push(st.index().get(&run)?.unwrap_or(summary));
    }
    Ok(out)
}

fn spec_from_json(st: &AppState, v: Value) -> Result<RunSpec, ApiError> {
    let Value::Object(obj) = v else {
        return Err(ApiError::BadRequest("body must be a JSON object".into()));
    };
    if obj.contains_key("preset") || obj.contains_key("set") || obj.contains_key("toml") {
        let mut text = match obj.get("preset") {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(name)) => read_preset(st, name)?,
            Some(_) => return Err(ApiError::BadRequest("`preset` must be a string".into())),
        };
        match obj.get("toml") {
            None | Some(Value::Null) => {}
            Some(Value::String(t)) if text.is_empty() => text = t.clone(),
            Some(Value::String(_)) => {
                return Err(ApiError::BadRequest(
                    "give `preset` or `toml`, not both".into(),
                ))
            }
            Some(_) => return Err(ApiError::BadRequest("`toml` must be a string".into())),
        }
        let sets = sets_from_json(obj.get("set"))?;
        return Ok(config::from_toml_str(&text, &sets)?);
    }
    let v = Value::Object(obj);
    config::keys::check_json_depth(&v)?;
    let table: toml::Table = serde_json::from_value(v)
        .map_err(|e| ApiError::BadRequest(format!("config cannot be expressed as TOML: {e}")))?;
    Ok(RawConfig::from_table(table)?.validate()?)
}

fn sets_from_json(set: Option<&Value>) -> Result<Vec<String>, ApiError> {
    let obj = match set {
        None | Some(Value::Null) => return Ok(vec![]),
        Some(Value::Object(o)) => o,
        Some(_) => return Err(ApiError::BadRequest("`set` must be an object".into())),
    };
    let mut out = Vec::new();
    for (k, v) in obj {
        if k.is_empty()
            || !k
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
        {
            return Err(ApiError::BadRequest(format!("`set`: bad key {k:?}")));
        }
        let text = match v {
            Value::Null => continue,
            Value::String(s) => s.replace('\n', " "),
            Value::Number(_) | Value::Bool(_) | Value::Array(_) => v.to_string(),
            Value::Object(_) => {
                return Err(ApiError::BadRequest(format!(
                    "`set.{k}` must not be an object"
                )))
            }
        };
        out.push(format!("{k}={text}"));
    }
    Ok(out)
}

/// Names of the `*.toml` presets in the configs directory and one level of sub-directories
/// (`table1/cifar10-at`), as `--config` and a grid's `preset` axis name them.
pub fn preset_names(st: &AppState) -> Vec<String> {
    let dir = st.configs_dir();
    let mut v = tomls_in(dir, "");
    let subdirs = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(Result::ok);
    for e in subdirs.filter(|e| e.file_type().is_ok_and(|t| t.is_dir())) {
        let sub = e.file_name().to_string_lossy().into_owned();
        if is_valid_run_id(&sub) {
            v.extend(tomls_in(&e.path(), &format!("{sub}/")));
        }
    }
    v.sort();
    v
}

/// `prefix` + the stem of each `*.toml` in `dir` whose stem is a plain name.
fn tomls_in(dir: &std::path::Path, prefix: &str) -> Vec<String> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.strip_suffix(".toml").map(str::to_string)
        })
        .filter(|n| is_valid_run_id(n))
        .map(|n| format!("{prefix}{n}"))
        .collect()
}

pub fn read_preset(st: &AppState, name: &str) -> Result<String, ApiError> {
    if !preset_names(st).iter().any(|n| n == name) {
        return Err(ApiError::Invalid(config::ConfigError::NotAllowed {
            key: "preset".into(),
            value: name.into(),
            allowed: preset_names(st).join(", "),
        }));
    }
    Ok(std::fs::read_to_string(
        st.configs_dir().join(format!("{name}.toml")),
    )?)
}

/// Write a new run directory (config.toml, spec.json, queued marker), index it and queue it.
pub async fn create_run(st: &AppState, spec: RunSpec) -> Result<RunSummary, ApiError> {
    let _places = admission::admit(st, std::slice::from_ref(&spec))?;
    supervisor::preflight(st, std::slice::from_ref(&spec)).await?;
    let (job, summary) = prepare_run(st, spec).await?;
    let run = job.run.clone();
    super::blocking(st, move |st| Ok(supervisor::submit(st, job)?)).await?;
    Ok(st.index().get(&run)?.unwrap_or(summary))
}

/// Write a new run directory and index it as queued; returns the job that queues it.
async fn prepare_run(st: &AppState, spec: RunSpec) -> Result<(Job, RunSummary), ApiError> {
    let runs_dir = st.runs_dir().to_path_buf();
    let spec2 = spec.clone();
    let dir = tokio::task::spawn_blocking(move || {
        fairtat_core::runs::create_run_dir(&runs_dir, &spec2).map_err(|e| {
            match e.kind() {
                // The 507 says how much is left.
                std::io::ErrorKind::StorageFull => {
                    ApiError::disk_full(fairtat_core::runs::safe_fs::free_space(&runs_dir))
                }
                _ => ApiError::from(e),
            }
        })
    })
    .await
    .map_err(ApiError::internal)??;
    let run = dir
        .run_id()
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("created an invalid run id")))?;
    let mut summary = scan::summary_from_spec(&dir, &spec);
    summary.status = RunStatus::Queued;
    st.index().upsert(&summary)?;
    // The runs list adds the row from this.
    st.hub().status(&summary);
    tracing::info!(run = %summary.id, "run created");
    let job = Job {
        run,
        kind: JobKind::Train,
        device: spec.device,
        needs_source: !spec.train.init_from_run.is_empty(),
        gpu_mib: gpu_memory::estimate_mib(&spec, Work::Train),
    };
    Ok((job, summary))
}

#[cfg(test)]
mod tests {
    use super::ListParams;
    use axum::extract::Query;

    fn params(q: &str) -> ListParams {
        let uri: axum::http::Uri = format!("/api/runs?{q}").parse().unwrap();
        Query::<ListParams>::try_from_uri(&uri).unwrap().0
    }

    /// The filters are a flattened part: the query string keeps its flat keys.
    #[test]
    fn list_params_read_flat_filter_keys_and_the_order() {
        let p = params("status=finished&method=trades&dataset=cifar10&tag=a%20b&sort=name&order=asc&cols=train.lr&x=1");
        let q = p.query();
        assert_eq!(q.filter.status.as_deref(), Some("finished"));
        assert_eq!(q.filter.method.as_deref(), Some("trades"));
        assert_eq!(q.filter.dataset.as_deref(), Some("cifar10"));
        assert_eq!(q.filter.tag.as_deref(), Some("a b"));
        assert_eq!((q.sort.as_deref(), q.desc), (Some("name"), false));
        assert_eq!(p.cols.as_deref(), Some("train.lr"));
        let q = params("").query();
        assert!(q.filter.status.is_none() && q.filter.tag.is_none() && q.desc);
    }
}
