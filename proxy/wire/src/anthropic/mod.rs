//! Anthropic Messages API bodies (`POST /v1/messages`), as upstream Ollama declares them in
//! `anthropic/anthropic.go`.
//!
//! Sits at the bottom of the Anthropic request path: the server decodes request bodies into these
//! types and `ollmlx-dialect::anthropic` translates them; the same structs serialize requests and
//! deserialize responses and stream events for client use.

pub mod error;
pub mod messages;
