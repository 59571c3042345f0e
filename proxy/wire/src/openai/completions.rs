//! `POST /v1/completions` (legacy text completions).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::chat::{ChoiceLogprobs, StreamOptions, Usage};
use crate::ollama::{is_false, null_default};

/// Request body. `prompt` must be a string (Ollama rejects arrays).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CompletionRequest {
    /// Model name.
    #[serde(default, deserialize_with = "null_default")]
    pub model: String,
    /// The prompt.
    #[serde(default, deserialize_with = "null_default")]
    pub prompt: String,
    /// Frequency penalty (always forwarded, 0 when absent).
    #[serde(default, deserialize_with = "null_default")]
    pub frequency_penalty: f32,
    /// Maximum tokens (`num_predict`).
    #[serde(default)]
    pub max_tokens: Option<i64>,
    /// Presence penalty (always forwarded, 0 when absent).
    #[serde(default, deserialize_with = "null_default")]
    pub presence_penalty: f32,
    /// RNG seed.
    #[serde(default)]
    pub seed: Option<i64>,
    /// A stop string or an array of strings.
    #[serde(default)]
    pub stop: Value,
    /// Stream as SSE (default false).
    #[serde(default, deserialize_with = "null_default")]
    pub stream: bool,
    /// Streaming options.
    #[serde(default)]
    pub stream_options: Option<StreamOptions>,
    /// Temperature (Ollama defaults it to 1.0).
    #[serde(default)]
    pub temperature: Option<f32>,
    /// Nucleus sampling; 0 means 1.0.
    #[serde(default, deserialize_with = "null_default")]
    pub top_p: f32,
    /// Fill-in-the-middle suffix.
    #[serde(default, deserialize_with = "null_default")]
    pub suffix: String,
    /// Number of alternatives; > 0 turns log probabilities on.
    #[serde(default)]
    pub logprobs: Option<i64>,
    /// Render the prompt only (Ollama extension).
    #[serde(
        default,
        rename = "_debug_render_only",
        deserialize_with = "null_default",
        skip_serializing_if = "is_false"
    )]
    pub debug_render_only: bool,
}

/// One choice (same shape streaming and not).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CompleteChunkChoice {
    /// Generated text.
    #[serde(default, deserialize_with = "null_default")]
    pub text: String,
    /// Always 0.
    #[serde(default, deserialize_with = "null_default")]
    pub index: usize,
    /// `stop`, `length`, or `null`.
    #[serde(default)]
    pub finish_reason: Option<String>,
    /// Never set by Ollama; kept for upstream OpenAI servers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logprobs: Option<ChoiceLogprobs>,
}

/// Non-streaming response body.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Completion {
    /// `cmpl-<n>`.
    #[serde(default, deserialize_with = "null_default")]
    pub id: String,
    /// Always `text_completion`.
    #[serde(default, deserialize_with = "null_default")]
    pub object: String,
    /// Unix seconds.
    #[serde(default, deserialize_with = "null_default")]
    pub created: i64,
    /// Model name as requested.
    #[serde(default, deserialize_with = "null_default")]
    pub model: String,
    /// Always `fp_ollama`.
    #[serde(default, deserialize_with = "null_default")]
    pub system_fingerprint: String,
    /// Exactly one choice.
    #[serde(default, deserialize_with = "null_default")]
    pub choices: Vec<CompleteChunkChoice>,
    /// Token counts.
    #[serde(default, deserialize_with = "null_default")]
    pub usage: Usage,
}

/// One streamed chunk. Note the field order differs from [`Completion`] (`choices` before `model`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CompletionChunk {
    /// `cmpl-<n>`.
    #[serde(default, deserialize_with = "null_default")]
    pub id: String,
    /// Always `text_completion`.
    #[serde(default, deserialize_with = "null_default")]
    pub object: String,
    /// Unix seconds.
    #[serde(default, deserialize_with = "null_default")]
    pub created: i64,
    /// One choice, or none on the usage chunk.
    #[serde(default, deserialize_with = "null_default")]
    pub choices: Vec<CompleteChunkChoice>,
    /// Model name as requested.
    #[serde(default, deserialize_with = "null_default")]
    pub model: String,
    /// Always `fp_ollama`.
    #[serde(default, deserialize_with = "null_default")]
    pub system_fingerprint: String,
    /// Zeroed on every chunk with `include_usage`, real on the final one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
}
