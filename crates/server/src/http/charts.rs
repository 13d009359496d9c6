//! Chart SVGs of one run, served from the metrics store:
//! `GET /runs/{id}/charts/{name}.svg` (`?epoch=N` picks the epoch of the C_FPS bar chart and of
//! the confusion heatmaps, default the latest; `?classes=worst5|all|3,7` the highlighted classes
//! of per-class charts, default all of up to ten classes, else the worst five).
//!
//! A chart is rendered only when its data changed (cached per run by data version) and carries
//! that version as its ETag; `GET /runs/{id}/charts.json` lists the versions of the page's charts,
//! so `app.js` re-fetches only the charts whose data changed after an epoch event.

use std::collections::BTreeMap;

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;

use super::chart_more;
use super::chart_views::{self, CfpsSource, ChartQuery, Classes};
use super::{run_dir, RunPath};
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::RunFold;
use fairtat_core::runs::RunId;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/runs/{id}/charts/{file}", get(chart))
        .route("/runs/{id}/charts.json", get(manifest))
}

/// Every chart a run page shows, in page order.
pub const CHARTS: [&str; 13] = [
    "accuracy",
    "loss",
    "class-acc-clean",
    "class-acc-clean-heatmap",
    "class-acc-robust",
    "class-acc-robust-heatmap",
    "cfps",
    "cfps-heatmap",
    "class-eps",
    "targets",
    "confusion-clean",
    "confusion-robust",
    "confusion-diff",
];

#[derive(Deserialize, Default)]
pub struct ChartParams {
    pub epoch: Option<usize>,
    pub classes: Option<String>,
    /// C_FPS source of the `cfps` chart: train (default), test-clean, test-robust.
    pub source: Option<String>,
}

impl ChartParams {
    pub fn query(&self) -> Result<ChartQuery, ApiError> {
        let classes = match self.classes.as_deref().filter(|c| !c.is_empty()) {
            Some(c) => Some(Classes::parse(c).map_err(ApiError::BadRequest)?),
            None => None,
        };
        let source = match self.source.as_deref().filter(|s| !s.is_empty()) {
            Some(s) => CfpsSource::from_query(s).map_err(ApiError::BadRequest)?,
            None => CfpsSource::Train,
        };
        Ok(ChartQuery {
            epoch: self.epoch,
            classes,
            source,
        })
    }
}

/// The ETag of a chart at data version `v` (the build is part of it: new code draws anew).
pub fn etag(v: u64) -> String {
    format!("\"{}-{v}\"", env!("CARGO_PKG_VERSION"))
}

/// An SVG that the browser must revalidate (by ETag) before reuse.
pub fn svg_response(svg: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        svg,
    )
        .into_response()
}

fn not_modified(headers: &HeaderMap, tag: &str) -> bool {
    headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag))
}

fn chart_name(file: &str) -> Result<String, ApiError> {
    file.strip_suffix(".svg")
        .filter(|n| CHARTS.contains(n) || chart_more::is_chart(n) || state_key(n).is_some())
        .map(str::to_string)
        .ok_or_else(|| ApiError::NotFound(format!("chart {file:?}")))
}

async fn chart(
    State(st): State<AppState>,
    RunPath((id, file)): RunPath<(RunId, String)>,
    Query(p): Query<ChartParams>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let dir = run_dir(&st, &id)?;
    let name = chart_name(&file)?;
    let q = p.query()?;
    let st2 = st.clone();
    let (tag, svg) = tokio::task::spawn_blocking(move || {
        let entry = st2.store().run(&dir);
        let (version, key) = {
            let f = entry.fold();
            (
                chart_views::version(&name, &f, &q),
                q.key(&name, f.metrics()),
            )
        };
        let tag = etag(version);
        if not_modified(&headers, &tag) {
            return (tag, None);
        }
        let detail =
            if name.starts_with("confusion") || (name == "cfps" && q.source != CfpsSource::Train) {
                entry.detail(q.epoch, &st2.store().stats)
            } else {
                None
            };
        let svg = entry.chart(&key, version, &st2.store().stats, |f| {
            chart_views::render(&name, f, detail.as_deref(), &q)
        });
        (tag, Some(svg))
    })
    .await
    .map_err(ApiError::internal)?;
    let mut resp = match svg {
        Some(svg) => svg_response(svg.as_str().to_owned()),
        None => StatusCode::NOT_MODIFIED.into_response(),
    };
    if let Ok(v) = tag.parse() {
        resp.headers_mut().insert(header::ETAG, v);
    }
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-cache"),
    );
    Ok(resp)
}

/// `{"charts": {name: version}}` for the page's charts under these parameters.
async fn manifest(
    State(st): State<AppState>,
    RunPath(id): RunPath,
    Query(p): Query<ChartParams>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let dir = run_dir(&st, &id)?;
    let q = p.query()?;
    let versions = tokio::task::spawn_blocking(move || {
        let entry = st.store().run(&dir);
        let f = entry.fold();
        chart_versions(&f, &q)
    })
    .await
    .map_err(ApiError::internal)?;
    Ok(Json(serde_json::json!({ "charts": versions })))
}

/// The data version of every chart of the run page.
pub fn chart_versions(f: &RunFold, q: &ChartQuery) -> BTreeMap<String, u64> {
    CHARTS
        .iter()
        .map(|c| c.to_string())
        .chain(chart_more::present(f))
        .chain(state_charts(f))
        .map(|c| {
            let v = chart_views::version(&c, f, q);
            (c, v)
        })
        .collect()
}

/// The method-state key of a `state-<key>` chart name (keys are short identifiers).
fn state_key(name: &str) -> Option<&str> {
    name.strip_prefix("state-").filter(|k| {
        !k.is_empty()
            && k.len() <= 64
            && k.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    })
}

/// The `state-<key>` charts a run has, in key order.
pub fn state_charts(f: &RunFold) -> Vec<String> {
    f.metrics()
        .method_state
        .keys()
        .map(|k| format!("state-{k}"))
        .filter(|n| state_key(n).is_some())
        .collect()
}
