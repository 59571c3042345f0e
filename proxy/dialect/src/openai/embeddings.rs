//! `POST /v1/embeddings`: request validation and the `list` body with float or base64 vectors.

use base64::Engine as _;
use ollmlx_infer::{EmbedRequest, EmbedResponse};
use ollmlx_wire::json::to_line;
use ollmlx_wire::openai::embeddings::{
    EmbedRequest as WireEmbedRequest, Embedding, EmbeddingList, EmbeddingUsage, EmbeddingVector,
};
use serde_json::Value;

use crate::{decode_json, DecodeError, DecodedEmbed};

/// Decode an embeddings body; the encoder writes the `list` body (with a trailing newline).
pub fn decode_embeddings(body: &[u8]) -> Result<DecodedEmbed, DecodeError> {
    let req: WireEmbedRequest = decode_json(body, "EmbedRequest")?;
    let format = req.encoding_format.clone();
    if !format.is_empty()
        && !format.eq_ignore_ascii_case("float")
        && !format.eq_ignore_ascii_case("base64")
    {
        return Err(DecodeError::bad_request(format!(
            "Invalid value for 'encoding_format' = {format}. Supported values: ['float', 'base64']."
        )));
    }
    let input = match &req.input {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) if a.is_empty() => {
            return Err(DecodeError::bad_request("invalid input"));
        }
        Value::Array(a) => a
            .iter()
            .map(|v| v.as_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| DecodeError::bad_request("invalid input type"))?,
        Value::Null => return Err(DecodeError::bad_request("invalid input")),
        _ => return Err(DecodeError::bad_request("invalid input type")),
    };
    let model = req.model.clone();
    let base64 = format.eq_ignore_ascii_case("base64");
    Ok(DecodedEmbed {
        request: EmbedRequest {
            model: req.model,
            input,
            dimensions: (req.dimensions > 0).then_some(req.dimensions as usize),
            normalize: true,
            ..Default::default()
        },
        encode: Box::new(move |resp: &EmbedResponse| embeddings_body(&model, resp, base64)),
    })
}

/// The response body (Ollama's `ToEmbeddingList`, written with `json.Encoder`).
pub(crate) fn embeddings_body(model: &str, resp: &EmbedResponse, base64: bool) -> Vec<u8> {
    let data: Vec<Embedding> = resp
        .embeddings
        .iter()
        .enumerate()
        .map(|(index, e)| Embedding {
            object: "embedding".into(),
            embedding: if base64 {
                EmbeddingVector::Base64(floats_to_base64(e))
            } else {
                EmbeddingVector::Float(e.clone())
            },
            index,
        })
        .collect();
    to_line(&EmbeddingList {
        object: "list".into(),
        data: (!data.is_empty()).then_some(data),
        model: model.to_string(),
        usage: EmbeddingUsage {
            prompt_tokens: resp.prompt_eval_count,
            total_tokens: resp.prompt_eval_count,
        },
    })
}

/// Little-endian `f32` bytes, standard base64.
pub(crate) fn floats_to_base64(v: &[f32]) -> String {
    let bytes: Vec<u8> = v.iter().flat_map(|f| f.to_le_bytes()).collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
