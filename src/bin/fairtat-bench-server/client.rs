//! A tiny HTTP/1.1 client over tokio sockets (reqwest is only a dev-dependency): plain GETs and
//! SSE subscriptions, so the benchmark measures the real network path.

use anyhow::{Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// `GET path` with `Connection: close`; returns the status code and the (de-chunked) body.
pub async fn http_get(addr: &str, path: &str) -> Result<(u16, String)> {
    let raw = raw_get(addr, path).await?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").context("no header end")?;
    let status = status_code(head)?;
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    Ok((
        status,
        if chunked {
            dechunk(body)
        } else {
            body.to_string()
        },
    ))
}

/// Decode a complete chunked body.
pub fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// An open SSE subscription: calls `on_id(seq)` for every `id:` line until the stream ends.
/// Chunk-size lines of the chunked encoding never start with `id:`, so a line scan suffices.
pub async fn sse_client(
    addr: String,
    path: String,
    mut on_id: impl FnMut(u64) + Send,
) -> Result<()> {
    let mut s = TcpStream::connect(&addr).await?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\r\n");
    s.write_all(req.as_bytes()).await?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        while let Some(pos) = buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = buf.drain(..=pos).collect();
            let line = String::from_utf8_lossy(&line);
            if let Some(id) = line.strip_prefix("id:") {
                if let Ok(seq) = id.trim().parse() {
                    on_id(seq);
                }
            } else if line.starts_with("event: end") || line.starts_with("event:end") {
                return Ok(());
            }
        }
    }
}

/// GET `path` for its status and the byte length of its body as sent (chunk framing included,
/// a few bytes per 256 KiB): for binary answers such as the run archive.
pub async fn http_get_len(addr: &str, path: &str) -> Result<(u16, usize)> {
    let raw = raw_get(addr, path).await?;
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("no header end")?;
    let head = String::from_utf8_lossy(&raw[..end]);
    let status = status_code(&head)?;
    Ok((status, raw.len() - end - 4))
}

/// The status code of a response head (`HTTP/1.1 200 OK`).
fn status_code(head: &str) -> Result<u16> {
    head.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .context("no status code")
}

/// The whole answer (head and body) of one `Connection: close` GET.
async fn raw_get(addr: &str, path: &str) -> Result<Vec<u8>> {
    let mut s = TcpStream::connect(addr).await?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await?;
    Ok(raw)
}
