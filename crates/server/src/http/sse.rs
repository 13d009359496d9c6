//! `GET /api/runs/{id}/events`: the run's events as Server-Sent Events.
//!
//! Subscribe to the hub first, then send the snapshot (after `Last-Event-ID` when reconnecting;
//! the run page asks for the lines after the ones it was rendered from), then live lines; lines
//! are de-duplicated by `seq` (the SSE id), so the overlap between snapshot and live is harmless
//! and a reconnect loses nothing. The snapshot comes from the metrics store: it knows where each
//! line starts, so only the lines asked for are read, as raw JSON in bounded chunks, and never
//! parsed again. A lagging receiver gets a `resync` event and the missed lines the same way. Named events:
//! `status` (summary JSON, no id), `resync`, `end` (the run is over and its job has left the
//! queue; the client closes).
//! `GET /api/events` streams every run's summary changes for the runs list.
//! Every stream ends when the shutdown token fires, so graceful shutdown does not hang.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::get;
use axum::Router;
use futures_util::{Stream, StreamExt};
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;

use super::{run_dir, RunPath};
use crate::error::ApiError;
use crate::hub::HubMsg;
use crate::state::AppState;
use fairtat_core::runs::{EventLine, RunDir, RunEvent};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/runs/{id}/events", get(events))
        .route("/api/events", get(all_events))
}

/// `GET /api/events`: every run's summary as a `status` event each time it changes (the runs
/// list adds rows and updates cells from them); `resync` when this client fell behind, after
/// which it re-reads the list.
async fn all_events(
    State(st): State<AppState>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let mut rx = st.hub().subscribe_all();
    let shutdown = st.shutdown_token().clone();
    let stream = async_stream::stream! {
        yield Ok(Event::default().event("hello").data("hello"));
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                msg = rx.recv() => match msg {
                    Ok(s) => yield Ok(Event::default().event("status").data(serde_json::to_string(&*s).unwrap_or_default())),
                    Err(RecvError::Lagged(n)) => yield Ok(Event::default().event("resync").data(n.to_string())),
                    Err(RecvError::Closed) => break,
                }
            }
        }
    };
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

#[derive(Deserialize)]
pub struct SseParams {
    /// Same as the `Last-Event-ID` header, for clients that cannot set headers.
    after: Option<u64>,
}

fn line_event(line: &EventLine) -> Event {
    let data = serde_json::to_string(line).unwrap_or_else(|_| "{}".into());
    Event::default().id(line.seq.to_string()).data(data)
}

/// Bytes of raw lines replayed per step (memory per replaying client stays near this).
const REPLAY_CHUNK: u64 = 256 * 1024;

/// The next raw lines after `after` (all when None), from the store, read off the runtime.
async fn replay_chunk(st: AppState, dir: RunDir, after: Option<u64>) -> Vec<(u64, String)> {
    tokio::task::spawn_blocking(move || st.store().run(&dir).raw_after(after, REPLAY_CHUNK))
        .await
        .unwrap_or_default()
}

/// Every line after `after` as `(seq, raw JSON)`, read chunk by chunk so memory stays bounded.
fn replay(st: AppState, dir: RunDir, after: Option<u64>) -> impl Stream<Item = (u64, String)> {
    async_stream::stream! {
        let mut last = after;
        loop {
            let chunk = replay_chunk(st.clone(), dir.clone(), last).await;
            if chunk.is_empty() {
                break;
            }
            for (seq, raw) in chunk {
                last = Some(seq);
                yield (seq, raw);
            }
        }
    }
}

/// A line replayed from the file, sent as read (it is already the line's JSON).
fn raw_event(seq: u64, raw: String) -> Event {
    Event::default().id(seq.to_string()).data(raw)
}

async fn events(
    State(st): State<AppState>,
    RunPath(id): RunPath,
    Query(q): Query<SseParams>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let dir = run_dir(&st, &id)?;
    let after = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .or(q.after);
    // Subscribe before reading the snapshot so nothing written in between is missed.
    let mut rx = st.hub().subscribe(&id);
    let shutdown = st.shutdown_token().clone();
    let stream = async_stream::stream! {
        let mut last = after;
        let mut lines = std::pin::pin!(replay(st.clone(), dir.clone(), last));
        while let Some((seq, raw)) = lines.next().await {
            last = Some(seq);
            yield Ok(raw_event(seq, raw));
        }
        let summary = st.index().get(&id).ok().flatten();
        if let Some(s) = &summary {
            yield Ok(Event::default().event("status").data(serde_json::to_string(s).unwrap_or_default()));
        }
        let mut done = summary.is_some_and(|s| s.status.is_terminal()) && !st.is_active(&id);
        while !done {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                msg = rx.recv() => match msg {
                    Ok(HubMsg::Line(line)) => {
                        if last.is_none_or(|l| line.seq > l) {
                            last = Some(line.seq);
                            yield Ok(line_event(&line));
                            // The stream ends once the job left the queue too (the status
                            // published then), so the page's last refresh shows Resume.
                            if matches!(line.event, RunEvent::Finished { .. }) {
                                done = !st.is_active(&id);
                            }
                        }
                    }
                    Ok(HubMsg::Status(s)) => {
                        yield Ok(Event::default().event("status").data(serde_json::to_string(&*s).unwrap_or_default()));
                        done = s.status.is_terminal() && !st.is_active(&id);
                    }
                    Err(RecvError::Lagged(n)) => {
                        tracing::debug!(run = %id, missed = n, "SSE client lagged; resyncing from file");
                        yield Ok(Event::default().event("resync").data(n.to_string()));
                        let mut lines = std::pin::pin!(replay(st.clone(), dir.clone(), last));
                        while let Some((seq, raw)) = lines.next().await {
                            last = Some(seq);
                            yield Ok(raw_event(seq, raw));
                        }
                    }
                    Err(RecvError::Closed) => break,
                }
            }
        }
        if done {
            yield Ok(Event::default().event("end").data("end"));
        }
    };
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
