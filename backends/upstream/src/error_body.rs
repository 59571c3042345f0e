//! Upstream error bodies → [`BackendError::Upstream`]: the step where a failed upstream answer
//! is turned into the typed error the responder re-encodes for the client's dialect.
//!
//! Understood shapes: Ollama's `{"error":"..."}`, OpenAI's `{"error":{"message":...}}`,
//! FastAPI-style `{"detail":...}` and bare `{"message":...}`; anything else is passed on as text.

use http::StatusCode;
use ollmlx_infer::BackendError;
use serde_json::Value;

/// Longest plain-text error body kept in a message (HTML error pages of a reverse proxy...).
const MAX_TEXT: usize = 2000;

/// The error for a non-2xx upstream answer: status unchanged, message extracted from the body.
pub fn upstream_error(
    label: &str,
    status: StatusCode,
    content_type: &str,
    body: &[u8],
) -> BackendError {
    let _ = content_type; // JSON is recognised by content, since some servers mislabel it.
    let message = match serde_json::from_slice::<Value>(body) {
        Ok(v) => message_from_json(&v).unwrap_or_else(|| text_message(label, status, body)),
        Err(_) => text_message(label, status, body),
    };
    BackendError::Upstream {
        status: status.as_u16(),
        message,
    }
}

/// The message of a JSON error object, if it has one in a known place.
pub fn message_from_json(v: &Value) -> Option<String> {
    let obj = v.as_object()?;
    for key in ["error", "detail", "message"] {
        match obj.get(key) {
            Some(Value::String(s)) => return Some(s.clone()),
            Some(Value::Object(inner)) => {
                if let Some(Value::String(s)) = inner.get("message") {
                    return Some(s.clone());
                }
                return Some(Value::Object(inner.clone()).to_string());
            }
            Some(v @ Value::Array(_)) => return Some(v.to_string()),
            _ => {}
        }
    }
    None
}

fn text_message(label: &str, status: StatusCode, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return format!("{label} answered {status}");
    }
    match text.char_indices().nth(MAX_TEXT) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(status: u16, body: &str) -> BackendError {
        upstream_error(
            "upstream x at http://h",
            StatusCode::from_u16(status).unwrap(),
            "application/json",
            body.as_bytes(),
        )
    }

    #[test]
    fn ollama_error_body_keeps_status_and_text() {
        assert_eq!(
            msg(404, r#"{"error":"model 'x' not found"}"#),
            BackendError::Upstream {
                status: 404,
                message: "model 'x' not found".into()
            }
        );
    }

    #[test]
    fn openai_error_object_uses_its_message() {
        assert_eq!(
            msg(
                401,
                r#"{"error":{"message":"Incorrect API key","type":"invalid_request_error"}}"#
            ),
            BackendError::Upstream {
                status: 401,
                message: "Incorrect API key".into()
            }
        );
    }

    #[test]
    fn fastapi_detail_and_plain_text_pass_through() {
        assert_eq!(msg(422, r#"{"detail":"bad"}"#).to_string(), "bad");
        assert_eq!(
            msg(404, "404 page not found").to_string(),
            "404 page not found"
        );
    }

    #[test]
    fn empty_body_names_upstream_and_status() {
        assert_eq!(
            msg(503, "").to_string(),
            "upstream x at http://h answered 503 Service Unavailable"
        );
    }
}
