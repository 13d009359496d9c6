//! Accepting connections with limits, so that idle or trickling clients cannot hold the server:
//! at most [`Limits::max_connections`] open connections (more wait in the kernel's backlog
//! rather than take file descriptors the trainers need), at most
//! [`Limits::max_per_client`] from one address (more are closed at once), request headers
//! within [`Limits::header_timeout`] (hyper's own timer; it also closes idle keep-alive
//! connections, since waiting for the next request is reading its headers), bodies within
//! [`Limits::body_timeout`] (tower-http's `RequestBodyTimeoutLayer`, in [`crate::http`]) and at
//! most [`Limits::max_streams`] event streams (503 with `Retry-After` beyond; see
//! [`crate::http::streams`]).
//!
//! The loop is axum's `serve` with these knobs added (axum 0.8 sets no header timeout and no
//! connection limit); each request carries the peer's `ConnectInfo` like axum's
//! `into_make_service_with_connect_info`. The first request head of each connection is read
//! and checked here first ([`head`]), so hyper's own refusals (400, 414, 431) carry JSON too.

pub mod head;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{ConnectInfo, Request};
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// Connection and stream limits of `fairtat serve` (flags `--max-connections` etc.).
#[derive(Clone, Debug)]
pub struct Limits {
    pub max_connections: usize,
    pub max_per_client: usize,
    pub max_streams: usize,
    pub header_timeout: Duration,
    pub body_timeout: Duration,
}

impl Default for Limits {
    /// Below the common `ulimit -n` of 1024, leaving room for trainers' logs and the index.
    fn default() -> Self {
        Limits {
            max_connections: 512,
            max_per_client: 128,
            max_streams: 256,
            header_timeout: Duration::from_secs(15),
            body_timeout: Duration::from_secs(30),
        }
    }
}

/// Open connections per client address; a slot frees itself when dropped.
#[derive(Clone, Default)]
struct PerClient(Arc<Mutex<HashMap<IpAddr, usize>>>);

struct ClientSlot {
    map: PerClient,
    ip: IpAddr,
}

impl PerClient {
    fn take(&self, ip: IpAddr, max: usize) -> Option<ClientSlot> {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let n = m.entry(ip).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(ClientSlot {
            map: self.clone(),
            ip,
        })
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut m = self.map.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = m.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.ip);
            }
        }
    }
}

/// Serve `app` on `listener` until `shutdown` fires, then let open connections finish their
/// requests (event streams end on the same token) for at most a few seconds.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: CancellationToken,
) {
    let total = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let per_client = PerClient::default();
    let tracker = tokio_util::task::TaskTracker::new();
    loop {
        let permit = tokio::select! {
            p = total.clone().acquire_owned() => p.expect("the semaphore is never closed"),
            _ = shutdown.cancelled() => break,
        };
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!(cause = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            },
            _ = shutdown.cancelled() => break,
        };
        let Some(slot) = per_client.take(peer.ip(), limits.max_per_client) else {
            tracing::debug!(%peer, "too many connections from one client; closed");
            continue;
        };
        let (app, token, timeout) = (app.clone(), shutdown.clone(), limits.header_timeout);
        tracker.spawn(async move {
            connection(stream, peer, app, timeout, token).await;
            drop((slot, permit));
        });
    }
    tracker.close();
    let _ = tokio::time::timeout(Duration::from_secs(5), tracker.wait()).await;
}

async fn connection(
    mut stream: tokio::net::TcpStream,
    peer: SocketAddr,
    app: Router,
    header_timeout: Duration,
    shutdown: CancellationToken,
) {
    let first = tokio::select! {
        h = head::read(&mut stream, header_timeout) => h,
        _ = shutdown.cancelled() => return,
    };
    let prefix = match first {
        head::Head::Complete(bytes) => bytes,
        head::Head::Refuse(answer) => return head::answer(&mut stream, &answer).await,
        head::Head::Close => return,
    };
    let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
        let mut req = req.map(axum::body::Body::new);
        req.extensions_mut().insert(ConnectInfo(peer));
        app.clone().oneshot(req)
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    let io = TokioIo::new(head::Rewind::new(prefix, stream));
    let conn = builder.serve_connection(io, svc);
    tokio::pin!(conn);
    tokio::select! {
        res = conn.as_mut() => {
            if let Err(e) = res {
                tracing::trace!(%peer, cause = %e, "connection ended");
            }
        }
        _ = shutdown.cancelled() => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}
