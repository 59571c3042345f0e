//! A small async HTTP client for the native API, as upstream's `api.Client` behaves.
//!
//! Requests go over hyper-util's legacy client (HTTP, or HTTPS with the webpki root
//! certificates when `OLLAMA_HOST` says `https://`). Non-streaming calls decode
//! `{"error": ...}` bodies into [`ApiError::Status`]; streaming calls read NDJSON line by line,
//! turning an `{"error": ...}` line into [`ApiError::Message`] and an HTTP error status into
//! [`ApiError::Status`] carrying the status line (`404 Not Found: <msg>`), exactly as the Go
//! client words them. Connection failures read like Go's
//! (`Post "http://127.0.0.1:11434/api/chat": dial tcp 127.0.0.1:11434: connect: connection refused`).

use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::TokioExecutor;
use ollmlx_wire::ollama::{
    ChatRequest, ChatResponse, CopyRequest, CreateRequest, DeleteRequest, EmbedRequest,
    EmbedResponse, GenerateRequest, GenerateResponse, ListResponse, ProcessResponse,
    ProgressResponse, PullRequest, ShowRequest, ShowResponse, VersionResponse,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncReadExt;

use crate::env::HostUrl;

type ReqBody = BoxBody<Bytes, std::io::Error>;

/// An error from the server or the connection to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// The request never reached the server.
    Connect {
        /// `Get`, `Post`, `Head`, `Delete` (Go's capitalization).
        method: String,
        /// The full URL.
        url: String,
        /// What went wrong, e.g. `dial tcp 127.0.0.1:11434: connect: connection refused`.
        detail: String,
    },
    /// An HTTP error status (upstream `StatusError`).
    Status {
        /// The status code.
        code: u16,
        /// The status line (`404 Not Found`) for streamed calls, empty otherwise.
        status: String,
        /// The server's `error` text.
        message: String,
    },
    /// A 401 answer (upstream `AuthorizationError`).
    Unauthorized {
        /// The status line, may be empty.
        status: String,
        /// Where to sign in, when the server says.
        signin_url: String,
    },
    /// An `{"error": ...}` line inside a successful stream, or any other message.
    Message(String),
}

impl ApiError {
    /// The HTTP status code, when the server answered with one.
    pub fn status_code(&self) -> Option<u16> {
        match self {
            ApiError::Status { code, .. } => Some(*code),
            ApiError::Unauthorized { .. } => Some(401),
            _ => None,
        }
    }

    /// True when the connection was refused (no server listening).
    pub fn is_refused(&self) -> bool {
        matches!(self, ApiError::Connect { detail, .. } if detail.contains(" refused"))
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiError::Connect {
                method,
                url,
                detail,
            } => write!(f, "{method} \"{url}\": {detail}"),
            ApiError::Status {
                status, message, ..
            } => match (status.is_empty(), message.is_empty()) {
                (false, false) => write!(f, "{status}: {message}"),
                (false, true) => f.write_str(status),
                (true, false) => f.write_str(message),
                (true, true) => f.write_str(
                    "something went wrong, please see the ollmlx server logs for details",
                ),
            },
            ApiError::Unauthorized { status, .. } => {
                if status.is_empty() {
                    f.write_str(
                        "something went wrong, please see the ollmlx server logs for details",
                    )
                } else {
                    f.write_str(status)
                }
            }
            ApiError::Message(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for ApiError {}

/// Result of a client call.
pub type ApiResult<T> = Result<T, ApiError>;

#[derive(Deserialize, Default)]
struct ErrorLine {
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    signin_url: Option<String>,
}

/// A client for one ollmlx (or Ollama) server.
#[derive(Clone)]
pub struct Client {
    base: HostUrl,
    http: HyperClient<HttpsConnector<HttpConnector>, ReqBody>,
}

impl Client {
    /// A client for `base` (normally [`crate::env::Env::connectable_host`]).
    pub fn new(base: HostUrl) -> Client {
        let mut plain = HttpConnector::new();
        plain.enforce_http(false);
        plain.set_nodelay(true);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_webpki_roots()
            .https_or_http()
            .enable_http1()
            .wrap_connector(plain);
        let http = HyperClient::builder(TokioExecutor::new()).build(connector);
        Client { base, http }
    }

    /// The server address this client talks to.
    pub fn base(&self) -> &HostUrl {
        &self.base
    }

    fn user_agent() -> String {
        format!(
            "ollmlx/{} ({} {}) Rust",
            env!("CARGO_PKG_VERSION"),
            std::env::consts::ARCH,
            std::env::consts::OS
        )
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: ReqBody,
        accept: &str,
    ) -> ApiResult<http::Response<hyper::body::Incoming>> {
        let url = self.base.join(path);
        let go_method = go_method_name(&method);
        if self.base.scheme != "http" && self.base.scheme != "https" {
            return Err(ApiError::Connect {
                method: go_method,
                url,
                detail: format!("unsupported protocol scheme \"{}\"", self.base.scheme),
            });
        }
        let req = Request::builder()
            .method(method)
            .uri(&url)
            .header("Content-Type", "application/json")
            .header("Accept", accept)
            .header("User-Agent", Self::user_agent())
            .body(body)
            .map_err(|e| ApiError::Message(e.to_string()))?;
        self.http.request(req).await.map_err(|e| ApiError::Connect {
            method: go_method,
            url,
            detail: connect_detail(&e, &self.base.host_port()),
        })
    }

    /// A request whose whole response body is read; error statuses become [`ApiError`]s.
    async fn call(&self, method: Method, path: &str, body: ReqBody) -> ApiResult<Bytes> {
        let resp = self.send(method, path, body, "application/json").await?;
        let status = resp.status();
        let bytes = read_body(resp).await?;
        check_error(status, &bytes)?;
        Ok(bytes)
    }

    async fn call_json<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        req: Option<&Req>,
    ) -> ApiResult<Resp> {
        let body = match req {
            Some(r) => json_body(r)?,
            None => empty_body(),
        };
        let bytes = self.call(method, path, body).await?;
        serde_json::from_slice(&bytes).map_err(|e| ApiError::Message(e.to_string()))
    }

    /// Stream NDJSON objects from `path`, calling `f` for each.
    async fn stream<Req: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        req: &Req,
        mut f: impl FnMut(T) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        let resp = self
            .send(Method::POST, path, json_body(req)?, "application/x-ndjson")
            .await?;
        let status = resp.status();
        let mut body = resp.into_body();
        let mut buf: Vec<u8> = Vec::new();
        let mut handle_line = |line: &[u8]| -> anyhow::Result<()> {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.iter().all(u8::is_ascii_whitespace) {
                return Ok(());
            }
            let text = String::from_utf8_lossy(line).to_string();
            let err_line: ErrorLine = match serde_json::from_slice(line) {
                Ok(e) => e,
                Err(_) => {
                    if status.as_u16() >= 400 {
                        return Err(ApiError::Status {
                            code: status.as_u16(),
                            status: status_line(status),
                            message: text,
                        }
                        .into());
                    }
                    return Err(ApiError::Message(text).into());
                }
            };
            if status == StatusCode::UNAUTHORIZED {
                return Err(ApiError::Unauthorized {
                    status: status_line(status),
                    signin_url: err_line.signin_url.unwrap_or_default(),
                }
                .into());
            }
            if status.as_u16() >= 400 {
                return Err(ApiError::Status {
                    code: status.as_u16(),
                    status: status_line(status),
                    message: err_line.error.unwrap_or_default(),
                }
                .into());
            }
            if let Some(e) = err_line.error.filter(|e| !e.is_empty()) {
                return Err(ApiError::Message(e).into());
            }
            let item: T = serde_json::from_slice(line)
                .map_err(|e| ApiError::Message(format!("{e}: {text}")))?;
            f(item)
        };
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| ApiError::Message(e.to_string()))?;
            if let Ok(data) = frame.into_data() {
                buf.extend_from_slice(&data);
                while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = buf.drain(..=pos).collect();
                    handle_line(&line[..line.len() - 1])?;
                }
            }
        }
        if !buf.is_empty() {
            handle_line(&buf)?;
        }
        Ok(())
    }

    /// `HEAD /`: is a server there?
    pub async fn heartbeat(&self) -> ApiResult<()> {
        self.call(Method::HEAD, "/", empty_body()).await.map(|_| ())
    }

    /// `GET /api/version`.
    pub async fn version(&self) -> ApiResult<String> {
        let v: VersionResponse = self
            .call_json::<(), _>(Method::GET, "/api/version", None)
            .await?;
        Ok(v.version)
    }

    /// `GET /api/tags`.
    pub async fn list(&self) -> ApiResult<ListResponse> {
        self.call_json::<(), _>(Method::GET, "/api/tags", None)
            .await
    }

    /// `GET /api/ps`.
    pub async fn list_running(&self) -> ApiResult<ProcessResponse> {
        self.call_json::<(), _>(Method::GET, "/api/ps", None).await
    }

    /// `POST /api/show`.
    pub async fn show(&self, req: &ShowRequest) -> ApiResult<ShowResponse> {
        self.call_json(Method::POST, "/api/show", Some(req)).await
    }

    /// `POST /api/copy`.
    pub async fn copy(&self, req: &CopyRequest) -> ApiResult<()> {
        self.call(Method::POST, "/api/copy", json_body(req)?)
            .await
            .map(|_| ())
    }

    /// `DELETE /api/delete`.
    pub async fn delete(&self, req: &DeleteRequest) -> ApiResult<()> {
        self.call(Method::DELETE, "/api/delete", json_body(req)?)
            .await
            .map(|_| ())
    }

    /// `POST /api/embed`.
    pub async fn embed(&self, req: &EmbedRequest) -> ApiResult<EmbedResponse> {
        self.call_json(Method::POST, "/api/embed", Some(req)).await
    }

    /// `POST /api/generate`, streamed.
    pub async fn generate(
        &self,
        req: &GenerateRequest,
        f: impl FnMut(GenerateResponse) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        self.stream("/api/generate", req, f).await
    }

    /// `POST /api/chat`, streamed.
    pub async fn chat(
        &self,
        req: &ChatRequest,
        f: impl FnMut(ChatResponse) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        self.stream("/api/chat", req, f).await
    }

    /// `POST /api/pull`, streamed progress.
    pub async fn pull(
        &self,
        req: &PullRequest,
        f: impl FnMut(ProgressResponse) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        self.stream("/api/pull", req, f).await
    }

    /// `POST /api/push`, streamed progress.
    pub async fn push(
        &self,
        req: &PullRequest,
        f: impl FnMut(ProgressResponse) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        self.stream("/api/push", req, f).await
    }

    /// `POST /api/create`, streamed progress.
    pub async fn create(
        &self,
        req: &CreateRequest,
        f: impl FnMut(ProgressResponse) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        self.stream("/api/create", req, f).await
    }

    /// `HEAD /api/blobs/<digest>`: does the server already have this blob?
    pub async fn blob_exists(&self, digest: &str) -> ApiResult<bool> {
        let resp = self
            .send(
                Method::HEAD,
                &format!("/api/blobs/{digest}"),
                empty_body(),
                "application/json",
            )
            .await?;
        Ok(resp.status().is_success())
    }

    /// `POST /api/blobs/<digest>` with the file's bytes, counting bytes sent into `sent`.
    pub async fn create_blob(
        &self,
        digest: &str,
        path: &Path,
        sent: Arc<AtomicU64>,
    ) -> anyhow::Result<()> {
        let mut file = tokio::fs::File::open(path).await?;
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, std::io::Error>>(4);
        tokio::spawn(async move {
            let mut chunk = vec![0u8; 1 << 20];
            loop {
                match file.read(&mut chunk).await {
                    Ok(0) => break,
                    Ok(n) => {
                        sent.fetch_add(n as u64, Ordering::Relaxed);
                        let frame = Frame::data(Bytes::copy_from_slice(&chunk[..n]));
                        if tx.send(Ok(frame)).await.is_err() {
                            break;
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e)).await;
                        break;
                    }
                }
            }
        });
        let body = StreamBody::new(tokio_stream::wrappers::ReceiverStream::new(rx));
        self.call(
            Method::POST,
            &format!("/api/blobs/{digest}"),
            BodyExt::boxed(body),
        )
        .await?;
        Ok(())
    }
}

fn go_method_name(m: &Method) -> String {
    let s = m.as_str();
    let mut out = s[..1].to_string();
    out.push_str(&s[1..].to_lowercase());
    out
}

fn status_line(s: StatusCode) -> String {
    format!("{} {}", s.as_u16(), s.canonical_reason().unwrap_or(""))
        .trim_end()
        .to_string()
}

fn connect_detail(e: &hyper_util::client::legacy::Error, host_port: &str) -> String {
    let mut src: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(s) = src {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return match io.kind() {
                std::io::ErrorKind::ConnectionRefused => {
                    format!("dial tcp {host_port}: connect: connection refused")
                }
                _ => format!("dial tcp {host_port}: {io}"),
            };
        }
        src = s.source();
    }
    let mut msg = e.to_string();
    let mut src: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    msg
}

fn check_error(status: StatusCode, body: &[u8]) -> ApiResult<()> {
    if status.as_u16() < 400 {
        return Ok(());
    }
    if status == StatusCode::UNAUTHORIZED {
        let e: ErrorLine = serde_json::from_slice(body).unwrap_or_default();
        return Err(ApiError::Unauthorized {
            status: String::new(),
            signin_url: e.signin_url.unwrap_or_default(),
        });
    }
    let message = match serde_json::from_slice::<ErrorLine>(body) {
        Ok(e) => e.error.unwrap_or_default(),
        Err(_) => String::from_utf8_lossy(body).to_string(),
    };
    Err(ApiError::Status {
        code: status.as_u16(),
        status: String::new(),
        message,
    })
}

async fn read_body(resp: http::Response<hyper::body::Incoming>) -> ApiResult<Bytes> {
    resp.into_body()
        .collect()
        .await
        .map(|c| c.to_bytes())
        .map_err(|e| ApiError::Message(e.to_string()))
}

fn json_body<T: Serialize>(v: &T) -> ApiResult<ReqBody> {
    let bytes = serde_json::to_vec(v).map_err(|e| ApiError::Message(e.to_string()))?;
    Ok(Full::new(Bytes::from(bytes))
        .map_err(|never| match never {})
        .boxed())
}

fn empty_body() -> ReqBody {
    Full::new(Bytes::new())
        .map_err(|never| match never {})
        .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(scheme: &str, port: u16) -> HostUrl {
        HostUrl {
            scheme: scheme.into(),
            host: "127.0.0.1".into(),
            port: port.to_string(),
            path: String::new(),
        }
    }

    #[tokio::test]
    async fn https_hosts_are_spoken_to_over_tls() {
        // A plain-HTTP listener: a TLS client fails the handshake, a plain client would get 200.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                use tokio::io::AsyncWriteExt;
                let mut buf = [0u8; 1024];
                let _ = sock.read(&mut buf).await;
                let _ = sock
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                    .await;
            }
        });
        assert!(Client::new(host("http", port)).heartbeat().await.is_ok());
        let err = Client::new(host("https", port))
            .heartbeat()
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(!text.contains("unsupported protocol scheme"), "{text}");
        assert!(text.starts_with("Head \"https://127.0.0.1:"), "{text}");
    }

    #[tokio::test]
    async fn other_schemes_are_refused_like_go() {
        let err = Client::new(host("ftp", 1)).heartbeat().await.unwrap_err();
        assert!(
            err.to_string()
                .contains("unsupported protocol scheme \"ftp\""),
            "{err}"
        );
    }

    #[test]
    fn status_errors_read_like_go_status_error() {
        let plain = ApiError::Status {
            code: 404,
            status: String::new(),
            message: "model 'x' not found".into(),
        };
        assert_eq!(plain.to_string(), "model 'x' not found");
        let streamed = ApiError::Status {
            code: 404,
            status: "404 Not Found".into(),
            message: "model 'x' not found".into(),
        };
        assert_eq!(streamed.to_string(), "404 Not Found: model 'x' not found");
        let empty = ApiError::Status {
            code: 500,
            status: String::new(),
            message: String::new(),
        };
        assert!(empty.to_string().starts_with("something went wrong"));
    }

    #[test]
    fn check_error_decodes_error_bodies_and_falls_back_to_text() {
        let e = check_error(StatusCode::NOT_FOUND, br#"{"error":"nope"}"#).unwrap_err();
        assert_eq!(e.to_string(), "nope");
        assert_eq!(e.status_code(), Some(404));
        let e = check_error(StatusCode::INTERNAL_SERVER_ERROR, b"server error\n").unwrap_err();
        assert_eq!(e.to_string(), "server error\n");
        assert!(check_error(StatusCode::OK, b"").is_ok());
    }

    #[test]
    fn connect_errors_name_method_and_url_like_go() {
        let e = ApiError::Connect {
            method: go_method_name(&Method::HEAD),
            url: "http://127.0.0.1:1/".into(),
            detail: "dial tcp 127.0.0.1:1: connect: connection refused".into(),
        };
        assert_eq!(
            e.to_string(),
            "Head \"http://127.0.0.1:1/\": dial tcp 127.0.0.1:1: connect: connection refused"
        );
        assert!(e.is_refused());
    }
}
