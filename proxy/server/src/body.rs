//! The one response body type of the whole proxy, and small constructors.

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::{combinators::UnsyncBoxBody, BodyExt, Empty, Full};

/// Boxed error used inside bodies.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// The body type of every response ollmlx produces.
pub type BoxBody = UnsyncBoxBody<Bytes, BoxError>;

/// A complete body from bytes.
pub fn full(b: impl Into<Bytes>) -> BoxBody {
    Full::new(b.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// An empty body.
pub fn empty() -> BoxBody {
    Empty::new().map_err(|never| match never {}).boxed_unsync()
}

/// A response with a status, a content type and a body.
pub fn with_type(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<BoxBody> {
    let mut r = Response::new(full(body));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// `application/json; charset=utf-8`, the content type gin's `c.JSON` sets.
pub const JSON: &str = "application/json; charset=utf-8";

/// A JSON response as gin writes it.
pub fn json(status: StatusCode, body: impl Into<Bytes>) -> Response<BoxBody> {
    with_type(status, JSON, body)
}

/// A status with an empty body (CORS and host-check rejections, 200 for copy/delete).
pub fn status_only(status: StatusCode) -> Response<BoxBody> {
    let mut r = Response::new(empty());
    *r.status_mut() = status;
    r
}

/// Plain text (`404 page not found`, `Ollama is running`).
pub fn text(status: StatusCode, s: &'static str) -> Response<BoxBody> {
    with_type(status, "text/plain; charset=utf-8", s)
}
