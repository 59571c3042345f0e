//! ollmlx-dialect: pure translation between the wire types and `ollmlx-infer`.
//!
//! Sits between the server's decode step and the backend router. For every generation route a
//! dialect module offers a `decode` function returning a [`Decoded`]: the normalized
//! [`infer::Request`](ollmlx_infer::Request) plus a [`Codec`] that turns the backend's events back
//! into that dialect's chunks (streaming) or body (non-streaming). Framing (NDJSON lines, SSE
//! `data:`/`event:` frames) is the server's job; codecs only produce [`Chunk`]s of JSON bytes.
//! Nothing here does I/O.

pub mod anthropic;
pub mod decode;
pub mod ollama;
pub mod openai;

use ollmlx_infer::{EmbedRequest, EmbedResponse, Event, Request};

pub use decode::{decode_json, DecodeError};

/// One unit of streamed output, before framing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chunk {
    /// A JSON document: an NDJSON line, or an SSE `data:` frame without an event name.
    Data(Vec<u8>),
    /// An SSE frame with an event name (`event: <name>` then `data: <json>`).
    Named(&'static str, Vec<u8>),
    /// The OpenAI terminator `data: [DONE]`.
    Done,
}

/// Turns one request's event stream into its dialect's output.
///
/// The server calls either the streaming trio (`stream`, `stream_end`, `stream_error`) or the
/// non-streaming pair (`collect`, `body`), depending on `Request::stream`.
pub trait Codec: Send + 'static {
    /// Chunks to send for one event.
    fn stream(&mut self, ev: &Event) -> Vec<Chunk>;
    /// Chunks to send after the backend's stream ended normally (after `Event::Done`).
    fn stream_end(&mut self) -> Vec<Chunk>;
    /// Chunks to send when the backend fails after the stream started.
    fn stream_error(&mut self, status: u16, message: &str) -> Vec<Chunk>;
    /// Record one event for a non-streaming reply.
    fn collect(&mut self, ev: &Event);
    /// The complete non-streaming body (JSON bytes, exactly as upstream writes them).
    fn body(&mut self) -> Vec<u8>;
}

/// A decoded generation request and the codec that will encode its answer.
pub struct Decoded {
    /// The normalized request handed to the backend.
    pub request: Request,
    /// Encodes the backend's events in the request's dialect.
    pub codec: Box<dyn Codec>,
}

/// Encodes an embedding response body in the request's dialect.
pub type EmbedEncoder = Box<dyn FnOnce(&EmbedResponse) -> Vec<u8> + Send>;

/// A decoded embedding request and how to encode its answer.
pub struct DecodedEmbed {
    /// The normalized request.
    pub request: EmbedRequest,
    /// Encodes the response body.
    pub encode: EmbedEncoder,
}
