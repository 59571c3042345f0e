//! OpenAI-compatible bodies (`/v1/chat/completions`, `/v1/completions`, `/v1/embeddings`,
//! `/v1/models`, `/v1/responses`), as upstream Ollama declares them in `openai/openai.go` and
//! `openai/responses.go`.
//!
//! Sits at the bottom of the OpenAI request path: the server decodes request bodies into these
//! types, `ollmlx-dialect::openai` translates them, and an upstream-OpenAI client backend can use
//! the same structs in the other direction (requests serialize, responses and chunks deserialize).

pub mod chat;
pub mod completions;
pub mod embeddings;
pub mod error;
pub mod models;
pub mod responses;
