//! Test support: a tiny scriptable HTTP/1 server (fake Ollama registry, fake Hugging Face Hub,
//! fake CDN) that records every request, plus helpers to run pulls and inspect a store.
#![allow(dead_code)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use http_body_util::{combinators::BoxBody, BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper::{Request, Response};
use ollmlx_store::pull::PullConfig;
use ollmlx_store::Store;
use ollmlx_wire::ollama::{ProgressResponse, PullRequest};
use sha2::{Digest, Sha256};

/// One request the server saw.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    /// Path and query.
    pub uri: String,
    pub range: Option<String>,
    pub auth: Option<String>,
    pub accept: Option<String>,
    pub user_agent: Option<String>,
}

/// What to answer.
pub enum Reply {
    /// A complete response.
    Full {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// Announce `body.len()` bytes, send `cut_at` of them, then break the connection.
    Cut {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
        cut_at: usize,
    },
    /// Send the body in `chunk`-byte pieces with `delay` between them.
    Slow {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
        chunk: usize,
        delay: Duration,
    },
    /// A complete response whose body is a shared buffer (sent without copying; the
    /// benchmarks serve large blobs this way so the fake server costs as little CPU as a real
    /// one would on another machine).
    Shared {
        status: u16,
        headers: Vec<(String, String)>,
        body: Bytes,
    },
    /// [`Reply::Shared`] sent through a [`Link`]: 256 KiB pieces, each waiting for its turn on
    /// the link, so every response of a server shares the link's bandwidth.
    Paced {
        status: u16,
        headers: Vec<(String, String)>,
        body: Bytes,
        link: Arc<Link>,
    },
    /// Never answer.
    Hang,
}

/// A network link of fixed bandwidth shared by every response sent through it: each piece
/// reserves `len / rate` seconds after the pieces reserved before it, so the link's total rate
/// stays `rate` however many connections share it. Up to [`Link::SLACK`] of idle time counts
/// as credit (a token bucket with that burst), so a sender that wakes late from its timer
/// still gets the whole rate.
pub struct Link {
    bytes_per_sec: f64,
    free_at: Mutex<tokio::time::Instant>,
}

impl Link {
    /// Idle link time a sender may catch up on.
    const SLACK: Duration = Duration::from_millis(20);

    /// A link carrying `mb_per_sec` MB (10^6 bytes) per second.
    pub fn new(mb_per_sec: f64) -> Arc<Link> {
        Arc::new(Link {
            bytes_per_sec: mb_per_sec * 1e6,
            free_at: Mutex::new(tokio::time::Instant::now()),
        })
    }

    /// Wait until `len` more bytes have passed the link.
    async fn send(&self, len: usize) {
        let done = {
            let mut free = self.free_at.lock().unwrap();
            let start = (*free).max(tokio::time::Instant::now() - Link::SLACK);
            *free = start + Duration::from_secs_f64(len as f64 / self.bytes_per_sec);
            *free
        };
        tokio::time::sleep_until(done).await;
    }
}

impl Reply {
    pub fn status(status: u16, body: impl Into<Vec<u8>>) -> Reply {
        Reply::Full {
            status,
            headers: vec![],
            body: body.into(),
        }
    }
    pub fn ok(body: impl Into<Vec<u8>>) -> Reply {
        Reply::status(200, body)
    }
    pub fn redirect(status: u16, to: &str) -> Reply {
        Reply::Full {
            status,
            headers: vec![("location".into(), to.into())],
            body: vec![],
        }
    }
    pub fn with_header(mut self, k: &str, v: &str) -> Reply {
        match &mut self {
            Reply::Full { headers, .. }
            | Reply::Cut { headers, .. }
            | Reply::Slow { headers, .. }
            | Reply::Shared { headers, .. }
            | Reply::Paced { headers, .. } => headers.push((k.into(), v.into())),
            Reply::Hang => {}
        }
        self
    }
}

/// Handler signature.
pub type Handler = Arc<dyn Fn(&Seen) -> Reply + Send + Sync>;

/// A running fake server.
pub struct Fake {
    pub addr: SocketAddr,
    pub log: Arc<Mutex<Vec<Seen>>>,
}

impl Fake {
    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
    /// `127.0.0.1:<port>`.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }
    pub fn seen(&self) -> Vec<Seen> {
        self.log.lock().unwrap().clone()
    }
    /// Ranges of GETs whose URI contains `needle`, in order.
    pub fn ranges(&self, needle: &str) -> Vec<String> {
        self.seen()
            .into_iter()
            .filter(|s| s.method == "GET" && s.uri.contains(needle))
            .map(|s| s.range.unwrap_or_default())
            .collect()
    }
    pub fn count(&self, method: &str, needle: &str) -> usize {
        self.seen()
            .iter()
            .filter(|s| s.method == method && s.uri.contains(needle))
            .count()
    }
}

/// Start a server on an ephemeral port.
pub async fn serve(handler: Handler) -> Fake {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let log: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let log2 = log.clone();
    tokio::spawn(async move {
        loop {
            let Ok((sock, _)) = listener.accept().await else {
                return;
            };
            let handler = handler.clone();
            let log = log2.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                    let handler = handler.clone();
                    let log = log.clone();
                    async move {
                        let h = |k: &str| {
                            req.headers()
                                .get(k)
                                .and_then(|v| v.to_str().ok())
                                .map(str::to_string)
                        };
                        let seen = Seen {
                            method: req.method().to_string(),
                            uri: req.uri().to_string(),
                            range: h("range"),
                            auth: h("authorization"),
                            accept: h("accept"),
                            user_agent: h("user-agent"),
                        };
                        log.lock().unwrap().push(seen.clone());
                        let reply = handler(&seen);
                        Ok::<_, Infallible>(respond(reply, &seen.method).await)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(sock), svc)
                    .await;
            });
        }
    });
    Fake { addr, log }
}

type Body = BoxBody<Bytes, std::io::Error>;

async fn respond(reply: Reply, method: &str) -> Response<Body> {
    let build = |status: u16, headers: &[(String, String)], len: usize| {
        let mut b = Response::builder().status(status);
        let mut has_len = false;
        for (k, v) in headers {
            has_len |= k.eq_ignore_ascii_case("content-length");
            b = b.header(k, v);
        }
        if !has_len {
            b = b.header("content-length", len.to_string());
        }
        b
    };
    let head = method == "HEAD";
    match reply {
        Reply::Full {
            status,
            headers,
            body,
        } => {
            let len = body.len();
            let body = if head { vec![] } else { body };
            build(status, &headers, len)
                .body(Full::new(Bytes::from(body)).map_err(|e| match e {}).boxed())
                .unwrap()
        }
        Reply::Shared {
            status,
            headers,
            body,
        } => {
            let len = body.len();
            let body = if head { Bytes::new() } else { body };
            build(status, &headers, len)
                .body(Full::new(body).map_err(|e| match e {}).boxed())
                .unwrap()
        }
        Reply::Paced {
            status,
            headers,
            body,
            link,
        } => {
            let len = body.len();
            let body = if head { Bytes::new() } else { body };
            const PIECE: usize = 256 << 10;
            let pieces: Vec<Bytes> = (0..body.len())
                .step_by(PIECE)
                .map(|a| body.slice(a..(a + PIECE).min(body.len())))
                .collect();
            let s = futures::stream::iter(pieces).then(move |p| {
                let link = link.clone();
                async move {
                    link.send(p.len()).await;
                    Ok::<_, std::io::Error>(Frame::data(p))
                }
            });
            build(status, &headers, len)
                .body(BodyExt::boxed(StreamBody::new(s)))
                .unwrap()
        }
        Reply::Cut {
            status,
            headers,
            body,
            cut_at,
        } => {
            let len = body.len();
            let first = Bytes::copy_from_slice(&body[..cut_at.min(len)]);
            // the pause lets the headers and first bytes reach the client before the break
            let s = futures::stream::iter(vec![Ok(first), Err(())]).then(|item| async move {
                match item {
                    Ok(b) => Ok(Frame::data(b)),
                    Err(()) => {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        Err(std::io::Error::other("cut"))
                    }
                }
            });
            build(status, &headers, len)
                .body(BodyExt::boxed(StreamBody::new(s)))
                .unwrap()
        }
        Reply::Slow {
            status,
            headers,
            body,
            chunk,
            delay,
        } => {
            let len = body.len();
            let chunks: Vec<Bytes> = body
                .chunks(chunk.max(1))
                .map(Bytes::copy_from_slice)
                .collect();
            let s = futures::stream::iter(chunks).then(move |c| async move {
                tokio::time::sleep(delay).await;
                Ok::<_, std::io::Error>(Frame::data(c))
            });
            build(status, &headers, len)
                .body(BodyExt::boxed(StreamBody::new(s)))
                .unwrap()
        }
        Reply::Hang => {
            futures::future::pending::<()>().await;
            unreachable!()
        }
    }
}

/// Answer a GET with an optional `Range: bytes=a-b` over `data`.
pub fn ranged(seen: &Seen, data: &[u8]) -> Reply {
    match seen.range.as_deref().and_then(parse_range) {
        Some((a, b)) => {
            let b = b.min(data.len() as u64 - 1);
            Reply::Full {
                status: 206,
                headers: vec![(
                    "content-range".into(),
                    format!("bytes {a}-{b}/{}", data.len()),
                )],
                body: data[a as usize..=b as usize].to_vec(),
            }
        }
        None => Reply::ok(data.to_vec()),
    }
}

/// [`ranged`] over a shared buffer: the answer is a slice of `data`, not a copy.
pub fn ranged_shared(seen: &Seen, data: &Bytes) -> Reply {
    match seen.range.as_deref().and_then(parse_range) {
        Some((a, b)) => {
            let b = b.min(data.len() as u64 - 1);
            Reply::Shared {
                status: 206,
                headers: vec![(
                    "content-range".into(),
                    format!("bytes {a}-{b}/{}", data.len()),
                )],
                body: data.slice(a as usize..=b as usize),
            }
        }
        None => Reply::Shared {
            status: 200,
            headers: vec![],
            body: data.clone(),
        },
    }
}

/// `bytes=a-b`.
pub fn parse_range(r: &str) -> Option<(u64, u64)> {
    let (a, b) = r.strip_prefix("bytes=")?.split_once('-')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

pub fn sha(data: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(data))
}

/// Deterministic pseudo-random bytes.
pub fn data(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[1] ^ seed)
        .collect()
}

/// Test config: tiny timeouts and backoff, no retries unless asked.
pub fn cfg() -> PullConfig {
    PullConfig {
        connect_timeout: Duration::from_secs(2),
        header_timeout: Duration::from_secs(5),
        stall_timeout: Duration::from_secs(5),
        max_retries: 0,
        backoff_base: Duration::from_millis(10),
        backoff_max: Duration::from_millis(50),
        progress_interval: Duration::from_millis(5),
        hf_endpoint: "http://127.0.0.1:9".into(),
        ..PullConfig::default()
    }
}

/// Everything a pull streamed: progress objects, then the error text if it failed.
pub struct Outcome {
    pub progress: Vec<ProgressResponse>,
    pub error: Option<String>,
}

impl Outcome {
    /// Statuses with consecutive repeats collapsed.
    pub fn statuses(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for p in &self.progress {
            if out.last() != Some(&p.status) {
                out.push(p.status.clone());
            }
        }
        out
    }
    pub fn of(&self, status: &str) -> Vec<&ProgressResponse> {
        self.progress
            .iter()
            .filter(|p| p.status == status)
            .collect()
    }
}

/// Run a pull to the end.
pub async fn pull(store: &Store, model: &str, insecure: bool, cfg: PullConfig) -> Outcome {
    let req = PullRequest {
        model: model.into(),
        insecure,
        ..Default::default()
    };
    let mut s = match ollmlx_store::pull::start(store.clone(), req, cfg).await {
        Ok(s) => s,
        Err(e) => {
            return Outcome {
                progress: vec![],
                error: Some(e.to_string()),
            }
        }
    };
    let mut out = Outcome {
        progress: vec![],
        error: None,
    };
    while let Some(item) = s.next().await {
        match item {
            Ok(p) => out.progress.push(p),
            Err(e) => {
                out.error = Some(e.to_string());
                break;
            }
        }
    }
    out
}

/// File names under `blobs/`.
pub fn blob_files(root: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(root.join("blobs"))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Whether any manifest file exists.
pub fn has_manifests(root: &Path) -> bool {
    fn walk(p: &Path) -> bool {
        std::fs::read_dir(p)
            .map(|rd| {
                rd.flatten().any(|e| {
                    let p = e.path();
                    if p.is_dir() {
                        walk(&p)
                    } else {
                        true
                    }
                })
            })
            .unwrap_or(false)
    }
    walk(&root.join("manifests"))
}

/// Assert that after a failed pull no manifest exists and every file under `blobs/` is either a
/// `-partial*` file or a complete blob whose content hashes to its name (layers that finished
/// before the failure stay, verified, for the next attempt; nothing half-written is visible).
pub fn assert_nothing_visible(root: &Path) {
    for f in blob_files(root) {
        if f.contains("-partial") {
            continue;
        }
        let hex = f
            .strip_prefix("sha256-")
            .unwrap_or_else(|| panic!("stray file {f}"));
        let data = std::fs::read(root.join("blobs").join(&f)).unwrap();
        assert_eq!(
            sha(&data),
            format!("sha256:{hex}"),
            "unverified visible blob {f}"
        );
    }
    assert!(!has_manifests(root), "no manifest may be written");
}

/// Assert that `blobs/` holds only `-partial*` files (nothing at all became visible).
pub fn assert_only_partials(root: &Path) {
    for f in blob_files(root) {
        assert!(f.contains("-partial"), "unexpected visible blob file {f}");
    }
    assert!(!has_manifests(root), "no manifest may be written");
}
