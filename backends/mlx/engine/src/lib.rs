//! ollmlx-engine: the in-process MLX inference engine (no HTTP here).
//!
//! Request path: HTTP server → dialect → `ollmlx-mlx` (the `Backend`) → **this crate**: an
//! [`Engine`] handle queues [`GenerateRequest`]s onto one dedicated OS thread that owns all MLX
//! state (models from `ollmlx-models`, KV caches, tokenizers). That thread renders the chat
//! template, tokenizes, prefills, samples and streams [`EngineEvent`]s back on the request's own
//! channel; dropping the receiver cancels the request at the next decode step.

pub mod batch;
pub mod budget;
pub mod constrain;
pub mod constrain_step;
pub mod constrain_vocab;
pub mod embed;
pub mod engine;
pub mod error;
pub mod generate;
pub mod logprobs;
pub mod lookup;
pub mod outbox;
pub mod output;
pub mod prefill_group;
pub mod prefix_cache;
mod resident;
pub mod sampler;
mod scheduler;
pub mod sequence;
pub mod speculative;
pub mod stop;
pub mod template;
pub mod thinking;
pub mod tokenizer;
pub mod tools;

pub use constrain::FormatSpec;
pub use engine::{
    BatchStats, DeviceChoice, Engine, EngineConfig, EngineEvent, KeepAlive, LoadedInfo, ModelRef,
};
pub use error::EngineError;
pub use generate::{Done, FinishReason, GenStats, GenerateRequest, Prompt};
pub use lookup::LookupPolicy;
pub use prefix_cache::PrefixCacheStats;
pub use resident::disk_size;
pub use sampler::SamplerConfig;
pub use template::ChatMessage;
