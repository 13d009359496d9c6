//! A cap on open event streams (`GET /api/events`, `GET /api/runs/{id}/events`). Each stream
//! holds a socket and a follower subscription for as long as the browser tab is open, so an
//! unbounded number of them exhausts file descriptors (and then the trainers cannot start).
//! Beyond the cap a new stream is answered 503 with `Retry-After`; `EventSource` reconnects by
//! itself. The permit travels inside the response body, so it is returned when the stream ends
//! (client gone or server shutting down), whichever handler produced it.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;

use crate::error::ApiError;
use crate::state::AppState;

/// Seconds a refused client is asked to wait.
const RETRY_AFTER_S: u64 = 5;

fn is_stream(req: &Request) -> bool {
    let path = req.uri().path();
    req.method() == Method::GET
        && (path == "/api/events" || (path.starts_with("/api/runs/") && path.ends_with("/events")))
}

/// Middleware: count event streams against [`crate::listen::Limits::max_streams`].
pub async fn cap(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if !is_stream(&req) {
        return next.run(req).await;
    }
    let Ok(permit) = state.streams().clone().try_acquire_owned() else {
        let max = state.guard().limits.max_streams;
        let msg = format!(
            "too many open event streams ({max}, --max-streams); retry in {RETRY_AFTER_S} s"
        );
        let mut resp = ApiError::Unavailable(msg).into_response();
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_S));
        return resp;
    };
    let (parts, body) = next.run(req).await.into_parts();
    let stream = body.into_data_stream().map(move |chunk| {
        let _held = &permit;
        chunk
    });
    Response::from_parts(parts, Body::from_stream(stream))
}
