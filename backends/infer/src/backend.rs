//! The `Backend` trait: what the router calls for every model-addressed request.
//!
//! Backends are plain, dyn-compatible objects (`Arc<dyn Backend>`) returning boxed futures and
//! streams. Generation always streams [`Event`]s; dropping the stream cancels the work. Model
//! management (pull/create/push progress, copy, delete, blobs) and listings use the Ollama wire
//! types directly, because those endpoints exist in one dialect only (see docs/adr/0001).

use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use ollmlx_wire::ollama as wire;

use crate::error::BackendError;
use crate::event::Event;
use crate::metrics::BackendMetric;
use crate::request::{EmbedRequest, EmbedResponse, Request};

/// A boxed, sendable future returning `Result<T, BackendError>`.
pub type BackendFuture<T> = BoxFuture<'static, Result<T, BackendError>>;
/// A stream of generation events; dropping it cancels the generation.
pub type EventStream = BoxStream<'static, Result<Event, BackendError>>;
/// A stream of progress objects (pull, push, create).
pub type ProgressStream = BoxStream<'static, Result<wire::ProgressResponse, BackendError>>;
/// A streamed HTTP body (for pass-through proxying and blob uploads).
pub type RawBody = BoxStream<'static, Result<Bytes, BackendError>>;
/// Shared handle to a backend.
pub type DynBackend = Arc<dyn Backend>;

/// An HTTP request forwarded verbatim (proxy backends only).
pub struct RawRequest {
    /// Method (`GET`, `POST`, ...).
    pub method: String,
    /// Path and query, e.g. `/api/chat`.
    pub path_and_query: String,
    /// Headers as received (hop-by-hop headers already removed).
    pub headers: Vec<(String, Vec<u8>)>,
    /// The request body.
    pub body: RawBody,
}

/// An HTTP response passed back verbatim.
pub struct RawResponse {
    /// Status code.
    pub status: u16,
    /// Headers (hop-by-hop headers removed).
    pub headers: Vec<(String, Vec<u8>)>,
    /// The streamed body.
    pub body: RawBody,
}

/// Progress-streaming management operations.
#[derive(Debug, Clone)]
pub enum ManageRequest {
    /// `POST /api/pull`.
    Pull(wire::PullRequest),
    /// `POST /api/push`.
    Push(wire::PushRequest),
    /// `POST /api/create`.
    Create(Box<wire::CreateRequest>),
}

/// An inference backend: the MLX engine, an upstream Ollama, an OpenAI-compatible server...
pub trait Backend: Send + Sync + 'static {
    /// Short name for logs, `/api/ps` and the config file (`mlx`, `ollama`, `openai`).
    fn name(&self) -> &str;

    /// Whether this backend serves `model` (used by the router when no config rule matches).
    fn has_model(&self, model: &str) -> BackendFuture<bool>;

    /// Start a generation. Errors returned here happen before any byte is sent.
    fn generate(&self, req: Request) -> BackendFuture<EventStream>;

    /// Compute embeddings.
    fn embed(&self, req: EmbedRequest) -> BackendFuture<EmbedResponse>;

    /// Models this backend can serve (`/api/tags`).
    fn list_models(&self) -> BackendFuture<Vec<wire::ListModel>>;

    /// Models currently loaded (`/api/ps`).
    fn loaded(&self) -> BackendFuture<Vec<wire::ProcessModel>>;

    /// Details of one model (`/api/show`).
    fn show(&self, req: wire::ShowRequest) -> BackendFuture<wire::ShowResponse>;

    /// Pull, push or create, streamed as progress objects.
    fn manage(&self, req: ManageRequest) -> BackendFuture<ProgressStream> {
        let what = match req {
            ManageRequest::Pull(_) => "pull",
            ManageRequest::Push(_) => "push",
            ManageRequest::Create(_) => "create",
        };
        let name = self.name().to_string();
        Box::pin(async move {
            Err(BackendError::NotImplemented(format!(
                "the {name} backend does not support {what}"
            )))
        })
    }

    /// `POST /api/copy`.
    fn copy(&self, req: wire::CopyRequest) -> BackendFuture<()> {
        Box::pin(async move { Err(BackendError::ModelNotFound { model: req.source }) })
    }

    /// `DELETE /api/delete`.
    fn delete(&self, model: String) -> BackendFuture<()> {
        Box::pin(async move { Err(BackendError::ModelNotFound { model }) })
    }

    /// `HEAD /api/blobs/:digest`: whether the blob exists.
    fn blob_exists(&self, digest: String) -> BackendFuture<bool> {
        let _ = digest;
        Box::pin(async { Ok(false) })
    }

    /// `POST /api/blobs/:digest`: store a blob; `Ok(true)` when newly created.
    fn blob_put(&self, digest: String, body: RawBody) -> BackendFuture<bool> {
        let _ = (digest, body);
        let name = self.name().to_string();
        Box::pin(async move {
            Err(BackendError::NotImplemented(format!(
                "the {name} backend does not store blobs"
            )))
        })
    }

    /// Forward a raw HTTP request unchanged. `None` for backends that are not transparent proxies.
    fn forward(&self, req: RawRequest) -> Option<BackendFuture<RawResponse>> {
        let _ = req;
        None
    }

    /// Whether [`Backend::forward`] is supported (checked before the body is consumed).
    fn is_transparent(&self) -> bool {
        false
    }

    /// Engine gauges and counters for `GET /metrics` (prefix-cache hits, batch size, queue
    /// depth...). Called on every scrape: must be cheap and non-blocking. Default: none.
    fn metrics(&self) -> Vec<BackendMetric> {
        Vec::new()
    }
}
