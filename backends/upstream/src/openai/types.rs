//! The few OpenAI wire shapes [`super::OpenAiUpstream`] sends and reads, kept private to this
//! crate: request bodies going to the upstream and the chunks, model lists and embeddings coming
//! back. Inputs are tolerant (every field optional, unknown fields ignored) because
//! OpenAI-compatible servers differ in what they emit.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Body of `POST /v1/chat/completions` and `POST /v1/completions` (the fields not shared are
/// left empty and skipped).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CompletionRequest {
    /// Upstream model id.
    pub model: String,
    /// Chat messages (`/v1/chat/completions`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub messages: Option<Vec<Value>>,
    /// Prompt (`/v1/completions`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    /// Text after the insertion point (`/v1/completions`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suffix: Option<String>,
    /// Always true.
    pub stream: bool,
    /// `{"include_usage": true}`.
    pub stream_options: StreamOptions,
    /// Tool definitions (Ollama's shape is OpenAI's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<Value>>,
    /// Sampling and extra parameters, flattened into the body.
    #[serde(flatten)]
    pub params: Map<String, Value>,
}

/// `stream_options`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StreamOptions {
    /// Ask for a final chunk carrying `usage`.
    pub include_usage: bool,
}

/// One streamed chunk of either endpoint.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Chunk {
    /// Choices (usually one; empty on the usage chunk).
    #[serde(default)]
    pub choices: Vec<ChunkChoice>,
    /// Token counts (final chunk when `include_usage` was set).
    #[serde(default)]
    pub usage: Option<Usage>,
}

/// A choice in a chunk.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ChunkChoice {
    /// Choice index (only 0 is used).
    #[serde(default)]
    pub index: u32,
    /// Chat delta.
    #[serde(default)]
    pub delta: Option<Delta>,
    /// Completion text (`/v1/completions`).
    #[serde(default)]
    pub text: Option<String>,
    /// `stop`, `length`, `tool_calls`, `content_filter`...
    #[serde(default)]
    pub finish_reason: Option<String>,
    /// Log probabilities.
    #[serde(default)]
    pub logprobs: Option<ChunkLogprobs>,
}

/// A chat delta.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Delta {
    /// Visible text.
    #[serde(default)]
    pub content: Option<String>,
    /// Reasoning text (vLLM, DeepSeek, LM Studio: `reasoning_content`).
    #[serde(default)]
    pub reasoning_content: Option<String>,
    /// Reasoning text (OpenRouter, newer vLLM, llama.cpp: `reasoning`).
    #[serde(default)]
    pub reasoning: Option<String>,
    /// Tool call fragments.
    #[serde(default)]
    pub tool_calls: Option<Vec<ToolCallDelta>>,
}

/// A fragment of a tool call; fragments with the same `index` concatenate.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ToolCallDelta {
    /// Which call this fragment belongs to.
    #[serde(default)]
    pub index: Option<usize>,
    /// Call id (first fragment).
    #[serde(default)]
    pub id: Option<String>,
    /// Name and argument text pieces.
    #[serde(default)]
    pub function: Option<FunctionDelta>,
}

/// Function part of a tool call fragment.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct FunctionDelta {
    /// Name (first fragment, sometimes split).
    #[serde(default)]
    pub name: Option<String>,
    /// A piece of the JSON argument text.
    #[serde(default)]
    pub arguments: Option<String>,
}

/// Chat logprobs of a chunk.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ChunkLogprobs {
    /// One entry per token.
    #[serde(default)]
    pub content: Option<Vec<TokenLogprob>>,
}

/// Log probability of one token with alternatives.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TokenLogprob {
    /// Token text.
    #[serde(default)]
    pub token: String,
    /// Log probability.
    #[serde(default)]
    pub logprob: f64,
    /// UTF-8 bytes.
    #[serde(default)]
    pub bytes: Option<Vec<u8>>,
    /// Alternatives.
    #[serde(default)]
    pub top_logprobs: Vec<TokenLogprob>,
}

/// Token counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub struct Usage {
    /// Prompt tokens.
    #[serde(default)]
    pub prompt_tokens: u64,
    /// Generated tokens.
    #[serde(default)]
    pub completion_tokens: u64,
}

/// `GET /v1/models`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ModelList {
    /// Models.
    #[serde(default)]
    pub data: Vec<Model>,
}

/// One model of `/v1/models`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Model {
    /// Model id.
    pub id: String,
    /// Unix seconds (0 when absent).
    #[serde(default)]
    pub created: Option<i64>,
    /// Context length (vLLM).
    #[serde(default)]
    pub max_model_len: Option<u64>,
}

/// Body of `POST /v1/embeddings`.
#[derive(Debug, Clone, Serialize)]
pub struct EmbeddingsRequest {
    /// Upstream model id.
    pub model: String,
    /// Texts to embed.
    pub input: Vec<String>,
    /// Always `float`.
    pub encoding_format: &'static str,
    /// Requested width.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dimensions: Option<usize>,
}

/// Response of `POST /v1/embeddings`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct EmbeddingsResponse {
    /// One entry per input.
    #[serde(default)]
    pub data: Vec<EmbeddingData>,
    /// Token counts.
    #[serde(default)]
    pub usage: Option<Usage>,
}

/// One embedding.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct EmbeddingData {
    /// Position of the input.
    #[serde(default)]
    pub index: usize,
    /// The vector.
    #[serde(default)]
    pub embedding: Vec<f32>,
}
