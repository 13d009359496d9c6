//! Real-socket SSE test: events arrive in order, a reconnect with `Last-Event-ID` resumes without
//! loss or duplicates, the stream ends with the run, and every stream ends on shutdown.

mod common;

use std::time::Duration;

use common::*;
use futures_util::StreamExt;

/// One parsed SSE message.
#[derive(Debug, Clone)]
struct Msg {
    id: Option<u64>,
    event: String,
    data: String,
}

/// Reads SSE messages from a streaming response.
struct Reader {
    stream: futures_util::stream::BoxStream<'static, reqwest::Result<bytes_alias::Bytes>>,
    buf: String,
}

mod bytes_alias {
    pub use axum::body::Bytes;
}

impl Reader {
    async fn open(url: &str, last_id: Option<u64>) -> Reader {
        let client = reqwest::Client::new();
        let mut req = client.get(url);
        if let Some(id) = last_id {
            req = req.header("Last-Event-ID", id.to_string());
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 200);
        assert!(resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream"));
        Reader {
            stream: resp.bytes_stream().boxed(),
            buf: String::new(),
        }
    }

    /// Next message (comments/keep-alives skipped); None when the stream ended.
    async fn next(&mut self) -> Option<Msg> {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let mut m = Msg {
                    id: None,
                    event: "message".into(),
                    data: String::new(),
                };
                let mut any = false;
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        m.id = v.trim().parse().ok();
                        any = true;
                    } else if let Some(v) = line.strip_prefix("event:") {
                        m.event = v.trim().to_string();
                        any = true;
                    } else if let Some(v) = line.strip_prefix("data:") {
                        m.data.push_str(v.trim_start());
                        any = true;
                    }
                }
                if any {
                    return Some(m);
                }
                continue;
            }
            match tokio::time::timeout(Duration::from_secs(20), self.stream.next()).await {
                Ok(Some(Ok(chunk))) => self.buf.push_str(&String::from_utf8_lossy(&chunk)),
                Ok(_) => return None,
                Err(_) => panic!("no SSE data for 20 s"),
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_in_order_and_reconnect_resumes_without_loss() {
    let tmp = tempfile::tempdir().unwrap();
    let trainer = fake_trainer(tmp.path(), 8, 0.1);
    let st = start(options(tmp.path(), Some(trainer), 1)).await;
    let (base, server) = common::serve_loopback(st.clone()).await;
    let id = create_quick(&st).await;
    let url = format!("{base}/api/runs/{id}/events");

    // First connection: read a few lines, then drop it mid-run.
    let mut seen: Vec<u64> = Vec::new();
    let mut r = Reader::open(&url, None).await;
    while seen.len() < 4 {
        let m = r.next().await.expect("stream open");
        if let Some(id) = m.id {
            let line: serde_json::Value = serde_json::from_str(&m.data).unwrap();
            assert_eq!(line["seq"].as_u64(), Some(id), "id is the line's seq");
            seen.push(id);
        }
    }
    drop(r);

    // Reconnect after the last id seen: the rest, in order, each once, then `end`.
    let mut r = Reader::open(&url, seen.last().copied()).await;
    let mut ended = false;
    while let Some(m) = r.next().await {
        match (m.id, m.event.as_str()) {
            (Some(id), _) => seen.push(id),
            (None, "end") => {
                ended = true;
                break;
            }
            _ => {}
        }
    }
    assert!(ended, "the stream ends with the run");
    // started + 8 x (checkpoint, epoch) + finished = seq 0..=17, contiguous, no duplicates.
    assert_eq!(seen, (0..18).collect::<Vec<u64>>());
    let last: serde_json::Value = serde_json::from_str(
        std::fs::read_to_string(tmp.path().join("runs").join(&id).join("events.jsonl"))
            .unwrap()
            .lines()
            .last()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(last["type"], "finished");

    // A late client replays everything from the file.
    let mut r = Reader::open(&url, Some(6)).await;
    let mut late = Vec::new();
    while let Some(m) = r.next().await {
        if let Some(id) = m.id {
            late.push(id);
        }
    }
    assert_eq!(late, (7..18).collect::<Vec<u64>>());

    st.shutdown();
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_end_on_shutdown() {
    let tmp = tempfile::tempdir().unwrap();
    let trainer = fake_trainer(tmp.path(), 1000, 0.2);
    let st = start(options(tmp.path(), Some(trainer), 1)).await;
    let (base, server) = common::serve_loopback(st.clone()).await;
    let id = create_quick(&st).await;
    let mut r = Reader::open(&format!("{base}/api/runs/{id}/events"), None).await;
    // Wait for live data so the stream is in its live phase.
    while r.next().await.and_then(|m| m.id).is_none() {}
    let t0 = std::time::Instant::now();
    st.shutdown();
    tokio::time::timeout(Duration::from_secs(5), async {
        while r.next().await.is_some() {}
    })
    .await
    .expect("the SSE stream ends on shutdown");
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("graceful shutdown does not hang")
        .unwrap();
    assert!(t0.elapsed() < Duration::from_secs(5));
    // Leave no trainer behind.
    if let Some(pid) = lock_pid(&tmp.path().join("runs").join(&id)) {
        if fairtat::runs::lock::probe(&fairtat::runs::RunDir::new(
            tmp.path().join("runs").join(&id),
        ))
        .is_some()
        {
            kill(pid, "KILL");
        }
    }
}
