//! The innermost service: route matching, body collection, transparent forwarding, dispatch.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body::Body;
use http_body_util::{BodyExt, BodyStream, Limited, StreamBody};
use ollmlx_infer::{BackendError, RawBody, RawRequest};
use tower::Service;

use crate::body::{status_only, text, BoxBody, BoxError};
use crate::handlers;
use crate::respond::{backend_error, decode_error, error_response};
use crate::routes::{match_route, Match, Route};
use crate::state::AppState;
use ollmlx_dialect::DecodeError;

/// The application service (after CORS and host checks).
#[derive(Clone)]
pub struct App {
    state: Arc<AppState>,
}

impl App {
    /// Wrap the shared state.
    pub fn new(state: Arc<AppState>) -> Self {
        App { state }
    }
}

impl<B> Service<Request<B>> for App
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<BoxBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<BoxBody>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let state = self.state.clone();
        Box::pin(async move { Ok(handle(state, req).await) })
    }
}

fn raw_body<B>(body: B) -> RawBody
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    BodyStream::new(body)
        .try_filter_map(|f| async move { Ok(f.into_data().ok()) })
        .map_err(|e| BackendError::Unavailable(format!("reading request body: {}", e.into())))
        .boxed()
}

async fn forward<B>(backend: ollmlx_infer::DynBackend, req: Request<B>) -> Response<BoxBody>
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let (parts, body) = req.into_parts();
    let raw = RawRequest {
        method: parts.method.to_string(),
        path_and_query: parts
            .uri
            .path_and_query()
            .map(|p| p.to_string())
            .unwrap_or_else(|| "/".into()),
        headers: parts
            .headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
            .collect(),
        body: raw_body(body),
    };
    let Some(fut) = backend.forward(raw) else {
        return error_response(&Route::Root, 500, "backend does not forward requests");
    };
    match fut.await {
        Ok(resp) => {
            let body = StreamBody::new(
                resp.body
                    .map_ok(http_body::Frame::data)
                    .map_err(|e| -> BoxError { Box::new(e) }),
            );
            let mut r = Response::new(body.boxed_unsync());
            *r.status_mut() = StatusCode::from_u16(resp.status).unwrap_or(StatusCode::BAD_GATEWAY);
            for (k, v) in resp.headers {
                if let (Ok(k), Ok(v)) = (
                    header::HeaderName::from_bytes(k.as_bytes()),
                    HeaderValue::from_bytes(&v),
                ) {
                    r.headers_mut().append(k, v);
                }
            }
            r
        }
        Err(e) => backend_error(&Route::Root, &e),
    }
}

/// Handle one request and count its response for `/metrics` (by route pattern and status).
async fn handle<B>(state: Arc<AppState>, req: Request<B>) -> Response<BoxBody>
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let (label, resp) = handle_route(state.clone(), req).await;
    state.metrics.record_request(label, resp.status().as_u16());
    resp
}

async fn handle_route<B>(state: Arc<AppState>, req: Request<B>) -> (&'static str, Response<BoxBody>)
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    if let Some(backend) = state.router.transparent() {
        // `/metrics` is ollmlx's own (Ollama has no such route); everything else is upstream's.
        if req.method() == Method::GET && req.uri().path() == "/metrics" {
            return ("/metrics", crate::metrics::handle(&state).await);
        }
        return ("proxy", forward(backend, req).await);
    }
    let route = match match_route(req.method(), req.uri().path()) {
        Match::Found(r) => r,
        Match::NotFound => {
            return (
                "unmatched",
                text(StatusCode::NOT_FOUND, "404 page not found"),
            )
        }
        Match::MethodNotAllowed => {
            return (
                "unmatched",
                text(StatusCode::METHOD_NOT_ALLOWED, "405 method not allowed"),
            )
        }
        Match::Redirect(to) => {
            let code = if req.method() == Method::GET {
                StatusCode::MOVED_PERMANENTLY
            } else {
                StatusCode::TEMPORARY_REDIRECT
            };
            let mut r = status_only(code);
            if let Ok(v) = HeaderValue::from_str(&to) {
                r.headers_mut().insert(header::LOCATION, v);
            }
            return ("unmatched", r);
        }
    };
    let label = crate::metrics::route_label(&route);
    if let Route::BlobPut(digest) = &route {
        return (
            label,
            blob_put(&state, &route, digest.clone(), req.into_body()).await,
        );
    }
    let is_head = req.method() == Method::HEAD;
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, state.body_limit).collect().await {
        Ok(c) => c.to_bytes(),
        Err(e) => {
            let too_large = e
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some();
            let resp = if too_large {
                error_response(&route, 413, "request body too large")
            } else {
                error_response(&route, 400, "failed to read request body")
            };
            return (label, resp);
        }
    };
    let body = if route == Route::OpenAiResponses && is_zstd(&parts.headers) {
        match decompress_zstd(&body) {
            Ok(b) => b,
            Err(msg) => return (label, decode_error(&route, &DecodeError::bad_request(msg))),
        }
    } else {
        body
    };
    (
        label,
        handlers::dispatch(state, route, &parts.headers, body, is_head).await,
    )
}

/// Largest decompressed `/v1/responses` body (upstream's `maxDecompressedBodySize`).
const MAX_DECOMPRESSED: u64 = 20 << 20;

fn is_zstd(headers: &http::HeaderMap) -> bool {
    headers
        .get(header::CONTENT_ENCODING)
        .is_some_and(|v| v.as_bytes() == b"zstd")
}

/// Codex-style clients send `/v1/responses` bodies zstd-compressed.
fn decompress_zstd(body: &[u8]) -> Result<Bytes, &'static str> {
    use std::io::Read;
    let mut src = body;
    let decoder = ruzstd::decoding::StreamingDecoder::new(&mut src)
        .map_err(|_| "failed to decompress zstd body")?;
    let mut out = Vec::new();
    decoder
        .take(MAX_DECOMPRESSED + 1)
        .read_to_end(&mut out)
        .map_err(|_| "failed to decompress zstd body")?;
    if out.len() as u64 > MAX_DECOMPRESSED {
        return Err("http: request body too large");
    }
    Ok(Bytes::from(out))
}

async fn blob_put<B>(state: &AppState, route: &Route, digest: String, body: B) -> Response<BoxBody>
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    if !handlers::manage::valid_digest(&digest) {
        return error_response(route, 400, "invalid digest format");
    }
    let Some(backend) = state.router.default_backend() else {
        return error_response(route, 500, "no backend stores blobs");
    };
    match backend.blob_put(digest, raw_body(body)).await {
        Ok(true) => status_only(StatusCode::CREATED),
        Ok(false) => status_only(StatusCode::OK),
        Err(e) => backend_error(route, &e),
    }
}
