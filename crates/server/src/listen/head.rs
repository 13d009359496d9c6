//! The first request head of a connection, read and checked before hyper sees it, so that a
//! malformed request line or headers, a request line that is too long and a header block that
//! is too large get the same JSON error body as every other error (hyper 1 answers these itself
//! with an empty body and offers no hook). The bytes read are handed to hyper unchanged
//! ([`Rewind`]); later requests on a kept-alive connection are hyper's alone.
//!
//! Parsing is `httparse`'s, the parser hyper itself uses, with hyper's limit of 100 headers.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

/// The largest request head read before answering 414/431 (browsers stay far below).
pub const MAX_HEAD: usize = 64 * 1024;
/// Headers one request may carry (hyper's default).
const MAX_HEADERS: usize = 100;

/// What the first bytes of a connection hold.
pub enum Head {
    /// A complete, well-formed request head (and whatever followed it).
    Complete(Vec<u8>),
    /// An answer to send before closing: the status line and a JSON body.
    Refuse(Vec<u8>),
    /// The client closed, or sent no complete head in time: close without an answer, as hyper
    /// does.
    Close,
}

/// Read until the request head is complete, refused, or `timeout` has passed.
pub async fn read<S: AsyncRead + Unpin>(stream: &mut S, timeout: Duration) -> Head {
    let mut buf = Vec::with_capacity(1024);
    let deadline = tokio::time::Instant::now() + timeout;
    let mut chunk = [0u8; 4096];
    loop {
        let n = match tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return Head::Close,
            Ok(Ok(n)) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        if let Some(head) = check(&buf) {
            return head.unwrap_or(Head::Complete(buf));
        }
    }
}

/// `None`: read more. `Some(None)`: complete. `Some(Some(refusal))`: answer and close.
fn check(buf: &[u8]) -> Option<Option<Head>> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(buf) {
        Ok(httparse::Status::Complete(_)) => Some(None),
        Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => None,
        Ok(httparse::Status::Partial) if !buf.contains(&b'\n') => Some(Some(refuse(
            414,
            "URI Too Long",
            &format!("the request line is longer than {} KiB", MAX_HEAD / 1024),
        ))),
        Ok(httparse::Status::Partial) => Some(Some(refuse(
            431,
            "Request Header Fields Too Large",
            &format!(
                "the request headers are larger than {} KiB",
                MAX_HEAD / 1024
            ),
        ))),
        Err(httparse::Error::TooManyHeaders) => Some(Some(refuse(
            431,
            "Request Header Fields Too Large",
            &format!("more than {MAX_HEADERS} request headers"),
        ))),
        Err(e) => Some(Some(refuse(
            400,
            "Bad Request",
            &format!("malformed HTTP request: {e}"),
        ))),
    }
}

fn refuse(code: u16, reason: &str, message: &str) -> Head {
    let body = serde_json::json!({ "error": message }).to_string();
    Head::Refuse(
        format!(
            "HTTP/1.1 {code} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes(),
    )
}

/// Send a refusal and close the connection (errors ignored: the client may be gone). What the
/// client still sends is read and dropped for a moment first: closing a socket with unread
/// data resets it, and the reset can discard the answer before the client reads it.
pub async fn answer<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S, bytes: &[u8]) {
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        let _ = stream.write_all(bytes).await;
        let _ = stream.shutdown().await;
    })
    .await;
    let mut sink = [0u8; 4096];
    let mut left: usize = 1 << 20;
    let drain = async {
        while left > 0 {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => left = left.saturating_sub(n),
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), drain).await;
}

/// A stream that yields `prefix` before reading on from `inner`: the head already read goes
/// to hyper as if unread.
pub struct Rewind<S> {
    prefix: Vec<u8>,
    pos: usize,
    inner: S,
}

impl<S> Rewind<S> {
    pub fn new(prefix: Vec<u8>, inner: S) -> Rewind<S> {
        Rewind {
            prefix,
            pos: 0,
            inner,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Rewind<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.pos < self.prefix.len() {
            let n = out.remaining().min(self.prefix.len() - self.pos);
            let start = self.pos;
            out.put_slice(&self.prefix[start..start + n]);
            self.pos += n;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, out)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Rewind<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn head_of(bytes: &[u8]) -> Head {
        let (mut client, mut server) = tokio::io::duplex(MAX_HEAD * 2);
        client.write_all(bytes).await.unwrap();
        drop(client);
        read(&mut server, Duration::from_secs(2)).await
    }

    fn refusal(h: Head) -> String {
        match h {
            Head::Refuse(b) => String::from_utf8(b).unwrap(),
            Head::Complete(_) => panic!("accepted"),
            Head::Close => panic!("closed"),
        }
    }

    #[tokio::test]
    async fn well_formed_heads_pass_whole_and_bad_ones_get_json() {
        let ok = b"GET / HTTP/1.1\r\nhost: x\r\n\r\nrest";
        assert!(matches!(head_of(ok).await, Head::Complete(b) if b == ok));
        let bad = refusal(head_of(b"GET / HTTP/1.1\r\nbad header\r\n\r\n").await);
        assert!(
            bad.starts_with("HTTP/1.1 400 ") && bad.contains(r#"{"error":"malformed HTTP request"#),
            "{bad}"
        );
        let long = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(MAX_HEAD));
        let long = refusal(head_of(long.as_bytes()).await);
        assert!(
            long.starts_with("HTTP/1.1 414 ") && long.contains("request line"),
            "{long}"
        );
        let big = format!("GET / HTTP/1.1\r\nx: {}\r\n\r\n", "a".repeat(MAX_HEAD));
        assert!(refusal(head_of(big.as_bytes()).await).starts_with("HTTP/1.1 431 "));
        let many: String = (0..101).map(|i| format!("h{i}: v\r\n")).collect();
        let many = refusal(head_of(format!("GET / HTTP/1.1\r\n{many}\r\n").as_bytes()).await);
        assert!(
            many.starts_with("HTTP/1.1 431 ") && many.contains("more than 100"),
            "{many}"
        );
        assert!(
            matches!(head_of(b"GET / HT").await, Head::Close),
            "cut short: closed"
        );
    }

    #[tokio::test]
    async fn rewind_yields_the_prefix_then_the_stream() {
        let (mut client, server) = tokio::io::duplex(64);
        client.write_all(b" world").await.unwrap();
        drop(client);
        let mut r = Rewind::new(b"hello".to_vec(), server);
        let mut s = String::new();
        r.read_to_string(&mut s).await.unwrap();
        assert_eq!(s, "hello world");
    }
}
