//! `POST /v1/chat/completions`: request, response and streaming chunk.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ollama::{is_false, is_zero, null_default, DebugInfo, Logprob};

/// A chat message as sent by clients (`content` is a string, an array of parts, or `null`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// `system`, `user`, `assistant`, `tool`, `developer`...
    #[serde(default, deserialize_with = "null_default")]
    pub role: String,
    /// A string, an array of content parts, or `null` (always emitted).
    #[serde(default)]
    pub content: Value,
    /// Reasoning text of an assistant turn (Ollama's extension).
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub reasoning: String,
    /// Tool calls of an assistant turn; `None` when absent (distinct from `[]` upstream).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCall>>,
    /// Tool name of a `tool` message.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub name: String,
    /// Call this `tool` message answers.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub tool_call_id: String,
}

/// A tool call in OpenAI's shape (arguments as a JSON string).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    /// Call id.
    #[serde(default, deserialize_with = "null_default")]
    pub id: String,
    /// Position among the calls of one turn.
    #[serde(default, deserialize_with = "null_default")]
    pub index: usize,
    /// Always `function`.
    #[serde(default, rename = "type", deserialize_with = "null_default")]
    pub kind: String,
    /// Name and arguments.
    #[serde(default, deserialize_with = "null_default")]
    pub function: FunctionCall,
}

/// The function part of a [`ToolCall`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FunctionCall {
    /// Function name.
    #[serde(default, deserialize_with = "null_default")]
    pub name: String,
    /// Arguments, JSON-encoded.
    #[serde(default, deserialize_with = "null_default")]
    pub arguments: String,
}

/// `stream_options`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamOptions {
    /// Send a final chunk with `choices: []` and `usage`.
    #[serde(default, deserialize_with = "null_default")]
    pub include_usage: bool,
}

/// `response_format`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResponseFormat {
    /// `text`, `json_object` or `json_schema`.
    #[serde(default, rename = "type", deserialize_with = "null_default")]
    pub kind: String,
    /// The schema, for `json_schema`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json_schema: Option<JsonSchema>,
}

/// `response_format.json_schema`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JsonSchema {
    /// The JSON schema itself (other keys such as `name` are ignored).
    #[serde(default)]
    pub schema: Value,
}

/// `reasoning` (the nested form of `reasoning_effort`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reasoning {
    /// `none`, `minimal`, `low`, `medium`, `high`, `xhigh`, `ultra` or `max`.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub effort: String,
}

/// Body of `POST /v1/chat/completions` (fields Ollama reads; others are ignored). Unset optional
/// fields are omitted when serializing, so the struct can be sent to an upstream OpenAI server.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatCompletionRequest {
    /// Model name.
    #[serde(default, deserialize_with = "null_default")]
    pub model: String,
    /// The conversation.
    #[serde(default, deserialize_with = "null_default")]
    pub messages: Vec<Message>,
    /// Stream as SSE (default false).
    #[serde(default, deserialize_with = "null_default")]
    pub stream: bool,
    /// Streaming options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_options: Option<StreamOptions>,
    /// Maximum tokens to generate (`num_predict`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<i64>,
    /// RNG seed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<i64>,
    /// A stop string or an array of them.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub stop: Value,
    /// Sampling temperature (Ollama defaults it to 1.0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// Frequency penalty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frequency_penalty: Option<f64>,
    /// Presence penalty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presence_penalty: Option<f64>,
    /// Nucleus sampling (Ollama defaults it to 1.0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    /// Output format.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_format: Option<ResponseFormat>,
    /// Tools in `{"type":"function","function":{...}}` shape.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub tools: Vec<Value>,
    /// Nested reasoning effort (wins over `reasoning_effort`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<Reasoning>,
    /// Flat reasoning effort.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_effort: Option<String>,
    /// Return log probabilities.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logprobs: Option<bool>,
    /// Alternatives per token.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "is_zero"
    )]
    pub top_logprobs: i64,
    /// Render the prompt only (Ollama extension).
    #[serde(
        default,
        rename = "_debug_render_only",
        deserialize_with = "null_default",
        skip_serializing_if = "is_false"
    )]
    pub debug_render_only: bool,
}

/// `choices[].logprobs`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChoiceLogprobs {
    /// One entry per generated token.
    #[serde(default, deserialize_with = "null_default")]
    pub content: Vec<Logprob>,
}

/// The assistant message of a non-streaming completion.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResponseMessage {
    /// Always `assistant`.
    #[serde(default, deserialize_with = "null_default")]
    pub role: String,
    /// The text (always emitted, possibly empty).
    #[serde(default, deserialize_with = "null_default")]
    pub content: String,
    /// Reasoning text.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub reasoning: String,
    /// Tool calls.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub tool_calls: Vec<ToolCall>,
}

/// One choice of a non-streaming completion.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Choice {
    /// Always 0.
    #[serde(default, deserialize_with = "null_default")]
    pub index: usize,
    /// The answer.
    #[serde(default, deserialize_with = "null_default")]
    pub message: ResponseMessage,
    /// `stop`, `length`, `tool_calls`, or `null`.
    #[serde(default)]
    pub finish_reason: Option<String>,
    /// Token log probabilities when requested.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logprobs: Option<ChoiceLogprobs>,
}

/// Token counts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Prompt tokens.
    #[serde(default, deserialize_with = "null_default")]
    pub prompt_tokens: u64,
    /// Generated tokens.
    #[serde(default, deserialize_with = "null_default")]
    pub completion_tokens: u64,
    /// Sum of both.
    #[serde(default, deserialize_with = "null_default")]
    pub total_tokens: u64,
}

/// Non-streaming response body.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatCompletion {
    /// `chatcmpl-<n>`.
    #[serde(default, deserialize_with = "null_default")]
    pub id: String,
    /// Always `chat.completion`.
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
    pub choices: Vec<Choice>,
    /// Token counts.
    #[serde(default, deserialize_with = "null_default")]
    pub usage: Usage,
    /// Rendered prompt for `_debug_render_only` requests.
    #[serde(
        default,
        rename = "_debug_info",
        skip_serializing_if = "Option::is_none"
    )]
    pub debug_info: Option<DebugInfo>,
}

/// A streaming delta; every field is omitted when empty so the finish chunk's delta is `{}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Delta {
    /// `assistant` on the first chunk only.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub role: String,
    /// New text; `Some("")` is emitted as `""`, `None` is omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// New reasoning text.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub reasoning: String,
    /// Tool calls.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub tool_calls: Vec<ToolCall>,
}

/// One choice of a streaming chunk.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChunkChoice {
    /// Always 0.
    #[serde(default, deserialize_with = "null_default")]
    pub index: usize,
    /// What is new.
    #[serde(default, deserialize_with = "null_default")]
    pub delta: Delta,
    /// `null` except on the finish chunk.
    #[serde(default)]
    pub finish_reason: Option<String>,
    /// Token log probabilities when requested.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logprobs: Option<ChoiceLogprobs>,
}

/// One SSE `data:` object of a streamed chat completion.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatCompletionChunk {
    /// `chatcmpl-<n>`, shared by all chunks.
    #[serde(default, deserialize_with = "null_default")]
    pub id: String,
    /// Always `chat.completion.chunk`.
    #[serde(default, deserialize_with = "null_default")]
    pub object: String,
    /// Unix seconds, shared by all chunks.
    #[serde(default, deserialize_with = "null_default")]
    pub created: i64,
    /// Model name as requested.
    #[serde(default, deserialize_with = "null_default")]
    pub model: String,
    /// Always `fp_ollama`.
    #[serde(default, deserialize_with = "null_default")]
    pub system_fingerprint: String,
    /// One choice, or none on the usage chunk.
    #[serde(default, deserialize_with = "null_default")]
    pub choices: Vec<ChunkChoice>,
    /// Only on the `include_usage` chunk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
}
