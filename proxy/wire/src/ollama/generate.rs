//! `POST /api/generate` and `POST /api/chat`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::common::{DebugInfo, Logprob, Message, Metrics, ToolCall};
use super::de::null_default;
use super::{is_false, is_zero};
use crate::time::Timestamp;

/// Body of `POST /api/generate`.
///
/// Fields whose decoding has upstream-specific error texts (`format`, `keep_alive`, `think`,
/// `options`, `images`) are kept as raw JSON and validated by the dialect layer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GenerateRequest {
    /// Model name.
    #[serde(default, deserialize_with = "null_default")]
    pub model: String,
    /// Prompt text; empty means "just load the model".
    #[serde(default, deserialize_with = "null_default")]
    pub prompt: String,
    /// Text after the insertion point (fill-in-the-middle).
    #[serde(default, deserialize_with = "null_default")]
    pub suffix: String,
    /// System prompt override.
    #[serde(default, deserialize_with = "null_default")]
    pub system: String,
    /// Template override.
    #[serde(default, deserialize_with = "null_default")]
    pub template: String,
    /// Token ids returned by an earlier response (deprecated).
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub context: Vec<i64>,
    /// Stream the response (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    /// Skip templating.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "is_false"
    )]
    pub raw: bool,
    /// `"json"` or a JSON schema.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<Value>,
    /// Seconds (number) or a Go duration string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_alive: Option<Value>,
    /// Base64 images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub images: Option<Value>,
    /// Runtime options (see `ollmlx_infer::Options`).
    #[serde(default)]
    pub options: Option<Map<String, Value>>,
    /// `true`/`false` or `"high"|"medium"|"low"|"max"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub think: Option<Value>,
    /// Truncate the prompt to the context (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncate: Option<bool>,
    /// Shift the context at the limit (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shift: Option<bool>,
    /// Return the rendered prompt instead of generating.
    #[serde(
        rename = "_debug_render_only",
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "is_false"
    )]
    pub debug_render_only: bool,
    /// Return log probabilities.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "is_false"
    )]
    pub logprobs: bool,
    /// Alternatives per token (0..=20).
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "is_zero"
    )]
    pub top_logprobs: i64,
}

/// One object of a `/api/generate` response (each NDJSON line, or the whole non-stream body).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenerateResponse {
    /// Model name as requested.
    pub model: String,
    /// Upstream model for remote models.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub remote_model: String,
    /// Upstream host for remote models.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub remote_host: String,
    /// When this chunk was produced.
    pub created_at: Timestamp,
    /// Generated text (always present).
    #[serde(default)]
    pub response: String,
    /// Reasoning text.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub thinking: String,
    /// True on the last object.
    #[serde(default)]
    pub done: bool,
    /// `stop`, `length`, `load`, `unload`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub done_reason: String,
    /// Prompt + output token ids (final object, non-raw only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub context: Vec<i64>,
    /// Counts and timings (final object).
    #[serde(flatten)]
    pub metrics: Metrics,
    /// Tool calls parsed from the output.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// Rendered prompt for debug requests.
    #[serde(
        rename = "_debug_info",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub debug_info: Option<DebugInfo>,
    /// Log probabilities.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub logprobs: Vec<Logprob>,
}

/// Body of `POST /api/chat`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    /// Model name.
    #[serde(default, deserialize_with = "null_default")]
    pub model: String,
    /// The conversation; empty means "just load the model".
    #[serde(default, deserialize_with = "null_default")]
    pub messages: Vec<Message>,
    /// Stream the response (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    /// `"json"` or a JSON schema.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<Value>,
    /// Seconds (number) or a Go duration string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_alive: Option<Value>,
    /// Tool definitions (`{"type":"function","function":{...}}`).
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub tools: Vec<Value>,
    /// Runtime options.
    #[serde(default)]
    pub options: Option<Map<String, Value>>,
    /// `true`/`false` or a level.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub think: Option<Value>,
    /// Drop old messages to fit the context (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncate: Option<bool>,
    /// Shift the context at the limit (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shift: Option<bool>,
    /// Return the rendered prompt instead of generating.
    #[serde(
        rename = "_debug_render_only",
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "is_false"
    )]
    pub debug_render_only: bool,
    /// Return log probabilities.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "is_false"
    )]
    pub logprobs: bool,
    /// Alternatives per token (0..=20).
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "is_zero"
    )]
    pub top_logprobs: i64,
}

/// One object of a `/api/chat` response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatResponse {
    /// Model name as requested.
    pub model: String,
    /// Upstream model for remote models.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub remote_model: String,
    /// Upstream host for remote models.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub remote_host: String,
    /// When this chunk was produced.
    pub created_at: Timestamp,
    /// The assistant message (or its next piece).
    pub message: Message,
    /// True on the last object.
    #[serde(default)]
    pub done: bool,
    /// `stop`, `length`, `load`, `unload`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub done_reason: String,
    /// Rendered prompt for debug requests.
    #[serde(
        rename = "_debug_info",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub debug_info: Option<DebugInfo>,
    /// Log probabilities.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub logprobs: Vec<Logprob>,
    /// Counts and timings (final object).
    #[serde(flatten)]
    pub metrics: Metrics,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::to_vec;
    use time::macros::datetime;

    #[test]
    fn chat_final_chunk_orders_fields_like_upstream() {
        let r = ChatResponse {
            model: "m".into(),
            remote_model: String::new(),
            remote_host: String::new(),
            created_at: Timestamp(datetime!(2025-08-20 13:48:02.352639 UTC)),
            message: Message {
                role: "assistant".into(),
                ..Default::default()
            },
            done: true,
            done_reason: "stop".into(),
            debug_info: None,
            logprobs: vec![],
            metrics: Metrics {
                total_duration: 5,
                eval_count: 2,
                ..Default::default()
            },
        };
        assert_eq!(
            String::from_utf8(to_vec(&r)).unwrap(),
            r#"{"model":"m","created_at":"2025-08-20T13:48:02.352639Z","message":{"role":"assistant","content":""},"done":true,"done_reason":"stop","total_duration":5,"eval_count":2}"#
        );
    }

    #[test]
    fn generate_request_tolerates_nulls_and_unknown_fields() {
        let r: GenerateRequest =
            serde_json::from_str(r#"{"model":"m","prompt":null,"bogus":1,"raw":null}"#).unwrap();
        assert_eq!(r.model, "m");
        assert_eq!(r.prompt, "");
        assert!(!r.raw);
    }

    #[test]
    fn message_role_is_lower_cased() {
        let m: Message = serde_json::from_str(r#"{"role":"USER","content":"x"}"#).unwrap();
        assert_eq!(m.role, "user");
    }

    #[test]
    fn tool_call_index_is_always_emitted_and_arguments_keep_order() {
        let tc: ToolCall =
            serde_json::from_str(r#"{"function":{"name":"f","arguments":{"z":1,"a":2}}}"#).unwrap();
        assert_eq!(
            String::from_utf8(to_vec(&tc)).unwrap(),
            r#"{"function":{"index":0,"name":"f","arguments":{"z":1,"a":2}}}"#
        );
    }
}
