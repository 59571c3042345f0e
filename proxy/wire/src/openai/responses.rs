//! `POST /v1/responses` (the Responses API): request, input items, response object, usage.
//!
//! Input items are kept as raw JSON values in [`ResponsesInput::Items`] because Ollama checks
//! them one by one with its own error texts (the dialect layer does that); the typed item structs
//! below are for clients building requests.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::ollama::{is_false, null_default};

/// `input`: a plain string (one user message) or an array of input items.
#[derive(Debug, Clone, PartialEq)]
pub enum ResponsesInput {
    /// A string (`null` decodes to an empty string, as upstream).
    Text(String),
    /// Raw input items (`message`, `function_call`, `function_call_output`, `reasoning`...).
    Items(Vec<Value>),
}

impl Default for ResponsesInput {
    fn default() -> Self {
        ResponsesInput::Text(String::new())
    }
}

impl Serialize for ResponsesInput {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            ResponsesInput::Text(t) => s.serialize_str(t),
            ResponsesInput::Items(items) => items.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for ResponsesInput {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::Null => Ok(ResponsesInput::Text(String::new())),
            Value::String(s) => Ok(ResponsesInput::Text(s)),
            Value::Array(items) => Ok(ResponsesInput::Items(items)),
            other => {
                let kind = match other {
                    Value::Bool(_) => "bool",
                    Value::Number(_) => "number",
                    _ => "object",
                };
                Err(D::Error::custom(format!(
                    "input must be a string or array: json: cannot unmarshal {kind} into Go value of type []json.RawMessage"
                )))
            }
        }
    }
}

/// A `message` input item (typed form, for clients).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResponsesInputMessage {
    /// Always `message`.
    #[serde(default, rename = "type", deserialize_with = "null_default")]
    pub kind: String,
    /// `user`, `system`, `developer` or `assistant`.
    #[serde(default, deserialize_with = "null_default")]
    pub role: String,
    /// Content parts (`input_text`, `input_image`, `output_text`, `input_file`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub content: Vec<Value>,
}

/// A `function_call` input item: an earlier assistant tool call.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResponsesFunctionCall {
    /// Item id.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub id: String,
    /// Always `function_call`.
    #[serde(default, rename = "type", deserialize_with = "null_default")]
    pub kind: String,
    /// The tool call id.
    #[serde(default, deserialize_with = "null_default")]
    pub call_id: String,
    /// Function name.
    #[serde(default, deserialize_with = "null_default")]
    pub name: String,
    /// JSON-encoded arguments.
    #[serde(default, deserialize_with = "null_default")]
    pub arguments: String,
}

/// A `function_call_output` input item: the client's tool result.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResponsesFunctionCallOutput {
    /// Always `function_call_output`.
    #[serde(default, rename = "type", deserialize_with = "null_default")]
    pub kind: String,
    /// The call this answers.
    #[serde(default, deserialize_with = "null_default")]
    pub call_id: String,
    /// A string, or an array of content parts.
    #[serde(default)]
    pub output: Value,
}

/// A `reasoning` input item or output item summary entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResponsesReasoningSummary {
    /// Always `summary_text`.
    #[serde(default, rename = "type", deserialize_with = "null_default")]
    pub kind: String,
    /// The text.
    #[serde(default, deserialize_with = "null_default")]
    pub text: String,
}

/// `reasoning` in the request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResponsesReasoning {
    /// Effort level (mapped like chat's `reasoning_effort`).
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub effort: String,
    /// Deprecated form of `summary`.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub generate_summary: String,
    /// `auto`, `concise` or `detailed` (echoed only).
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub summary: String,
}

/// `text.format`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResponsesTextFormat {
    /// `text` or `json_schema`.
    #[serde(default, rename = "type", deserialize_with = "null_default")]
    pub kind: String,
    /// Schema name.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub name: String,
    /// The JSON schema (echoed verbatim).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<Value>,
    /// Strict schema adherence flag (echoed only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strict: Option<bool>,
}

/// `text` in the request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResponsesText {
    /// The output format.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<ResponsesTextFormat>,
}

/// A tool declaration (flat, unlike chat's nested `function`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResponsesTool {
    /// `function`, `namespace` or `web_search`.
    #[serde(default, rename = "type", deserialize_with = "null_default")]
    pub kind: String,
    /// Function (or namespace) name.
    #[serde(default, deserialize_with = "null_default")]
    pub name: String,
    /// Description (nullable, always emitted).
    #[serde(default)]
    pub description: Option<String>,
    /// Strict flag (nullable, always emitted).
    #[serde(default)]
    pub strict: Option<bool>,
    /// JSON schema of the arguments (nullable, always emitted).
    #[serde(default)]
    pub parameters: Option<Map<String, Value>>,
    /// Member functions of a `namespace` tool.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub tools: Vec<ResponsesTool>,
}

/// Body of `POST /v1/responses` (fields Ollama reads).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResponsesRequest {
    /// Model name.
    #[serde(default, deserialize_with = "null_default")]
    pub model: String,
    /// Echoed back; not supported.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "is_false"
    )]
    pub background: bool,
    /// Ignored.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub conversation: Value,
    /// Ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include: Option<Vec<String>>,
    /// The input.
    #[serde(default)]
    pub input: ResponsesInput,
    /// Becomes a leading system message.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub instructions: String,
    /// Maximum output tokens (`num_predict`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_output_tokens: Option<i64>,
    /// Reasoning configuration.
    #[serde(default, deserialize_with = "null_default")]
    pub reasoning: ResponsesReasoning,
    /// Temperature (Ollama defaults it to 1.0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// Output format.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<ResponsesText>,
    /// Nucleus sampling (no default is forced).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    /// Echoed back (`disabled` when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncation: Option<String>,
    /// Tool declarations; `None` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<ResponsesTool>>,
    /// Stream events (default false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
}

/// `text` in the response.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResponsesTextField {
    /// The format in effect (`{"type":"text"}` by default).
    #[serde(default, deserialize_with = "null_default")]
    pub format: ResponsesTextFormat,
}

/// `reasoning` in the response.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResponsesReasoningOutput {
    /// Requested effort.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effort: Option<String>,
    /// Requested summary mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
}

/// `error` of a failed response.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResponsesError {
    /// Error code.
    #[serde(default, deserialize_with = "null_default")]
    pub code: String,
    /// Message.
    #[serde(default, deserialize_with = "null_default")]
    pub message: String,
}

/// `incomplete_details`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResponsesIncompleteDetails {
    /// Why the response is incomplete.
    #[serde(default, deserialize_with = "null_default")]
    pub reason: String,
}

/// One `content` part of an output message.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResponsesOutputContent {
    /// Always `output_text`.
    #[serde(default, rename = "type", deserialize_with = "null_default")]
    pub kind: String,
    /// The text.
    #[serde(default, deserialize_with = "null_default")]
    pub text: String,
    /// Always `[]`.
    #[serde(default, deserialize_with = "null_default")]
    pub annotations: Vec<Value>,
    /// Always `[]`.
    #[serde(default, deserialize_with = "null_default")]
    pub logprobs: Vec<Value>,
}

/// `action` of a `web_search_call` item.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResponsesWebSearchAction {
    /// Always `search`.
    #[serde(default, rename = "type", deserialize_with = "null_default")]
    pub kind: String,
    /// The query.
    #[serde(default, deserialize_with = "null_default")]
    pub query: String,
}

/// An output item: `reasoning`, `message`, `function_call` or `web_search_call`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResponsesOutputItem {
    /// Item id (`rs_...`, `msg_...`, `fc_...`).
    #[serde(default, deserialize_with = "null_default")]
    pub id: String,
    /// Item type.
    #[serde(default, rename = "type", deserialize_with = "null_default")]
    pub kind: String,
    /// `in_progress` or `completed`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub status: String,
    /// `assistant` (messages).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub role: String,
    /// Text parts (messages).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub content: Vec<ResponsesOutputContent>,
    /// Tool call id (function calls).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub call_id: String,
    /// Function name (function calls).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// JSON-encoded arguments (function calls).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub arguments: String,
    /// Search action (web search calls).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<ResponsesWebSearchAction>,
    /// Reasoning summary (reasoning items).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub summary: Vec<ResponsesReasoningSummary>,
    /// The full reasoning text (Ollama puts plain text here).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub encrypted_content: String,
}

/// `usage.input_tokens_details`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResponsesInputTokensDetails {
    /// Always 0 from Ollama.
    #[serde(default, deserialize_with = "null_default")]
    pub cached_tokens: u64,
}

/// `usage.output_tokens_details`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResponsesOutputTokensDetails {
    /// Always 0 from Ollama.
    #[serde(default, deserialize_with = "null_default")]
    pub reasoning_tokens: u64,
}

/// Token counts of a response.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResponsesUsage {
    /// Prompt tokens.
    #[serde(default, deserialize_with = "null_default")]
    pub input_tokens: u64,
    /// Generated tokens.
    #[serde(default, deserialize_with = "null_default")]
    pub output_tokens: u64,
    /// Sum of both.
    #[serde(default, deserialize_with = "null_default")]
    pub total_tokens: u64,
    /// Cached-token breakdown.
    #[serde(default, deserialize_with = "null_default")]
    pub input_tokens_details: ResponsesInputTokensDetails,
    /// Reasoning-token breakdown.
    #[serde(default, deserialize_with = "null_default")]
    pub output_tokens_details: ResponsesOutputTokensDetails,
}

/// The response object (non-streaming body, in upstream's struct field order).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResponsesResponse {
    /// `resp_<n>`.
    #[serde(default, deserialize_with = "null_default")]
    pub id: String,
    /// Always `response`.
    #[serde(default, deserialize_with = "null_default")]
    pub object: String,
    /// Unix seconds.
    #[serde(default, deserialize_with = "null_default")]
    pub created_at: i64,
    /// Unix seconds, once completed.
    #[serde(default)]
    pub completed_at: Option<i64>,
    /// `in_progress`, `completed` or `failed`.
    #[serde(default, deserialize_with = "null_default")]
    pub status: String,
    /// Always `null` from Ollama.
    #[serde(default)]
    pub incomplete_details: Option<ResponsesIncompleteDetails>,
    /// Model name as requested.
    #[serde(default, deserialize_with = "null_default")]
    pub model: String,
    /// Always `null`.
    #[serde(default)]
    pub previous_response_id: Option<String>,
    /// The request's `instructions`, or `null`.
    #[serde(default)]
    pub instructions: Option<String>,
    /// Output items.
    #[serde(default)]
    pub output: Option<Vec<ResponsesOutputItem>>,
    /// Failure details, or `null`.
    #[serde(default)]
    pub error: Option<ResponsesError>,
    /// The request's tools (`[]` when none).
    #[serde(default, deserialize_with = "null_default")]
    pub tools: Vec<ResponsesTool>,
    /// Always `auto`.
    #[serde(default)]
    pub tool_choice: Value,
    /// The request's truncation, `disabled` by default.
    #[serde(default, deserialize_with = "null_default")]
    pub truncation: String,
    /// Always true.
    #[serde(default, deserialize_with = "null_default")]
    pub parallel_tool_calls: bool,
    /// Output format in effect.
    #[serde(default, deserialize_with = "null_default")]
    pub text: ResponsesTextField,
    /// The request's `top_p` (1.0 when absent).
    #[serde(default, deserialize_with = "null_default")]
    pub top_p: f64,
    /// Always 0.
    #[serde(default, deserialize_with = "null_default")]
    pub presence_penalty: f64,
    /// Always 0.
    #[serde(default, deserialize_with = "null_default")]
    pub frequency_penalty: f64,
    /// Always 0.
    #[serde(default, deserialize_with = "null_default")]
    pub top_logprobs: i64,
    /// The request's temperature (1.0 when absent).
    #[serde(default, deserialize_with = "null_default")]
    pub temperature: f64,
    /// The request's reasoning settings, or `null`.
    #[serde(default)]
    pub reasoning: Option<ResponsesReasoningOutput>,
    /// Token counts.
    #[serde(default)]
    pub usage: Option<ResponsesUsage>,
    /// The request's `max_output_tokens`, or `null`.
    #[serde(default)]
    pub max_output_tokens: Option<i64>,
    /// Always `null`.
    #[serde(default)]
    pub max_tool_calls: Option<i64>,
    /// Always false.
    #[serde(default, deserialize_with = "null_default")]
    pub store: bool,
    /// The request's `background`.
    #[serde(default, deserialize_with = "null_default")]
    pub background: bool,
    /// Always `default`.
    #[serde(default, deserialize_with = "null_default")]
    pub service_tier: String,
    /// Always `{}`.
    #[serde(default, deserialize_with = "null_default")]
    pub metadata: Map<String, Value>,
    /// Always `null`.
    #[serde(default)]
    pub safety_identifier: Option<String>,
    /// Always `null`.
    #[serde(default)]
    pub prompt_cache_key: Option<String>,
}

/// A streaming event's payload: its `type`, `sequence_number` and the rest, untyped.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResponsesStreamEvent {
    /// Event type, e.g. `response.output_text.delta`.
    #[serde(default, rename = "type", deserialize_with = "null_default")]
    pub kind: String,
    /// Position in the stream, from 0.
    #[serde(default, deserialize_with = "null_default")]
    pub sequence_number: u64,
    /// Every other field.
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}
