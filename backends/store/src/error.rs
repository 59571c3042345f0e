//! Store failures, and how each becomes a [`BackendError`] (and so an HTTP status) at the
//! `Backend` boundary in [`crate::backend`].

use ollmlx_infer::BackendError;

use crate::gguf::GgufError;
use crate::modelfile::ModelfileError;

/// Everything the store can fail with.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The request is invalid (HTTP 400 with this exact text, e.g. `invalid model name`).
    #[error("{0}")]
    BadRequest(String),
    /// No manifest for this model; carries the name the error message should show.
    #[error("model '{0}' not found")]
    ModelNotFound(String),
    /// A digest did not match `^sha256[:-][0-9a-fA-F]{{64}}$`.
    #[error("invalid digest format")]
    InvalidDigest,
    /// Uploaded bytes hashed to something else than the digest they were announced as.
    #[error("digest mismatch, expected \"{expected}\", got \"{got}\"")]
    DigestMismatch {
        /// The digest the client announced, as sent.
        expected: String,
        /// `sha256:<hex>` of what was received.
        got: String,
    },
    /// A blob referenced by a manifest or request is not in the store.
    #[error("blob {0:?} not found")]
    BlobNotFound(String),
    /// A filesystem operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, with the path.
        context: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A manifest, config or parameter blob is not valid JSON of the expected shape.
    #[error("{context}: {source}")]
    Json {
        /// What was being decoded.
        context: String,
        /// The underlying error.
        source: serde_json::Error,
    },
    /// A GGUF file could not be read.
    #[error(transparent)]
    Gguf(#[from] GgufError),
    /// A Modelfile could not be parsed.
    #[error(transparent)]
    Modelfile(#[from] ModelfileError),
    /// The operation is not supported by the store (yet).
    #[error("{0}")]
    Unsupported(String),
    /// A background task failed.
    #[error("{0}")]
    Internal(String),
}

impl StoreError {
    /// Wrap an I/O error with what was being done.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        StoreError::Io {
            context: context.into(),
            source,
        }
    }

    /// Wrap a JSON error with what was being decoded.
    pub fn json(context: impl Into<String>, source: serde_json::Error) -> Self {
        StoreError::Json {
            context: context.into(),
            source,
        }
    }

    /// Whether this is a "does not exist" condition.
    pub fn is_not_found(&self) -> bool {
        match self {
            StoreError::ModelNotFound(_) | StoreError::BlobNotFound(_) => true,
            StoreError::Io { source, .. } => source.kind() == std::io::ErrorKind::NotFound,
            _ => false,
        }
    }
}

impl From<StoreError> for BackendError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::ModelNotFound(model) => BackendError::ModelNotFound { model },
            StoreError::BadRequest(_)
            | StoreError::InvalidDigest
            | StoreError::DigestMismatch { .. }
            | StoreError::Modelfile(_) => BackendError::InvalidRequest(e.to_string()),
            StoreError::Unsupported(m) => BackendError::NotImplemented(m),
            other => BackendError::Internal(other.to_string()),
        }
    }
}

/// Shorthand result type.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
