//! ollmlx-upstream: backends that forward to another server instead of running a model.
//!
//! These sit at the very end of the request path, behind the router: [`OllamaUpstream`] talks to
//! a real Ollama (transparently through [`Backend::forward`](ollmlx_infer::Backend::forward), or
//! through the typed methods), [`OpenAiUpstream`] presents any OpenAI-compatible server through
//! the full Ollama API with measured timings and the upstream's own errors. Both share one pooled
//! HTTP/1.1 [`client`] with connect and header timeouts but no limit on stream duration.

pub mod client;
pub mod config;
pub mod error_body;
pub mod framing;
pub mod ollama;
pub mod openai;
#[cfg(any(test, feature = "test-util"))]
pub mod test_util;

pub use client::{ClientConfig, UpstreamClient};
pub use config::{ConfigError, OllamaUpstreamConfig, OpenAiUpstreamConfig};
pub use ollama::OllamaUpstream;
pub use openai::OpenAiUpstream;

/// A duration in nanoseconds, saturating (Ollama's unit for every `*_duration`).
pub(crate) fn nanos(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}
