//! Login sessions, guessing limits and the constant-time comparisons of the token check.
//!
//! A session cookie is `<issued>.<nonce>.<mac>`: the Unix second it was issued, 16 random bytes
//! and a SHA-256 digest over both and the token. It expires after [`SESSION_TTL`] (the cookie's
//! `Max-Age` says so too, and the server checks `issued` itself, so a copied cookie stops
//! working as well), a logout revokes its nonce, and changing the token ends every session.
//! Nothing here needs to survive a restart: revoked nonces matter only until they expire, and
//! forgetting failure counts merely restarts a window.
//!
//! Wrong tokens (the login form, a bearer header) count per client address: more than
//! [`MAX_FAILURES`] in [`WINDOW`] are answered 429 with `Retry-After` until the window ends, so
//! guessing runs at a few attempts a minute instead of thousands a second.

use std::collections::HashMap;
use std::io::Read;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

/// How long a login lasts.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// Wrong tokens tolerated per client and window.
pub const MAX_FAILURES: u32 = 10;
pub const WINDOW: Duration = Duration::from_secs(60);
/// Clients remembered at most (a flood of addresses cannot grow the map without bound).
const MAX_CLIENTS: usize = 10_000;

fn digest(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    h.finalize().into()
}

/// Hex of [`digest`] (session macs).
pub fn digest_hex(parts: &[&[u8]]) -> String {
    digest(parts).iter().map(|b| format!("{b:02x}")).collect()
}

/// Constant-time equality of two secrets of any length (compares their digests).
pub fn same(a: &str, b: &str) -> bool {
    let (x, y) = (digest(&[a.as_bytes()]), digest(&[b.as_bytes()]));
    x.iter()
        .zip(y.iter())
        .fold(0u8, |acc, (p, q)| acc | (p ^ q))
        == 0
}

#[derive(Debug, Default)]
pub struct Sessions {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Revoked nonce -> the second its session would have expired anyway.
    revoked: HashMap<String, u64>,
    /// Client (None: unknown, e.g. in-process requests) -> window start and failures in it.
    failures: HashMap<Option<IpAddr>, (Instant, u32)>,
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// 16 bytes from the kernel's generator; a digest of time, pid and address if it is missing.
fn nonce() -> String {
    let mut bytes = [0u8; 16];
    let read = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes));
    if read.is_err() {
        let t = format!("{:?}{}{:p}", SystemTime::now(), std::process::id(), &bytes);
        return digest_hex(&[t.as_bytes()])[..32].to_string();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn mac(token: &str, issued: &str, nonce: &str) -> String {
    digest_hex(&[
        b"fairtat-session",
        token.as_bytes(),
        issued.as_bytes(),
        nonce.as_bytes(),
    ])
}

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new session cookie value for `token`.
    pub fn issue(&self, token: &str) -> String {
        let (issued, nonce) = (now_secs().to_string(), nonce());
        let mac = mac(token, &issued, &nonce);
        format!("{issued}.{nonce}.{mac}")
    }

    /// Whether `value` is a live session of `token`.
    pub fn valid(&self, token: &str, value: &str) -> bool {
        let mut parts = value.splitn(3, '.');
        let (Some(issued), Some(nonce), Some(m)) = (parts.next(), parts.next(), parts.next())
        else {
            return false;
        };
        let Ok(at) = issued.parse::<u64>() else {
            return false;
        };
        let age = now_secs().saturating_sub(at);
        let fresh = at <= now_secs() + 60 && age < SESSION_TTL.as_secs();
        fresh && same(m, &mac(token, issued, nonce)) && !self.lock().revoked.contains_key(nonce)
    }

    /// End the session `value` (logout); unknown values are ignored.
    pub fn revoke(&self, value: &str) {
        let mut parts = value.splitn(3, '.');
        let (Some(issued), Some(nonce)) = (parts.next(), parts.next()) else {
            return;
        };
        let expires = issued.parse::<u64>().unwrap_or(0) + SESSION_TTL.as_secs();
        let mut inner = self.lock();
        let now = now_secs();
        inner.revoked.retain(|_, e| *e > now);
        inner.revoked.insert(nonce.to_string(), expires);
    }

    /// Seconds until `client` may try a token again, if it used up its window.
    pub fn throttled(&self, client: Option<IpAddr>) -> Option<u64> {
        let inner = self.lock();
        let (start, n) = inner.failures.get(&client)?;
        let left = WINDOW.saturating_sub(start.elapsed());
        (*n >= MAX_FAILURES && !left.is_zero()).then(|| left.as_secs().max(1))
    }

    /// Count a wrong token from `client`.
    pub fn failed(&self, client: Option<IpAddr>) {
        let mut inner = self.lock();
        if inner.failures.len() >= MAX_CLIENTS {
            inner.failures.retain(|_, (s, _)| s.elapsed() < WINDOW);
        }
        let entry = inner.failures.entry(client).or_insert((Instant::now(), 0));
        if entry.0.elapsed() >= WINDOW {
            *entry = (Instant::now(), 0);
        }
        entry.1 += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_bound_to_the_token_expire_and_can_be_revoked() {
        let s = Sessions::default();
        let v = s.issue("tok-0123456789abcdef");
        assert!(s.valid("tok-0123456789abcdef", &v));
        assert!(
            !s.valid("another-token-0123", &v),
            "a new token ends old sessions"
        );
        let (_, rest) = v.split_once('.').unwrap();
        let old = format!("{}.{rest}", now_secs() - SESSION_TTL.as_secs() - 1);
        assert!(
            !s.valid("tok-0123456789abcdef", &old),
            "forged or expired issue time"
        );
        for bad in ["", "x", "1.2", "1.2.3", &v.replace('.', "")] {
            assert!(!s.valid("tok-0123456789abcdef", bad), "{bad}");
        }
        s.revoke(&v);
        assert!(!s.valid("tok-0123456789abcdef", &v));
        let w = s.issue("tok-0123456789abcdef");
        assert_ne!(v, w);
        assert!(
            s.valid("tok-0123456789abcdef", &w),
            "revoking one session keeps the others"
        );
    }

    #[test]
    fn wrong_tokens_are_throttled_per_client() {
        let s = Sessions::default();
        let a: Option<IpAddr> = Some("10.0.0.1".parse().unwrap());
        let b: Option<IpAddr> = Some("10.0.0.2".parse().unwrap());
        for _ in 0..MAX_FAILURES {
            assert_eq!(s.throttled(a), None);
            s.failed(a);
        }
        let wait = s.throttled(a).expect("throttled after the limit");
        assert!((1..=WINDOW.as_secs()).contains(&wait), "{wait}");
        assert_eq!(s.throttled(b), None, "another client is not affected");
    }
}
