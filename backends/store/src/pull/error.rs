//! Pull/push failures ([`PullError`]) and their exact upstream texts; they reach clients as the
//! trailing `{"error": …}` of the progress stream (see [`crate::pull`]).

use ollmlx_infer::BackendError;

use crate::error::StoreError;

/// Everything a pull or push can fail with. Cloneable so that two pulls sharing one download
/// both receive its outcome.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PullError {
    /// Empty or malformed model name (HTTP 400 before the stream starts).
    #[error("invalid model name")]
    InvalidName,
    /// An `http://` name without `insecure: true`.
    #[error("insecure protocol http")]
    InsecureProtocol,
    /// The registry answered 404 (Go's `os.ErrNotExist`).
    #[error("file does not exist")]
    NotFound,
    /// The registry answered 401 even with a token.
    #[error("unauthorized: access denied")]
    Unauthorized,
    /// Any other HTTP error status, with the response body.
    #[error("{code}: {body}")]
    Status {
        /// HTTP status.
        code: u16,
        /// Response body (trimmed).
        body: String,
    },
    /// Failure while fetching the manifest (wraps the cause, as upstream does).
    #[error("pull model manifest: {0}")]
    Manifest(Box<PullError>),
    /// A downloaded blob hashed to another digest; its data has been removed.
    #[error("digest mismatch, file must be downloaded again: want {want}, got {got}")]
    DigestMismatch {
        /// The digest the manifest announced.
        want: String,
        /// What the data hashed to.
        got: String,
    },
    /// Connection, TLS or protocol failure.
    #[error("{0}")]
    Transport(String),
    /// No data arrived for the stall timeout.
    #[error("download stalled: no data received for {0} seconds")]
    Stalled(u64),
    /// No response headers within the header timeout.
    #[error("timed out waiting for {0}")]
    Timeout(String),
    /// The client went away (partial files are kept for a later resume).
    #[error("request canceled")]
    Cancelled,
    /// Local store failure.
    #[error("{0}")]
    Store(String),
    /// The remote answered something we cannot use (bad JSON, missing headers, no weights).
    #[error("{0}")]
    Invalid(String),
}

impl From<StoreError> for PullError {
    fn from(e: StoreError) -> Self {
        PullError::Store(e.to_string())
    }
}

impl PullError {
    /// Wrap an I/O error with context.
    pub(crate) fn io(ctx: impl std::fmt::Display, e: std::io::Error) -> Self {
        PullError::Store(format!("{ctx}: {e}"))
    }

    /// Whether a retry could help (transport trouble, stalls, 5xx, 408/429).
    pub(crate) fn is_retryable(&self) -> bool {
        match self {
            PullError::Transport(_) | PullError::Stalled(_) | PullError::Timeout(_) => true,
            PullError::Status { code, .. } => *code >= 500 || *code == 408 || *code == 429,
            _ => false,
        }
    }
}

impl From<PullError> for BackendError {
    fn from(e: PullError) -> Self {
        match e {
            PullError::InvalidName => BackendError::InvalidRequest(e.to_string()),
            PullError::Cancelled => BackendError::Cancelled,
            other => BackendError::Internal(other.to_string()),
        }
    }
}
