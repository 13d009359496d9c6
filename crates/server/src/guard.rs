//! Request checks before any handler runs: the `Host` must name this server (so a DNS-rebinding
//! page, whose requests carry its own host name, is refused, on loopback too), and a
//! state-changing request must come from the dashboard itself: `Sec-Fetch-Site` same-origin (or
//! none), an `Origin` equal to the host, and `application/json` for the API. A cross-site page
//! can send a `text/plain` POST without a CORS preflight; these checks are what stops it.
//!
//! A request without `Host` (HTTP/1.0 clients, in-process tests) passes the host check: browsers
//! always send one, and only browsers can be made to send requests by another site.

use std::net::{IpAddr, SocketAddr};

use axum::extract::Request;
use axum::http::{header, HeaderMap, Method};

use super::error::ApiError;
use super::listen::Limits;
use super::ServeOptions;
use fairtat_core::config::keys::shorten;

/// Largest request body accepted (configs and forms are a few KiB).
pub const BODY_LIMIT: usize = 64 * 1024;

/// What the checks need to know about how the server was started.
#[derive(Clone, Debug)]
pub struct Guard {
    /// The address bound (port 0: not known yet, any port is accepted).
    pub bound: SocketAddr,
    /// Extra host names this server answers to (`--public-host`, e.g. behind a proxy);
    /// `name` matches any port, `name:port` only that port.
    pub public_hosts: Vec<String>,
    /// Most runs waiting in the queue (`--max-queued`).
    pub max_queued: usize,
    /// Connection, stream and timeout limits (`--max-connections` etc.).
    pub limits: Limits,
}

impl Guard {
    pub fn from_options(opts: &ServeOptions) -> Self {
        Guard {
            bound: opts.addr,
            public_hosts: opts
                .public_hosts
                .iter()
                .map(|h| h.trim().to_ascii_lowercase())
                .filter(|h| !h.is_empty())
                .collect(),
            max_queued: opts.max_queued,
            limits: opts.limits.clone(),
        }
    }

    pub fn loopback(&self) -> bool {
        self.bound.ip().is_loopback()
    }

    /// Whether `host` (a `Host` header or an `Origin`'s authority) names this server.
    fn host_allowed(&self, host: &str) -> bool {
        let host = host.trim().to_ascii_lowercase();
        let Some((name, port)) = split_host(&host) else {
            return false;
        };
        let name = name.trim_end_matches('.');
        if self.public_hosts.iter().any(|p| match split_host(p) {
            Some((pn, Some(pp))) => pn == name && port == Some(pp),
            Some((pn, None)) => pn == name,
            None => false,
        }) {
            return true;
        }
        let port_ok = self.bound.port() == 0 || port.unwrap_or(80) == self.bound.port();
        let ip = name
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .ok();
        let name_ok = if self.loopback() {
            name == "localhost" || ip.is_some_and(|ip| ip.is_loopback())
        } else if self.bound.ip().is_unspecified() {
            // Bound to every interface: any address literal (they cannot be rebound; only
            // names can), no names unless given with --public-host.
            ip.is_some()
        } else {
            ip == Some(self.bound.ip())
        };
        port_ok && name_ok
    }
}

/// `name[:port]`, `[v6]:port`, `[v6]`; `None` for a malformed port.
fn split_host(h: &str) -> Option<(&str, Option<u16>)> {
    if h.starts_with('[') {
        let end = h.find(']')?;
        let rest = &h[end + 1..];
        return match rest.strip_prefix(':') {
            Some(p) => Some((&h[..=end], Some(p.parse().ok()?))),
            None if rest.is_empty() => Some((&h[..=end], None)),
            None => None,
        };
    }
    match h.rsplit_once(':') {
        Some((n, p)) => Some((n, Some(p.parse().ok()?))),
        None => Some((h, None)),
    }
}

/// A header the checks rely on: absent, or exactly one value of visible ASCII. Anything else
/// (two `Host` headers, bytes that do not decode) is refused rather than skipped, so a check
/// never passes because its header could not be read.
fn header_str(h: &HeaderMap, name: header::HeaderName) -> Result<Option<&str>, ApiError> {
    let mut values = h.get_all(&name).iter();
    let Some(first) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(ApiError::BadRequest(format!(
            "more than one {name} header; send exactly one"
        )));
    }
    first.to_str().map(Some).map_err(|_| {
        ApiError::BadRequest(format!(
            "the {name} header is not visible ASCII; send it as plain text"
        ))
    })
}

/// The request's host: the `Host` header, else the URI's authority (HTTP/2).
fn request_host(req: &Request) -> Result<Option<String>, ApiError> {
    Ok(header_str(req.headers(), header::HOST)?
        .map(str::to_string)
        .or_else(|| req.uri().authority().map(|a| a.to_string())))
}

fn is_state_change(m: &Method) -> bool {
    !matches!(*m, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Every check of this module for one request; the error says which one failed.
pub fn check(guard: &Guard, req: &Request) -> Result<(), ApiError> {
    let host = request_host(req)?;
    if let Some(h) = &host {
        if !guard.host_allowed(h) {
            return Err(ApiError::Forbidden(format!(
                "Host {:?} is not this server's address (DNS rebinding protection); use \
                 http://{}/ or start the server with --public-host NAME",
                shorten(h),
                guard.bound
            )));
        }
    }
    if !is_state_change(req.method()) {
        return Ok(());
    }
    let h = req.headers();
    if let Some(site) = header_str(h, header::HeaderName::from_static("sec-fetch-site"))? {
        if !matches!(site, "same-origin" | "none") {
            return Err(ApiError::Forbidden(format!(
                "cross-site request refused (Sec-Fetch-Site: {site})"
            )));
        }
    }
    if let Some(origin) = header_str(h, header::ORIGIN)? {
        let authority = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"));
        let same = match (authority, &host) {
            // Another name of this same server (`localhost` vs `127.0.0.1`, a public host
            // behind a proxy that rewrites Host) is not another site.
            (Some(a), Some(h)) => a.eq_ignore_ascii_case(h) || guard.host_allowed(a),
            (Some(a), None) => guard.host_allowed(a),
            (None, _) => false,
        };
        if !same {
            return Err(ApiError::Forbidden(format!(
                "cross-origin request refused (Origin: {})",
                shorten(origin)
            )));
        }
    }
    // Every state-changing API route is a POST; other methods get their 405 from the router.
    if req.method() == Method::POST && req.uri().path().starts_with("/api/") {
        let ct = header_str(h, header::CONTENT_TYPE)?.unwrap_or("");
        let essence = ct.split(';').next().unwrap_or("").trim();
        if !essence.eq_ignore_ascii_case("application/json") {
            return Err(ApiError::UnsupportedMedia(format!(
                "state-changing API requests need Content-Type: application/json (got {:?})",
                shorten(ct)
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(addr: &str, public: &[&str]) -> Guard {
        Guard {
            bound: addr.parse().unwrap(),
            public_hosts: public.iter().map(|s| s.to_string()).collect(),
            max_queued: 1,
            limits: Limits::default(),
        }
    }

    #[test]
    fn hosts_of_this_server_only() {
        let g = guard("127.0.0.1:8080", &[]);
        for ok in [
            "127.0.0.1:8080",
            "localhost:8080",
            "[::1]:8080",
            "LOCALHOST:8080",
        ] {
            assert!(g.host_allowed(ok), "{ok}");
        }
        for bad in [
            "evil.com:8080",
            "127.0.0.1:9090",
            "localhost",
            "127.0.0.1:x",
            "[::1",
        ] {
            assert!(!g.host_allowed(bad), "{bad}");
        }
        let g = guard("10.0.0.5:80", &["dash.example.org"]);
        assert!(g.host_allowed("10.0.0.5") && g.host_allowed("dash.example.org:443"));
        assert!(!g.host_allowed("10.0.0.6") && !g.host_allowed("localhost"));
        let g = guard("0.0.0.0:8080", &["h:8080"]);
        assert!(g.host_allowed("192.168.1.9:8080") && g.host_allowed("h:8080"));
        assert!(!g.host_allowed("h:9") && !g.host_allowed("rebind.example:8080"));
    }

    fn post(headers: &[(&str, &[u8])]) -> Request {
        let mut b = Request::builder()
            .method(Method::POST)
            .uri("/api/runs")
            .header("content-type", "application/json");
        for (k, v) in headers {
            b = b.header(*k, axum::http::HeaderValue::from_bytes(v).unwrap());
        }
        b.body(axum::body::Body::empty()).unwrap()
    }

    #[test]
    fn unreadable_or_repeated_headers_fail_closed() {
        let g = guard("127.0.0.1:8080", &[]);
        assert!(check(&g, &post(&[("host", b"127.0.0.1:8080")])).is_ok());
        // The first Host is ours, the second a rebinding name: refused, whichever comes first.
        let two = post(&[("host", b"127.0.0.1:8080"), ("host", b"evil.example:8080")]);
        let err = check(&g, &two).unwrap_err().to_string();
        assert!(err.contains("more than one host header"), "{err}");
        for (name, value) in [
            ("host", &b"127.0.0.1:8080\xff"[..]),
            ("origin", &b"http://evil\xe9.example"[..]),
            ("sec-fetch-site", &b"cross-site\xff"[..]),
        ] {
            let req = post(&[("host", b"127.0.0.1:8080"), (name, value)]);
            let req = if name == "host" {
                post(&[(name, value)])
            } else {
                req
            };
            let err = check(&g, &req).unwrap_err().to_string();
            assert!(
                err.contains(name) && err.contains("visible ASCII"),
                "{name}: {err}"
            );
        }
    }
}
