//! The progress side of a pull or push: a channel of `ProgressResponse` objects (the NDJSON
//! lines the server streams) with helpers for upstream's status texts.

use ollmlx_infer::BackendError;
use ollmlx_wire::ollama::ProgressResponse;
use tokio::sync::mpsc::UnboundedSender;

/// Sends progress objects to the client stream.
#[derive(Clone)]
pub(crate) struct Progress {
    tx: UnboundedSender<Result<ProgressResponse, BackendError>>,
}

impl Progress {
    pub(crate) fn new(tx: UnboundedSender<Result<ProgressResponse, BackendError>>) -> Self {
        Progress { tx }
    }

    /// A status-only object (`pulling manifest`, `success`, ...).
    pub(crate) fn status(&self, s: impl Into<String>) {
        let _ = self.tx.send(Ok(ProgressResponse::status(s)));
    }

    /// A transfer object: `status`, `digest`, `total`, `completed`.
    pub(crate) fn transfer(&self, status: &str, digest: &str, total: u64, completed: u64) {
        let _ = self.tx.send(Ok(ProgressResponse {
            status: status.to_string(),
            digest: digest.to_string(),
            total: i64::try_from(total).unwrap_or(i64::MAX),
            completed: i64::try_from(completed.min(total)).unwrap_or(i64::MAX),
        }));
    }

    /// The terminal error object.
    pub(crate) fn error(&self, e: BackendError) {
        let _ = self.tx.send(Err(e));
    }
}

/// `<12 hex>` of a digest as the progress status shows it (`digest[7:19]`).
pub(crate) fn short_digest(digest: &str) -> &str {
    digest.get(7..19).unwrap_or(digest)
}
