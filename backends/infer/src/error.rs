//! Typed backend failures. The server's responder maps each variant to the exact status and
//! message upstream Ollama (or the OpenAI/Anthropic dialect) would give.

/// Everything a backend can fail with.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BackendError {
    /// No model by this name (the responder picks the per-route message).
    #[error("model '{model}' not found")]
    ModelNotFound {
        /// The model name as the client sent it.
        model: String,
    },
    /// The model exists but lacks a capability (`"x" does not support tools` etc.).
    #[error("{0}")]
    Unsupported(String),
    /// The request is invalid for this model or backend (HTTP 400 with this text).
    #[error("{0}")]
    InvalidRequest(String),
    /// An option had the wrong type (upstream answers 500).
    #[error("{0}")]
    InvalidOption(String),
    /// The prompt does not fit the context and may not be truncated.
    #[error("{0}")]
    ContextLengthExceeded(String),
    /// The queue is full (HTTP 503).
    #[error("server busy, please try again.  maximum pending requests exceeded")]
    Overloaded,
    /// The client went away.
    #[error("request canceled")]
    Cancelled,
    /// An upstream server answered with an error; status and body pass through unchanged.
    #[error("{message}")]
    Upstream {
        /// Upstream HTTP status.
        status: u16,
        /// The error text (already extracted from upstream's body when it had one).
        message: String,
    },
    /// The upstream server could not be reached or answered garbage.
    #[error("{0}")]
    Unavailable(String),
    /// The backend does not implement this operation.
    #[error("{0}")]
    NotImplemented(String),
    /// Anything else (HTTP 500 with this text).
    #[error("{0}")]
    Internal(String),
}

impl BackendError {
    /// A short stable label for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            BackendError::ModelNotFound { .. } => "model_not_found",
            BackendError::Unsupported(_) => "unsupported",
            BackendError::InvalidRequest(_) => "invalid_request",
            BackendError::InvalidOption(_) => "invalid_option",
            BackendError::ContextLengthExceeded(_) => "context_length_exceeded",
            BackendError::Overloaded => "overloaded",
            BackendError::Cancelled => "cancelled",
            BackendError::Upstream { .. } => "upstream",
            BackendError::Unavailable(_) => "unavailable",
            BackendError::NotImplemented(_) => "not_implemented",
            BackendError::Internal(_) => "internal",
        }
    }

    /// The HTTP status the native Ollama API uses for this error.
    pub fn status(&self) -> u16 {
        match self {
            BackendError::ModelNotFound { .. } => 404,
            BackendError::Unsupported(_)
            | BackendError::InvalidRequest(_)
            | BackendError::ContextLengthExceeded(_) => 400,
            BackendError::InvalidOption(_) | BackendError::Internal(_) => 500,
            BackendError::Overloaded => 503,
            BackendError::Cancelled => 499,
            BackendError::Upstream { status, .. } => *status,
            BackendError::Unavailable(_) => 502,
            BackendError::NotImplemented(_) => 501,
        }
    }
}
