//! The token, when one is configured (`FAIRTAT_TOKEN` or `--token-file`; never argv, which `ps`
//! shows). Off loopback every route except the login and the static assets needs it; on
//! loopback reads stay open and state changes need it.
//!
//! Accepted: `Authorization: Bearer <token>`, the session cookie set by the login form
//! (`POST /login`; `HttpOnly; SameSite=Strict; Path=/; Max-Age`, named after the port so
//! dashboards on two ports keep their own, holding an expiring signed session rather than the
//! token, see [`super::sessions`]; `POST /logout` ends it), or a `token` field in an
//! url-encoded form. Comparisons are of fixed-size SHA-256 digests, so neither a prefix nor the
//! token's length shows in the response time; wrong tokens are throttled per client.

use axum::body::{to_bytes, Body};
use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequest, Query, Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Form;

use crate::error::ApiError;
use crate::guard::BODY_LIMIT;
use crate::sessions::same;
use crate::sessions::SESSION_TTL;
use crate::state::AppState;

/// Shortest token accepted off loopback.
pub const MIN_TOKEN_LEN: usize = 16;

/// Name of the session cookie for this server's port.
fn cookie_name(state: &AppState) -> String {
    format!("fairtat_session_{}", state.guard().bound.port())
}

/// The values of this server's session cookie in the request.
fn session_cookies<'a>(state: &AppState, h: &'a HeaderMap) -> Vec<&'a str> {
    let name = cookie_name(state);
    h.get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .filter(|(k, _)| *k == name)
        .map(|(_, v)| v)
        .collect()
}

/// What the headers carry: the token (bearer or a live session), a wrong bearer token, or
/// nothing to check.
#[derive(PartialEq)]
enum Credentials {
    Valid,
    Wrong,
    None,
}

fn credentials(state: &AppState, h: &HeaderMap, token: &str) -> Credentials {
    if let Some(v) = h.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        if let Some(t) = v.strip_prefix("Bearer ") {
            return match same(t.trim(), token) {
                true => Credentials::Valid,
                false => Credentials::Wrong,
            };
        }
    }
    let sessions = session_cookies(state, h);
    match sessions.iter().any(|v| state.sessions().valid(token, v)) {
        true => Credentials::Valid,
        // An expired or revoked session is not a guess: it goes to the login page unthrottled.
        false => Credentials::None,
    }
}

/// The client's address when the server knows it (not for in-process requests).
fn client(req: &Request) -> Option<IpAddr> {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
}

/// 429 with `Retry-After` for a client that used up its wrong tokens.
fn throttled(secs: u64) -> Response {
    let msg = format!("too many wrong tokens from this address; try again in {secs} s");
    let mut resp = ApiError::TooMany(msg).into_response();
    resp.headers_mut()
        .insert(header::RETRY_AFTER, header::HeaderValue::from(secs));
    resp
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
    if is_open_path(req.uri().path()) {
        return next.run(req).await;
    }
    let who = client(&req);
    match credentials(&state, req.headers(), token) {
        Credentials::Valid => return next.run(req).await,
        Credentials::Wrong => {
            if let Some(secs) = state.sessions().throttled(who) {
                return throttled(secs);
            }
            state.sessions().failed(who);
            return ApiError::Unauthorized.into_response();
        }
        Credentials::None => {}
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
    if let Some(secs) = state.sessions().throttled(who) {
        return throttled(secs);
    }
    if !form_token_ok(&bytes, token).await {
        state.sessions().failed(who);
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
pub async fn login(State(state): State<AppState>, req: Request) -> Response {
    let who = client(&req);
    let f = match Form::<LoginForm>::from_request(req, &state).await {
        Ok(Form(f)) => f,
        Err(e) => return e.into_response(),
    };
    let Some(t) = state.token() else {
        return Redirect::to("/").into_response();
    };
    if let Some(secs) = state.sessions().throttled(who) {
        return throttled(secs);
    }
    if !same(t, &f.token) {
        state.sessions().failed(who);
        let msg = ApiError::Unauthorized.to_string();
        return login_page(StatusCode::UNAUTHORIZED, &msg);
    }
    let cookie = format!(
        "{}={}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}",
        cookie_name(&state),
        state.sessions().issue(t),
        SESSION_TTL.as_secs()
    );
    ([(header::SET_COOKIE, cookie)], Redirect::to("/")).into_response()
}

/// `POST /logout`: end this browser's session (its cookie no longer works, even if copied) and
/// go to the login page.
pub async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Response {
    for v in session_cookies(&state, &headers) {
        state.sessions().revoke(v);
    }
    let cookie = format!(
        "{}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0",
        cookie_name(&state)
    );
    let to = if state.token().is_some() {
        "/login"
    } else {
        "/"
    };
    ([(header::SET_COOKIE, cookie)], Redirect::to(to)).into_response()
}

/// Least estimated entropy of a token off loopback, in bits, and least distinct characters.
/// The estimate below undercounts short random tokens (16 random hex digits score about 50
/// though they hold 64), so the bar is set where no random token of 16 characters falls.
pub const MIN_TOKEN_BITS: f64 = 40.0;
pub const MIN_TOKEN_DISTINCT: usize = 8;

/// A cautious entropy estimate: the length times the empirical bits per character (Shannon
/// entropy of the token's own character frequencies), so `aaaaaaaaaaaaaaaa` scores 0 and
/// `abababab...` 1 bit per character however long it is.
pub fn token_bits(token: &str) -> f64 {
    let chars: Vec<char> = token.chars().collect();
    let n = chars.len() as f64;
    let mut counts = std::collections::HashMap::new();
    for c in &chars {
        *counts.entry(*c).or_insert(0usize) += 1;
    }
    let per_char: f64 = counts
        .values()
        .map(|&k| {
            let p = k as f64 / n;
            -p * p.log2()
        })
        .sum();
    per_char * n
}

/// The token off loopback must resist guessing: long enough and not repetitive.
pub fn check_token_strength(loopback: bool, token: Option<&str>) -> anyhow::Result<()> {
    let Some(t) = token.filter(|_| !loopback) else {
        return Ok(());
    };
    if t.chars().count() < MIN_TOKEN_LEN {
        anyhow::bail!(
            "the token is too short for a non-loopback address: use at least {MIN_TOKEN_LEN} \
             characters (e.g. `openssl rand -hex 16`)"
        );
    }
    let bits = token_bits(t);
    let distinct = t.chars().collect::<std::collections::HashSet<_>>().len();
    if bits < MIN_TOKEN_BITS || distinct < MIN_TOKEN_DISTINCT {
        anyhow::bail!(
            "the token is too predictable for a non-loopback address (about {bits:.0} bits; \
             at least {MIN_TOKEN_BITS:.0} needed): use random characters, e.g. `openssl rand \
             -hex 16`"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_compare_equal_only_for_equal_secrets() {
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd") && !same("abc", "abcd") && !same("", "a"));
        assert!(check_token_strength(false, Some("short")).is_err());
        assert!(check_token_strength(false, Some("0123456789abcdef")).is_ok());
        assert!(check_token_strength(true, Some("short")).is_ok());
        // Long enough but guessable: one repeated character, two alternating ones.
        let err = check_token_strength(false, Some(&"a".repeat(16))).unwrap_err();
        assert!(err.to_string().contains("predictable"), "{err}");
        assert!(check_token_strength(false, Some(&"ab".repeat(20))).is_err());
        assert!(check_token_strength(false, Some("9f86d081884c7d659a2feaa0c55ad015")).is_ok());
    }
}
