//! The normalizer: turns a response into a JSON document where what legitimately differs
//! between two servers (timestamps, durations, ids, token counts, digests, generated text,
//! embedding values, float noise) is replaced by placeholders, while everything clients depend
//! on stays: status, content type, field names and their order, JSON types, `null` vs absent,
//! stream framing and termination, where the metrics sit in the final chunk, error texts.
//!
//! Streams become a list of normalized frames in which runs of identical frames are collapsed
//! (a 3-token and a 300-token answer have the same shape).

use serde_json::{Map, Value};

use crate::cassette::Response;

/// Timestamp fields (RFC 3339 strings).
const TIME_KEYS: &[&str] = &["created_at", "modified_at", "expires_at"];
/// Token counts that depend on the generated text.
const COUNT_KEYS: &[&str] = &[
    "prompt_eval_count",
    "eval_count",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
    "reasoning_tokens",
    "cached_tokens",
];
/// Generated text.
const TEXT_KEYS: &[&str] = &[
    "content",
    "response",
    "thinking",
    "text",
    "reasoning",
    "reasoning_content",
    "partial_json",
    "token",
];
/// Model metadata that differs between two models (and between two stores).
const MODEL_DETAIL_KEYS: &[&str] = &[
    "size",
    "size_vram",
    "context_length",
    "modelfile",
    "parameters",
    "template",
    "license",
    "system",
];

/// Normalization settings.
#[derive(Debug, Clone, Default)]
pub struct Normalizer {
    /// `(target name, recorded name)`: model names in a target's answer are mapped back to the
    /// names of the recording before comparison (`--model-map recorded=target`).
    pub model_map: Vec<(String, String)>,
}

impl Normalizer {
    /// A normalizer that maps `recorded=target` model names back.
    pub fn with_model_map(map: &[(String, String)]) -> Self {
        Normalizer {
            model_map: map.iter().map(|(r, t)| (t.clone(), r.clone())).collect(),
        }
    }

    /// The normalized document of a response: `{status, headers, body}`.
    pub fn response(&self, r: &Response) -> Value {
        let mut out = Map::new();
        out.insert("status".into(), r.status.into());
        let mut headers = Map::new();
        for (k, v) in &r.headers {
            headers.insert(k.to_ascii_lowercase(), Value::String(v.clone()));
        }
        out.insert("headers".into(), Value::Object(headers));
        let ct = r.header("content-type").unwrap_or_default();
        out.insert("body".into(), self.body(ct, r));
        Value::Object(out)
    }

    fn body(&self, ct: &str, r: &Response) -> Value {
        let text = r.body_text();
        if ct.starts_with("application/x-ndjson") {
            let frames = r.frames.clone().unwrap_or_default();
            let terminated = frames.last().is_none_or(|f| f.ends_with('\n'));
            let items = frames
                .iter()
                .map(
                    |f| match serde_json::from_str::<Value>(f.trim_end_matches('\n')) {
                        Ok(v) => self.value(&v),
                        Err(_) => Value::String(format!("<not json: {}>", f.trim_end())),
                    },
                )
                .collect();
            let mut m = Map::new();
            m.insert("ndjson".into(), Value::Array(collapse(items)));
            if !terminated {
                m.insert("unterminated".into(), true.into());
            }
            return Value::Object(m);
        }
        if ct.starts_with("text/event-stream") {
            let frames = r.frames.clone().unwrap_or_default();
            let items = frames.iter().map(|f| self.sse_frame(f)).collect();
            let mut m = Map::new();
            m.insert("sse".into(), Value::Array(collapse(items)));
            return Value::Object(m);
        }
        if text.is_empty() {
            return Value::String(String::new());
        }
        match serde_json::from_str::<Value>(&text) {
            Ok(v) if ct.contains("json") || v.is_object() || v.is_array() => {
                let mut m = Map::new();
                m.insert("json".into(), self.value(&v));
                if text.ends_with('\n') {
                    m.insert("trailing_newline".into(), true.into());
                }
                Value::Object(m)
            }
            _ => Value::String(text),
        }
    }

    fn sse_frame(&self, f: &str) -> Value {
        let mut m = Map::new();
        let mut data = Vec::new();
        for line in f.lines() {
            if let Some(ev) = line.strip_prefix("event:") {
                m.insert("event".into(), Value::String(ev.trim().to_string()));
            } else if let Some(d) = line.strip_prefix("data:") {
                data.push(d.strip_prefix(' ').unwrap_or(d).to_string());
            } else if !line.is_empty() {
                m.insert("other".into(), Value::String(line.to_string()));
            }
        }
        let data = data.join("\n");
        let v = match serde_json::from_str::<Value>(&data) {
            Ok(v) => self.value(&v),
            Err(_) => Value::String(data),
        };
        m.insert("data".into(), v);
        if !f.ends_with("\n\n") {
            m.insert("unterminated".into(), true.into());
        }
        Value::Object(m)
    }

    /// Normalize a JSON value (a body or one frame).
    pub fn value(&self, v: &Value) -> Value {
        self.walk(None, v)
    }

    fn walk(&self, key: Option<&str>, v: &Value) -> Value {
        let k = key.unwrap_or_default();
        match v {
            Value::Object(m) => {
                if k == "details" || k == "model_info" || k == "projector_info" {
                    return Value::Object(
                        m.iter()
                            .map(|(k2, v2)| (k2.clone(), placeholder(v2)))
                            .collect(),
                    );
                }
                if k == "arguments" || k == "input" && m.values().all(|x| !x.is_object()) {
                    return Value::String("<object>".into());
                }
                Value::Object(
                    m.iter()
                        .map(|(k2, v2)| (k2.clone(), self.walk(Some(k2), v2)))
                        .collect(),
                )
            }
            Value::Array(a) => {
                if k == "context" || k == "bytes" {
                    return Value::String("<tokens>".into());
                }
                if k == "embedding" {
                    return Value::String("<vector>".into());
                }
                if k == "embeddings" {
                    return Value::Array(
                        a.iter()
                            .map(|x| match x {
                                Value::Array(_) => Value::String("<vector>".into()),
                                other => self.walk(None, other),
                            })
                            .collect(),
                    );
                }
                Value::Array(a.iter().map(|x| self.walk(None, x)).collect())
            }
            Value::String(s) => {
                if TIME_KEYS.contains(&k) {
                    return Value::String("<time>".into());
                }
                if TEXT_KEYS.contains(&k) && !s.is_empty() {
                    return Value::String("<text>".into());
                }
                if k == "arguments" {
                    return Value::String("<json>".into());
                }
                if k == "embedding" {
                    return Value::String("<vector>".into());
                }
                if MODEL_DETAIL_KEYS.contains(&k) && !s.is_empty() {
                    return Value::String("<text>".into());
                }
                if k == "digest" {
                    return Value::String(digest(s));
                }
                if k == "id" || k == "request_id" || k == "tool_call_id" || k == "tool_use_id" {
                    return Value::String(id(s));
                }
                if k == "model" || k == "name" {
                    if let Some((_, rec)) = self.model_map.iter().find(|(t, _)| t == s) {
                        return Value::String(rec.clone());
                    }
                }
                v.clone()
            }
            Value::Number(n) => {
                if k.ends_with("_duration") {
                    return Value::String("<ns>".into());
                }
                if k == "created" || k == "created_at" {
                    return Value::String("<unix>".into());
                }
                if COUNT_KEYS.contains(&k) {
                    return Value::String("<count>".into());
                }
                if MODEL_DETAIL_KEYS.contains(&k) {
                    return Value::String("<int>".into());
                }
                if k == "logprob" {
                    return Value::String("<float>".into());
                }
                match (n.as_i64(), n.as_u64(), n.as_f64()) {
                    (Some(_), _, _) | (_, Some(_), _) => v.clone(),
                    (_, _, Some(f)) => round(f),
                    _ => v.clone(),
                }
            }
            _ => v.clone(),
        }
    }
}

/// A type-keeping placeholder for model metadata values.
fn placeholder(v: &Value) -> Value {
    Value::String(
        match v {
            Value::Null => "<null>",
            Value::Bool(_) => "<bool>",
            Value::Number(n) if n.is_f64() => "<float>",
            Value::Number(_) => "<int>",
            Value::String(s) if s.is_empty() => "",
            Value::String(_) => "<str>",
            Value::Array(_) => "<array>",
            Value::Object(_) => "<object>",
        }
        .to_string(),
    )
}

/// Round a float to 6 significant digits (float32 vs float64 noise, tolerance).
fn round(f: f64) -> Value {
    if f == 0.0 || !f.is_finite() {
        return serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number);
    }
    let mag = f.abs().log10().floor() as i32;
    let scale = 10f64.powi(5 - mag);
    let r = (f * scale).round() / scale;
    serde_json::Number::from_f64(r).map_or(Value::Null, Value::Number)
}

/// `sha256:<64 hex>` → `sha256:<hex>`, bare hex → `<hex>`; other strings stay.
fn digest(s: &str) -> String {
    let (prefix, hex) = match s.split_once(':') {
        Some((p, h)) => (format!("{p}:"), h),
        None => (String::new(), s),
    };
    if !hex.is_empty() && hex.chars().all(|c| c.is_ascii_hexdigit()) {
        format!("{prefix}<hex>")
    } else {
        s.to_string()
    }
}

/// Keep an id's prefix (`chatcmpl-`, `call_`, `msg_`), redact the rest. Model names used as
/// ids (`/v1/models`: `llama3.2:latest`) are kept.
fn id(s: &str) -> String {
    if s.is_empty() || s.contains(':') || s.contains('/') {
        return s.to_string();
    }
    match s.rfind(['-', '_']) {
        Some(i) => format!("{}<id>", &s[..=i]),
        None => "<id>".into(),
    }
}

/// Merge runs of identical consecutive frames into one.
fn collapse(items: Vec<Value>) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    for v in items {
        if out.last().is_some_and(|l| same(l, &v)) {
            continue;
        }
        out.push(v);
    }
    out
}

/// Order-sensitive equality (serde_json's map equality ignores key order).
pub fn same(a: &Value, b: &Value) -> bool {
    serde_json::to_string(a).ok() == serde_json::to_string(b).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ndjson(frames: &[&str]) -> Response {
        Response::from_body(
            200,
            vec![("content-type".into(), "application/x-ndjson".into())],
            frames.concat(),
        )
    }

    #[test]
    fn streams_of_different_length_normalize_to_the_same_shape() {
        let n = Normalizer::default();
        let a = ndjson(&[
            "{\"model\":\"m\",\"created_at\":\"2024-01-01T00:00:00Z\",\"response\":\"a\",\"done\":false}\n",
            "{\"model\":\"m\",\"created_at\":\"2024-01-01T00:00:01Z\",\"response\":\"bc\",\"done\":false}\n",
            "{\"model\":\"m\",\"created_at\":\"2024-01-01T00:00:02Z\",\"response\":\"\",\"done\":true,\"eval_count\":2,\"eval_duration\":5}\n",
        ]);
        let b = ndjson(&[
            "{\"model\":\"m\",\"created_at\":\"2025-01-01T00:00:00.5Z\",\"response\":\"x\",\"done\":false}\n",
            "{\"model\":\"m\",\"created_at\":\"2025-01-01T00:00:02Z\",\"response\":\"\",\"done\":true,\"eval_count\":9,\"eval_duration\":7}\n",
        ]);
        assert_eq!(n.response(&a), n.response(&b));
        assert_eq!(
            n.response(&a)["body"]["ndjson"].as_array().unwrap().len(),
            2
        );
    }

    #[test]
    fn field_order_null_and_errors_survive_normalization() {
        let n = Normalizer::default();
        let v = n.value(&json!({"error": "model 'x' not found", "a": null, "b": 1}));
        assert_eq!(
            v.to_string(),
            r#"{"error":"model 'x' not found","a":null,"b":1}"#
        );
        let a = n.value(&json!({"done": true, "done_reason": "stop"}));
        let b = n.value(&json!({"done_reason": "stop", "done": true}));
        assert!(!same(&a, &b));
    }

    #[test]
    fn ids_digests_floats_and_model_names_are_redacted_keeping_their_form() {
        let n = Normalizer::with_model_map(&[("llama3".into(), "mock".into())]);
        let v = n.value(&json!({"id": "chatcmpl-674", "digest": "sha256:abcd", "x": 0.899999976,
            "model": "mock", "embeddings": [[0.1, 0.2]], "tool_calls": [{"function": {"arguments": {"a": 1}}}]}));
        assert_eq!(
            v,
            json!({"id": "chatcmpl-<id>", "digest": "sha256:<hex>", "x": 0.9, "model": "llama3",
                "embeddings": ["<vector>"], "tool_calls": [{"function": {"arguments": "<object>"}}]})
        );
    }

    #[test]
    fn unterminated_streams_are_visible() {
        let n = Normalizer::default();
        let r = ndjson(&["{\"done\":false}\n", "{\"done\":tr"]);
        let v = n.response(&r);
        assert_eq!(v["body"]["unterminated"], true);
    }
}
