//! The hardening bad-input suite (issue 9), requests through `oneshot`: deep keys, cross-site
//! and foreign-Host requests, reads without a token off loopback, the login cookie, unknown
//! devices, grid overflow, 405/404/rejections as JSON errors and long numbers. Every case checks
//! the status and the error body, then that the server still answers.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::*;

/// `[[[...1...]]]`, `n` lists deep (serde_json parses at most 128).
fn nested_lists(n: usize) -> serde_json::Value {
    (0..n).fold(serde_json::json!(1), |v, _| serde_json::json!([v]))
}

fn deep(parts: usize) -> String {
    vec!["a"; parts].join(".")
}

#[tokio::test]
async fn deep_keys_are_refused_without_crashing() {
    let tmp = tempfile::tempdir().unwrap();
    let st = start(options(tmp.path(), Some("/bin/false".into()), 1)).await;
    for parts in [12_000, 100_000] {
        let k = deep(parts);
        let bodies = [
            serde_json::json!({"preset": "quick", "set": {k.clone(): 1}}),
            serde_json::json!({"toml": format!("{k} = 1\n")}),
            serde_json::json!({"toml": format!("[grid]\n\"{k}\" = [1, 2]\n")}),
            serde_json::json!({"grid": {k.clone(): [1, 2]}}),
            serde_json::json!({"tags": nested_lists(100)}),
            serde_json::json!({"toml": format!("x = {}{}", "[".repeat(parts), "]".repeat(parts))}),
        ];
        for body in bodies {
            let text = body.to_string();
            let (code, b) = post_json(&st, "/api/runs", &text).await;
            if text.len() > 64 * 1024 {
                // Over the body limit before any parsing.
                assert_error(code, StatusCode::PAYLOAD_TOO_LARGE, &b, &["too large"]);
            } else {
                assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
                let msg = json(&b)["error"].as_str().unwrap().to_string();
                assert!(
                    msg.contains("dotted parts") || msg.contains("nested"),
                    "{parts}: {msg}"
                );
                assert!(msg.len() < 400, "the message does not echo the key: {msg}");
            }
            still_answers(&st).await;
        }
    }
    // The same TOML sent as text/plain is refused before it is read.
    let body = serde_json::json!({"toml": format!("{} = 1", deep(12_000))}).to_string();
    let (code, _, b) = post_with(&st, "/api/runs", &body, &[("content-type", "text/plain")]).await;
    assert_error(
        code,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        &b,
        &["application/json"],
    );
    let (_, b) = get(&st, "/api/runs").await;
    assert_eq!(json(&b).as_array().unwrap().len(), 0, "nothing created");
    st.shutdown();
}

#[tokio::test]
async fn cross_site_requests_and_foreign_hosts_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let st = start(options(tmp.path(), Some("/bin/false".into()), 1)).await;
    let quick = r#"{"preset":"quick"}"#;
    let (code, _, b) = post_with(&st, "/api/runs", quick, &[("content-type", "text/plain")]).await;
    assert_error(
        code,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        &b,
        &["application/json", "text/plain"],
    );
    let (code, _, b) = post_with(&st, "/api/runs", quick, &[]).await;
    assert_error(
        code,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        &b,
        &["application/json"],
    );
    let json_ct = ("content-type", "application/json");
    let evil = [
        json_ct,
        ("origin", "http://evil.example"),
        ("host", "127.0.0.1:8080"),
    ];
    let (code, _, b) = post_with(&st, "/api/runs", quick, &evil).await;
    assert_error(
        code,
        StatusCode::FORBIDDEN,
        &b,
        &["cross-origin", "evil.example"],
    );
    let (code, _, b) = post_with(&st, "/api/runs", quick, &[json_ct, ("origin", "null")]).await;
    assert_error(code, StatusCode::FORBIDDEN, &b, &["cross-origin"]);
    let site = [json_ct, ("sec-fetch-site", "cross-site")];
    let (code, _, b) = post_with(&st, "/api/runs", quick, &site).await;
    assert_error(code, StatusCode::FORBIDDEN, &b, &["cross-site"]);
    // A cross-site form post to the pages' routes.
    let form = [
        ("content-type", "application/x-www-form-urlencoded"),
        ("origin", "http://evil.example"),
    ];
    let (code, _, b) = post_with(&st, "/runs/new", "name=x", &form).await;
    assert_error(code, StatusCode::FORBIDDEN, &b, &["cross-origin"]);
    // DNS rebinding: the page's own host name arrives in Host, on reads too.
    for (method, uri) in [("GET", "/api/runs"), ("GET", "/"), ("POST", "/api/runs")] {
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .header("host", "rebind.evil.example:8080")
            .header("content-type", "application/json")
            .body(Body::from(quick))
            .unwrap();
        let (code, _, b) = send(&st, req).await;
        assert_error(
            code,
            StatusCode::FORBIDDEN,
            &b,
            &["Host", "rebind.evil.example"],
        );
    }
    // The dashboard's own same-origin request passes.
    let same = [
        json_ct,
        ("host", "127.0.0.1:8080"),
        ("origin", "http://127.0.0.1:8080"),
        ("sec-fetch-site", "same-origin"),
    ];
    let (code, _, b) = post_with(&st, "/api/runs", quick, &same).await;
    assert_eq!(code, StatusCode::CREATED, "{b}");
    st.shutdown();
}

const TOKEN: &str = "0123456789abcdef-token";

#[tokio::test]
async fn off_loopback_every_read_needs_the_token() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path().join("runs");
    let mut opts = options(tmp.path(), Some("/bin/false".into()), 1);
    opts.addr = "10.9.8.7:8080".parse().unwrap();
    opts.token = Some(TOKEN.into());
    std::fs::create_dir_all(runs.join("r1").join("checkpoints")).unwrap();
    std::fs::write(runs.join("r1").join("config.toml"), "name = \"r1\"\n").unwrap();
    std::fs::write(runs.join("r1/checkpoints/last.safetensors"), "weights").unwrap();
    let st = start(opts).await;
    for uri in [
        "/api/runs",
        "/api/runs/r1",
        "/api/runs.csv",
        "/runs/r1/files/checkpoints/last.safetensors",
        "/runs/r1/files/config.toml",
        "/api/runs/r1/events",
        "/",
    ] {
        let (code, b) = get(&st, uri).await;
        assert_error(code, StatusCode::UNAUTHORIZED, &b, &["token"]);
    }
    // A browser asking for a page is sent to the login form; assets stay open.
    let req = Request::get("/")
        .header("accept", "text/html")
        .body(Body::empty())
        .unwrap();
    let (code, headers, _) = send(&st, req).await;
    assert_eq!(code, StatusCode::SEE_OTHER);
    assert_eq!(headers["location"], "/login");
    assert_eq!(get(&st, "/static/app.js").await.0, StatusCode::OK);
    let (code, b) = get(&st, "/login").await;
    assert!(
        code == StatusCode::OK && b.contains("method=\"post\""),
        "{b}"
    );
    // The token never travels in the URL.
    let (code, b) = get(&st, &format!("/login?token={TOKEN}")).await;
    assert_error(
        code,
        StatusCode::BAD_REQUEST,
        &b,
        &["not accepted in the URL"],
    );
    // Bearer works; a wrong one (of any length) does not.
    for (bearer, want) in [(TOKEN, StatusCode::OK), ("x", StatusCode::UNAUTHORIZED)] {
        let req = Request::get("/api/runs")
            .header("authorization", format!("Bearer {bearer}"))
            .body(Body::empty())
            .unwrap();
        assert_eq!(send(&st, req).await.0, want);
    }
    // The POST login sets a strict, HttpOnly, path-wide cookie that does not hold the token.
    let form = [("content-type", "application/x-www-form-urlencoded")];
    let (code, _, b) = post_with(&st, "/login", "token=wrong", &form).await;
    assert!(
        code == StatusCode::UNAUTHORIZED && b.contains("login-error"),
        "{b}"
    );
    let (code, headers, _) = post_with(&st, "/login", &format!("token={TOKEN}"), &form).await;
    assert_eq!(code, StatusCode::SEE_OTHER);
    let cookie = headers["set-cookie"].to_str().unwrap().to_string();
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attr), "{attr} missing: {cookie}");
    }
    assert!(!cookie.contains(TOKEN), "{cookie}");
    let pair = cookie.split(';').next().unwrap().to_string();
    let req = Request::get("/runs/r1/files/config.toml")
        .header("cookie", &pair)
        .body(Body::empty())
        .unwrap();
    let (code, _, b) = send(&st, req).await;
    assert_eq!(code, StatusCode::OK, "{b}");
    // The session expires (Max-Age, and the server checks its issue time), and logging out
    // ends it for good: the same cookie, replayed, no longer opens anything.
    let max_age: u64 = cookie
        .split(';')
        .find_map(|a| a.trim().strip_prefix("Max-Age="))
        .expect("Max-Age")
        .parse()
        .unwrap();
    assert!((3600..=86_400).contains(&max_age), "{cookie}");
    let (code, headers, _) = post_with(&st, "/logout", "", &[("cookie", &pair)]).await;
    assert_eq!(
        (code, &headers["location"]),
        (StatusCode::SEE_OTHER, &"/login".parse().unwrap())
    );
    assert!(headers["set-cookie"]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    let req = Request::get("/api/runs")
        .header("cookie", &pair)
        .body(Body::empty())
        .unwrap();
    assert_eq!(send(&st, req).await.0, StatusCode::UNAUTHORIZED);
    // Guessing is throttled: after a few wrong tokens, 429 with Retry-After, while the right
    // bearer token still works.
    let mut throttled = None;
    for _ in 0..=fairtat::server::sessions::MAX_FAILURES {
        let req = Request::get("/api/runs")
            .header("authorization", "Bearer guess-0123456789")
            .body(Body::empty())
            .unwrap();
        let (code, headers, b) = send(&st, req).await;
        if code == StatusCode::TOO_MANY_REQUESTS {
            throttled = Some((headers, b));
            break;
        }
        assert_eq!(code, StatusCode::UNAUTHORIZED);
    }
    let (headers, b) = throttled.expect("wrong tokens are throttled");
    let wait: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    assert!(
        json(&b)["error"]
            .as_str()
            .unwrap()
            .contains("too many wrong tokens"),
        "{b}"
    );
    let (code, _, b) = post_with(&st, "/login", "token=wrong-again", &form).await;
    assert_eq!(code, StatusCode::TOO_MANY_REQUESTS, "{b}");
    let req = Request::get("/api/runs")
        .header("authorization", format!("Bearer {TOKEN}"))
        .body(Body::empty())
        .unwrap();
    assert_eq!(send(&st, req).await.0, StatusCode::OK);
    // Foreign host names are refused off loopback too; the bound address is fine.
    let req = Request::get("/static/app.js")
        .header("host", "evil:8080")
        .body(Body::empty());
    let (code, _, b) = send(&st, req.unwrap()).await;
    assert_error(code, StatusCode::FORBIDDEN, &b, &["Host"]);
    let req = Request::get("/static/app.js")
        .header("host", "10.9.8.7:8080")
        .body(Body::empty());
    assert_eq!(send(&st, req.unwrap()).await.0, StatusCode::OK);
    st.shutdown();
}

#[tokio::test]
async fn unknown_device_grid_overflow_long_numbers_and_wrong_methods() {
    let tmp = tempfile::tempdir().unwrap();
    let st = start(options(tmp.path(), Some("/bin/false".into()), 1)).await;
    let gpus = fairtat::server::process::detect_gpus();
    let dev = format!("cuda:{}", gpus.len() + 7);
    let body = format!(r#"{{"preset":"quick","set":{{"device":"{dev}"}}}}"#);
    let (code, b) = post_json(&st, "/api/runs", &body).await;
    assert_error(
        code,
        StatusCode::UNPROCESSABLE_ENTITY,
        &b,
        &[&dev, "not present", "cpu"],
    );
    assert_eq!(json(&b)["field"], "device");
    // 32 axes of 4 values: 2^64 combinations, which an unchecked product wraps to 0.
    let keys: Vec<&str> = fairtat::config::fields::FIELDS
        .iter()
        .map(|f| f.key)
        .filter(|k| k.contains('.'))
        .collect();
    let axes: String = keys[..32]
        .iter()
        .map(|k| format!("\"{k}\" = [1, 2, 3, 4]\n"))
        .collect();
    let body = serde_json::json!({"toml": format!("[grid]\n{axes}")}).to_string();
    let (code, b) = post_json(&st, "/api/runs", &body).await;
    assert_error(
        code,
        StatusCode::UNPROCESSABLE_ENTITY,
        &b,
        &["combinations", "at most 64"],
    );
    let (code, b) = post_json(&st, "/api/runs", r#"{"attack":{"eps":1e308}}"#).await;
    assert_error(
        code,
        StatusCode::UNPROCESSABLE_ENTITY,
        &b,
        &["1e308", "out of range"],
    );
    assert!(b.len() < 200, "no 309 digits: {b}");
    for (method, uri) in [
        ("PUT", "/api/runs"),
        ("DELETE", "/api/runs/r1/metrics"),
        ("PATCH", "/"),
    ] {
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .body(Body::empty())
            .unwrap();
        let (code, headers, b) = send(&st, req).await;
        assert_error(
            code,
            StatusCode::METHOD_NOT_ALLOWED,
            &b,
            &[method, "allowed"],
        );
        // The methods allowed are in the Allow header and, the same, in the message.
        let allow = headers["allow"].to_str().unwrap();
        assert!(allow.contains("GET"), "{allow}");
        assert!(b.contains(&format!("allowed: {allow}")), "{b}");
    }
    let (code, b) = get(&st, "/no/such/page").await;
    assert_error(code, StatusCode::NOT_FOUND, &b, &["not found"]);
    // Extractor rejections (JSON, form) answer the same JSON shape.
    let (code, b) = post_json(&st, "/api/runs/r1/evaluate", "{not json").await;
    assert!(code.is_client_error(), "{b}");
    assert!(json(&b)["error"].is_string(), "{b}");
    let form = [("content-type", "application/x-www-form-urlencoded")];
    let (code, _, b) = post_with(&st, "/grids/new", "", &form).await;
    assert_error(code, StatusCode::UNPROCESSABLE_ENTITY, &b, &["preset"]);
    // A browser posting that form sees the message as a page.
    let form = [form[0], ("accept", "text/html")];
    let (code, _, b) = post_with(&st, "/grids/new", "", &form).await;
    assert!(
        code == StatusCode::UNPROCESSABLE_ENTITY && b.contains("preset"),
        "{b}"
    );
    assert!(b.contains("<p class=\"error\""), "{b}");
    still_answers(&st).await;
    st.shutdown();
}
