//! The Ollama native dialect (`/api/generate`, `/api/chat`, `/api/embed`, `/api/embeddings`).
//!
//! Decoding follows upstream's validation order and error texts; the codecs produce the exact
//! NDJSON objects upstream streams.

mod codec;
mod embed;
mod request;
pub mod values;

pub use codec::{error_chunk, logprobs, metrics, ChatCodec, GenerateCodec};
pub use embed::{decode_embed, decode_embeddings, error_body};
pub use request::{
    chat_request, decode_chat, decode_generate, generate_request, message, tool_call_from_wire,
    tool_call_to_wire,
};
