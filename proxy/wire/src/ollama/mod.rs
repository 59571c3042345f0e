//! Ollama's native API (`/api/*`), as declared in upstream's `api/types.go`.

mod common;
mod de;
mod embed;
mod error;
mod generate;
mod models;
mod pull;

pub use common::{
    DebugInfo, Logprob, Message, Metrics, ModelDetails, TokenLogprob, ToolCall, ToolCallFunction,
};
pub use de::null_default;
pub use embed::{EmbedRequest, EmbedResponse, EmbeddingRequest, EmbeddingResponse};
pub use error::ErrorResponse;
pub use generate::{ChatRequest, ChatResponse, GenerateRequest, GenerateResponse};
pub use models::{
    CloudStatus, CopyRequest, DeleteRequest, ListModel, ListResponse, ProcessModel,
    ProcessResponse, ShowRequest, ShowResponse, StatusResponse, Tensor, VersionResponse,
};
pub use pull::{CreateRequest, ProgressResponse, PullRequest, PushRequest};

/// Treat `false` as "omit" (Go's `omitempty` on a bool).
pub fn is_false(b: &bool) -> bool {
    !*b
}

/// Treat zero as "omit" (Go's `omitempty` on a number).
pub fn is_zero<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}
