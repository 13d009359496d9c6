//! The server on an open network (issue 20): connections that trickle or idle are closed by
//! the header timeout, a body promised but not sent gets 408, one client cannot hold more than
//! its share of connections, and event streams beyond the cap are answered 503 with
//! `Retry-After` while the server keeps serving. Real sockets, small limits.

mod common;

use std::time::{Duration, Instant};

use common::*;
use fairtat::server::listen::Limits;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn small_limits() -> Limits {
    Limits {
        max_connections: 64,
        max_per_client: 6,
        max_streams: 3,
        header_timeout: Duration::from_secs(1),
        body_timeout: Duration::from_secs(1),
    }
}

async fn server() -> (tempfile::TempDir, fairtat::server::AppState, String) {
    let tmp = tempfile::tempdir().unwrap();
    let mut opts = options(tmp.path(), Some("/bin/false".into()), 1);
    opts.limits = small_limits();
    let st = start(opts).await;
    let (base, _) = serve_loopback(st.clone()).await;
    let addr = base.trim_start_matches("http://").to_string();
    (tmp, st, addr)
}

/// Read until the server closes the connection (or `limit` passes); what it sent and when
/// it closed.
async fn until_closed(s: &mut TcpStream, limit: Duration) -> (String, Option<Duration>) {
    let t0 = Instant::now();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = limit.saturating_sub(t0.elapsed());
        match tokio::time::timeout(left, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                return (String::from_utf8_lossy(&out).into(), Some(t0.elapsed()))
            }
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Err(_) => return (String::from_utf8_lossy(&out).into(), None),
        }
    }
}

async fn still_answers(addr: &str) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let req = format!("GET /api/runs HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let (resp, closed) = until_closed(&mut s, Duration::from_secs(10)).await;
    assert!(
        closed.is_some() && resp.starts_with("HTTP/1.1 200"),
        "{resp}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_trickling_and_bodiless_clients_are_cut_off() {
    let (_tmp, st, addr) = server().await;
    // Connected, silent.
    let mut idle = TcpStream::connect(&addr).await.unwrap();
    // Headers trickled a line at a time, never finished.
    let mut slow = TcpStream::connect(&addr).await.unwrap();
    slow.write_all(format!("GET /api/runs HTTP/1.1\r\nHost: {addr}\r\n").as_bytes())
        .await
        .unwrap();
    let slow_task = tokio::spawn(async move {
        for i in 0..4 {
            tokio::time::sleep(Duration::from_millis(400)).await;
            if slow
                .write_all(format!("X-Slow-{i}: 1\r\n").as_bytes())
                .await
                .is_err()
            {
                break;
            }
        }
        until_closed(&mut slow, Duration::from_secs(5)).await
    });
    // A body promised (100 bytes) and never sent.
    let mut bodiless = TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /api/runs HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: 100\r\n\r\n{{\"preset\":"
    );
    bodiless.write_all(head.as_bytes()).await.unwrap();

    let (_, idle_closed) = until_closed(&mut idle, Duration::from_secs(5)).await;
    let idle_closed = idle_closed.expect("an idle connection is closed");
    assert!(idle_closed < Duration::from_secs(3), "{idle_closed:?}");
    let (_, slow_closed) = slow_task.await.unwrap();
    assert!(
        slow_closed.is_some(),
        "trickled headers are cut off at the header timeout"
    );
    let (resp, closed) = until_closed(&mut bodiless, Duration::from_secs(5)).await;
    assert!(closed.is_some(), "the bodiless request is closed: {resp}");
    assert!(resp.starts_with("HTTP/1.1 408"), "{resp}");
    assert!(resp.contains("did not arrive in time"), "{resp}");
    still_answers(&addr).await;
    st.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_client_cannot_take_every_connection() {
    let (_tmp, st, addr) = server().await;
    let mut held = Vec::new();
    for _ in 0..small_limits().max_per_client {
        let mut s = TcpStream::connect(&addr).await.unwrap();
        // Keep each busy in a long request (an event stream) so none times out.
        let req = format!("GET /api/events HTTP/1.1\r\nHost: {addr}\r\n\r\n");
        s.write_all(req.as_bytes()).await.unwrap();
        held.push(s);
    }
    // The next connection from the same address is closed at once, without an answer.
    let mut extra = TcpStream::connect(&addr).await.unwrap();
    let req = format!("GET /api/runs HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    let _ = extra.write_all(req.as_bytes()).await;
    let (resp, closed) = until_closed(&mut extra, Duration::from_secs(3)).await;
    assert!(closed.is_some() && resp.is_empty(), "{resp}");
    drop(held);
    tokio::time::sleep(Duration::from_millis(300)).await;
    still_answers(&addr).await;
    st.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_streams_beyond_the_cap_get_503_and_live_ones_outlast_the_header_timeout() {
    let (_tmp, st, addr) = server().await;
    let mut streams = Vec::new();
    for _ in 0..small_limits().max_streams {
        let mut s = TcpStream::connect(&addr).await.unwrap();
        let req = format!("GET /api/events HTTP/1.1\r\nHost: {addr}\r\n\r\n");
        s.write_all(req.as_bytes()).await.unwrap();
        let mut buf = [0u8; 256];
        let n = s.read(&mut buf).await.unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
        streams.push(s);
    }
    let mut over = TcpStream::connect(&addr).await.unwrap();
    let req = format!("GET /api/events HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    over.write_all(req.as_bytes()).await.unwrap();
    let (resp, _) = until_closed(&mut over, Duration::from_secs(5)).await;
    assert!(resp.starts_with("HTTP/1.1 503"), "{resp}");
    assert!(
        resp.to_ascii_lowercase().contains("retry-after: 5"),
        "{resp}"
    );
    assert!(resp.contains("too many open event streams"), "{resp}");
    // Open streams are not cut by the header timeout (1 s here).
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let mut probe = [0u8; 64];
    let alive = tokio::time::timeout(Duration::from_millis(200), streams[0].read(&mut probe)).await;
    assert!(!matches!(alive, Ok(Ok(0))), "a live stream was closed");
    // A closed stream gives its permit back.
    streams.pop();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut again = TcpStream::connect(&addr).await.unwrap();
    let req = format!("GET /api/events HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    again.write_all(req.as_bytes()).await.unwrap();
    let mut buf = [0u8; 256];
    let n = again.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    st.shutdown();
}

/// The server stack's own refusals (a malformed head, a request line or headers too large)
/// carry a JSON body like every other error, and the server goes on serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_oversized_heads_get_json_errors() {
    let (_tmp, st, addr) = server().await;
    let big = "a".repeat(70_000);
    let cases = [
        (
            format!("GET / HTTP/1.1\r\nHost: {addr}\r\nbad header\r\n\r\n"),
            "400",
            "malformed HTTP request",
        ),
        (
            format!("GET /{big} HTTP/1.1\r\nHost: {addr}\r\n\r\n"),
            "414",
            "request line is longer than 64 KiB",
        ),
        (
            format!("GET / HTTP/1.1\r\nHost: {addr}\r\nX-Big: {big}\r\n\r\n"),
            "431",
            "request headers are larger than 64 KiB",
        ),
    ];
    for (req, code, words) in cases {
        let mut s = TcpStream::connect(&addr).await.unwrap();
        // The server may answer before it has read everything.
        let _ = s.write_all(req.as_bytes()).await;
        let (resp, closed) = until_closed(&mut s, Duration::from_secs(5)).await;
        assert!(
            closed.is_some() && resp.starts_with(&format!("HTTP/1.1 {code} ")),
            "{resp}"
        );
        assert!(resp.contains("content-type: application/json"), "{resp}");
        let body = resp.split("\r\n\r\n").nth(1).unwrap_or_default();
        let v: serde_json::Value =
            serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {resp}"));
        assert!(v["error"].as_str().unwrap().contains(words), "{resp}");
    }
    still_answers(&addr).await;
    st.shutdown();
}
