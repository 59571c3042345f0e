//! The OpenAI error envelope every `/v1` OpenAI route answers failures with.

use serde::{Deserialize, Serialize};

use crate::ollama::null_default;
use serde_json::Value;

/// `{"error":{...}}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ErrorResponse {
    /// The error itself.
    pub error: Error,
}

/// One error: message, type by status, and always-null `param`/`code` from Ollama.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Error {
    /// Human-readable message.
    #[serde(default, deserialize_with = "null_default")]
    pub message: String,
    /// `invalid_request_error` (400), `not_found_error` (404) or `api_error`.
    #[serde(default, rename = "type", deserialize_with = "null_default")]
    pub kind: String,
    /// Offending parameter (Ollama always sends `null`).
    #[serde(default)]
    pub param: Value,
    /// Machine-readable code (Ollama always sends `null`).
    #[serde(default)]
    pub code: Option<String>,
}

impl ErrorResponse {
    /// The envelope Ollama builds for `status` (`openai.NewError`).
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        let kind = match status {
            400 => "invalid_request_error",
            404 => "not_found_error",
            _ => "api_error",
        };
        ErrorResponse {
            error: Error {
                message: message.into(),
                kind: kind.to_string(),
                param: Value::Null,
                code: None,
            },
        }
    }
}
