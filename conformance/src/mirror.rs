//! Scripted models that mirror a recording: the model answers the recorded model name and
//! streams the same events (thinking, content, tool calls, done reason, counts) that the
//! recorded server sent, so replaying the recorded request against ollmlx checks ollmlx's
//! encoding of the same generation, not a different model's text.

use ollmlx_infer::{DoneReason, Event, Stats, ToolCall};
use ollmlx_mock::{MockBackend, MockModel};
use serde_json::{Map, Value};

use crate::cassette::Cassette;

/// A backend with one model mirroring `c` (and nothing else).
pub fn backend(c: &Cassette) -> MockBackend {
    MockBackend::new(vec![model(c)])
}

/// The mirroring model of `c`.
pub fn model(c: &Cassette) -> MockModel {
    let req = c.request_json().unwrap_or(Value::Null);
    let name = req
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or(&c.meta.model);
    let name = if name.contains(':') || name.is_empty() {
        name.to_string()
    } else {
        format!("{name}:latest")
    };
    let objects = response_objects(c);
    let events = events(&objects);
    let mut m = MockModel::scripted(&name, events);
    let mut caps = vec!["completion".to_string()];
    let has = |k: &str| req.get(k).is_some_and(|v| !v.is_null());
    if has("tools") {
        caps.push("tools".into());
    }
    let think = req
        .get("think")
        .is_some_and(|t| t.as_bool() != Some(false) && !t.is_null());
    if think
        || objects
            .iter()
            .any(|o| o.pointer("/message/thinking").is_some())
    {
        caps.push("thinking".into());
    }
    if c.request.path.starts_with("/api/embed") || c.request.path == "/v1/embeddings" {
        caps = vec!["embedding".into()];
    }
    m.capabilities = caps;
    if let Some(dim) = embedding_dim(&objects) {
        m.embedding_dim = dim;
    }
    m
}

fn response_objects(c: &Cassette) -> Vec<Value> {
    match &c.response.frames {
        Some(frames) => frames
            .iter()
            .filter_map(|f| serde_json::from_str(f.trim()).ok())
            .collect(),
        None => serde_json::from_str(c.response.body.as_deref().unwrap_or_default())
            .ok()
            .into_iter()
            .collect(),
    }
}

fn embedding_dim(objects: &[Value]) -> Option<usize> {
    let o = objects.first()?;
    if let Some(v) = o.pointer("/embeddings/0").and_then(Value::as_array) {
        return Some(v.len());
    }
    if let Some(v) = o.get("embedding").and_then(Value::as_array) {
        return Some(v.len());
    }
    o.pointer("/data/0/embedding")
        .and_then(Value::as_array)
        .map(Vec::len)
}

fn text(v: Option<&Value>) -> String {
    v.and_then(Value::as_str).unwrap_or_default().to_string()
}

fn int(o: &Value, k: &str) -> u64 {
    o.get(k).and_then(Value::as_u64).unwrap_or(0)
}

fn tool_calls(calls: &[Value]) -> Vec<ToolCall> {
    calls
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let f = c.get("function").unwrap_or(c);
            let arguments: Map<String, Value> = match f.get("arguments") {
                Some(Value::String(s)) => serde_json::from_str(s).unwrap_or_default(),
                Some(Value::Object(m)) => m.clone(),
                _ => Map::new(),
            };
            ToolCall {
                id: text(c.get("id")),
                index: f
                    .get("index")
                    .or_else(|| c.get("index"))
                    .and_then(Value::as_u64)
                    .map_or(i, |x| x as usize),
                name: text(f.get("name")),
                arguments,
            }
        })
        .collect()
}

fn reason(s: &str) -> DoneReason {
    match s {
        "stop" | "end_turn" | "tool_calls" => DoneReason::Stop,
        "length" | "max_tokens" => DoneReason::Length,
        "load" => DoneReason::Load,
        "unload" => DoneReason::Unload,
        other => DoneReason::Other(other.to_string()),
    }
}

/// The events a recorded response implies.
fn events(objects: &[Value]) -> Vec<Event> {
    let mut out = Vec::new();
    let mut done = false;
    for o in objects {
        // OpenAI chat completion (non-stream).
        if let Some(choice) = o.pointer("/choices/0") {
            let msg = choice.get("message").or_else(|| choice.get("delta"));
            let content = text(msg.and_then(|m| m.get("content")));
            let thinking = text(msg.and_then(|m| m.get("reasoning")));
            if !content.is_empty() || !thinking.is_empty() {
                out.push(delta(content, thinking));
            }
            if let Some(calls) = msg
                .and_then(|m| m.get("tool_calls"))
                .and_then(Value::as_array)
            {
                out.push(Event::ToolCalls(tool_calls(calls)));
            }
            if let Some(fr) = choice.get("finish_reason").and_then(Value::as_str) {
                let usage = o.get("usage").cloned().unwrap_or(Value::Null);
                out.push(Event::Done {
                    reason: reason(fr),
                    stats: Stats {
                        prompt_eval_count: int(&usage, "prompt_tokens"),
                        eval_count: int(&usage, "completion_tokens"),
                        ..Stats::default()
                    },
                    context: None,
                });
                done = true;
            }
            continue;
        }
        let msg = o.get("message");
        let (content, thinking) = match msg {
            Some(m) => (text(m.get("content")), text(m.get("thinking"))),
            None => (text(o.get("response")), text(o.get("thinking"))),
        };
        let is_done = o.get("done").and_then(Value::as_bool) == Some(true);
        if !content.is_empty() || !thinking.is_empty() || !is_done {
            let calls = msg.and_then(|m| m.get("tool_calls"));
            if calls.is_none() || !content.is_empty() || !thinking.is_empty() {
                out.push(delta(content, thinking));
            }
        }
        if let Some(calls) = msg
            .and_then(|m| m.get("tool_calls"))
            .and_then(Value::as_array)
        {
            out.push(Event::ToolCalls(tool_calls(calls)));
        }
        if is_done {
            out.push(Event::Done {
                reason: reason(o.get("done_reason").and_then(Value::as_str).unwrap_or("")),
                stats: Stats {
                    total_duration: int(o, "total_duration"),
                    load_duration: int(o, "load_duration"),
                    prompt_eval_count: int(o, "prompt_eval_count"),
                    prompt_eval_duration: int(o, "prompt_eval_duration"),
                    eval_count: int(o, "eval_count"),
                    eval_duration: int(o, "eval_duration"),
                },
                context: o
                    .get("context")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().filter_map(Value::as_i64).collect()),
            });
            done = true;
        }
    }
    if !done {
        out.push(Event::Done {
            reason: DoneReason::Stop,
            stats: Stats::default(),
            context: None,
        });
    }
    out
}

fn delta(content: String, thinking: String) -> Event {
    Event::Delta {
        content,
        thinking,
        logprobs: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cassette::{Meta, Request, Response};

    #[test]
    fn a_recorded_stream_becomes_the_same_events_under_the_recorded_name() {
        let body = "{\"model\":\"gemma3:1b\",\"message\":{\"role\":\"assistant\",\"content\":\"Hi\"},\"done\":false}\n{\"model\":\"gemma3:1b\",\"message\":{\"role\":\"assistant\",\"content\":\"\"},\"done\":true,\"done_reason\":\"stop\",\"eval_count\":1}\n";
        let c = Cassette::new(
            "c",
            Meta::default(),
            Request {
                method: "POST".into(),
                path: "/api/chat".into(),
                headers: vec![],
                body: "{\"model\":\"gemma3:1b\"}".into(),
            },
            Response::from_body(
                200,
                vec![("content-type".into(), "application/x-ndjson".into())],
                body.into(),
            ),
        );
        let m = model(&c);
        assert_eq!(m.name, "gemma3:1b");
        let ollmlx_mock::Script::Events(ev) = m.script else {
            panic!("not scripted")
        };
        assert_eq!(ev.len(), 2);
        assert_eq!(ev[0], Event::content("Hi"));
        assert!(matches!(&ev[1], Event::Done { stats, .. } if stats.eval_count == 1));
    }
}
