//! HTTP layer: each submodule exports its own `router()`; [`router`] merges them and adds the
//! body limit, the host/origin guard, the token check, JSON errors and tracing. `router` is separate from serving so tests drive it
//! with `tower::ServiceExt::oneshot`.

pub mod api;
mod archive;
pub mod chart_views;
pub mod charts;
pub mod compare;
mod compare_classes;
mod compare_export;
pub mod compare_tables;
pub mod evals;
pub mod files;
pub mod forms;
pub mod pages;
pub mod rejections;
pub mod run_live;
pub mod sse;
pub mod tables;
pub mod views;

use axum::extract::DefaultBodyLimit;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{middleware, Router};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::trace::TraceLayer;

use super::error::ApiError;
use super::state::{AppState, BODY_LIMIT};
use super::{auth, guard};
use fairtat_core::runs::{is_valid_run_id, RunDir};

pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(api::router())
        .merge(sse::router())
        .merge(files::router())
        .merge(archive::router())
        .merge(charts::router())
        .merge(pages::router())
        .merge(run_live::router())
        .merge(forms::router())
        .merge(compare::router())
        .merge(evals::router())
        .route("/login", get(auth::login_form).post(auth::login))
        .route("/static/app.js", get(app_js))
        .route("/static/style.css", get(style_css))
        .fallback(|| async { ApiError::NotFound("page".into()) })
        .layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            guard::guard_requests,
        ))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(RequestBodyLimitLayer::new(BODY_LIMIT))
        .layer(middleware::from_fn(rejections::json_errors))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

// Embedded, so the binary serves its assets from any working directory (no CDN, no files).
async fn app_js() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("../../static/app.js"),
    )
}

async fn style_css() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("../../static/style.css"),
    )
}

/// The run directory for an id from a URL: 404 for ids that are not safe path components or
/// that no run has.
pub fn run_dir(state: &AppState, id: &str) -> Result<RunDir, ApiError> {
    if !is_valid_run_id(id) {
        return Err(ApiError::NotFound(format!("run {id:?}")));
    }
    let dir = state.run_dir(id);
    if state.index.get(id)?.is_none() && !dir.root().is_dir() {
        return Err(ApiError::NotFound(format!("run {id}")));
    }
    Ok(dir)
}
