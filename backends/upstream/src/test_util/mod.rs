//! Fake upstream servers for tests (enabled by `cfg(test)` or the `test-util` feature): a hyper
//! server on `127.0.0.1:0` that either replays `httprr` recordings of real Ollama traffic or
//! answers from a script, and records what it saw, including clients that hang up mid-stream.
//!
//! It stands where the real upstream Ollama / OpenAI-compatible server stands in the request path.

pub mod httprr;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::StreamExt;
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::Notify;

use httprr::Interaction;

/// A request as the fake server received it (body read in full).
#[derive(Debug, Clone)]
pub struct SeenRequest {
    /// Method.
    pub method: String,
    /// Path and query.
    pub path: String,
    /// Headers.
    pub headers: HeaderMap,
    /// Body bytes.
    pub body: Bytes,
}

/// One step of a scripted response body.
#[derive(Debug, Clone)]
pub enum Step {
    /// Send these bytes as one chunk.
    Chunk(Bytes),
    /// Wait.
    Sleep(Duration),
    /// Never continue (the body stays open until the client goes away).
    Hang,
}

/// A scripted response.
#[derive(Debug, Clone)]
pub struct Reply {
    /// Wait this long before sending the response head.
    pub head_delay: Duration,
    /// Status code.
    pub status: u16,
    /// Headers (hyper adds framing headers when `Content-Length` is absent).
    pub headers: Vec<(String, String)>,
    /// Body steps in order.
    pub body: Vec<Step>,
}

/// What the fake server observed.
#[derive(Debug, Default)]
pub struct Observed {
    requests: Mutex<Vec<SeenRequest>>,
    aborted: AtomicUsize,
    aborted_notify: Notify,
}

/// A running fake upstream; it stops when dropped.
pub struct FakeUpstream {
    addr: SocketAddr,
    observed: Arc<Observed>,
    task: tokio::task::JoinHandle<()>,
}

type Handler = Arc<dyn Fn(&SeenRequest) -> Reply + Send + Sync>;
type Body = UnsyncBoxBody<Bytes, Infallible>;

// === impl Reply ===

impl Reply {
    /// A complete response with one body chunk.
    pub fn new(status: u16, content_type: &str, body: impl Into<Bytes>) -> Self {
        Reply {
            head_delay: Duration::ZERO,
            status,
            headers: vec![("Content-Type".into(), content_type.into())],
            body: vec![Step::Chunk(body.into())],
        }
    }

    /// A JSON response.
    pub fn json(status: u16, body: &str) -> Self {
        Reply::new(
            status,
            "application/json; charset=utf-8",
            body.as_bytes().to_vec(),
        )
    }

    /// A response whose body is sent as these chunks, `gap` apart.
    pub fn chunks(status: u16, content_type: &str, chunks: &[&str], gap: Duration) -> Self {
        let mut body = Vec::new();
        for (i, c) in chunks.iter().enumerate() {
            if i > 0 && !gap.is_zero() {
                body.push(Step::Sleep(gap));
            }
            body.push(Step::Chunk(Bytes::from(c.as_bytes().to_vec())));
        }
        Reply {
            head_delay: Duration::ZERO,
            status,
            headers: vec![("Content-Type".into(), content_type.into())],
            body,
        }
    }

    /// The recorded response of an interaction, chunk for chunk (chunked framing is redone by hyper).
    pub fn recorded(i: &Interaction) -> Self {
        Reply {
            head_delay: Duration::ZERO,
            status: i.response.status,
            headers: i
                .response
                .headers
                .iter()
                .filter(|(k, _)| !k.eq_ignore_ascii_case("transfer-encoding"))
                .cloned()
                .collect(),
            body: i.response.chunks.iter().cloned().map(Step::Chunk).collect(),
        }
    }
}

// === impl Observed ===

impl Observed {
    /// Requests received so far.
    pub fn requests(&self) -> Vec<SeenRequest> {
        self.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// How many response bodies were dropped before they were sent in full (client went away).
    pub fn aborted(&self) -> usize {
        self.aborted.load(Ordering::SeqCst)
    }

    /// Wait until at least one response body was aborted, at most `limit`.
    pub async fn wait_aborted(&self, limit: Duration) -> bool {
        let fut = async {
            loop {
                let notified = self.aborted_notify.notified();
                if self.aborted() > 0 {
                    return;
                }
                notified.await;
            }
        };
        tokio::time::timeout(limit, fut).await.is_ok()
    }
}

// === impl FakeUpstream ===

impl FakeUpstream {
    /// Serve every request with `handler`.
    pub async fn start(handler: impl Fn(&SeenRequest) -> Reply + Send + Sync + 'static) -> Self {
        let handler: Handler = Arc::new(handler);
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let observed = Arc::new(Observed::default());
        let obs = observed.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let handler = handler.clone();
                let obs = obs.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| serve(req, handler.clone(), obs.clone()));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        FakeUpstream {
            addr,
            observed,
            task,
        }
    }

    /// Replay recorded interactions: each request gets the first unused recording with the same
    /// method and path (a 599 with an explanation when none is left).
    pub async fn replay(interactions: Vec<Interaction>) -> Self {
        let pool = Mutex::new(interactions.into_iter().map(Some).collect::<Vec<_>>());
        FakeUpstream::start(move |req| {
            let mut pool = match pool.lock() {
                Ok(p) => p,
                Err(p) => p.into_inner(),
            };
            let hit = pool.iter_mut().find(|slot| {
                slot.as_ref()
                    .is_some_and(|i| i.request.method == req.method && i.request.path == req.path)
            });
            match hit.and_then(Option::take) {
                Some(i) => Reply::recorded(&i),
                None => Reply::new(
                    599,
                    "text/plain",
                    format!(
                        "no recorded interaction left for {} {}",
                        req.method, req.path
                    ),
                ),
            }
        })
        .await
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// What the server observed.
    pub fn observed(&self) -> &Observed {
        &self.observed
    }
}

impl Drop for FakeUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Flags an abort when a body stream is dropped before it finished.
struct AbortGuard {
    obs: Arc<Observed>,
    finished: bool,
}

impl AbortGuard {
    /// The body was sent in full: dropping the guard is no abort.
    fn disarm(&mut self) {
        self.finished = true;
    }
}

impl Drop for AbortGuard {
    fn drop(&mut self) {
        if !self.finished {
            self.obs.aborted.fetch_add(1, Ordering::SeqCst);
            self.obs.aborted_notify.notify_waiters();
        }
    }
}

async fn serve(
    req: Request<Incoming>,
    handler: Handler,
    obs: Arc<Observed>,
) -> Result<Response<Body>, Infallible> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let seen = SeenRequest {
        method: parts.method.to_string(),
        path: parts
            .uri
            .path_and_query()
            .map_or("/".to_string(), |p| p.to_string()),
        headers: parts.headers,
        body,
    };
    if let Ok(mut r) = obs.requests.lock() {
        r.push(seen.clone());
    }
    let reply = handler(&seen);
    if !reply.head_delay.is_zero() {
        tokio::time::sleep(reply.head_delay).await;
    }
    let guard = AbortGuard {
        obs: obs.clone(),
        finished: false,
    };
    let steps = reply.body;
    let frames: BoxStream<'static, Result<Frame<Bytes>, Infallible>> = futures::stream::unfold(
        (steps.into_iter(), guard),
        |(mut it, mut guard)| async move {
            loop {
                match it.next() {
                    None => {
                        guard.disarm();
                        return None;
                    }
                    Some(Step::Chunk(b)) => return Some((Ok(Frame::data(b)), (it, guard))),
                    Some(Step::Sleep(d)) => tokio::time::sleep(d).await,
                    Some(Step::Hang) => futures::future::pending::<()>().await,
                }
            }
        },
    )
    .boxed();
    let mut resp = Response::new(StreamBody::new(frames).boxed_unsync());
    *resp.status_mut() = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::OK);
    for (k, v) in reply.headers {
        if let (Ok(k), Ok(v)) = (
            HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(&v),
        ) {
            resp.headers_mut().append(k, v);
        }
    }
    Ok(resp)
}
