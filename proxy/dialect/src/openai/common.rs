//! Helpers shared by the OpenAI routes: ids, clocks, error envelopes, effort mapping, image data
//! URLs and tool-call conversion.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use ollmlx_infer::{Logprob, Think, ToolCall};
use ollmlx_wire::json::{to_line, to_vec};
use ollmlx_wire::ollama as native;
use ollmlx_wire::openai::chat as wire;
use ollmlx_wire::openai::error::ErrorResponse;
use rand::Rng;

/// The OpenAI error envelope as Ollama writes it for a failed handler (Go `json.Encoder`, so a
/// trailing newline). Type by status: 400 `invalid_request_error`, 404 `not_found_error`, else
/// `api_error`.
pub fn error_body(status: u16, message: &str) -> Vec<u8> {
    to_line(&ErrorResponse::new(status, message))
}

/// The same envelope as the middleware writes it for decode and validation failures (gin's
/// `AbortWithStatusJSON`: no trailing newline).
pub fn abort_error_body(status: u16, message: &str) -> Vec<u8> {
    to_vec(&ErrorResponse::new(status, message))
}

/// Current Unix time in seconds.
pub(crate) fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// `<prefix><random integer below n>`, as upstream's `rand.Intn`.
pub(crate) fn rand_id(prefix: &str, n: u32) -> String {
    format!("{prefix}{}", rand::thread_rng().gen_range(0..n))
}

/// `call_` + 8 random lower-case alphanumerics (Ollama's `toolCallId`).
pub(crate) fn tool_call_id() -> String {
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::thread_rng();
    let s: String = (0..8)
        .map(|_| CHARS[rng.gen_range(0..CHARS.len())] as char)
        .collect();
    format!("call_{s}")
}

/// Give every call without an id a generated one (Ollama's chat handler always sets ids).
pub(crate) fn with_ids(calls: &[ToolCall]) -> Vec<ToolCall> {
    calls
        .iter()
        .map(|c| {
            let mut c = c.clone();
            if c.id.is_empty() {
                c.id = tool_call_id();
            }
            c
        })
        .collect()
}

/// Map an OpenAI reasoning effort to Ollama's think value; empty means "model default".
pub(crate) fn think_from_effort(effort: &str) -> Result<Option<Think>, String> {
    match effort {
        "" => Ok(None),
        "none" => Ok(Some(Think::Bool(false))),
        "minimal" => Ok(Some(Think::Level("low".into()))),
        "low" | "medium" | "high" | "max" => Ok(Some(Think::Level(effort.into()))),
        "xhigh" | "ultra" => Ok(Some(Think::Level("max".into()))),
        other => Err(format!(
            "invalid reasoning value: {} (must be \"minimal\", \"low\", \"medium\", \"high\", \"xhigh\", \"ultra\", \"max\", or \"none\")",
            go_quote(other)
        )),
    }
}

/// Go's `%q` for ordinary strings (quotes and backslashes escaped).
pub(crate) fn go_quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""))
}

/// Decode a `data:` image URL to bytes with upstream's error texts.
pub(crate) fn decode_image_url(url: &str) -> Result<Vec<u8>, String> {
    if url.starts_with("http://") || url.starts_with("https://") {
        return Err(
            "image URLs are not currently supported, please use base64 encoded data instead".into(),
        );
    }
    let data = if let Some(rest) = url.strip_prefix("data:;base64,") {
        rest
    } else {
        ["jpeg", "jpg", "png", "webp"]
            .iter()
            .find_map(|t| url.strip_prefix(&format!("data:image/{t};base64,")))
            .ok_or_else(|| "invalid image input".to_string())?
    };
    base64::engine::general_purpose::STANDARD
        .decode(data)
        .map_err(|_| "invalid image input".to_string())
}

/// The Go type name `%T` prints for a decoded JSON value.
pub(crate) fn go_type_of(v: &serde_json::Value) -> &'static str {
    use serde_json::Value;
    match v {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(_) => "float64",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

/// Internal tool calls in OpenAI's shape (arguments JSON-encoded the way Go marshals them).
pub(crate) fn to_wire_calls(calls: &[ToolCall]) -> Vec<wire::ToolCall> {
    calls
        .iter()
        .map(|c| wire::ToolCall {
            id: c.id.clone(),
            index: c.index,
            kind: "function".into(),
            function: wire::FunctionCall {
                name: c.name.clone(),
                arguments: String::from_utf8(to_vec(&c.arguments)).unwrap_or_default(),
            },
        })
        .collect()
}

/// Internal log probabilities in Ollama's wire shape (which OpenAI's `logprobs.content` reuses).
pub(crate) fn to_wire_logprobs(lps: &[Logprob]) -> Vec<native::Logprob> {
    lps.iter()
        .map(|l| native::Logprob {
            token: l.token.clone(),
            logprob: l.logprob,
            bytes: l.bytes.clone(),
            top_logprobs: l
                .top_logprobs
                .iter()
                .map(|t| native::TokenLogprob {
                    token: t.token.clone(),
                    logprob: t.logprob,
                    bytes: t.bytes.clone(),
                })
                .collect(),
        })
        .collect()
}
