//! `/api/embed` and the legacy `/api/embeddings`: decoding and response bodies.

use ollmlx_infer::{EmbedRequest, EmbedResponse};
use ollmlx_wire::json::to_vec;
use ollmlx_wire::ollama as wire;
use serde_json::Value;

use super::values;
use crate::{decode_json, DecodeError, DecodedEmbed};

/// Decode a `/api/embed` body.
pub fn decode_embed(body: &[u8]) -> Result<DecodedEmbed, DecodeError> {
    let w: wire::EmbedRequest = decode_json(body, "EmbedRequest")?;
    if w.model.is_empty() {
        return Err(DecodeError::new(404, "model '' not found"));
    }
    let input = match &w.input {
        Value::Null => Vec::new(),
        Value::String(s) if s.is_empty() => Vec::new(),
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| DecodeError::bad_request("invalid input type"))
            })
            .collect::<Result<Vec<_>, _>>()?,
        _ => return Err(DecodeError::bad_request("invalid input type")),
    };
    let model = w.model.clone();
    let request = EmbedRequest {
        model: w.model,
        input,
        truncate: w.truncate,
        dimensions: (w.dimensions > 0).then_some(w.dimensions as usize),
        options: values::options(&w.options)?,
        keep_alive: values::keep_alive(&w.keep_alive)?,
        normalize: true,
    };
    Ok(DecodedEmbed {
        request,
        encode: Box::new(move |r: &EmbedResponse| {
            to_vec(&wire::EmbedResponse {
                model,
                embeddings: r.embeddings.clone(),
                total_duration: r.total_duration,
                load_duration: r.load_duration,
                prompt_eval_count: r.prompt_eval_count,
            })
        }),
    })
}

/// Decode a legacy `/api/embeddings` body.
pub fn decode_embeddings(body: &[u8]) -> Result<DecodedEmbed, DecodeError> {
    let w: wire::EmbeddingRequest = decode_json(body, "EmbeddingRequest")?;
    if w.model.is_empty() {
        return Err(DecodeError::bad_request("model is required"));
    }
    let input = if w.prompt.is_empty() {
        Vec::new()
    } else {
        vec![w.prompt]
    };
    let request = EmbedRequest {
        model: w.model,
        input,
        truncate: None,
        dimensions: None,
        options: values::options(&w.options)?,
        keep_alive: values::keep_alive(&w.keep_alive)?,
        normalize: false,
    };
    Ok(DecodedEmbed {
        request,
        encode: Box::new(|r: &EmbedResponse| {
            let embedding = r
                .embeddings
                .first()
                .map(|v| v.iter().map(|x| *x as f64).collect())
                .unwrap_or_default();
            to_vec(&wire::EmbeddingResponse { embedding })
        }),
    })
}

/// The native error body `{"error":"..."}`.
pub fn error_body(message: &str) -> Vec<u8> {
    to_vec(&wire::ErrorResponse::new(message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embed_accepts_string_or_array_and_rejects_other_types() {
        assert_eq!(
            decode_embed(br#"{"model":"m","input":"a"}"#)
                .ok()
                .unwrap()
                .request
                .input,
            vec!["a"]
        );
        assert_eq!(
            decode_embed(br#"{"model":"m","input":["a","b"]}"#)
                .ok()
                .unwrap()
                .request
                .input,
            vec!["a", "b"]
        );
        assert!(decode_embed(br#"{"model":"m"}"#)
            .ok()
            .unwrap()
            .request
            .input
            .is_empty());
        assert_eq!(
            decode_embed(br#"{"model":"m","input":5}"#)
                .err()
                .unwrap()
                .message,
            "invalid input type"
        );
    }

    #[test]
    fn embed_response_keeps_upstream_field_order() {
        let d = decode_embed(br#"{"model":"m","input":"a"}"#).ok().unwrap();
        let body = (d.encode)(&EmbedResponse {
            embeddings: vec![vec![0.5, 0.25]],
            prompt_eval_count: 2,
            load_duration: 1,
            total_duration: 3,
        });
        assert_eq!(
            String::from_utf8(body).unwrap(),
            r#"{"model":"m","embeddings":[[0.5,0.25]],"total_duration":3,"load_duration":1,"prompt_eval_count":2}"#
        );
    }

    #[test]
    fn legacy_embeddings_requires_model_and_returns_single_vector() {
        assert_eq!(
            decode_embeddings(br#"{"prompt":"a"}"#)
                .err()
                .unwrap()
                .message,
            "model is required"
        );
        let d = decode_embeddings(br#"{"model":"m","prompt":"a"}"#)
            .ok()
            .unwrap();
        let body = (d.encode)(&EmbedResponse {
            embeddings: vec![vec![1.0]],
            ..Default::default()
        });
        assert_eq!(body, br#"{"embedding":[1]}"#);
    }
}
