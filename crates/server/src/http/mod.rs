//! HTTP layer: each submodule exports its own `router()`; [`router`] merges them and adds the
//! body limit, the host/origin guard, the token check, JSON errors and tracing. `router` is
//! separate from serving so tests drive it with `tower::ServiceExt::oneshot`. Routes with a run
//! id take it as a [`RunId`] through [`RunPath`].

pub mod api;
mod archive;
mod bulk;
pub mod chart_more;
pub mod chart_views;
pub mod charts;
pub mod compare;
mod compare_charts;
mod compare_classes;
mod compare_delta;
mod compare_evals;
mod compare_export;
mod compare_query;
mod compare_rho;
pub mod compare_tables;
#[cfg(test)]
mod compare_tests;
mod compare_tidy;
pub mod controls;
pub mod evals;
pub mod files;
mod form_grid;
pub mod forms;
pub mod manage;
pub mod pages;
pub mod rejections;
pub mod run_cols;
pub mod run_live;
pub mod sse;
mod strict_json;
pub mod tables;
pub mod views;

use axum::extract::{DefaultBodyLimit, FromRequestParts, Path, RawPathParams, Request, State};
use axum::http::header;
use axum::http::request::Parts;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, MethodRouter};
use axum::Router;
use serde::de::DeserializeOwned;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::RequestBodyTimeoutLayer;
use tower_http::trace::TraceLayer;

mod auth;
pub mod streams;
use super::error::ApiError;
use super::guard::{self, BODY_LIMIT};
use super::state::AppState;
pub use auth::check_token_strength;
use fairtat_core::runs::summary::RunSummary;
use fairtat_core::runs::{RunDir, RunId};

pub fn router(state: AppState) -> Router {
    // The error layer wraps the routed app from outside: axum adds a 405's `Allow` header on
    // the way out of the route, after any layer of the routes has run, and the message names it.
    Router::new()
        .fallback_service(routes(state))
        .layer(middleware::from_fn(rejections::json_errors))
        .layer(TraceLayer::new_for_http())
}

fn routes(state: AppState) -> Router {
    // Each submodule routes its own paths.
    let parts = [
        api::router(),
        bulk::router(),
        sse::router(),
        files::router(),
        archive::router(),
        charts::router(),
        pages::router(),
        run_live::router(),
        forms::router(),
        manage::router(),
        compare::router(),
        evals::router(),
    ];
    parts
        .into_iter()
        .fold(Router::new(), |all, part| all.merge(part))
        .route("/login", get(auth::login_form).post(auth::login))
        .route("/logout", axum::routing::post(auth::logout))
        .route(
            "/static/app.js",
            asset(JS, include_str!("../../static/app.js")),
        )
        .route(
            "/static/run.js",
            asset(JS, include_str!("../../static/run.js")),
        )
        .route(
            "/static/compare.js",
            asset(JS, include_str!("../../static/compare.js")),
        )
        .route(
            "/static/style.css",
            asset(
                "text/css; charset=utf-8",
                include_str!("../../static/style.css"),
            ),
        )
        .fallback(|| async { ApiError::NotFound("page".into()) })
        .layer(middleware::from_fn_with_state(state.clone(), streams::cap))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            guard_requests,
        ))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(RequestBodyLimitLayer::new(BODY_LIMIT))
        // A body promised but trickled or never sent: 408 instead of a task held for ever.
        .layer(RequestBodyTimeoutLayer::new(
            state.guard().limits.body_timeout,
        ))
        .with_state(state)
}

// Embedded, so the binary serves its assets from any working directory (no CDN, no files).
const JS: &str = "text/javascript; charset=utf-8";

/// The handler of one embedded asset.
fn asset(mime: &'static str, body: &'static str) -> MethodRouter<AppState> {
    get(move || async move { ([(header::CONTENT_TYPE, mime)], body) })
}

/// Run the executor's work for a request (queue markers, signals, `scancel`, process spawns,
/// index writes) on a blocking thread, so the runtime's other requests and streams go on.
pub(crate) async fn blocking<T, F>(st: &AppState, f: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&AppState) -> Result<T, ApiError> + Send + 'static,
{
    let st = st.clone();
    tokio::task::spawn_blocking(move || f(&st))
        .await
        .map_err(ApiError::internal)?
}

/// Middleware running [`guard::check`] with this server's settings.
async fn guard_requests(State(state): State<AppState>, req: Request, next: Next) -> Response {
    match guard::check(state.guard(), &req) {
        Ok(()) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}

/// `Path<T>` of a route with a run id (`{id}`, a [`RunId`] checked by its `Deserialize`). An id
/// that cannot name a run answers 404 like a run that does not exist, not axum's 400: to a
/// client both are "no such run".
pub struct RunPath<T = RunId>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for RunPath<T> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        let rejection = match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(v)) => return Ok(RunPath(v)),
            Err(rejection) => rejection,
        };
        let raw = RawPathParams::from_request_parts(parts, state).await;
        let bad_id = raw.ok().and_then(|params| {
            let (_, id) = params.iter().find(|(k, _)| *k == "id")?;
            id.parse::<RunId>().is_err().then(|| id.to_string())
        });
        Err(match bad_id {
            Some(id) => ApiError::NotFound(format!("run {id:?}")).into_response(),
            None => rejection.into_response(),
        })
    }
}

/// The directory of a run the server knows (indexed, or on disk and not yet indexed); 404
/// otherwise.
pub fn run_dir(state: &AppState, id: &RunId) -> Result<RunDir, ApiError> {
    let dir = state.run_dir(id);
    if state.index().get(id)?.is_none() && !dir.root().is_dir() {
        return Err(ApiError::NotFound(format!("run {id}")));
    }
    Ok(dir)
}

/// The directory and indexed summary of a run; 404 when the index has no row for it.
pub fn indexed_run(state: &AppState, id: &RunId) -> Result<(RunDir, RunSummary), ApiError> {
    let summary = state.index().get(id)?;
    let summary = summary.ok_or_else(|| ApiError::NotFound(format!("run {id}")))?;
    Ok((state.run_dir(id), summary))
}
