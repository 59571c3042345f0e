//! The HTTP client pull and push share: hyper over rustls (webpki roots), a `User-Agent` on every
//! request, connect/header timeouts, stall detection while reading bodies, and small URL helpers
//! (redirect targets, hosts, query encoding). Redirects are never followed implicitly: callers
//! decide, so credentials never leak to another host.

use std::sync::Arc;

use bytes::Bytes;
use http::{header, Request, Response, StatusCode};
use http_body_util::{combinators::UnsyncBoxBody, BodyExt, Empty};
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;

use super::config::PullConfig;
use super::error::PullError;

/// Request body type (empty, in-memory or streamed).
pub(crate) type ReqBody = UnsyncBoxBody<Bytes, std::io::Error>;

/// An empty request body.
pub(crate) fn empty() -> ReqBody {
    Empty::<Bytes>::new().map_err(|e| match e {}).boxed_unsync()
}

/// Shared client plus the timeouts of one pull/push.
#[derive(Clone)]
pub(crate) struct Http {
    client: Client<HttpsConnector<HttpConnector>, ReqBody>,
    pub(crate) cfg: Arc<PullConfig>,
}

impl Http {
    /// A client with the configured connect timeout; `https` and `http` both allowed (the
    /// insecure check happens on names, before any request).
    pub(crate) fn new(cfg: Arc<PullConfig>) -> Self {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(cfg.connect_timeout));
        http.set_nodelay(true);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_webpki_roots()
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new()).build(https);
        Http { client, cfg }
    }

    /// Send `req` (adding `User-Agent`), waiting at most `header_timeout` for the headers.
    pub(crate) async fn send(
        &self,
        mut req: Request<ReqBody>,
    ) -> Result<Response<Incoming>, PullError> {
        let ua = header::HeaderValue::from_str(&self.cfg.user_agent)
            .unwrap_or_else(|_| header::HeaderValue::from_static("ollmlx"));
        req.headers_mut().insert(header::USER_AGENT, ua);
        let what = format!("{} {}", req.method(), redact(&req.uri().to_string()));
        match tokio::time::timeout(self.cfg.header_timeout, self.client.request(req)).await {
            Err(_) => Err(PullError::Timeout(what)),
            Ok(Err(e)) => Err(PullError::Transport(format!("{what}: {}", error_chain(&e)))),
            Ok(Ok(r)) => Ok(r),
        }
    }

    /// A request with the given method, URL, headers and body.
    pub(crate) async fn request(
        &self,
        method: http::Method,
        url: &str,
        headers: &[(header::HeaderName, String)],
        body: ReqBody,
    ) -> Result<Response<Incoming>, PullError> {
        let mut b = Request::builder().method(method).uri(url);
        for (k, v) in headers {
            b = b.header(k, v);
        }
        let req = b
            .body(body)
            .map_err(|e| PullError::Invalid(format!("bad request URL {}: {e}", redact(url))))?;
        self.send(req).await
    }

    /// The next data chunk of `body`, `None` at the end; fails when nothing arrives for
    /// `stall_timeout`.
    pub(crate) async fn next_chunk(&self, body: &mut Incoming) -> Result<Option<Bytes>, PullError> {
        loop {
            let frame = match tokio::time::timeout(self.cfg.stall_timeout, body.frame()).await {
                Err(_) => return Err(PullError::Stalled(self.cfg.stall_timeout.as_secs())),
                Ok(None) => return Ok(None),
                Ok(Some(Err(e))) => {
                    return Err(PullError::Transport(format!(
                        "reading response body: {}",
                        error_chain(&e)
                    )))
                }
                Ok(Some(Ok(f))) => f,
            };
            if let Ok(data) = frame.into_data() {
                return Ok(Some(data));
            }
        }
    }

    /// Read a whole body (at most `limit` bytes).
    pub(crate) async fn read_body(
        &self,
        resp: Response<Incoming>,
        limit: usize,
    ) -> Result<Vec<u8>, PullError> {
        let mut body = resp.into_body();
        let mut out = Vec::new();
        while let Some(c) = self.next_chunk(&mut body).await? {
            if out.len() + c.len() > limit {
                return Err(PullError::Invalid(format!(
                    "response body larger than {limit} bytes"
                )));
            }
            out.extend_from_slice(&c);
        }
        Ok(out)
    }

    /// `<code>: <body>` for an error response (body trimmed, at most 64 KiB read).
    pub(crate) async fn status_error(&self, resp: Response<Incoming>) -> PullError {
        let code = resp.status().as_u16();
        let body = match self.read_body(resp, 64 * 1024).await {
            Ok(b) => String::from_utf8_lossy(&b).trim().to_string(),
            Err(e) => e.to_string(),
        };
        PullError::Status { code, body }
    }
}

/// Whether `s` is a redirect status.
pub(crate) fn is_redirect(s: StatusCode) -> bool {
    matches!(s.as_u16(), 301 | 302 | 303 | 307 | 308)
}

/// `Location` of a response, resolved against `base`.
pub(crate) fn location<B>(resp: &Response<B>, base: &str) -> Option<String> {
    let loc = resp.headers().get(header::LOCATION)?.to_str().ok()?;
    Some(resolve_url(base, loc))
}

/// Resolve a possibly relative reference against an absolute URL.
pub(crate) fn resolve_url(base: &str, reference: &str) -> String {
    if reference.contains("://") {
        return reference.to_string();
    }
    let (scheme, rest) = base.split_once("://").unwrap_or(("https", base));
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    if let Some(r) = reference.strip_prefix("//") {
        return format!("{scheme}://{r}");
    }
    if reference.starts_with('/') {
        return format!("{scheme}://{authority}{reference}");
    }
    let path = rest[authority_end..].split(['?', '#']).next().unwrap_or("");
    let dir = &path[..path.rfind('/').map_or(0, |i| i + 1)];
    let dir = if dir.is_empty() { "/" } else { dir };
    format!("{scheme}://{authority}{dir}{reference}")
}

/// `host[:port]` of an absolute URL, lower-cased.
pub(crate) fn url_authority(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let auth = &rest[..end];
    let auth = auth.rsplit_once('@').map_or(auth, |(_, h)| h);
    auth.to_ascii_lowercase()
}

/// Host of an absolute URL without the port, lower-cased.
pub(crate) fn url_host(url: &str) -> String {
    let a = url_authority(url);
    if a.starts_with('[') {
        return a.split(']').next().unwrap_or("").to_string() + "]";
    }
    a.split(':').next().unwrap_or("").to_string()
}

/// Percent-encode a query component (everything but RFC 3986 unreserved characters).
pub(crate) fn query_escape(s: &str) -> String {
    encode(s, false)
}

/// Percent-encode a path, keeping `/`.
pub(crate) fn path_escape(s: &str) -> String {
    encode(s, true)
}

fn encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'_' | b'.' | b'~')
            || (keep_slash && b == b'/')
        {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A URL without its query (signed CDN URLs carry credentials there).
pub(crate) fn redact(url: &str) -> String {
    url.split('?').next().unwrap_or(url).to_string()
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        let cs = c.to_string();
        if !s.contains(&cs) {
            s.push_str(": ");
            s.push_str(&cs);
        }
        src = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_redirects_resolve_against_the_request_url() {
        let base = "https://hf.co/org/repo/resolve/main/config.json?x=1";
        assert_eq!(resolve_url(base, "https://cdn/x"), "https://cdn/x");
        assert_eq!(
            resolve_url(base, "/api/resolve-cache/a"),
            "https://hf.co/api/resolve-cache/a"
        );
        assert_eq!(
            resolve_url(base, "other.json"),
            "https://hf.co/org/repo/resolve/main/other.json"
        );
        assert_eq!(
            resolve_url(base, "//cdn.example/y"),
            "https://cdn.example/y"
        );
    }

    #[test]
    fn authority_and_host_ignore_userinfo_path_and_case() {
        assert_eq!(
            url_authority("http://u:p@Reg.Example:5000/v2/x"),
            "reg.example:5000"
        );
        assert_eq!(url_host("http://Reg.Example:5000/v2/x"), "reg.example");
        assert_eq!(url_host("https://hf.co"), "hf.co");
    }

    #[test]
    fn query_escape_matches_go_url_values() {
        assert_eq!(
            query_escape("repository:library/m:pull"),
            "repository%3Alibrary%2Fm%3Apull"
        );
        assert_eq!(path_escape("a b/c.json"), "a%20b/c.json");
    }
}
