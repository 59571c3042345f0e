//! The one function that builds the tower stack, outermost layer first.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderValue, Request, Response};
use http_body::Body;
use tower::util::BoxCloneService;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestId, RequestId, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::app::App;
use crate::body::{empty, BoxBody, BoxError};
use crate::layers::cors::{CorsLayer, Origins};
use crate::layers::host::{HostCheckLayer, HostPolicy};
use crate::state::AppState;

/// Settings of the middleware layers.
#[derive(Debug, Clone)]
pub struct StackConfig {
    /// Allowed CORS origins.
    pub origins: Origins,
    /// Host-header policy (active on loopback binds).
    pub hosts: HostPolicy,
}

/// Sequential request ids (`x-request-id`), unique per process.
#[derive(Clone, Default)]
struct Counter(Arc<AtomicU64>);

impl MakeRequestId for Counter {
    fn make_request_id<B>(&mut self, _req: &Request<B>) -> Option<RequestId> {
        let n = self.0.fetch_add(1, Ordering::Relaxed);
        HeaderValue::from_str(&format!("{n:016x}"))
            .ok()
            .map(RequestId::new)
    }
}

/// The boxed service hyper drives.
pub type Stack<B> = BoxCloneService<Request<B>, Response<BoxBody>, std::convert::Infallible>;

/// Build the whole stack over `state`.
pub fn build<B>(state: Arc<AppState>, cfg: StackConfig) -> Stack<B>
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let svc = ServiceBuilder::new()
        // Ids first, so every trace line carries one. They are not echoed in responses: upstream
        // sends no such header, and proxy mode must be indistinguishable from it.
        .layer(SetRequestIdLayer::x_request_id(Counter::default()))
        // Tracing sees the final status, including CORS/host rejections and caught panics.
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &Request<B>| {
                let id = req
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), id)
            }),
        )
        // A panic anywhere below is a bug; answer 500 with an empty body (as gin's Recovery does)
        // instead of dropping the connection.
        .layer(CatchPanicLayer::custom(|_| {
            let mut r = Response::new(empty());
            *r.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
            r
        }))
        .map_response(|r: Response<_>| {
            r.map(|b: http_body_util::combinators::UnsyncBoxBody<Bytes, BoxError>| b)
        })
        // Upstream order: CORS, then the Host check, then the routes.
        .layer(CorsLayer::new(cfg.origins))
        .layer(HostCheckLayer::new(cfg.hosts))
        .service(App::new(state));
    let svc = ServiceBuilder::new()
        .map_response(|r: Response<_>| {
            r.map(|b| {
                http_body_util::BodyExt::boxed_unsync(http_body_util::BodyExt::map_err(
                    b,
                    Into::<BoxError>::into,
                ))
            })
        })
        .service(svc);
    BoxCloneService::new(svc)
}
