//! `POST /v1/messages`: request, content blocks, response and streaming events.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use super::error::Error;
use crate::ollama::{is_false, is_zero, null_default};

/// Request body (fields Ollama reads).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MessagesRequest {
    /// Model name (required).
    #[serde(default, deserialize_with = "null_default")]
    pub model: String,
    /// Maximum tokens (required, > 0).
    #[serde(default, deserialize_with = "null_default")]
    pub max_tokens: i64,
    /// The conversation (required).
    #[serde(default, deserialize_with = "null_default")]
    pub messages: Vec<MessageParam>,
    /// A string or an array of `{"type":"text","text":...}` blocks.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub system: Value,
    /// Stream as SSE (default false).
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "is_false"
    )]
    pub stream: bool,
    /// Temperature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// Nucleus sampling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    /// Top-k sampling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_k: Option<i64>,
    /// Stop sequences.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub stop_sequences: Vec<String>,
    /// Tool definitions.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub tools: Vec<Tool>,
    /// Ignored by Ollama.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<ToolChoice>,
    /// Extended thinking switch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thinking: Option<ThinkingConfig>,
    /// Ignored by Ollama.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata>,
    /// Effort, used only when `thinking` is absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_config: Option<OutputConfig>,
}

/// `output_config`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputConfig {
    /// `low`, `medium`, `high`, `xhigh` or `max`.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub effort: String,
}

/// One message; string content is normalized to a single text block on input.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MessageParam {
    /// `user` or `assistant`.
    #[serde(default, deserialize_with = "null_default")]
    pub role: String,
    /// Content blocks.
    #[serde(default, deserialize_with = "string_or_blocks")]
    pub content: Vec<ContentBlock>,
}

fn string_or_blocks<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<ContentBlock>, D::Error> {
    use serde::de::Error as _;
    match Value::deserialize(d)? {
        // Go decodes `null` into the string branch: one empty text block.
        Value::Null => Ok(vec![text_block(String::new())]),
        Value::String(s) => Ok(vec![text_block(s)]),
        v @ Value::Array(_) => serde_json::from_value(v).map_err(D::Error::custom),
        other => {
            let kind = match other {
                Value::Bool(_) => "bool",
                Value::Number(_) => "number",
                _ => "object",
            };
            Err(D::Error::custom(format!(
                "json: cannot unmarshal {kind} into Go value of type []anthropic.ContentBlock"
            )))
        }
    }
}

fn text_block(text: String) -> ContentBlock {
    ContentBlock {
        kind: "text".to_string(),
        text: Some(text),
        ..Default::default()
    }
}

/// A content block of any type; which fields are set depends on `type`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContentBlock {
    /// `text`, `image`, `tool_use`, `tool_result`, `thinking`, `server_tool_use`,
    /// `web_search_tool_result`.
    #[serde(default, rename = "type", deserialize_with = "null_default")]
    pub kind: String,
    /// Text (text blocks); present-but-empty matters to SDK stream accumulation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Citations of a text block.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub citations: Vec<Value>,
    /// Image source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<ImageSource>,
    /// Tool use id.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub id: String,
    /// Tool name.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub name: String,
    /// Tool arguments (tool_use blocks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<Map<String, Value>>,
    /// The tool use a result answers.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub tool_use_id: String,
    /// Tool result content: a string or blocks.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub content: Value,
    /// Whether a tool result is an error.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "is_false"
    )]
    pub is_error: bool,
    /// Thinking text (thinking blocks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thinking: Option<String>,
    /// Thinking signature.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub signature: String,
}

/// An image's source.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageSource {
    /// Only `base64` is supported.
    #[serde(default, rename = "type", deserialize_with = "null_default")]
    pub kind: String,
    /// MIME type.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub media_type: String,
    /// Base64 data.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub data: String,
    /// URL (unsupported).
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub url: String,
}

/// A tool definition.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Tool {
    /// `custom` (or empty) for user tools, `web_search_20250305` for the built-in search.
    #[serde(
        default,
        rename = "type",
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub kind: String,
    /// Tool name.
    #[serde(default, deserialize_with = "null_default")]
    pub name: String,
    /// Description.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub description: String,
    /// JSON schema of the input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_schema: Option<Value>,
    /// Web search limit.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "is_zero"
    )]
    pub max_uses: i64,
}

/// `tool_choice` (ignored by Ollama).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolChoice {
    /// `auto`, `any`, `tool` or `none`.
    #[serde(default, rename = "type", deserialize_with = "null_default")]
    pub kind: String,
    /// Tool name for `tool`.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub name: String,
    /// Disable parallel tool use.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "is_false"
    )]
    pub disable_parallel_tool_use: bool,
}

/// `thinking`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThinkingConfig {
    /// `enabled` or `disabled`.
    #[serde(default, rename = "type", deserialize_with = "null_default")]
    pub kind: String,
    /// Token budget (ignored).
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "is_zero"
    )]
    pub budget_tokens: i64,
}

/// `metadata` (ignored).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    /// End-user id.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub user_id: String,
}

/// Token counts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Prompt tokens.
    #[serde(default, deserialize_with = "null_default")]
    pub input_tokens: u64,
    /// Generated tokens.
    #[serde(default, deserialize_with = "null_default")]
    pub output_tokens: u64,
}

/// The response message (non-streaming body, and `message_start.message`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MessagesResponse {
    /// `msg_<24 hex>`.
    #[serde(default, deserialize_with = "null_default")]
    pub id: String,
    /// Always `message`.
    #[serde(default, rename = "type", deserialize_with = "null_default")]
    pub kind: String,
    /// Always `assistant`.
    #[serde(default, deserialize_with = "null_default")]
    pub role: String,
    /// Model name as requested.
    #[serde(default, deserialize_with = "null_default")]
    pub model: String,
    /// Blocks; `null` when a non-streaming answer has none (as upstream), `[]` in `message_start`.
    #[serde(default)]
    pub content: Option<Vec<ContentBlock>>,
    /// `end_turn`, `max_tokens`, `tool_use`, `stop_sequence`; omitted when unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_reason: Option<String>,
    /// The stop sequence hit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_sequence: Option<String>,
    /// Token counts.
    #[serde(default, deserialize_with = "null_default")]
    pub usage: Usage,
}

/// `message_start`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MessageStartEvent {
    /// Always `message_start`.
    #[serde(default, rename = "type", deserialize_with = "null_default")]
    pub kind: String,
    /// The message shell (empty content).
    #[serde(default, deserialize_with = "null_default")]
    pub message: MessagesResponse,
}

/// `content_block_start`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContentBlockStartEvent {
    /// Always `content_block_start`.
    #[serde(default, rename = "type", deserialize_with = "null_default")]
    pub kind: String,
    /// Block index.
    #[serde(default, deserialize_with = "null_default")]
    pub index: usize,
    /// The empty block.
    #[serde(default, deserialize_with = "null_default")]
    pub content_block: ContentBlock,
}

/// `content_block_delta`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContentBlockDeltaEvent {
    /// Always `content_block_delta`.
    #[serde(default, rename = "type", deserialize_with = "null_default")]
    pub kind: String,
    /// Block index.
    #[serde(default, deserialize_with = "null_default")]
    pub index: usize,
    /// The increment.
    #[serde(default, deserialize_with = "null_default")]
    pub delta: Delta,
}

/// An increment of a content block.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delta {
    /// `text_delta`, `input_json_delta`, `thinking_delta` or `signature_delta`.
    #[serde(default, rename = "type", deserialize_with = "null_default")]
    pub kind: String,
    /// Text.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub text: String,
    /// Tool input JSON fragment.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub partial_json: String,
    /// Thinking text.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub thinking: String,
    /// Thinking signature.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub signature: String,
}

/// `content_block_stop`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContentBlockStopEvent {
    /// Always `content_block_stop`.
    #[serde(default, rename = "type", deserialize_with = "null_default")]
    pub kind: String,
    /// Block index.
    #[serde(default, deserialize_with = "null_default")]
    pub index: usize,
}

/// `message_delta`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageDeltaEvent {
    /// Always `message_delta`.
    #[serde(default, rename = "type", deserialize_with = "null_default")]
    pub kind: String,
    /// Stop information.
    #[serde(default, deserialize_with = "null_default")]
    pub delta: MessageDelta,
    /// Final token counts.
    #[serde(default, deserialize_with = "null_default")]
    pub usage: Usage,
}

/// `message_delta.delta`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageDelta {
    /// Why generation stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_reason: Option<String>,
    /// The stop sequence hit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_sequence: Option<String>,
}

/// `message_stop` (and `ping`: same shape, other type).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageStopEvent {
    /// Always `message_stop`.
    #[serde(default, rename = "type", deserialize_with = "null_default")]
    pub kind: String,
}

/// `error` event.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamErrorEvent {
    /// Always `error`.
    #[serde(default, rename = "type", deserialize_with = "null_default")]
    pub kind: String,
    /// The error.
    #[serde(default, deserialize_with = "null_default")]
    pub error: Error,
}
