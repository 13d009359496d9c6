//! One error shape for every answer: axum's own errors (extractor rejections of `Json`, `Form`,
//! `Query`, `Path`, the 405 of a wrong method, the body limit's 413) are plain text or empty;
//! this layer turns them into the project's `{"error": ..., "field": ...}` body with the same
//! status. A browser (it asks for `text/html`) posting a form gets the message as a small page
//! instead of raw JSON.

use axum::body::to_bytes;
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// How tower-http's body timeout error reads inside axum's rejection text.
const BODY_TIMEOUT_TEXT: &str = "data was not received within the designated timeout";

/// Error bodies this layer reads are short; a longer one is cut.
const MAX_ERROR_BODY: usize = 16 * 1024;

/// HTML-escape text for the error page and inline form errors.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn content_type(resp: &Response) -> &str {
    resp.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// Middleware: map non-JSON error answers to the JSON error body (or, for a browser on a page
/// route, to an HTML page with the same message).
pub async fn json_errors(req: Request, next: Next) -> Response {
    let wants_html = !req.uri().path().starts_with("/api/")
        && req
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("text/html"));
    let method = req.method().clone();
    let resp = next.run(req).await;
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let ct = content_type(&resp).to_ascii_lowercase();
    if ct.starts_with("text/html") || (ct.starts_with("application/json") && !wants_html) {
        return resp;
    }
    let allow = resp.headers().get(header::ALLOW).cloned();
    let is_json = ct.starts_with("application/json");
    let bytes = to_bytes(resp.into_body(), MAX_ERROR_BODY)
        .await
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes).trim().to_string();
    let (mut message, field) = if is_json {
        let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        (
            v["error"].as_str().unwrap_or(&text).to_string(),
            v["field"].as_str().map(str::to_string),
        )
    } else {
        (describe(status, &method, &text, allow.as_ref()), None)
    };
    // The body timeout (`RequestBodyTimeoutLayer`) surfaces as a failed body read inside an
    // extractor: it is the client's slowness, so 408, said plainly.
    let status = if message.contains(BODY_TIMEOUT_TEXT) {
        message = "the request body did not arrive in time (--body-timeout)".into();
        StatusCode::REQUEST_TIMEOUT
    } else {
        status
    };
    let mut out = if wants_html {
        let field_line = field
            .as_deref()
            .map(|f| format!("<p>field: <code>{}</code></p>", escape(f)))
            .unwrap_or_default();
        let page = format!(
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>fairtat: error</title>\
             <link rel=\"stylesheet\" href=\"/static/style.css\"></head><body><main>\
             <p class=\"error\" id=\"error\">{}</p>{field_line}\
             <p><a href=\"javascript:history.back()\">back</a></p></main></body></html>",
            escape(&message)
        );
        (status, Html(page)).into_response()
    } else {
        (status, Json(json!({ "error": message, "field": field }))).into_response()
    };
    if let Some(a) = allow {
        out.headers_mut().insert(header::ALLOW, a);
    }
    out
}

/// The message for an axum error answer: its own text, or one for an empty 405/404.
fn describe(
    status: StatusCode,
    method: &axum::http::Method,
    text: &str,
    allow: Option<&HeaderValue>,
) -> String {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        return crate::ApiError::TooLarge(crate::guard::BODY_LIMIT).to_string();
    }
    if status == StatusCode::METHOD_NOT_ALLOWED {
        let allowed = allow.and_then(|a| a.to_str().ok()).unwrap_or("");
        return format!("method {method} is not allowed here; allowed: {allowed}");
    }
    if !text.is_empty() {
        return text.to_string();
    }
    status
        .canonical_reason()
        .unwrap_or("error")
        .to_ascii_lowercase()
}
