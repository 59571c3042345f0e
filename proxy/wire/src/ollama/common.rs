//! Types shared by several native endpoints: messages, tool calls, metrics, model details.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::de::{lower, null_default};
use super::is_zero;

/// One chat message. `content` is always emitted, the rest only when set.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// `system`, `user`, `assistant` or `tool`; lower-cased on input.
    #[serde(default, deserialize_with = "lower")]
    pub role: String,
    /// Text content (always present on output, possibly empty).
    #[serde(default, deserialize_with = "null_default")]
    pub content: String,
    /// Reasoning text.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub thinking: String,
    /// Base64-encoded images (decoded and validated by the dialect layer).
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub images: Vec<String>,
    /// Tool calls made in this (assistant) message.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub tool_calls: Vec<ToolCall>,
    /// For `tool` messages: which tool produced this result.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub tool_name: String,
    /// For `tool` messages: the call id this result answers.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub tool_call_id: String,
}

/// A tool call: an optional id plus the function invocation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    /// Call id (`call_` + 8 chars when the server generates it).
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub id: String,
    /// The function invocation.
    #[serde(default)]
    pub function: ToolCallFunction,
}

/// The function part of a tool call. `index` is always emitted.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ToolCallFunction {
    /// Position among the calls of one turn.
    #[serde(default, deserialize_with = "null_default")]
    pub index: usize,
    /// Function name.
    #[serde(default, deserialize_with = "null_default")]
    pub name: String,
    /// Arguments as a JSON object, in the order the model produced them (`{}` when empty).
    #[serde(default, deserialize_with = "null_default")]
    pub arguments: Map<String, Value>,
}

/// Counts and timings on the final chunk (durations in nanoseconds; omitted when zero).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metrics {
    /// Whole request.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub total_duration: u64,
    /// Model load.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub load_duration: u64,
    /// Prompt tokens.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub prompt_eval_count: u64,
    /// Prompt processing time.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub prompt_eval_duration: u64,
    /// Generated tokens.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub eval_count: u64,
    /// Generation time.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub eval_duration: u64,
}

/// Log probability of a generated token, with alternatives.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Logprob {
    /// Token text.
    #[serde(default)]
    pub token: String,
    /// Log probability.
    #[serde(default)]
    pub logprob: f64,
    /// UTF-8 bytes of the token.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bytes: Vec<u8>,
    /// Most likely alternatives.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub top_logprobs: Vec<TokenLogprob>,
}

/// An alternative token.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TokenLogprob {
    /// Token text.
    #[serde(default)]
    pub token: String,
    /// Log probability.
    #[serde(default)]
    pub logprob: f64,
    /// UTF-8 bytes of the token.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bytes: Vec<u8>,
}

/// Returned instead of a generation for `_debug_render_only` requests.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DebugInfo {
    /// The prompt after templating.
    #[serde(default)]
    pub rendered_template: String,
    /// Images referenced by the prompt.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub image_count: usize,
}

/// A model's family, size and quantization, as listed by tags/ps/show.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelDetails {
    /// Model this one was created from (usually empty).
    #[serde(default, deserialize_with = "null_default")]
    pub parent_model: String,
    /// Weight format: `gguf` or `safetensors`.
    #[serde(default, deserialize_with = "null_default")]
    pub format: String,
    /// Architecture family, e.g. `llama`.
    #[serde(default, deserialize_with = "null_default")]
    pub family: String,
    /// All families; `null` when unknown (upstream emits null, not []).
    #[serde(default)]
    pub families: Option<Vec<String>>,
    /// Human parameter count, e.g. `7.6B`.
    #[serde(default, deserialize_with = "null_default")]
    pub parameter_size: String,
    /// Quantization, e.g. `Q4_K_M`.
    #[serde(default, deserialize_with = "null_default")]
    pub quantization_level: String,
    /// Trained context length (omitted when unknown).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub context_length: u64,
    /// Embedding width (omitted when unknown).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub embedding_length: u64,
}
