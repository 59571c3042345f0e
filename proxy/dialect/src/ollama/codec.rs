//! Native response encoding: events to `GenerateResponse` / `ChatResponse` objects.
//!
//! Streaming emits one object per delta and a final `done:true` object carrying the metrics;
//! non-streaming concatenates the same deltas into one object. Errors after the stream started
//! become a trailing `{"error":"..."}` line, as upstream's `streamResponse` does.

use ollmlx_infer::{Event, Logprob, Request, Stats};
use ollmlx_wire::json::to_vec;
use ollmlx_wire::ollama as wire;
use ollmlx_wire::time::Timestamp;

use super::request::tool_call_to_wire;
use crate::{Chunk, Codec};

/// Internal stats to wire metrics.
pub fn metrics(s: &Stats) -> wire::Metrics {
    wire::Metrics {
        total_duration: s.total_duration,
        load_duration: s.load_duration,
        prompt_eval_count: s.prompt_eval_count,
        prompt_eval_duration: s.prompt_eval_duration,
        eval_count: s.eval_count,
        eval_duration: s.eval_duration,
    }
}

/// Internal logprobs to wire.
pub fn logprobs(l: &[Logprob]) -> Vec<wire::Logprob> {
    l.iter()
        .map(|l| wire::Logprob {
            token: l.token.clone(),
            logprob: l.logprob,
            bytes: l.bytes.clone(),
            top_logprobs: l
                .top_logprobs
                .iter()
                .map(|t| wire::TokenLogprob {
                    token: t.token.clone(),
                    logprob: t.logprob,
                    bytes: t.bytes.clone(),
                })
                .collect(),
        })
        .collect()
}

/// The `debug_info` of a `Rendered` event (`_debug_render_only`).
fn debug_info(prompt: &str, image_count: usize) -> Option<wire::DebugInfo> {
    Some(wire::DebugInfo {
        rendered_template: prompt.to_string(),
        image_count,
    })
}

/// The in-stream error line.
pub fn error_chunk(message: &str) -> Chunk {
    Chunk::Data(to_vec(&wire::ErrorResponse::new(message)))
}

/// Codec for `/api/generate`.
pub struct GenerateCodec {
    acc: wire::GenerateResponse,
}

impl GenerateCodec {
    /// A codec answering `req`.
    pub fn new(req: &Request) -> Self {
        GenerateCodec {
            acc: wire::GenerateResponse {
                model: req.model.clone(),
                remote_model: String::new(),
                remote_host: String::new(),
                created_at: Timestamp::now_utc(),
                response: String::new(),
                thinking: String::new(),
                done: false,
                done_reason: String::new(),
                context: Vec::new(),
                metrics: wire::Metrics::default(),
                tool_calls: Vec::new(),
                debug_info: None,
                logprobs: Vec::new(),
            },
        }
    }

    fn blank(&self) -> wire::GenerateResponse {
        let mut r = self.acc.clone();
        r.created_at = Timestamp::now_utc();
        r.response.clear();
        r.thinking.clear();
        r.logprobs.clear();
        r.tool_calls.clear();
        r
    }
}

impl Codec for GenerateCodec {
    fn stream(&mut self, ev: &Event) -> Vec<Chunk> {
        let mut r = self.blank();
        match ev {
            Event::Delta {
                content,
                thinking,
                logprobs: lp,
            } => {
                r.response = content.clone();
                r.thinking = thinking.clone();
                r.logprobs = logprobs(lp);
            }
            Event::ToolCalls(calls) => {
                // Upstream reports generate tool calls on the final object only.
                self.acc
                    .tool_calls
                    .extend(calls.iter().map(tool_call_to_wire));
                return Vec::new();
            }
            Event::Rendered {
                prompt,
                image_count,
            } => {
                r.debug_info = debug_info(prompt, *image_count);
                r.done = true;
            }
            Event::Done {
                reason,
                stats,
                context,
            } => {
                r.done = true;
                r.done_reason = reason.as_str().to_string();
                r.metrics = metrics(stats);
                r.context = context.clone().unwrap_or_default();
                r.tool_calls = std::mem::take(&mut self.acc.tool_calls);
            }
        }
        vec![Chunk::Data(to_vec(&r))]
    }

    fn stream_end(&mut self) -> Vec<Chunk> {
        Vec::new()
    }

    fn stream_error(&mut self, _status: u16, message: &str) -> Vec<Chunk> {
        vec![error_chunk(message)]
    }

    fn collect(&mut self, ev: &Event) {
        match ev {
            Event::Delta {
                content,
                thinking,
                logprobs: lp,
            } => {
                self.acc.response.push_str(content);
                self.acc.thinking.push_str(thinking);
                self.acc.logprobs.extend(logprobs(lp));
            }
            Event::ToolCalls(calls) => self
                .acc
                .tool_calls
                .extend(calls.iter().map(tool_call_to_wire)),
            Event::Rendered {
                prompt,
                image_count,
            } => {
                self.acc.debug_info = debug_info(prompt, *image_count);
                self.acc.done = true;
            }
            Event::Done {
                reason,
                stats,
                context,
            } => {
                self.acc.done = true;
                self.acc.done_reason = reason.as_str().to_string();
                self.acc.metrics = metrics(stats);
                self.acc.context = context.clone().unwrap_or_default();
            }
        }
    }

    fn body(&mut self) -> Vec<u8> {
        self.acc.created_at = Timestamp::now_utc();
        to_vec(&self.acc)
    }
}

/// Codec for `/api/chat`.
pub struct ChatCodec {
    acc: wire::ChatResponse,
    /// Upstream accumulates tool calls in the non-streaming body only when the request had tools.
    had_tools: bool,
}

impl ChatCodec {
    /// A codec answering `req`.
    pub fn new(req: &Request) -> Self {
        let had_tools = matches!(&req.input, ollmlx_infer::Input::Chat(c) if !c.tools.is_empty());
        ChatCodec {
            acc: wire::ChatResponse {
                model: req.model.clone(),
                remote_model: String::new(),
                remote_host: String::new(),
                created_at: Timestamp::now_utc(),
                message: wire::Message {
                    role: "assistant".into(),
                    ..Default::default()
                },
                done: false,
                done_reason: String::new(),
                debug_info: None,
                logprobs: Vec::new(),
                metrics: wire::Metrics::default(),
            },
            had_tools,
        }
    }

    fn blank(&self) -> wire::ChatResponse {
        let mut r = self.acc.clone();
        r.created_at = Timestamp::now_utc();
        r.message = wire::Message {
            role: "assistant".into(),
            ..Default::default()
        };
        r.logprobs.clear();
        r
    }
}

impl Codec for ChatCodec {
    fn stream(&mut self, ev: &Event) -> Vec<Chunk> {
        let mut r = self.blank();
        match ev {
            Event::Delta {
                content,
                thinking,
                logprobs: lp,
            } => {
                r.message.content = content.clone();
                r.message.thinking = thinking.clone();
                r.logprobs = logprobs(lp);
            }
            Event::ToolCalls(calls) => {
                r.message.tool_calls = calls.iter().map(tool_call_to_wire).collect();
            }
            Event::Rendered {
                prompt,
                image_count,
            } => {
                r.debug_info = debug_info(prompt, *image_count);
                r.done = true;
            }
            Event::Done { reason, stats, .. } => {
                r.done = true;
                r.done_reason = reason.as_str().to_string();
                r.metrics = metrics(stats);
            }
        }
        vec![Chunk::Data(to_vec(&r))]
    }

    fn stream_end(&mut self) -> Vec<Chunk> {
        Vec::new()
    }

    fn stream_error(&mut self, _status: u16, message: &str) -> Vec<Chunk> {
        vec![error_chunk(message)]
    }

    fn collect(&mut self, ev: &Event) {
        match ev {
            Event::Delta {
                content,
                thinking,
                logprobs: lp,
            } => {
                self.acc.message.content.push_str(content);
                self.acc.message.thinking.push_str(thinking);
                self.acc.logprobs.extend(logprobs(lp));
            }
            Event::ToolCalls(calls) => {
                if self.had_tools {
                    self.acc
                        .message
                        .tool_calls
                        .extend(calls.iter().map(tool_call_to_wire));
                }
            }
            Event::Rendered {
                prompt,
                image_count,
            } => {
                self.acc.debug_info = debug_info(prompt, *image_count);
                self.acc.done = true;
            }
            Event::Done { reason, stats, .. } => {
                self.acc.done = true;
                self.acc.done_reason = reason.as_str().to_string();
                self.acc.metrics = metrics(stats);
            }
        }
    }

    fn body(&mut self) -> Vec<u8> {
        self.acc.created_at = Timestamp::now_utc();
        to_vec(&self.acc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ollmlx_infer::{ChatInput, DoneReason, Input, ToolCall};
    use serde_json::Value;

    fn chat_req(tools: bool) -> Request {
        Request {
            model: "m".into(),
            input: Input::Chat(ChatInput {
                messages: vec![],
                tools: if tools {
                    vec![serde_json::json!({"type":"function"})]
                } else {
                    vec![]
                },
            }),
            ..Default::default()
        }
    }

    fn parse(c: &Chunk) -> Value {
        match c {
            Chunk::Data(b) => serde_json::from_slice(b).unwrap(),
            other => panic!("unexpected chunk {other:?}"),
        }
    }

    fn done() -> Event {
        Event::Done {
            reason: DoneReason::Stop,
            stats: Stats {
                eval_count: 3,
                total_duration: 10,
                ..Default::default()
            },
            context: Some(vec![1, 2]),
        }
    }

    #[test]
    fn chat_stream_chunks_always_carry_role_and_content() {
        let mut c = ChatCodec::new(&chat_req(false));
        let v = parse(&c.stream(&Event::thinking("hm"))[0]);
        assert_eq!(v["message"]["role"], "assistant");
        assert_eq!(v["message"]["content"], "");
        assert_eq!(v["message"]["thinking"], "hm");
        assert_eq!(v["done"], false);
        assert!(
            v.get("eval_count").is_none(),
            "metrics only on the final chunk"
        );
    }

    #[test]
    fn chat_final_chunk_carries_done_reason_and_metrics() {
        let mut c = ChatCodec::new(&chat_req(false));
        let v = parse(&c.stream(&done())[0]);
        assert_eq!(v["done"], true);
        assert_eq!(v["done_reason"], "stop");
        assert_eq!(v["eval_count"], 3);
        let keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
        assert_eq!(
            keys,
            [
                "model",
                "created_at",
                "message",
                "done",
                "done_reason",
                "total_duration",
                "eval_count"
            ]
        );
    }

    #[test]
    fn chat_non_stream_concatenates_and_keeps_tool_calls_only_with_tools() {
        for tools in [true, false] {
            let mut c = ChatCodec::new(&chat_req(tools));
            c.collect(&Event::content("Hel"));
            c.collect(&Event::content("lo"));
            c.collect(&Event::ToolCalls(vec![ToolCall {
                name: "f".into(),
                ..Default::default()
            }]));
            c.collect(&done());
            let v: Value = serde_json::from_slice(&c.body()).unwrap();
            assert_eq!(v["message"]["content"], "Hello");
            assert_eq!(v["message"].get("tool_calls").is_some(), tools);
        }
    }

    #[test]
    fn generate_puts_tool_calls_and_context_on_the_final_chunk() {
        let req = Request {
            model: "m".into(),
            input: Input::Generate(Default::default()),
            ..Default::default()
        };
        let mut c = GenerateCodec::new(&req);
        assert!(c
            .stream(&Event::ToolCalls(vec![ToolCall {
                name: "f".into(),
                ..Default::default()
            }]))
            .is_empty());
        let v = parse(&c.stream(&done())[0]);
        assert_eq!(v["tool_calls"][0]["function"]["name"], "f");
        assert_eq!(v["context"], serde_json::json!([1, 2]));
        assert_eq!(v["response"], "");
    }

    #[test]
    fn stream_error_is_a_trailing_error_line() {
        let mut c = ChatCodec::new(&chat_req(false));
        assert_eq!(
            c.stream_error(500, "boom"),
            vec![Chunk::Data(br#"{"error":"boom"}"#.to_vec())]
        );
    }
}
