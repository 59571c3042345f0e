//! Translation between ollmlx's internal request/event types and Ollama's native wire types, used
//! by [`super::OllamaUpstream`] when it sits behind the router (typed path, not pass-through).
//!
//! Outbound: an [`infer::Request`](ollmlx_infer::Request) becomes a `/api/chat` or `/api/generate`
//! body with `stream: true`. Inbound: each NDJSON object becomes zero or more [`Event`]s; an
//! `{"error":...}` object becomes an error item.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ollmlx_infer::{
    BackendError, ChatInput, DoneReason, Event, Format, GenerateInput, KeepAlive, Logprob, Message,
    Request, Stats, Think, TokenLogprob, ToolCall,
};
use ollmlx_wire::ollama as wire;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// Status reported for an error that arrives inside a 200 stream (Ollama's default).
const MID_STREAM_STATUS: u16 = 500;

/// The `/api/chat` body for a chat request.
pub fn chat_request(req: &Request, chat: &ChatInput) -> wire::ChatRequest {
    wire::ChatRequest {
        model: req.model.clone(),
        messages: chat.messages.iter().map(message_to_wire).collect(),
        stream: Some(true),
        format: req.format.as_ref().map(format_value),
        keep_alive: req.keep_alive.as_ref().map(keep_alive_value),
        tools: chat.tools.clone(),
        options: options(req),
        think: req.think.as_ref().map(think_value),
        truncate: req.truncate,
        shift: req.shift,
        debug_render_only: req.debug_render_only,
        logprobs: req.logprobs,
        top_logprobs: i64::from(req.top_logprobs),
    }
}

/// The `/api/generate` body for a prompt request.
pub fn generate_request(req: &Request, g: &GenerateInput) -> wire::GenerateRequest {
    wire::GenerateRequest {
        model: req.model.clone(),
        prompt: g.prompt.clone(),
        suffix: g.suffix.clone(),
        system: g.system.clone(),
        template: g.template.clone(),
        context: g.context.clone(),
        stream: Some(true),
        raw: g.raw,
        format: req.format.as_ref().map(format_value),
        keep_alive: req.keep_alive.as_ref().map(keep_alive_value),
        images: if g.images.is_empty() {
            None
        } else {
            Some(Value::Array(
                g.images
                    .iter()
                    .map(|i| Value::String(B64.encode(i)))
                    .collect(),
            ))
        },
        options: options(req),
        think: req.think.as_ref().map(think_value),
        truncate: req.truncate,
        shift: req.shift,
        debug_render_only: req.debug_render_only,
        logprobs: req.logprobs,
        top_logprobs: i64::from(req.top_logprobs),
    }
}

fn options(req: &Request) -> Option<Map<String, Value>> {
    let m = req.options.to_map();
    (!m.is_empty()).then_some(m)
}

/// `"json"` or the schema itself.
pub fn format_value(f: &Format) -> Value {
    match f {
        Format::Json => Value::String("json".into()),
        Format::Schema(s) => s.clone(),
    }
}

/// `true`/`false` or the level string.
pub fn think_value(t: &Think) -> Value {
    match t {
        Think::Bool(b) => Value::Bool(*b),
        Think::Level(l) => Value::String(l.clone()),
    }
}

/// Whole seconds as a number, anything finer as a Go duration string; forever as `-1`.
pub fn keep_alive_value(k: &KeepAlive) -> Value {
    match k {
        KeepAlive::Forever => Value::from(-1),
        KeepAlive::For(d) if d.subsec_nanos() == 0 => Value::from(d.as_secs()),
        KeepAlive::For(d) => Value::String(format!("{}ns", d.as_nanos())),
    }
}

fn message_to_wire(m: &Message) -> wire::Message {
    wire::Message {
        role: m.role.clone(),
        content: m.content.clone(),
        thinking: m.thinking.clone(),
        images: m.images.iter().map(|i| B64.encode(i)).collect(),
        tool_calls: m
            .tool_calls
            .iter()
            .map(|tc| wire::ToolCall {
                id: tc.id.clone(),
                function: wire::ToolCallFunction {
                    index: tc.index,
                    name: tc.name.clone(),
                    arguments: tc.arguments.clone(),
                },
            })
            .collect(),
        tool_name: m.tool_name.clone(),
        tool_call_id: m.tool_call_id.clone(),
    }
}

fn tool_calls_from_wire(calls: Vec<wire::ToolCall>) -> Vec<ToolCall> {
    calls
        .into_iter()
        .map(|tc| ToolCall {
            id: tc.id,
            index: tc.function.index,
            name: tc.function.name,
            arguments: tc.function.arguments,
        })
        .collect()
}

fn logprobs_from_wire(lp: Vec<wire::Logprob>) -> Vec<Logprob> {
    lp.into_iter()
        .map(|l| Logprob {
            token: l.token,
            logprob: l.logprob,
            bytes: l.bytes,
            top_logprobs: l
                .top_logprobs
                .into_iter()
                .map(|t| TokenLogprob {
                    token: t.token,
                    logprob: t.logprob,
                    bytes: t.bytes,
                })
                .collect(),
        })
        .collect()
}

/// Counts and timings exactly as upstream reported them.
pub fn stats_from_wire(m: &wire::Metrics) -> Stats {
    Stats {
        total_duration: m.total_duration,
        load_duration: m.load_duration,
        prompt_eval_count: m.prompt_eval_count,
        prompt_eval_duration: m.prompt_eval_duration,
        eval_count: m.eval_count,
        eval_duration: m.eval_duration,
    }
}

fn done_reason(s: &str) -> DoneReason {
    if s.is_empty() {
        DoneReason::Stop
    } else {
        DoneReason::parse(s)
    }
}

fn delta(content: String, thinking: String, logprobs: Vec<wire::Logprob>, out: &mut Vec<Event>) {
    if !content.is_empty() || !thinking.is_empty() || !logprobs.is_empty() {
        out.push(Event::Delta {
            content,
            thinking,
            logprobs: logprobs_from_wire(logprobs),
        });
    }
}

/// Events carried by one `/api/chat` object. Returns whether it was the final object.
pub fn chat_events(r: wire::ChatResponse, out: &mut Vec<Event>) -> bool {
    if let Some(d) = r.debug_info {
        out.push(Event::Rendered {
            prompt: d.rendered_template,
            image_count: d.image_count,
        });
    }
    delta(r.message.content, r.message.thinking, r.logprobs, out);
    if !r.message.tool_calls.is_empty() {
        out.push(Event::ToolCalls(tool_calls_from_wire(r.message.tool_calls)));
    }
    if r.done {
        out.push(Event::Done {
            reason: done_reason(&r.done_reason),
            stats: stats_from_wire(&r.metrics),
            context: None,
        });
    }
    r.done
}

/// Events carried by one `/api/generate` object. Returns whether it was the final object.
pub fn generate_events(r: wire::GenerateResponse, out: &mut Vec<Event>) -> bool {
    if let Some(d) = r.debug_info {
        out.push(Event::Rendered {
            prompt: d.rendered_template,
            image_count: d.image_count,
        });
    }
    delta(r.response, r.thinking, r.logprobs, out);
    if !r.tool_calls.is_empty() {
        out.push(Event::ToolCalls(tool_calls_from_wire(r.tool_calls)));
    }
    if r.done {
        out.push(Event::Done {
            reason: done_reason(&r.done_reason),
            stats: stats_from_wire(&r.metrics),
            context: (!r.context.is_empty()).then_some(r.context),
        });
    }
    r.done
}

/// Decode one NDJSON object: an `{"error":...}` object becomes [`BackendError::Upstream`]
/// (with its `status` when upstream put one there), anything else must decode as `T`.
pub fn decode_line<T: DeserializeOwned>(label: &str, line: &[u8]) -> Result<T, BackendError> {
    let v: Value = serde_json::from_slice(line).map_err(|e| {
        BackendError::Unavailable(format!(
            "{label} sent a stream line that is not JSON ({e}): {}",
            crate::client::snippet(line)
        ))
    })?;
    if let Some(msg) = v.get("error") {
        let message = match msg {
            Value::String(s) => s.clone(),
            other => crate::error_body::message_from_json(&v).unwrap_or_else(|| other.to_string()),
        };
        let status = v
            .get("status")
            .and_then(Value::as_u64)
            .and_then(|s| u16::try_from(s).ok())
            .filter(|s| (400..600).contains(s))
            .unwrap_or(MID_STREAM_STATUS);
        return Err(BackendError::Upstream { status, message });
    }
    serde_json::from_value(v).map_err(|e| {
        BackendError::Unavailable(format!(
            "{label} sent a stream object of unexpected shape ({e}): {}",
            crate::client::snippet(line)
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ollmlx_infer::{Input, Options};
    use serde_json::json;
    use std::time::Duration;

    #[test]
    fn chat_request_carries_every_field_and_forces_streaming() {
        let req = Request {
            model: "m".into(),
            input: Input::Chat(ChatInput {
                messages: vec![Message {
                    role: "user".into(),
                    content: "hi".into(),
                    images: vec![b"abc".to_vec()],
                    ..Default::default()
                }],
                tools: vec![json!({"type":"function","function":{"name":"f"}})],
            }),
            options: Options {
                temperature: Some(0.0),
                ..Default::default()
            },
            format: Some(Format::Json),
            think: Some(Think::Level("high".into())),
            keep_alive: Some(KeepAlive::For(Duration::from_secs(0))),
            stream: false,
            ..Default::default()
        };
        let Input::Chat(chat) = &req.input else {
            unreachable!()
        };
        let body = serde_json::to_value(chat_request(&req, chat)).unwrap();
        assert_eq!(
            body,
            json!({"model":"m","messages":[{"role":"user","content":"hi","images":["YWJj"]}],
                "stream":true,"format":"json","keep_alive":0,
                "tools":[{"type":"function","function":{"name":"f"}}],
                "options":{"temperature":0.0},"think":"high"})
        );
    }

    #[test]
    fn keep_alive_encodes_forever_seconds_and_fractions() {
        assert_eq!(keep_alive_value(&KeepAlive::Forever), json!(-1));
        assert_eq!(
            keep_alive_value(&KeepAlive::For(Duration::from_secs(300))),
            json!(300)
        );
        assert_eq!(
            keep_alive_value(&KeepAlive::For(Duration::from_millis(1500))),
            json!("1500000000ns")
        );
    }

    #[test]
    fn error_line_becomes_upstream_error_with_its_status() {
        let e = decode_line::<wire::ChatResponse>("u", br#"{"error":"boom","status":429}"#)
            .unwrap_err();
        assert_eq!(
            e,
            BackendError::Upstream {
                status: 429,
                message: "boom".into()
            }
        );
        let e = decode_line::<wire::ChatResponse>("u", br#"{"error":"boom"}"#).unwrap_err();
        assert_eq!(e.status(), 500);
    }

    #[test]
    fn non_json_line_is_a_clear_unavailable_error() {
        let e = decode_line::<wire::ChatResponse>("upstream ollama at http://h", b"<html>")
            .unwrap_err();
        assert!(
            matches!(&e, BackendError::Unavailable(m) if m.starts_with("upstream ollama at http://h sent a stream line that is not JSON")),
            "{e:?}"
        );
    }

    #[test]
    fn chat_tool_call_chunk_becomes_tool_calls_event() {
        let r: wire::ChatResponse = serde_json::from_value(json!({
            "model":"m","created_at":"2024-09-16T00:00:00Z",
            "message":{"role":"assistant","content":"","tool_calls":[{"function":{"name":"get_weather","arguments":{"city":"Paris"}}}]},
            "done":false
        }))
        .unwrap();
        let mut out = Vec::new();
        assert!(!chat_events(r, &mut out));
        let mut args = Map::new();
        args.insert("city".into(), json!("Paris"));
        assert_eq!(
            out,
            vec![Event::ToolCalls(vec![ToolCall {
                id: String::new(),
                index: 0,
                name: "get_weather".into(),
                arguments: args
            }])]
        );
    }
}
