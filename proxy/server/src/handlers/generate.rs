//! Generation and embedding handlers, shared by all three dialects.
//!
//! decode (dialect) → route by model → `Backend::generate` → either stream the events through
//! the dialect's codec and the framing encoder, or aggregate them into one body.

use futures::StreamExt;
use http::{Response, StatusCode};
use ollmlx_dialect::{anthropic, ollama, openai, Decoded, DecodedEmbed};
use ollmlx_infer::{DoneReason, Event};

use crate::body::{with_type, BoxBody, JSON};
use crate::encode::{stream_response, Framing};
use crate::metrics::Metrics;
use crate::respond::{backend_error, decode_error, error_response};
use crate::routes::{Dialect, Route};
use crate::state::AppState;

fn decode(route: &Route, body: &[u8]) -> Result<Decoded, ollmlx_dialect::DecodeError> {
    match route {
        Route::Generate => ollama::decode_generate(body),
        Route::Chat => ollama::decode_chat(body),
        Route::OpenAiChat => openai::decode_chat(body),
        Route::OpenAiCompletions => openai::decode_completion(body),
        Route::OpenAiResponses => openai::decode_responses(body),
        _ => anthropic::decode_messages(body),
    }
}

fn body_type(route: &Route) -> &'static str {
    match route.dialect() {
        Dialect::Ollama => JSON,
        _ => "application/json",
    }
}

/// `POST /api/generate`, `/api/chat`, `/v1/chat/completions`, `/v1/completions`,
/// `/v1/responses`, `/v1/messages`.
pub async fn generate(state: &AppState, route: &Route, body: &[u8]) -> Response<BoxBody> {
    let Decoded { request, mut codec } = match decode(route, body) {
        Ok(d) => d,
        Err(e) => return decode_error(route, &e),
    };
    let stream_mode = request.stream;
    let meter = state.metrics.start();
    let backend = match state.router.route(&request.model).await {
        Ok(b) => b,
        Err(e) => return backend_error(route, &e),
    };
    let mut events = match backend.generate(request).await {
        Ok(s) => Metrics::meter(meter, s),
        Err(e) => return backend_error(route, &e),
    };
    // Errors before the first event still get a real status (upstream's `Written()` check).
    let first = match events.next().await {
        Some(Ok(ev)) => ev,
        Some(Err(e)) => return backend_error(route, &e),
        None => return error_response(route, 500, "backend ended the stream without a response"),
    };
    // Load/unload answers are a single JSON object upstream, whatever `stream` says.
    let single = matches!(
        &first,
        Event::Done {
            reason: DoneReason::Load | DoneReason::Unload,
            ..
        }
    ) || matches!(&first, Event::Rendered { .. });
    if stream_mode && !(single && route.dialect() == Dialect::Ollama) {
        let framing = if route.dialect() == Dialect::Ollama {
            Framing::Ndjson
        } else {
            Framing::Sse
        };
        return stream_response(first, events, codec, framing, route.clone());
    }
    codec.collect(&first);
    while let Some(item) = events.next().await {
        match item {
            Ok(ev) => codec.collect(&ev),
            Err(e) => return backend_error(route, &e),
        }
    }
    with_type(StatusCode::OK, body_type(route), codec.body())
}

/// `POST /api/embed`, `/api/embeddings`, `/v1/embeddings`.
pub async fn embed(state: &AppState, route: &Route, body: &[u8]) -> Response<BoxBody> {
    let decoded = match route {
        Route::Embed => ollama::decode_embed(body),
        Route::Embeddings => ollama::decode_embeddings(body),
        _ => openai::decode_embeddings(body),
    };
    let DecodedEmbed { request, encode } = match decoded {
        Ok(d) => d,
        Err(e) => return decode_error(route, &e),
    };
    let backend = match state.router.route(&request.model).await {
        Ok(b) => b,
        Err(e) => return backend_error(route, &e),
    };
    let (normalize, dims) = (request.normalize, request.dimensions);
    match backend.embed(request).await {
        Ok(mut resp) => {
            if normalize {
                for v in &mut resp.embeddings {
                    if let Err(msg) = normalize_vector(v, dims) {
                        return error_response(route, 500, msg);
                    }
                }
            }
            with_type(StatusCode::OK, body_type(route), encode(&resp))
        }
        Err(e) => backend_error(route, &e),
    }
}

/// Truncate to `dims` (when set) and L2-normalize, as upstream's embed handler does.
pub fn normalize_vector(v: &mut Vec<f32>, dims: Option<usize>) -> Result<(), &'static str> {
    if v.iter().any(|x| !x.is_finite()) {
        return Err("embedding contains NaN or Inf values");
    }
    if let Some(d) = dims {
        if d < v.len() {
            v.truncate(d);
        }
    }
    let norm = v
        .iter()
        .map(|x| (*x as f64) * (*x as f64))
        .sum::<f64>()
        .sqrt();
    if norm > 0.0 {
        for x in v.iter_mut() {
            *x = (*x as f64 / norm) as f32;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_truncates_then_normalizes() {
        let mut v = vec![3.0, 4.0, 12.0];
        normalize_vector(&mut v, Some(2)).unwrap();
        assert_eq!(v, vec![0.6, 0.8]);
    }

    #[test]
    fn normalize_rejects_nan() {
        let mut v = vec![f32::NAN];
        assert_eq!(
            normalize_vector(&mut v, None),
            Err("embedding contains NaN or Inf values")
        );
    }
}
