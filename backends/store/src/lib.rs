//! ollmlx-store: the local model store, laid out exactly like Ollama's (`$OLLAMA_MODELS`).
//!
//! Request path: the server routes `/api/tags`, `/api/show`, `/api/copy`, `/api/delete`,
//! `/api/blobs/:digest` and `/api/create` to [`StoreBackend`] (an `ollmlx_infer::Backend`);
//! generation and embeddings on a stored model are resolved here ([`ResolvedModel`]: weight and
//! config paths, template, system, parameters) and handed to a pluggable [`Runner`] (the MLX
//! engine). The crate depends on `infer` and `wire` only, never on the engine.
//!
//! Layers, bottom up: [`name`] (model names), [`blobs`] (content-addressed files, atomic
//! writes), [`manifest`] (manifest/config JSON), [`store`] (manifests by name, list, copy,
//! delete + GC), [`gguf`] and [`safetensors`] (metadata), [`modelfile`] (grammar),
//! [`info`] (details, capabilities, show), [`create`], [`backend`].

pub mod backend;
pub mod blobs;
pub mod create;
pub mod error;
pub mod gguf;
pub mod gofmt;
pub mod info;
pub mod maintenance;
pub mod manifest;
pub mod modelfile;
pub mod name;
pub mod pull;
pub mod push;
pub mod quantize;
pub mod safetensors;
pub mod store;

pub use backend::{ResolvedModel, Runner, StoreBackend};
pub use error::StoreError;
pub use name::Name;
pub use store::Store;

#[cfg(test)]
pub(crate) mod testutil;
