//! Cancel many runs in one request: `POST /api/runs/cancel` with `{"ids": [...]}` or
//! `{"grid": "<grid id>"}`, and the form behind "Cancel selected" on the runs list and "Cancel
//! the grid's runs" on a grid's compare page (`POST /runs/cancel`, fields `ids` or `grid`).
//! Under Slurm every job of the request goes to one `scancel` (issue 21); locally each run is
//! cancelled as by its own button. A run that cannot be cancelled (ended, unknown) is listed
//! with the reason; the others are cancelled all the same.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Redirect;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::state::AppState;
use crate::supervisor;
use fairtat_core::runs::{is_valid_run_id, RunId};

/// Most runs one request may name (a grid has at most 64; the runs list shows all).
const MAX_RUNS: usize = 2000;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/runs/cancel", post(cancel_api))
        .route("/runs/cancel", post(cancel_form))
}

/// What a request names: run ids, or a grid (every run tagged `grid:<id>`).
#[derive(Debug, Default, PartialEq)]
struct Targets {
    ids: Vec<String>,
    grid: Option<String>,
}

impl Targets {
    fn from_json(v: &Value) -> Result<Targets, ApiError> {
        let Value::Object(obj) = v else {
            return Err(bad("the body must be an object with `ids` or `grid`"));
        };
        if let Some(k) = obj.keys().find(|k| !matches!(k.as_str(), "ids" | "grid")) {
            return Err(bad(&format!("unknown field `{k}`; allowed: ids, grid")));
        }
        let ids = match obj.get("ids") {
            None => Vec::new(),
            Some(Value::Array(a)) if a.iter().all(Value::is_string) => a
                .iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect(),
            Some(_) => return Err(bad("ids: give a list of run ids")),
        };
        let grid = match obj.get("grid") {
            None => None,
            Some(Value::String(g)) => Some(g.clone()),
            Some(_) => return Err(bad("grid: give the grid's id as a string")),
        };
        Ok(Targets { ids, grid })
    }

    /// `ids=a&ids=b` or `grid=g`, as a browser posts them (run ids need no escapes; anything
    /// escaped is not a valid id and is refused as such).
    fn from_form(body: &str) -> Result<Targets, ApiError> {
        let mut t = Targets::default();
        for pair in body.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("ids", v)) => t.ids.push(v.to_string()),
                Some(("grid", v)) if !v.is_empty() => t.grid = Some(v.to_string()),
                Some(("grid", _)) => {}
                _ => {
                    return Err(bad(&format!(
                        "unknown field in `{pair}`; allowed: ids, grid"
                    )))
                }
            }
        }
        Ok(t)
    }

    /// The runs named, checked: valid ids, one of `ids` or `grid`, at most [`MAX_RUNS`].
    fn resolve(self, st: &AppState) -> Result<Vec<RunId>, ApiError> {
        let ids = match (self.ids.is_empty(), self.grid) {
            (false, Some(_)) => return Err(bad("give either `ids` or `grid`, not both")),
            (true, None) => {
                return Err(bad("ids: select at least one run (or give `grid`)"));
            }
            (false, None) => self.ids,
            (true, Some(g)) => grid_runs(st, &g)?,
        };
        if ids.len() > MAX_RUNS {
            return Err(bad(&format!("ids: at most {MAX_RUNS} runs per request")));
        }
        let mut out: Vec<RunId> = Vec::with_capacity(ids.len());
        for id in ids {
            let run: RunId = id
                .parse()
                .map_err(|_| bad(&format!("ids: `{id}` is not a run id")))?;
            if !out.contains(&run) {
                out.push(run);
            }
        }
        Ok(out)
    }
}

fn bad(msg: &str) -> ApiError {
    ApiError::BadRequest(msg.to_string())
}

/// The runs of grid `gid` that are still queued or running (ended ones have nothing to cancel).
fn grid_runs(st: &AppState, gid: &str) -> Result<Vec<String>, ApiError> {
    if !is_valid_run_id(gid) {
        return Err(bad(&format!("grid: `{gid}` is not a grid id")));
    }
    let runs = super::compare_query::grid_runs(st, gid)?;
    if runs.is_empty() {
        return Err(ApiError::NotFound(format!("grid {gid}")));
    }
    Ok(runs
        .into_iter()
        .filter(|s| !s.status.is_terminal())
        .map(|s| s.id)
        .collect())
}

/// Cancel `runs`: the ids cancelled and, for the others, why not.
fn cancel_all(st: &AppState, runs: &[RunId]) -> Value {
    let known: Vec<RunId> = runs
        .iter()
        .filter(|r| st.run_dir(r).root().is_dir())
        .cloned()
        .collect();
    let mut errors: Vec<Value> = runs
        .iter()
        .filter(|r| !known.contains(r))
        .map(|r| json!({ "id": r, "error": format!("run {r} not found") }))
        .collect();
    let mut cancelled = Vec::new();
    for (run, result) in supervisor::cancel_runs(st, &known) {
        match result {
            Ok(_) => cancelled.push(run),
            Err(e) => {
                errors.push(json!({ "id": run, "error": ApiError::from(e).public_message() }))
            }
        }
    }
    tracing::info!(
        runs = runs.len(),
        cancelled = cancelled.len(),
        "bulk cancel"
    );
    json!({ "cancelled": cancelled, "errors": errors })
}

/// `POST /api/runs/cancel`: 202 with `{"cancelled": [...], "errors": [{"id", "error"}]}`.
async fn cancel_api(
    State(st): State<AppState>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let runs = Targets::from_json(&super::strict_json::parse(&body)?)?.resolve(&st)?;
    let answer = super::blocking(&st, move |st| Ok(cancel_all(st, &runs))).await?;
    Ok((StatusCode::ACCEPTED, Json(answer)))
}

/// `POST /runs/cancel`: back to the grid's page or the runs list.
async fn cancel_form(State(st): State<AppState>, body: Bytes) -> Result<Redirect, ApiError> {
    let targets = Targets::from_form(&String::from_utf8_lossy(&body))?;
    let back = targets
        .grid
        .as_ref()
        .map_or_else(|| "/".to_string(), |g| format!("/compare?grid={g}"));
    let runs = targets.resolve(&st)?;
    super::blocking(&st, move |st| Ok(cancel_all(st, &runs))).await?;
    Ok(Redirect::to(&back))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_name_ids_or_a_grid() {
        let t = Targets::from_json(&json!({"ids": ["a", "b"]})).unwrap();
        assert_eq!(t.ids, vec!["a", "b"]);
        let t = Targets::from_json(&json!({"grid": "g1"})).unwrap();
        assert_eq!(t.grid.as_deref(), Some("g1"));
        let e = Targets::from_json(&json!({"id": "a"})).unwrap_err();
        assert!(e.to_string().contains("allowed: ids, grid"), "{e}");
        let e = Targets::from_json(&json!({"ids": "a"})).unwrap_err();
        assert!(e.to_string().starts_with("ids:"), "{e}");
        let f = Targets::from_form("ids=a&ids=b&grid=").unwrap();
        assert_eq!(f.ids, vec!["a", "b"]);
        assert!(f.grid.is_none());
        assert!(Targets::from_form("x=1").is_err());
    }
}
