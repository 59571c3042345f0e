//! The Anthropic error envelope: `{"type":"error","error":{"type","message"},"request_id"}`.

use serde::{Deserialize, Serialize};

use crate::ollama::null_default;

/// The error body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorResponse {
    /// Always `error`.
    #[serde(default, rename = "type", deserialize_with = "null_default")]
    pub kind: String,
    /// The error.
    #[serde(default, deserialize_with = "null_default")]
    pub error: Error,
    /// `req_<24 hex>`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub request_id: String,
}

/// One error.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Error {
    /// `invalid_request_error`, `authentication_error`, `permission_error`, `not_found_error`,
    /// `rate_limit_error`, `overloaded_error` or `api_error`.
    #[serde(default, rename = "type", deserialize_with = "null_default")]
    pub kind: String,
    /// Human-readable message.
    #[serde(default, deserialize_with = "null_default")]
    pub message: String,
}

/// The error type Ollama picks for an HTTP status (`anthropic.NewError`).
pub fn error_type(status: u16) -> &'static str {
    match status {
        400 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        429 => "rate_limit_error",
        503 | 529 => "overloaded_error",
        _ => "api_error",
    }
}
