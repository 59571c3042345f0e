//! `POST /v1/embeddings`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ollama::{is_zero, null_default};

/// Request body.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EmbedRequest {
    /// A string or an array of strings (validated by the dialect layer).
    #[serde(default)]
    pub input: Value,
    /// Model name.
    #[serde(default, deserialize_with = "null_default")]
    pub model: String,
    /// Truncate vectors to this many dimensions.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "is_zero"
    )]
    pub dimensions: i64,
    /// `float` (default) or `base64`, case-insensitive.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub encoding_format: String,
}

/// A vector as floats, or as base64 of little-endian `f32`s.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum EmbeddingVector {
    /// `encoding_format: "float"`.
    Float(Vec<f32>),
    /// `encoding_format: "base64"`.
    Base64(String),
}

impl Default for EmbeddingVector {
    fn default() -> Self {
        EmbeddingVector::Float(Vec::new())
    }
}

/// One embedding.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Embedding {
    /// Always `embedding`.
    #[serde(default, deserialize_with = "null_default")]
    pub object: String,
    /// The vector.
    #[serde(default, deserialize_with = "null_default")]
    pub embedding: EmbeddingVector,
    /// Position of the input.
    #[serde(default, deserialize_with = "null_default")]
    pub index: usize,
}

/// Token counts of an embedding request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmbeddingUsage {
    /// Tokens processed.
    #[serde(default, deserialize_with = "null_default")]
    pub prompt_tokens: u64,
    /// Same as `prompt_tokens`.
    #[serde(default, deserialize_with = "null_default")]
    pub total_tokens: u64,
}

/// Response body. `data` is `null` when there are no vectors, as upstream.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EmbeddingList {
    /// Always `list`.
    #[serde(default, deserialize_with = "null_default")]
    pub object: String,
    /// The embeddings in input order.
    #[serde(default)]
    pub data: Option<Vec<Embedding>>,
    /// Model name as requested.
    #[serde(default, deserialize_with = "null_default")]
    pub model: String,
    /// Token counts.
    #[serde(default, deserialize_with = "null_default")]
    pub usage: EmbeddingUsage,
}
