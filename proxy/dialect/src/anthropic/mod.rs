//! The Anthropic dialect (`/v1/messages`).
//!
//! Sits between the server's body decode and the backend router: [`decode_messages`] validates a
//! Messages API body with Ollama's texts and turns it into an [`ollmlx_infer::Request`] (with
//! `relax_thinking` set, as the upstream route does) plus a [`MessagesCodec`] that writes the
//! `message_start` … `message_stop` event sequence or the non-streaming message body, mirroring
//! Ollama's `anthropic.StreamConverter` and `ToMessagesResponse`.

mod codec;
mod request;

#[cfg(test)]
mod tests;

pub use codec::MessagesCodec;
pub use request::{decode_messages, estimate_input_tokens};

use ollmlx_wire::anthropic::error::{error_type, Error, ErrorResponse};
use ollmlx_wire::json::{to_line, to_vec};
use rand::RngCore;

/// `<prefix>_` + 24 random hex digits (Ollama's `generateID`).
pub(crate) fn random_id(prefix: &str) -> String {
    let mut b = [0u8; 12];
    rand::thread_rng().fill_bytes(&mut b);
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{prefix}_{hex}")
}

fn envelope(status: u16, message: &str) -> ErrorResponse {
    ErrorResponse {
        kind: "error".into(),
        error: Error {
            kind: error_type(status).into(),
            message: message.into(),
        },
        request_id: random_id("req"),
    }
}

/// The Anthropic error body for a failed handler (Go `json.Encoder`: trailing newline), with a
/// fresh `req_<24hex>` request id; 503 and 529 are `overloaded_error`.
pub fn error_body(status: u16, message: &str) -> Vec<u8> {
    to_line(&envelope(status, message))
}

/// The same body as the middleware writes it for decode/validation failures (no newline).
pub fn abort_error_body(status: u16, message: &str) -> Vec<u8> {
    to_vec(&envelope(status, message))
}
