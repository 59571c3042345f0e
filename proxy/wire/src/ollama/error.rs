//! The native error body: `{"error":"<message>"}`.

use serde::{Deserialize, Serialize};

/// Error body of every native route (and the trailing line of a failed stream).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorResponse {
    /// Human-readable message, exactly as upstream words it.
    pub error: String,
}

impl ErrorResponse {
    /// Build from any message.
    pub fn new(msg: impl Into<String>) -> Self {
        ErrorResponse { error: msg.into() }
    }
}
