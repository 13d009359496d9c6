//! The token, when one is configured (`FAIRTAT_TOKEN` or `--token-file`; never argv, which `ps`
//! shows). Off loopback every route except the login and the static assets needs it; on
//! loopback reads stay open and state changes need it.
//!
//! Accepted: `Authorization: Bearer <token>`, the session cookie set by the login form
//! (`POST /login`; `HttpOnly; SameSite=Strict; Path=/`, named after the port so dashboards on
//! two ports keep their own, and holding a digest of the token rather than the token), or a
//! `token` field in an url-encoded form. Comparisons are of fixed-size SHA-256 digests, so
//! neither a prefix nor the token's length shows in the response time.

use axum::body::{to_bytes, Body};
use axum::extract::{FromRequest, Query, Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Form;
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::guard::BODY_LIMIT;
use crate::state::AppState;

/// Shortest token accepted off loopback.
pub const MIN_TOKEN_LEN: usize = 16;

fn digest(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    h.finalize().into()
}

/// Constant-time equality of two secrets of any length (compares their digests).
pub fn same(a: &str, b: &str) -> bool {
    let (x, y) = (digest(&[a.as_bytes()]), digest(&[b.as_bytes()]));
    x.iter()
        .zip(y.iter())
        .fold(0u8, |acc, (p, q)| acc | (p ^ q))
        == 0
}

/// Name of the session cookie for this server's port.
fn cookie_name(state: &AppState) -> String {
    format!("fairtat_session_{}", state.guard().bound.port())
}

/// The cookie's value: a digest of the token (a cookie leaked to another port's service does
/// not reveal the token itself).
fn session_value(token: &str) -> String {
    digest(&[b"fairtat-session", token.as_bytes()])
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether the headers carry the token (bearer) or the session cookie.
fn carries_token(state: &AppState, h: &HeaderMap, token: &str) -> bool {
    if let Some(v) = h.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        if let Some(t) = v.strip_prefix("Bearer ") {
            return same(t.trim(), token);
        }
    }
    let name = cookie_name(state);
    let want = session_value(token);
    h.get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .any(|(k, v)| k == name && same(v, &want))
}

/// Routes open without the token: the login itself and the embedded assets.
fn is_open_path(path: &str) -> bool {
    path == "/login" || path.starts_with("/static/")
}

/// Middleware: off loopback everything but [`is_open_path`] needs the token; on loopback
/// reads pass and state changes need it.
pub async fn require_token(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let Some(token) = state.token() else {
        return next.run(req).await;
    };
    if is_open_path(req.uri().path()) || carries_token(&state, req.headers(), token) {
        return next.run(req).await;
    }
    let read = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if read {
        if state.guard().loopback() {
            return next.run(req).await;
        }
        let wants_html = req
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("text/html"));
        if wants_html {
            return Redirect::to("/login").into_response();
        }
        return ApiError::Unauthorized.into_response();
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
    if !form_token_ok(&bytes, &token).await {
        return ApiError::Unauthorized.into_response();
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

async fn form_token_ok(bytes: &axum::body::Bytes, token: &str) -> bool {
    let probe = Request::builder()
        .method(Method::POST)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(bytes.clone()))
        .expect("static request parts are valid");
    match Form::<Vec<(String, String)>>::from_request(probe, &()).await {
        Ok(Form(pairs)) => pairs.iter().any(|(k, v)| k == "token" && same(v, token)),
        Err(_) => false,
    }
}

#[derive(serde::Deserialize)]
pub struct LoginQuery {
    token: Option<String>,
}

fn login_page(status: StatusCode, error: &str) -> Response {
    let error = if error.is_empty() {
        String::new()
    } else {
        format!(
            "<p class=\"error\" id=\"login-error\">{}</p>",
            super::rejections::escape(error)
        )
    };
    let page = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>fairtat login</title>\
         <link rel=\"stylesheet\" href=\"/static/style.css\"></head><body><main>\
         <h1>fairtat</h1>{error}<form method=\"post\" action=\"/login\" id=\"login-form\">\
         <label>Token <input type=\"password\" name=\"token\" autocomplete=\"current-password\">\
         </label> <button type=\"submit\">Log in</button></form></main></body></html>"
    );
    (status, Html(page)).into_response()
}

/// `GET /login`: the login form. A token in the URL (the old `?token=`) is refused: URLs end
/// up in history, logs and `Referer` headers.
pub async fn login_form(Query(q): Query<LoginQuery>) -> Response {
    if q.token.is_some() {
        return ApiError::BadRequest(
            "the token is not accepted in the URL; use the login form (POST /login with a \
             `token` field) or an `Authorization: Bearer` header"
                .into(),
        )
        .into_response();
    }
    login_page(StatusCode::OK, "")
}

#[derive(serde::Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    token: String,
}

/// `POST /login` (form field `token`): set the session cookie and go to the runs page.
pub async fn login(State(state): State<AppState>, Form(f): Form<LoginForm>) -> Response {
    match state.token() {
        Some(t) if same(t, &f.token) => {
            let cookie = format!(
                "{}={}; HttpOnly; SameSite=Strict; Path=/",
                cookie_name(&state),
                session_value(t)
            );
            ([(header::SET_COOKIE, cookie)], Redirect::to("/")).into_response()
        }
        Some(_) => login_page(
            StatusCode::UNAUTHORIZED,
            &ApiError::Unauthorized.to_string(),
        ),
        None => Redirect::to("/").into_response(),
    }
}

/// The token off loopback must be long enough to resist guessing.
pub fn check_token_strength(loopback: bool, token: Option<&str>) -> anyhow::Result<()> {
    match token {
        Some(t) if !loopback && t.chars().count() < MIN_TOKEN_LEN => anyhow::bail!(
            "the token is too short for a non-loopback address: use at least {MIN_TOKEN_LEN} \
             characters (e.g. `openssl rand -hex 16`)"
        ),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_compare_equal_only_for_equal_secrets() {
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd") && !same("abc", "abcd") && !same("", "a"));
        assert_eq!(session_value("x").len(), 64);
        assert_ne!(session_value("x"), session_value("y"));
        assert!(check_token_strength(false, Some("short")).is_err());
        assert!(check_token_strength(false, Some("0123456789abcdef")).is_ok());
        assert!(check_token_strength(true, Some("short")).is_ok());
    }
}
