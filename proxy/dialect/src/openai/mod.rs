//! The OpenAI dialect (`/v1/chat/completions`, `/v1/completions`, `/v1/embeddings`, `/v1/models`,
//! `/v1/responses`).
//!
//! Sits between the server's body decode and the backend router: each `decode_*` turns a request
//! body into an [`ollmlx_infer::Request`] plus a [`crate::Codec`] that encodes the backend's events
//! as OpenAI chunks or bodies, reproducing what Ollama's `middleware/openai.go` writes. Errors are
//! rendered with [`error_body`] (handler failures) or [`abort_error_body`] (decode/validation).

mod chat;
mod chat_codec;
mod common;
mod completions;
mod embeddings;
mod models;
mod responses;
mod responses_codec;
mod responses_object;

#[cfg(test)]
mod tests_chat;
#[cfg(test)]
mod tests_misc;
#[cfg(test)]
mod tests_responses;

pub use chat::decode_chat;
pub(crate) use chat::go_base64_error;
pub use chat_codec::ChatCodec;
pub use common::{abort_error_body, error_body};
pub(crate) use common::{go_quote, tool_call_id};
pub use completions::{decode_completion, CompletionCodec};
pub use embeddings::decode_embeddings;
pub use models::{model_body, models_body, namespace_of};
pub use responses::decode_responses;
pub use responses_codec::ResponsesCodec;
