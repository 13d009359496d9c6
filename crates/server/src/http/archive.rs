//! "Download run": `GET /runs/{id}/archive.tar.gz`, every downloadable file of the run (the
//! same list and the same path checks as `files`) in one gzip'd tar under `<run id>/`.
//!
//! The archive is written on a blocking thread into a bounded channel that the response body
//! reads, so a run with several large checkpoints streams in constant memory, and a client that
//! goes away stops the writer (its next send fails). Checkpoints hardly compress: the fastest
//! gzip level keeps the CPU cost near a plain copy.

use std::io::Write;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use tokio::sync::mpsc;

use super::files::{attachment, list_files, open};
use super::{run_dir, RunPath};
use crate::error::ApiError;
use crate::state::AppState;
use fairtat_core::runs::RunDir;

pub fn router() -> Router<AppState> {
    Router::new().route("/runs/{id}/archive.tar.gz", get(archive))
}

/// Bytes per chunk handed to the response body.
const CHUNK: usize = 256 * 1024;

/// A `Write` that sends full chunks to the response body.
struct ChannelWriter {
    tx: mpsc::Sender<std::io::Result<Bytes>>,
    buf: Vec<u8>,
}

impl ChannelWriter {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx.blocking_send(Ok(chunk)).map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the client went away")
        })
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

/// Write the tar.gz of `dir`'s downloadable files into `out`.
fn write_archive(dir: &RunDir, out: impl Write) -> std::io::Result<()> {
    let id = dir.id();
    let gz = flate2::write::GzEncoder::new(out, flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    for f in list_files(dir) {
        let Ok(mut file) = open(dir, &f.name) else {
            continue; // removed (or replaced) since it was listed
        };
        tar.append_file(format!("{id}/{}", f.name), &mut file)?;
    }
    // Finishing the gzip stream flushes the writer, which sends the last chunk.
    tar.into_inner()?.finish()?.flush()
}

async fn archive(State(st): State<AppState>, RunPath(id): RunPath) -> Result<Response, ApiError> {
    let dir = run_dir(&st, &id)?;
    let (tx, mut rx) = mpsc::channel::<std::io::Result<Bytes>>(4);
    tokio::task::spawn_blocking(move || {
        let mut w = ChannelWriter {
            tx: tx.clone(),
            buf: Vec::with_capacity(CHUNK),
        };
        if let Err(err) = write_archive(&dir, &mut w) {
            if err.kind() != std::io::ErrorKind::BrokenPipe {
                tracing::warn!(run = %dir.id(), cause = %err, "run archive failed");
                let _ = tx.blocking_send(Err(err));
            }
        }
    });
    let body = Body::from_stream(async_stream::stream! {
        while let Some(chunk) = rx.recv().await {
            yield chunk;
        }
    });
    Ok(attachment(
        body,
        "application/gzip",
        &format!("{id}.tar.gz"),
    ))
}
