//! The error responder: one exhaustive mapping from failures to status + body, per dialect.
//!
//! Upstream words the same failure differently per route (`model 'x' not found` on generate,
//! `model "x" not found, try pulling it first` on embed, `model 'x:latest' not found` on show),
//! so the route decides the message and the dialect decides the envelope.

use http::{Response, StatusCode};
use ollmlx_dialect::{anthropic, ollama, openai, DecodeError};
use ollmlx_infer::BackendError;

use crate::body::{json, BoxBody};
use crate::routes::{Dialect, Route};

/// Status and message for a backend error on `route`, worded as upstream does.
pub fn status_and_message(route: &Route, err: &BackendError) -> (u16, String) {
    match err {
        BackendError::ModelNotFound { model } => (404, not_found_message(route, model)),
        other => (other.status(), other.to_string()),
    }
}

/// The not-found text each route uses upstream.
pub fn not_found_message(route: &Route, model: &str) -> String {
    match route {
        Route::Embed | Route::Embeddings | Route::OpenAiEmbeddings => {
            format!("model \"{model}\" not found, try pulling it first")
        }
        Route::Copy => format!("model \"{model}\" not found"),
        Route::Show | Route::OpenAiModel(_) => format!("model '{}' not found", with_tag(model)),
        _ => format!("model '{model}' not found"),
    }
}

/// `x` → `x:latest` (upstream normalizes names for show).
pub fn with_tag(model: &str) -> String {
    let last = model.rsplit('/').next().unwrap_or(model);
    if last.contains(':') {
        model.to_string()
    } else {
        format!("{model}:latest")
    }
}

/// A complete error response in the route's dialect, as the handlers write backend failures
/// (the OpenAI and Anthropic middlewares use Go's `json.Encoder`: trailing newline).
pub fn error_response(route: &Route, status: u16, message: &str) -> Response<BoxBody> {
    envelope(route, status, message, false)
}

/// A request that failed decoding or validation (gin's `AbortWithStatusJSON`: no newline).
pub fn decode_error(route: &Route, err: &DecodeError) -> Response<BoxBody> {
    envelope(route, err.status, &err.message, true)
}

fn envelope(route: &Route, status: u16, message: &str, abort: bool) -> Response<BoxBody> {
    let status_code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = match route.dialect() {
        Dialect::Ollama => return json(status_code, ollama::error_body(message)),
        Dialect::OpenAi if abort => openai::abort_error_body(status, message),
        Dialect::OpenAi => openai::error_body(status, message),
        Dialect::Anthropic if abort => anthropic::abort_error_body(status, message),
        Dialect::Anthropic => anthropic::error_body(status, message),
    };
    let mut r = json(status_code, body);
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    r
}

/// Error response for a backend failure before the first byte.
pub fn backend_error(route: &Route, err: &BackendError) -> Response<BoxBody> {
    let (status, msg) = status_and_message(route, err);
    error_response(route, status, &msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_wording_follows_the_route() {
        let e = BackendError::ModelNotFound { model: "x".into() };
        assert_eq!(
            status_and_message(&Route::Generate, &e),
            (404, "model 'x' not found".into())
        );
        assert_eq!(
            status_and_message(&Route::Chat, &e),
            (404, "model 'x' not found".into())
        );
        assert_eq!(
            status_and_message(&Route::Embed, &e),
            (404, "model \"x\" not found, try pulling it first".into())
        );
        assert_eq!(
            status_and_message(&Route::Show, &e),
            (404, "model 'x:latest' not found".into())
        );
        assert_eq!(
            status_and_message(&Route::Copy, &e),
            (404, "model \"x\" not found".into())
        );
    }

    #[test]
    fn every_backend_error_variant_has_a_status() {
        let all = [
            BackendError::ModelNotFound { model: "m".into() },
            BackendError::Unsupported("u".into()),
            BackendError::InvalidRequest("i".into()),
            BackendError::InvalidOption("o".into()),
            BackendError::ContextLengthExceeded("c".into()),
            BackendError::Overloaded,
            BackendError::Cancelled,
            BackendError::Upstream {
                status: 429,
                message: "rate".into(),
            },
            BackendError::Unavailable("down".into()),
            BackendError::NotImplemented("n".into()),
            BackendError::Internal("x".into()),
        ];
        let expected = [404, 400, 400, 500, 400, 503, 499, 429, 502, 501, 500];
        for (e, s) in all.iter().zip(expected) {
            for route in [Route::Chat, Route::OpenAiChat, Route::AnthropicMessages] {
                let r = backend_error(&route, e);
                assert_eq!(r.status().as_u16(), s, "{e:?} on {route:?}");
            }
        }
    }

    #[test]
    fn queue_full_message_has_upstreams_two_spaces() {
        assert_eq!(
            BackendError::Overloaded.to_string(),
            "server busy, please try again.  maximum pending requests exceeded"
        );
    }
}
