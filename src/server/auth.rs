//! Token check for state-changing requests when a token is configured.
//!
//! Accepted: `Authorization: Bearer <token>`, the `fairtat_token` cookie (set by
//! `GET /login?token=...`, `SameSite=Strict` so other sites cannot ride on it), or a `token`
//! field in an url-encoded form. Reads (GET/HEAD) stay open: the dashboard shows, it does not act.

use axum::body::{to_bytes, Body};
use axum::extract::{FromRequest, Query, Request, State};
use axum::http::{header, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;

use super::error::ApiError;
use super::state::{AppState, BODY_LIMIT};

pub const COOKIE: &str = "fairtat_token";

/// Compare without an early exit, so response time does not reveal a prefix.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

fn header_token(req: &Request) -> Option<String> {
    let h = req.headers();
    if let Some(v) = h.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        if let Some(t) = v.strip_prefix("Bearer ") {
            return Some(t.trim().to_string());
        }
    }
    h.get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_string())
}

/// Middleware: let reads through; require the token on everything else.
pub async fn require_token(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let Some(token) = state.token.clone() else {
        return next.run(req).await;
    };
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(req).await;
    }
    if header_token(&req).is_some_and(|t| same(&t, &token)) {
        return next.run(req).await;
    }
    let is_form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return ApiError::Unauthorized.into_response();
    }
    // Buffer the (size-limited) form to look for the token field, then hand it on unchanged.
    let (parts, body) = req.into_parts();
    let bytes = match to_bytes(body, BODY_LIMIT).await {
        Ok(b) => b,
        Err(_) => return ApiError::TooLarge(BODY_LIMIT).into_response(),
    };
    let probe = Request::builder()
        .method(Method::POST)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(bytes.clone()))
        .expect("static request parts are valid");
    let ok = match Form::<Vec<(String, String)>>::from_request(probe, &()).await {
        Ok(Form(pairs)) => pairs.iter().any(|(k, v)| k == "token" && same(v, &token)),
        Err(_) => false,
    };
    if !ok {
        return ApiError::Unauthorized.into_response();
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

#[derive(serde::Deserialize)]
pub struct LoginQuery {
    token: String,
}

/// `GET /login?token=...`: set the cookie the pages' forms then carry.
pub async fn login(State(state): State<AppState>, Query(q): Query<LoginQuery>) -> Response {
    match state.token.as_deref() {
        Some(t) if same(t, &q.token) => {
            let cookie = format!("{COOKIE}={}; HttpOnly; SameSite=Strict; Path=/", q.token);
            ([(header::SET_COOKIE, cookie)], Redirect::to("/")).into_response()
        }
        Some(_) => ApiError::Unauthorized.into_response(),
        None => Redirect::to("/").into_response(),
    }
}

/// Whether this request carries the token (pages hide buttons otherwise).
pub fn authorized(state: &AppState, headers: &axum::http::HeaderMap) -> bool {
    let Some(token) = &state.token else {
        return true;
    };
    let mut req = Request::new(Body::empty());
    *req.headers_mut() = headers.clone();
    header_token(&req).is_some_and(|t| same(&t, token))
}
