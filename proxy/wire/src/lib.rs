//! ollmlx-wire: the request and response bodies of every endpoint ollmlx serves, as serde types.
//!
//! This is the bottom of the protocol layer: the server decodes into these types, the dialect
//! layer translates them to and from `ollmlx-infer`, the upstream backends and the CLI use the
//! same structs as clients. Field names, field order and `omitempty` behaviour follow upstream
//! exactly (serde serializes in declaration order). Input is tolerant; output is exact.
//! [`json::to_vec`] writes JSON the way Go's `encoding/json` does (HTML-escaped `<`, `>`, `&`).

pub mod anthropic;
pub mod json;
pub mod ollama;
pub mod openai;
pub mod time;
