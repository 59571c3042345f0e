//! Reader for body-only JSON fixtures (a response body without its request, e.g. prism's
//! `tests/Fixtures/ollama/*.json` and NDJSON `*.sse`).
//!
//! The request is reconstructed from the body's shape: which endpoint answers with this object,
//! whether it streamed, whether tools or thinking were in play. Cassettes built this way carry
//! `meta.synthesized_request = true` and synthesized response headers.

use serde_json::{json, Map, Value};

use crate::cassette::{Cassette, Meta, Request, Response, Tier};

/// Build a cassette from a body-only fixture. `stream` says the file holds NDJSON frames.
pub fn parse(text: &str, stream: bool, stem: &str, source: &str) -> Result<Cassette, String> {
    let objects: Vec<Value> = if stream {
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .enumerate()
            .map(|(i, l)| {
                serde_json::from_str(l).map_err(|e| format!("line {}: not JSON: {e}", i + 1))
            })
            .collect::<Result<_, _>>()?
    } else {
        vec![serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?]
    };
    let first = objects.first().ok_or("empty fixture")?;
    let first = first.as_object().ok_or("fixture is not a JSON object")?;
    let model = objects
        .iter()
        .find_map(|o| o.get("model").and_then(Value::as_str))
        .unwrap_or("model")
        .to_string();
    let (path, body, content_type) = if first.contains_key("message") {
        (
            "/api/chat",
            chat_request(&model, &objects, stream),
            native_ct(stream),
        )
    } else if first.contains_key("response") {
        (
            "/api/generate",
            generate_request(&model, &objects, stream),
            native_ct(stream),
        )
    } else if let Some(e) = first.get("embeddings").and_then(Value::as_array) {
        let input: Vec<&str> = e.iter().map(|_| "text").collect();
        let mut req = json!({"model": model, "input": input});
        if let Some(d) = e.first().and_then(Value::as_array).map(Vec::len) {
            if d < 256 {
                req["dimensions"] = d.into();
            }
        }
        ("/api/embed", req, native_ct(false))
    } else if first.contains_key("embedding") {
        (
            "/api/embeddings",
            json!({"model": model, "prompt": "text"}),
            native_ct(false),
        )
    } else if first.get("object").and_then(Value::as_str) == Some("chat.completion") {
        (
            "/v1/chat/completions",
            openai_request(&model, first),
            "application/json",
        )
    } else {
        return Err("unknown fixture: not an Ollama chat, generate, embed or OpenAI body".into());
    };
    let response = Response::from_body(
        200,
        vec![("content-type".into(), content_type.into())],
        text.to_string(),
    );
    let meta = Meta {
        source: source.to_string(),
        model,
        tier: Tier::Body,
        synthesized_request: true,
        note: "body-only fixture: request and headers reconstructed from the body".into(),
        ..Meta::default()
    };
    let request = Request {
        method: "POST".into(),
        path: path.into(),
        headers: vec![("content-type".into(), "application/json".into())],
        body: body.to_string(),
    };
    Ok(Cassette::new(stem, meta, request, response))
}

fn native_ct(stream: bool) -> &'static str {
    if stream {
        "application/x-ndjson"
    } else {
        "application/json; charset=utf-8"
    }
}

/// Tool definitions for every tool name called in `calls`, parameters from the argument keys.
fn tools_for(calls: &[&Value]) -> Vec<Value> {
    let mut seen: Vec<String> = Vec::new();
    let mut tools = Vec::new();
    for c in calls {
        let f = c.get("function").unwrap_or(c);
        let Some(name) = f.get("name").and_then(Value::as_str) else {
            continue;
        };
        if seen.iter().any(|s| s == name) {
            continue;
        }
        seen.push(name.to_string());
        let args = match f.get("arguments") {
            Some(Value::String(s)) => serde_json::from_str(s).unwrap_or(Value::Null),
            Some(v) => v.clone(),
            None => Value::Null,
        };
        let props: Map<String, Value> = args
            .as_object()
            .map(|m| {
                m.keys()
                    .map(|k| (k.clone(), json!({"type": "string"})))
                    .collect()
            })
            .unwrap_or_default();
        tools.push(json!({"type": "function", "function": {"name": name,
            "description": format!("{name} tool"),
            "parameters": {"type": "object", "properties": props}}}));
    }
    tools
}

fn chat_request(model: &str, objects: &[Value], stream: bool) -> Value {
    let msgs: Vec<&Value> = objects.iter().filter_map(|o| o.get("message")).collect();
    let calls: Vec<&Value> = msgs
        .iter()
        .filter_map(|m| m.get("tool_calls").and_then(Value::as_array))
        .flatten()
        .collect();
    let thinking = msgs.iter().any(|m| m.get("thinking").is_some());
    let mut req = json!({"model": model,
        "messages": [{"role": "user", "content": "hello"}], "stream": stream});
    if !calls.is_empty() {
        req["tools"] = Value::Array(tools_for(&calls));
    }
    if thinking {
        req["think"] = true.into();
    }
    req
}

fn generate_request(model: &str, objects: &[Value], stream: bool) -> Value {
    let thinking = objects.iter().any(|o| o.get("thinking").is_some());
    let mut req = json!({"model": model, "prompt": "hello", "stream": stream});
    if thinking {
        req["think"] = true.into();
    }
    req
}

fn openai_request(model: &str, body: &Map<String, Value>) -> Value {
    let calls: Vec<&Value> = body
        .get("choices")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| c.pointer("/message/tool_calls").and_then(Value::as_array))
        .flatten()
        .collect();
    let mut req = json!({"model": model, "messages": [{"role": "user", "content": "hello"}]});
    if !calls.is_empty() {
        req["tools"] = Value::Array(tools_for(&calls));
    }
    req
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_streamed_tool_call_body_gets_a_chat_request_with_those_tools() {
        let text = "{\"model\":\"q:1\",\"created_at\":\"t\",\"message\":{\"role\":\"assistant\",\"content\":\"\",\"tool_calls\":[{\"function\":{\"name\":\"weather\",\"arguments\":{\"city\":\"D\"}}}]},\"done\":false}\n";
        let c = parse(text, true, "f", "f.sse").unwrap();
        assert_eq!(c.request.path, "/api/chat");
        let req = c.request_json().unwrap();
        assert_eq!(req["tools"][0]["function"]["name"], "weather");
        assert_eq!(req["stream"], true);
        assert!(c.meta.synthesized_request);
        assert_eq!(c.response.frames.as_ref().map(Vec::len), Some(1));
    }

    #[test]
    fn an_unrecognized_body_is_an_error() {
        assert!(parse("{\"foo\":1}", false, "f", "f").is_err());
        assert!(parse("{\"foo\":", false, "f", "f").is_err());
    }
}
