//! Outbound translation for [`super::OpenAiUpstream`]: one internal [`Request`] becomes a
//! streaming `/v1/chat/completions` or `/v1/completions` body for the OpenAI-compatible upstream.
//!
//! Ollama options map to OpenAI parameters where one exists (`num_predict` → `max_tokens`) and
//! to the widely supported extensions otherwise (`top_k`, `min_p`, `repetition_penalty`); unset
//! options are never sent, so strict servers only see what the client asked for.

use std::collections::VecDeque;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ollmlx_infer::{Format, Input, Message, Options, Request, Think};
use serde_json::{json, Map, Value};

use super::types::{CompletionRequest, StreamOptions};

/// Which upstream endpoint a request goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `POST /v1/chat/completions`.
    Chat,
    /// `POST /v1/completions`.
    Completions,
}

impl Endpoint {
    /// The request path.
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::Chat => "/v1/chat/completions",
            Endpoint::Completions => "/v1/completions",
        }
    }
}

/// Build the upstream body for `req`, addressed to upstream model `model_id`.
pub fn completion_request(
    req: &Request,
    model_id: &str,
    generate_via_chat: bool,
) -> (Endpoint, CompletionRequest) {
    let mut body = CompletionRequest {
        model: model_id.to_string(),
        stream: true,
        stream_options: StreamOptions {
            include_usage: true,
        },
        ..Default::default()
    };
    let endpoint = match &req.input {
        Input::Chat(chat) => {
            body.messages = Some(messages(&chat.messages));
            if !chat.tools.is_empty() {
                body.tools = Some(chat.tools.clone());
            }
            Endpoint::Chat
        }
        Input::Generate(g) if generate_via_chat && !g.raw && g.suffix.is_empty() => {
            let mut msgs = Vec::new();
            if !g.system.is_empty() {
                msgs.push(Message {
                    role: "system".into(),
                    content: g.system.clone(),
                    ..Default::default()
                });
            }
            msgs.push(Message {
                role: "user".into(),
                content: g.prompt.clone(),
                images: g.images.clone(),
                ..Default::default()
            });
            body.messages = Some(messages(&msgs));
            Endpoint::Chat
        }
        Input::Generate(g) => {
            body.prompt = Some(g.prompt.clone());
            if !g.suffix.is_empty() {
                body.suffix = Some(g.suffix.clone());
            }
            Endpoint::Completions
        }
    };
    body.params = params(req, endpoint);
    (endpoint, body)
}

fn params(req: &Request, endpoint: Endpoint) -> Map<String, Value> {
    let mut p = Map::new();
    let o: &Options = &req.options;
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            p.insert(k.to_string(), v);
        }
    };
    put("temperature", o.temperature.map(|v| json!(v)));
    put("top_p", o.top_p.map(|v| json!(v)));
    put("top_k", o.top_k.map(|v| json!(v)));
    put("min_p", o.min_p.map(|v| json!(v)));
    put("seed", o.seed.filter(|s| *s >= 0).map(|v| json!(v)));
    put(
        "stop",
        o.stop.as_ref().filter(|s| !s.is_empty()).map(|v| json!(v)),
    );
    // Ollama: -1 = until done, -2 = fill the context; OpenAI has no such values.
    put(
        "max_tokens",
        o.num_predict.filter(|n| *n > 0).map(|v| json!(v)),
    );
    put("presence_penalty", o.presence_penalty.map(|v| json!(v)));
    put("frequency_penalty", o.frequency_penalty.map(|v| json!(v)));
    put("repetition_penalty", o.repeat_penalty.map(|v| json!(v)));
    put(
        "response_format",
        req.format.as_ref().map(|f| match f {
            Format::Json => json!({"type": "json_object"}),
            Format::Schema(s) => {
                json!({"type": "json_schema", "json_schema": {"name": "response", "schema": s}})
            }
        }),
    );
    put(
        "reasoning_effort",
        match &req.think {
            Some(Think::Level(l)) if l == "max" => Some(json!("high")),
            Some(Think::Level(l)) => Some(json!(l)),
            _ => None,
        },
    );
    if req.logprobs {
        match endpoint {
            Endpoint::Chat => {
                p.insert("logprobs".into(), json!(true));
                if req.top_logprobs > 0 {
                    p.insert("top_logprobs".into(), json!(req.top_logprobs));
                }
            }
            Endpoint::Completions => {
                p.insert("logprobs".into(), json!(req.top_logprobs.max(1)));
            }
        }
    }
    p
}

/// Ollama messages → OpenAI messages. Tool calls without ids get `call_<turn>_<n>` ids, and a
/// tool result without `tool_call_id` answers the oldest unanswered call of the previous turn.
fn messages(msgs: &[Message]) -> Vec<Value> {
    let mut out = Vec::with_capacity(msgs.len());
    let mut pending: VecDeque<String> = VecDeque::new();
    for (turn, m) in msgs.iter().enumerate() {
        let mut obj = Map::new();
        obj.insert("role".into(), json!(m.role));
        if m.images.is_empty() {
            obj.insert("content".into(), json!(m.content));
        } else {
            let mut parts = vec![json!({"type": "text", "text": m.content})];
            for img in &m.images {
                let url = format!("data:{};base64,{}", image_mime(img), B64.encode(img));
                parts.push(json!({"type": "image_url", "image_url": {"url": url}}));
            }
            obj.insert("content".into(), Value::Array(parts));
        }
        if !m.tool_calls.is_empty() {
            pending.clear();
            let calls: Vec<Value> = m
                .tool_calls
                .iter()
                .enumerate()
                .map(|(i, tc)| {
                    let id = if tc.id.is_empty() {
                        format!("call_{turn}_{i}")
                    } else {
                        tc.id.clone()
                    };
                    pending.push_back(id.clone());
                    json!({
                        "id": id,
                        "type": "function",
                        "function": {
                            "name": tc.name,
                            "arguments": Value::Object(tc.arguments.clone()).to_string(),
                        }
                    })
                })
                .collect();
            obj.insert("tool_calls".into(), Value::Array(calls));
        }
        if m.role == "tool" {
            let id = if m.tool_call_id.is_empty() {
                pending.pop_front().unwrap_or_default()
            } else {
                pending.retain(|p| p != &m.tool_call_id);
                m.tool_call_id.clone()
            };
            if !id.is_empty() {
                obj.insert("tool_call_id".into(), json!(id));
            }
            if !m.tool_name.is_empty() {
                obj.insert("name".into(), json!(m.tool_name));
            }
        }
        out.push(Value::Object(obj));
    }
    out
}

/// MIME type of an image from its magic bytes (PNG, JPEG, GIF, WebP; PNG when unknown).
fn image_mime(b: &[u8]) -> &'static str {
    if b.starts_with(&[0xFF, 0xD8, 0xFF]) {
        "image/jpeg"
    } else if b.starts_with(b"GIF8") {
        "image/gif"
    } else if b.len() >= 12 && &b[0..4] == b"RIFF" && &b[8..12] == b"WEBP" {
        "image/webp"
    } else {
        "image/png"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ollmlx_infer::{ChatInput, GenerateInput, ToolCall};

    fn chat(messages: Vec<Message>) -> Request {
        Request {
            model: "m".into(),
            input: Input::Chat(ChatInput {
                messages,
                tools: vec![],
            }),
            ..Default::default()
        }
    }

    #[test]
    fn options_map_to_openai_parameters_and_unset_ones_are_not_sent() {
        let mut req = chat(vec![]);
        req.options = Options {
            temperature: Some(0.5),
            top_k: Some(20),
            seed: Some(7),
            num_predict: Some(64),
            stop: Some(vec!["\n".into()]),
            repeat_penalty: Some(1.5),
            ..Default::default()
        };
        req.format = Some(Format::Json);
        let (ep, body) = completion_request(&req, "up", true);
        assert_eq!(ep, Endpoint::Chat);
        let v = serde_json::to_value(&body).unwrap();
        assert_eq!(
            v,
            json!({"model":"up","messages":[],"stream":true,"stream_options":{"include_usage":true},
                "temperature":0.5,"top_k":20,"seed":7,"stop":["\n"],"max_tokens":64,
                "repetition_penalty":1.5,"response_format":{"type":"json_object"}})
        );
    }

    #[test]
    fn num_predict_minus_one_sends_no_max_tokens() {
        let mut req = chat(vec![]);
        req.options.num_predict = Some(-1);
        let (_, body) = completion_request(&req, "up", true);
        assert!(!body.params.contains_key("max_tokens"));
    }

    #[test]
    fn schema_format_becomes_json_schema_response_format() {
        let mut req = chat(vec![]);
        req.format = Some(Format::Schema(json!({"type":"object"})));
        let (_, body) = completion_request(&req, "up", true);
        assert_eq!(
            body.params["response_format"],
            json!({"type":"json_schema","json_schema":{"name":"response","schema":{"type":"object"}}})
        );
    }

    #[test]
    fn tool_turns_get_ids_and_string_arguments() {
        let mut args = Map::new();
        args.insert("city".into(), json!("Paris"));
        let req = chat(vec![
            Message {
                role: "assistant".into(),
                tool_calls: vec![ToolCall {
                    name: "get_weather".into(),
                    arguments: args,
                    ..Default::default()
                }],
                ..Default::default()
            },
            Message {
                role: "tool".into(),
                content: "sunny".into(),
                tool_name: "get_weather".into(),
                ..Default::default()
            },
        ]);
        let (_, body) = completion_request(&req, "up", true);
        assert_eq!(
            Value::Array(body.messages.unwrap()),
            json!([
                {"role":"assistant","content":"","tool_calls":[{"id":"call_0_0","type":"function",
                    "function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},
                {"role":"tool","content":"sunny","tool_call_id":"call_0_0","name":"get_weather"}
            ])
        );
    }

    #[test]
    fn images_become_data_url_content_parts() {
        let req = chat(vec![Message {
            role: "user".into(),
            content: "what?".into(),
            images: vec![vec![0xFF, 0xD8, 0xFF, 0x00]],
            ..Default::default()
        }]);
        let (_, body) = completion_request(&req, "up", true);
        assert_eq!(
            body.messages.unwrap()[0]["content"][1],
            json!({"type":"image_url","image_url":{"url":"data:image/jpeg;base64,/9j/AA=="}})
        );
    }

    #[test]
    fn generate_uses_chat_unless_raw_or_suffix() {
        let mut req = Request {
            model: "m".into(),
            input: Input::Generate(GenerateInput {
                prompt: "p".into(),
                system: "s".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let (ep, body) = completion_request(&req, "up", true);
        assert_eq!(ep, Endpoint::Chat);
        assert_eq!(
            Value::Array(body.messages.unwrap()),
            json!([{"role":"system","content":"s"},{"role":"user","content":"p"}])
        );
        if let Input::Generate(g) = &mut req.input {
            g.raw = true;
        }
        let (ep, body) = completion_request(&req, "up", true);
        assert_eq!(ep, Endpoint::Completions);
        assert_eq!(body.prompt.as_deref(), Some("p"));
        assert!(body.messages.is_none());
    }
}
