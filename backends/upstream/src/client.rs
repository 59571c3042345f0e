//! The HTTP/1.1 client both upstream backends talk through: the last hop of the request path,
//! after the router picked an upstream backend and before bytes leave for the upstream server.
//!
//! It owns connection pooling, the connect timeout and the header timeout (time until the
//! upstream's response head arrives). There is deliberately no timeout on how long a streamed
//! body may take: a generation or a pull can legitimately run for hours. Connection failures
//! become [`BackendError::Unavailable`] with a message naming the upstream.

use std::time::Duration;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use http::header::{HeaderName, HeaderValue, CONNECTION, CONTENT_TYPE, EXPECT, HOST};
use http::{HeaderMap, Method, Request, Response, Uri};
use http_body::Body as _;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyDataStream, BodyExt, Empty, Full, Limited, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use ollmlx_infer::{BackendError, RawBody};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::config::ConfigError;
use crate::error_body::upstream_error;

/// Boxed error type carried by request bodies.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The request body type the client sends (streamed or buffered).
pub type ReqBody = UnsyncBoxBody<Bytes, BoxError>;

/// Largest JSON body the typed methods read into memory (embeddings of big batches are large).
const MAX_JSON_BODY: usize = 256 * 1024 * 1024;
/// Largest error body read to extract a message.
const MAX_ERROR_BODY: usize = 1024 * 1024;

/// Headers that describe one connection rather than the message; never forwarded (RFC 9110 §7.6.1).
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "trailers",
    "transfer-encoding",
    "upgrade",
];

/// Timeouts and pooling of an [`UpstreamClient`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// Limit on establishing the TCP connection.
    pub connect_timeout: Duration,
    /// Limit from sending the request until the response head arrives (covers model loading and
    /// prompt processing on upstreams that send headers with the first token).
    pub header_timeout: Duration,
    /// How long an idle pooled connection is kept.
    pub pool_idle_timeout: Duration,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            connect_timeout: Duration::from_secs(5),
            header_timeout: Duration::from_secs(600),
            pool_idle_timeout: Duration::from_secs(90),
        }
    }
}

/// A pooled HTTP/1.1 client bound to one upstream base URL.
#[derive(Clone)]
pub struct UpstreamClient {
    label: String,
    base: Uri,
    prefix: String,
    inner: Client<HttpConnector, ReqBody>,
    header_timeout: Duration,
    default_headers: HeaderMap,
}

// === impl UpstreamClient ===

impl UpstreamClient {
    /// A client for `url` (`http://host:port[/prefix]`; a missing scheme means `http`).
    /// `kind` names the upstream in error messages (`ollama`, `openai`).
    pub fn new(
        kind: &str,
        url: &str,
        cfg: &ClientConfig,
        default_headers: HeaderMap,
    ) -> Result<Self, ConfigError> {
        let (base, prefix) = parse_base_url(url)?;
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(cfg.connect_timeout));
        connector.set_nodelay(true);
        let inner = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(cfg.pool_idle_timeout)
            .build(connector);
        let shown = format!("{}{}", base.to_string().trim_end_matches('/'), prefix);
        Ok(UpstreamClient {
            label: format!("upstream {kind} at {shown}"),
            base,
            prefix,
            inner,
            header_timeout: cfg.header_timeout,
            default_headers,
        })
    }

    /// `upstream <kind> at <url>`, used in every error message.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The absolute URI of `path_and_query` under the base URL.
    pub fn uri(&self, path_and_query: &str) -> Result<Uri, BackendError> {
        let pq = format!("{}{}", self.prefix, path_and_query);
        let mut parts = self.base.clone().into_parts();
        parts.path_and_query = Some(pq.parse().map_err(|e| {
            BackendError::InvalidRequest(format!("invalid request path {path_and_query:?}: {e}"))
        })?);
        Uri::from_parts(parts)
            .map_err(|e| BackendError::InvalidRequest(format!("invalid request path: {e}")))
    }

    /// Send one request and wait (at most the header timeout) for the response head.
    /// The response is returned whatever its status.
    pub async fn send(
        &self,
        method: Method,
        path_and_query: &str,
        headers: HeaderMap,
        body: ReqBody,
    ) -> Result<Response<Incoming>, BackendError> {
        let mut req = Request::builder()
            .method(method)
            .uri(self.uri(path_and_query)?)
            .body(body)
            .map_err(|e| BackendError::InvalidRequest(format!("invalid request: {e}")))?;
        let h = req.headers_mut();
        for (k, v) in &self.default_headers {
            h.insert(k, v.clone());
        }
        for (k, v) in headers.iter() {
            h.append(k, v.clone());
        }
        // The header timeout starts once the request body is sent: a big blob upload may take
        // longer than it, and the upstream answers only after reading all of it.
        let (sent_tx, sent_rx) = tokio::sync::oneshot::channel();
        let req = req.map(|body| NotifyEnd::new(body, sent_tx).boxed_unsync());
        let fut = self.inner.request(req);
        tokio::pin!(fut);
        let result = tokio::select! {
            r = &mut fut => Some(r),
            _ = sent_rx => tokio::time::timeout(self.header_timeout, &mut fut).await.ok(),
        };
        match result {
            Some(Ok(resp)) => Ok(resp),
            Some(Err(e)) => Err(self.transport_error(&e)),
            None => Err(BackendError::Unavailable(format!(
                "{} did not send response headers within {}s",
                self.label,
                self.header_timeout.as_secs_f64()
            ))),
        }
    }

    /// Send and require a 2xx status; anything else becomes the upstream's error.
    pub async fn send_ok(
        &self,
        method: Method,
        path_and_query: &str,
        headers: HeaderMap,
        body: ReqBody,
    ) -> Result<Response<Incoming>, BackendError> {
        let resp = self.send(method, path_and_query, headers, body).await?;
        if resp.status().is_success() {
            Ok(resp)
        } else {
            Err(self.error_from(resp).await)
        }
    }

    /// `POST path` with a JSON body; 2xx required.
    pub async fn post_json<B: Serialize>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<Response<Incoming>, BackendError> {
        self.send_ok(Method::POST, path, json_headers(), json_body(body)?)
            .await
    }

    /// `GET path`, 2xx required, body decoded as JSON.
    pub async fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, BackendError> {
        let resp = self
            .send_ok(Method::GET, path, HeaderMap::new(), empty_body())
            .await?;
        self.read_json(path, resp).await
    }

    /// Read a whole response body (bounded) and decode it as JSON.
    pub async fn read_json<T: DeserializeOwned>(
        &self,
        path: &str,
        resp: Response<Incoming>,
    ) -> Result<T, BackendError> {
        let bytes = self.read_body(resp.into_body(), MAX_JSON_BODY).await?;
        serde_json::from_slice(&bytes).map_err(|e| {
            BackendError::Unavailable(format!(
                "{} answered {path} with a body that is not the expected JSON ({e}): {}",
                self.label,
                snippet(&bytes)
            ))
        })
    }

    /// Read a whole body, at most `limit` bytes.
    pub async fn read_body(&self, body: Incoming, limit: usize) -> Result<Bytes, BackendError> {
        Limited::new(body, limit)
            .collect()
            .await
            .map(|c| c.to_bytes())
            .map_err(|e| {
                BackendError::Unavailable(format!(
                    "{} failed while sending a body: {e}",
                    self.label
                ))
            })
    }

    /// Turn a non-2xx response into [`BackendError::Upstream`] with the upstream's own text.
    pub async fn error_from(&self, resp: Response<Incoming>) -> BackendError {
        let status = resp.status();
        let ct = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        match self.read_body(resp.into_body(), MAX_ERROR_BODY).await {
            Ok(body) => upstream_error(&self.label, status, &ct, &body),
            Err(e) => BackendError::Upstream {
                status: status.as_u16(),
                message: e.to_string(),
            },
        }
    }

    /// A streamed response body as [`RawBody`]; dropping it closes the upstream connection.
    /// The first body bytes must arrive within the header timeout (counted from the response
    /// head); after that the stream may take as long as it likes.
    pub fn body_stream(&self, body: Incoming) -> RawBody {
        let label = self.label.clone();
        let limit = self.header_timeout;
        let data = BodyDataStream::new(body).map_err(move |e| {
            BackendError::Unavailable(format!("{label} broke off the response: {e}"))
        });
        let label = self.label.clone();
        futures::stream::unfold((data.boxed(), true), move |(mut data, first)| {
            let label = label.clone();
            async move {
                if !first {
                    return data.next().await.map(|item| (item, (data, false)));
                }
                match tokio::time::timeout(limit, data.next()).await {
                    Ok(item) => item.map(|item| (item, (data, false))),
                    Err(_) => {
                        let e = BackendError::Unavailable(format!(
                            "{label} sent response headers but no body within {}s",
                            limit.as_secs_f64()
                        ));
                        // End after the error: the connection is dropped with `data`.
                        Some((Err(e), (futures::stream::empty().boxed(), false)))
                    }
                }
            }
        })
        .boxed()
    }

    fn transport_error(&self, e: &hyper_util::client::legacy::Error) -> BackendError {
        let chain = error_chain(e);
        if e.is_connect() {
            BackendError::Unavailable(format!("cannot connect to {}: {chain}", self.label))
        } else {
            BackendError::Unavailable(format!("request to {} failed: {chain}", self.label))
        }
    }
}

impl std::fmt::Debug for UpstreamClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamClient")
            .field("label", &self.label)
            .field("header_timeout", &self.header_timeout)
            .finish_non_exhaustive()
    }
}

/// A request body that reports when it has been sent in full (or abandoned).
struct NotifyEnd {
    inner: ReqBody,
    sent: Option<tokio::sync::oneshot::Sender<()>>,
}

// === impl NotifyEnd ===

impl NotifyEnd {
    fn new(inner: ReqBody, sent: tokio::sync::oneshot::Sender<()>) -> Self {
        let mut this = NotifyEnd {
            inner,
            sent: Some(sent),
        };
        if this.inner.is_end_stream() {
            this.fire();
        }
        this
    }

    fn fire(&mut self) {
        if let Some(tx) = self.sent.take() {
            let _ = tx.send(());
        }
    }
}

impl http_body::Body for NotifyEnd {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let polled = std::pin::Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            std::task::Poll::Ready(None) | std::task::Poll::Ready(Some(Err(_))) => self.fire(),
            std::task::Poll::Ready(Some(Ok(_))) if self.inner.is_end_stream() => self.fire(),
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// Split `url` into an origin URI and a path prefix without trailing slash.
fn parse_base_url(url: &str) -> Result<(Uri, String), ConfigError> {
    let trimmed = url.trim();
    let with_scheme = if trimmed.contains("://") {
        trimmed.to_string()
    } else {
        format!("http://{trimmed}")
    };
    let uri: Uri = with_scheme
        .parse()
        .map_err(|e| ConfigError::InvalidUrl(url.to_string(), format!("{e}")))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") => {
            return Err(ConfigError::InvalidUrl(
                url.to_string(),
                "https upstreams are not supported yet; put a TLS-terminating proxy in front or use http".into(),
            ))
        }
        other => {
            return Err(ConfigError::InvalidUrl(
                url.to_string(),
                format!("unsupported scheme {:?}", other.unwrap_or("")),
            ))
        }
    }
    let authority = uri
        .authority()
        .cloned()
        .ok_or_else(|| ConfigError::InvalidUrl(url.to_string(), "missing host".into()))?;
    if uri.query().is_some() {
        return Err(ConfigError::InvalidUrl(
            url.to_string(),
            "a base URL cannot have a query".into(),
        ));
    }
    let prefix = uri.path().trim_end_matches('/').to_string();
    let base = Uri::builder()
        .scheme("http")
        .authority(authority)
        .path_and_query("/")
        .build()
        .map_err(|e| ConfigError::InvalidUrl(url.to_string(), e.to_string()))?;
    Ok((base, prefix))
}

/// Remove hop-by-hop headers, `Proxy-*` headers and every header named in `Connection`.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let listed: Vec<HeaderName> = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|s| s.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for name in listed {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(*name);
    }
    let proxy: Vec<HeaderName> = headers
        .keys()
        .filter(|k| k.as_str().starts_with("proxy-"))
        .cloned()
        .collect();
    for name in proxy {
        headers.remove(name);
    }
}

/// Build a header map from `(name, value)` pairs, skipping pairs that are not valid HTTP.
pub fn headers_from_pairs(pairs: Vec<(String, Vec<u8>)>) -> HeaderMap {
    let mut map = HeaderMap::with_capacity(pairs.len());
    for (k, v) in pairs {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_bytes(&v),
        ) {
            map.append(name, value);
        }
    }
    map
}

/// The pairs of a header map, in order, names lower-cased.
pub fn headers_to_pairs(headers: &HeaderMap) -> Vec<(String, Vec<u8>)> {
    headers
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), v.as_bytes().to_vec()))
        .collect()
}

/// Request headers as forwarded upstream: hop-by-hop, `Expect` and `Host` removed (the client sets the
/// upstream's own `Host`, which upstream Ollama's DNS-rebinding check expects).
pub fn forwardable_request_headers(pairs: Vec<(String, Vec<u8>)>) -> HeaderMap {
    let mut h = headers_from_pairs(pairs);
    strip_hop_by_hop(&mut h);
    h.remove(HOST);
    // ollmlx's own server already answered `100 Continue`; the upstream gets the body at once.
    h.remove(EXPECT);
    h
}

/// An empty request body.
pub fn empty_body() -> ReqBody {
    Empty::<Bytes>::new()
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// A buffered request body.
pub fn full_body(bytes: impl Into<Bytes>) -> ReqBody {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// A JSON request body.
pub fn json_body<B: Serialize>(body: &B) -> Result<ReqBody, BackendError> {
    let bytes = serde_json::to_vec(body)
        .map_err(|e| BackendError::Internal(format!("cannot encode upstream request: {e}")))?;
    Ok(full_body(bytes))
}

/// `Content-Type: application/json`.
pub fn json_headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h
}

/// A streamed request body. An empty stream becomes a body-less request (no chunked framing on
/// a `GET`); otherwise chunks are sent as they arrive, never buffered.
pub async fn stream_body(mut body: RawBody) -> Result<ReqBody, BackendError> {
    let first = match body.next().await {
        None => return Ok(empty_body()),
        Some(Err(e)) => return Err(e),
        Some(Ok(b)) => b,
    };
    let rest = futures::stream::once(async move { Ok(first) }).chain(body);
    let frames = rest.map(|r| r.map(Frame::data).map_err(|e| Box::new(e) as BoxError));
    Ok(StreamBody::new(frames).boxed_unsync())
}

/// `source: source: ...` of an error, skipping hyper-util's generic top level when it has a cause.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur = e.source();
    while let Some(s) = cur {
        parts.push(s.to_string());
        cur = s.source();
    }
    if parts.is_empty() {
        e.to_string()
    } else {
        parts.join(": ")
    }
}

/// The first 200 characters of a body, for error messages.
pub fn snippet(bytes: &[u8]) -> String {
    let s = String::from_utf8_lossy(bytes);
    let s = s.trim();
    match s.char_indices().nth(200) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_url_keeps_prefix_and_defaults_scheme() {
        let (base, prefix) = parse_base_url("10.0.0.5:8000/api/base/").unwrap();
        assert_eq!(base.to_string(), "http://10.0.0.5:8000/");
        assert_eq!(prefix, "/api/base");
    }

    #[test]
    fn base_url_rejects_https_and_queries_with_reason() {
        let e = parse_base_url("https://x").unwrap_err().to_string();
        assert!(e.contains("https upstreams are not supported"), "{e}");
        assert!(parse_base_url("http://x/?a=1").is_err());
        assert!(parse_base_url("ftp://x").is_err());
    }

    #[test]
    fn uri_joins_prefix_and_path() {
        let c = UpstreamClient::new(
            "ollama",
            "http://h:1/pre/",
            &ClientConfig::default(),
            HeaderMap::new(),
        )
        .unwrap();
        assert_eq!(
            c.uri("/api/tags?x=1").unwrap().to_string(),
            "http://h:1/pre/api/tags?x=1"
        );
        assert_eq!(c.label(), "upstream ollama at http://h:1/pre");
    }

    #[test]
    fn hop_by_hop_and_connection_listed_headers_are_stripped() {
        let mut h = headers_from_pairs(vec![
            ("Connection".into(), b"keep-alive, X-Secret".to_vec()),
            ("Keep-Alive".into(), b"timeout=5".to_vec()),
            ("Transfer-Encoding".into(), b"chunked".to_vec()),
            ("TE".into(), b"trailers".to_vec()),
            ("Trailer".into(), b"x".to_vec()),
            ("Upgrade".into(), b"h2c".to_vec()),
            ("Proxy-Authorization".into(), b"Basic x".to_vec()),
            ("X-Secret".into(), b"1".to_vec()),
            ("Content-Type".into(), b"application/json".to_vec()),
            ("Content-Length".into(), b"2".to_vec()),
        ]);
        strip_hop_by_hop(&mut h);
        let names: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        assert_eq!(names, vec!["content-type", "content-length"]);
    }

    #[test]
    fn forwarded_request_headers_drop_host() {
        let h = forwardable_request_headers(vec![
            ("Host".into(), b"ollmlx:11434".to_vec()),
            ("User-Agent".into(), b"ollama-js".to_vec()),
        ]);
        assert!(h.get(HOST).is_none());
        assert_eq!(h.get("user-agent").unwrap(), "ollama-js");
    }
}
