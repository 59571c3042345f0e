//! `POST /api/embed` and the legacy `POST /api/embeddings`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::de::null_default;
use super::is_zero;

/// Body of `POST /api/embed`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EmbedRequest {
    /// Model name.
    #[serde(default, deserialize_with = "null_default")]
    pub model: String,
    /// A string or an array of strings (validated by the dialect layer).
    #[serde(default)]
    pub input: Value,
    /// Keep-alive override.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_alive: Option<Value>,
    /// Truncate long inputs (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncate: Option<bool>,
    /// Truncate vectors to this many dimensions.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "is_zero"
    )]
    pub dimensions: i64,
    /// Runtime options.
    #[serde(default)]
    pub options: Option<Map<String, Value>>,
}

/// Response of `POST /api/embed`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EmbedResponse {
    /// Model name as requested.
    pub model: String,
    /// One L2-normalized vector per input.
    pub embeddings: Vec<Vec<f32>>,
    /// Whole request (ns).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub total_duration: u64,
    /// Model load (ns).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub load_duration: u64,
    /// Tokens processed.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub prompt_eval_count: u64,
}

/// Body of the legacy `POST /api/embeddings`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EmbeddingRequest {
    /// Model name.
    #[serde(default, deserialize_with = "null_default")]
    pub model: String,
    /// Text to embed.
    #[serde(default, deserialize_with = "null_default")]
    pub prompt: String,
    /// Keep-alive override.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_alive: Option<Value>,
    /// Runtime options.
    #[serde(default)]
    pub options: Option<Map<String, Value>>,
}

/// Response of the legacy `POST /api/embeddings`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EmbeddingResponse {
    /// The vector (not normalized).
    pub embedding: Vec<f64>,
}
