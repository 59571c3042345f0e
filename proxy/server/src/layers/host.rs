//! DNS-rebinding protection: on a loopback bind, only local host names may address the server.
//!
//! Mirrors upstream's `allowedHostsMiddleware`: active only when the listen address is a
//! loopback IP; allows IP hosts that are loopback, private, unspecified or a local interface,
//! and the names `localhost`, this machine's hostname, `*.localhost`, `*.local`, `*.internal`.
//! Everything else gets a bare 403. Non-CORS `OPTIONS` to an allowed host is answered 204.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{header, Method, Request, Response, StatusCode};
use tower::{Layer, Service};

use crate::body::{status_only, BoxBody};

/// Which hosts are allowed.
#[derive(Debug, Clone)]
pub struct HostPolicy {
    active: bool,
    hostname: String,
    local_ips: Vec<IpAddr>,
}

impl HostPolicy {
    /// The policy for a server bound to `addr`.
    pub fn for_bind(addr: SocketAddr, hostname: String, local_ips: Vec<IpAddr>) -> Self {
        HostPolicy {
            active: addr.ip().is_loopback(),
            hostname: hostname.to_ascii_lowercase(),
            local_ips,
        }
    }

    /// Whether a `Host` header value is allowed.
    pub fn allows(&self, host_header: &str) -> bool {
        if !self.active {
            return true;
        }
        let host = strip_port(host_header);
        if let Ok(ip) = host
            .trim_matches(|c| c == '[' || c == ']')
            .parse::<IpAddr>()
        {
            return ip.is_loopback()
                || ip.is_unspecified()
                || is_private(&ip)
                || self.local_ips.contains(&ip);
        }
        let h = host.to_ascii_lowercase();
        h.is_empty()
            || h == "localhost"
            || (!self.hostname.is_empty() && h == self.hostname)
            || h.ends_with(".localhost")
            || h.ends_with(".local")
            || h.ends_with(".internal")
    }
}

fn strip_port(h: &str) -> &str {
    if let Some(rest) = h.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match h.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => {
            host
        }
        _ => h,
    }
}

fn is_private(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_private(),
        IpAddr::V6(v6) => (v6.segments()[0] & 0xfe00) == 0xfc00,
    }
}

/// Layer adding [`HostCheck`].
#[derive(Clone)]
pub struct HostCheckLayer {
    policy: Arc<HostPolicy>,
}

impl HostCheckLayer {
    /// Check hosts with `policy`.
    pub fn new(policy: HostPolicy) -> Self {
        HostCheckLayer {
            policy: Arc::new(policy),
        }
    }
}

impl<S> Layer<S> for HostCheckLayer {
    type Service = HostCheck<S>;
    fn layer(&self, inner: S) -> HostCheck<S> {
        HostCheck {
            inner,
            policy: self.policy.clone(),
        }
    }
}

/// The host-check middleware.
#[derive(Clone)]
pub struct HostCheck<S> {
    inner: S,
    policy: Arc<HostPolicy>,
}

impl<S, B> Service<Request<B>> for HostCheck<S>
where
    S: Service<Request<B>, Response = Response<BoxBody>> + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response<BoxBody>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<BoxBody>, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .or_else(|| req.uri().authority().map(|a| a.to_string()))
            .unwrap_or_default();
        if !self.policy.allows(&host) {
            return Box::pin(async { Ok(status_only(StatusCode::FORBIDDEN)) });
        }
        if self.policy.active && req.method() == Method::OPTIONS {
            return Box::pin(async { Ok(status_only(StatusCode::NO_CONTENT)) });
        }
        Box::pin(self.inner.call(req))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loopback() -> HostPolicy {
        HostPolicy::for_bind("127.0.0.1:11434".parse().unwrap(), "mybox".into(), vec![])
    }

    #[test]
    fn loopback_bind_allows_local_names_and_ips() {
        let p = loopback();
        for h in [
            "localhost:11434",
            "127.0.0.1:11434",
            "[::1]:11434",
            "10.1.2.3",
            "192.168.0.2:80",
            "mybox",
            "x.local",
            "a.internal",
            "foo.localhost",
            "",
        ] {
            assert!(p.allows(h), "{h}");
        }
    }

    #[test]
    fn loopback_bind_rejects_foreign_names() {
        let p = loopback();
        assert!(!p.allows("evil.example:11434"));
        assert!(!p.allows("8.8.8.8"));
    }

    #[test]
    fn non_loopback_bind_allows_everything() {
        let p = HostPolicy::for_bind("0.0.0.0:11434".parse().unwrap(), String::new(), vec![]);
        assert!(p.allows("evil.example"));
    }
}
