//! Which runs a compare request names: `ids=` (repeated or comma-separated) and `grid=<id>`
//! (every run tagged `grid:<id>`), bounded so one request does bounded work.

use crate::error::ApiError;
use crate::index::{ListQuery, RunFilter};
use crate::state::AppState;
use fairtat_core::runs::summary::RunSummary;
use fairtat_core::runs::{is_valid_run_id, RunId};

/// Runs compared at most (bounded work per request).
pub const MAX_RUNS: usize = 20;

/// Valid ids from `ids=a&ids=b` (also `ids=a,b`), in order, without duplicates.
pub fn ids(q: Option<&str>) -> Vec<RunId> {
    let mut out: Vec<RunId> = Vec::new();
    for kv in q.unwrap_or("").split('&') {
        if let Some(v) = kv.strip_prefix("ids=") {
            for id in v.split("%2C").flat_map(|s| s.split(',')) {
                match id.parse::<RunId>() {
                    Ok(id) if !out.contains(&id) => out.push(id),
                    _ => {}
                }
            }
        }
    }
    out.truncate(MAX_RUNS);
    out
}

pub fn summaries(st: &AppState, ids: &[RunId]) -> Result<Vec<RunSummary>, ApiError> {
    let mut v = Vec::new();
    for id in ids {
        if let Some(s) = st.index().get(id)? {
            v.push(s);
        }
    }
    Ok(v)
}

/// `grid=<id>` of the query: every run tagged `grid:<id>`, oldest first.
pub fn grid_ids(st: &AppState, q: Option<&str>) -> Result<(String, Vec<RunId>), ApiError> {
    let Some(gid) = q
        .unwrap_or("")
        .split('&')
        .find_map(|kv| kv.strip_prefix("grid="))
        .filter(|g| is_valid_run_id(g))
    else {
        return Ok((String::new(), vec![]));
    };
    let runs = grid_runs(st, gid)?;
    let mut ids: Vec<RunId> = runs.into_iter().filter_map(|s| s.id.parse().ok()).collect();
    ids.truncate(MAX_RUNS * 3);
    Ok((gid.to_string(), ids))
}

/// Every run of grid `gid` (tagged `grid:<gid>`), oldest first.
pub fn grid_runs(st: &AppState, gid: &str) -> Result<Vec<RunSummary>, ApiError> {
    let tag = format!("grid:{gid}");
    let filter = RunFilter {
        tag: Some(tag.clone()),
        ..RunFilter::default()
    };
    let mut runs = st.index().list(&ListQuery {
        filter,
        ..ListQuery::default()
    })?;
    runs.retain(|s| s.tags.contains(&tag));
    runs.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(runs)
}
