//! The `/v1/messages` codec: backend events into Anthropic stream events (named SSE frames) or
//! one message body.
//!
//! Stream order: `message_start` (estimated input tokens) → per block `content_block_start` /
//! `content_block_delta` / `content_block_stop` (thinking, then text, then each `tool_use` with
//! its whole input in one `input_json_delta`) → `message_delta` (stop reason, usage) →
//! `message_stop`.

use std::collections::HashSet;

use ollmlx_infer::{Event, Stats, ToolCall};
use ollmlx_wire::anthropic::error::{error_type, Error};
use ollmlx_wire::anthropic::messages::{
    ContentBlock, ContentBlockDeltaEvent, ContentBlockStartEvent, ContentBlockStopEvent, Delta,
    MessageDelta, MessageDeltaEvent, MessageStartEvent, MessageStopEvent, MessagesResponse,
    StreamErrorEvent, Usage,
};
use ollmlx_wire::json::{to_line, to_vec};
use serde::Serialize;
use serde_json::Map;

use crate::openai::tool_call_id;
use crate::{Chunk, Codec};

/// Ollama's `done_reason` as an Anthropic `stop_reason` (`None` when there is none).
pub(crate) fn stop_reason(reason: &str, has_tool_calls: bool) -> Option<String> {
    if has_tool_calls {
        return Some("tool_use".into());
    }
    match reason {
        "stop" => Some("end_turn".into()),
        "length" => Some("max_tokens".into()),
        "" => None,
        _ => Some("stop_sequence".into()),
    }
}

/// Encoder for one Messages API request.
#[derive(Debug)]
pub struct MessagesCodec {
    id: String,
    model: String,
    estimated_input: u64,
    first_write: bool,
    index: usize,
    thinking_started: bool,
    thinking_done: bool,
    text_started: bool,
    sent_calls: HashSet<String>,
    // Aggregation for non-streaming replies.
    text: String,
    thinking: String,
    calls: Vec<ToolCall>,
    reason: String,
    stats: Stats,
}

fn named<T: Serialize>(name: &'static str, v: &T) -> Chunk {
    Chunk::Named(name, to_vec(v))
}

fn with_id(c: &ToolCall) -> ToolCall {
    let mut c = c.clone();
    if c.id.is_empty() {
        c.id = tool_call_id();
    }
    c
}

impl MessagesCodec {
    /// A codec for message `id` (`msg_<24hex>`) of `model`, with the request's estimated input
    /// tokens for `message_start`.
    pub fn new(id: String, model: String, estimated_input: u64) -> Self {
        MessagesCodec {
            id,
            model,
            estimated_input,
            first_write: true,
            index: 0,
            thinking_started: false,
            thinking_done: false,
            text_started: false,
            sent_calls: HashSet::new(),
            text: String::new(),
            thinking: String::new(),
            calls: Vec::new(),
            reason: String::new(),
            stats: Stats::default(),
        }
    }

    fn stop_block(&mut self, out: &mut Vec<Chunk>) {
        out.push(named(
            "content_block_stop",
            &ContentBlockStopEvent {
                kind: "content_block_stop".into(),
                index: self.index,
            },
        ));
    }

    fn start_block(&self, block: ContentBlock, out: &mut Vec<Chunk>) {
        out.push(named(
            "content_block_start",
            &ContentBlockStartEvent {
                kind: "content_block_start".into(),
                index: self.index,
                content_block: block,
            },
        ));
    }

    fn delta(&self, delta: Delta, out: &mut Vec<Chunk>) {
        out.push(named(
            "content_block_delta",
            &ContentBlockDeltaEvent {
                kind: "content_block_delta".into(),
                index: self.index,
                delta,
            },
        ));
    }

    fn start(&mut self, prompt_tokens: u64, out: &mut Vec<Chunk>) {
        if !self.first_write {
            return;
        }
        self.first_write = false;
        let input = if prompt_tokens == 0 {
            self.estimated_input
        } else {
            prompt_tokens
        };
        out.push(named(
            "message_start",
            &MessageStartEvent {
                kind: "message_start".into(),
                message: MessagesResponse {
                    id: self.id.clone(),
                    kind: "message".into(),
                    role: "assistant".into(),
                    model: self.model.clone(),
                    content: Some(Vec::new()),
                    stop_reason: None,
                    stop_sequence: None,
                    usage: Usage {
                        input_tokens: input,
                        output_tokens: 0,
                    },
                },
            },
        ));
    }

    /// Close an open thinking block before other content.
    fn end_thinking(&mut self, out: &mut Vec<Chunk>) {
        if self.thinking_started && !self.thinking_done {
            self.thinking_done = true;
            self.stop_block(out);
            self.index += 1;
        }
    }

    fn on_thinking(&mut self, thinking: &str, out: &mut Vec<Chunk>) {
        if self.thinking_done {
            return;
        }
        if self.text_started {
            self.stop_block(out);
            self.index += 1;
            self.text_started = false;
        }
        if !self.thinking_started {
            self.thinking_started = true;
            self.start_block(
                ContentBlock {
                    kind: "thinking".into(),
                    thinking: Some(String::new()),
                    ..Default::default()
                },
                out,
            );
        }
        self.delta(
            Delta {
                kind: "thinking_delta".into(),
                thinking: thinking.into(),
                ..Default::default()
            },
            out,
        );
    }

    fn on_text(&mut self, text: &str, out: &mut Vec<Chunk>) {
        self.end_thinking(out);
        if !self.text_started {
            self.text_started = true;
            self.start_block(
                ContentBlock {
                    kind: "text".into(),
                    text: Some(String::new()),
                    ..Default::default()
                },
                out,
            );
        }
        self.delta(
            Delta {
                kind: "text_delta".into(),
                text: text.into(),
                ..Default::default()
            },
            out,
        );
    }

    fn on_call(&mut self, call: &ToolCall, out: &mut Vec<Chunk>) {
        if self.sent_calls.contains(&call.id) {
            return;
        }
        self.end_thinking(out);
        if self.text_started {
            self.stop_block(out);
            self.index += 1;
            self.text_started = false;
        }
        self.start_block(
            ContentBlock {
                kind: "tool_use".into(),
                id: call.id.clone(),
                name: call.name.clone(),
                input: Some(Map::new()),
                ..Default::default()
            },
            out,
        );
        self.delta(
            Delta {
                kind: "input_json_delta".into(),
                partial_json: String::from_utf8(to_vec(&call.arguments)).unwrap_or_default(),
                ..Default::default()
            },
            out,
        );
        self.stop_block(out);
        self.sent_calls.insert(call.id.clone());
        self.index += 1;
    }

    fn on_done(&mut self, reason: &str, stats: &Stats, out: &mut Vec<Chunk>) {
        if self.text_started || (self.thinking_started && !self.thinking_done) {
            self.stop_block(out);
        }
        out.push(named(
            "message_delta",
            &MessageDeltaEvent {
                kind: "message_delta".into(),
                delta: MessageDelta {
                    stop_reason: stop_reason(reason, !self.sent_calls.is_empty()),
                    stop_sequence: None,
                },
                usage: Usage {
                    input_tokens: stats.prompt_eval_count,
                    output_tokens: stats.eval_count,
                },
            },
        ));
        out.push(named(
            "message_stop",
            &MessageStopEvent {
                kind: "message_stop".into(),
            },
        ));
    }
}

impl Codec for MessagesCodec {
    fn stream(&mut self, ev: &Event) -> Vec<Chunk> {
        let mut out = Vec::new();
        let prompt_tokens = match ev {
            Event::Done { stats, .. } => stats.prompt_eval_count,
            _ => 0,
        };
        self.start(prompt_tokens, &mut out);
        match ev {
            Event::Delta {
                content, thinking, ..
            } => {
                if !thinking.is_empty() {
                    self.on_thinking(thinking, &mut out);
                }
                if !content.is_empty() {
                    self.on_text(content, &mut out);
                }
            }
            Event::ToolCalls(calls) => {
                for c in calls {
                    let c = with_id(c);
                    self.on_call(&c, &mut out);
                }
            }
            Event::Done { reason, stats, .. } => self.on_done(reason.as_str(), stats, &mut out),
            Event::Rendered { .. } => {}
        }
        out
    }

    fn stream_end(&mut self) -> Vec<Chunk> {
        Vec::new()
    }

    fn stream_error(&mut self, status: u16, message: &str) -> Vec<Chunk> {
        vec![named(
            "error",
            &StreamErrorEvent {
                kind: "error".into(),
                error: Error {
                    kind: error_type(status).into(),
                    message: message.into(),
                },
            },
        )]
    }

    fn collect(&mut self, ev: &Event) {
        match ev {
            Event::Delta {
                content, thinking, ..
            } => {
                self.text.push_str(content);
                self.thinking.push_str(thinking);
            }
            Event::ToolCalls(calls) => self.calls.extend(calls.iter().map(with_id)),
            Event::Done { reason, stats, .. } => {
                self.reason = reason.as_str().to_string();
                self.stats = stats.clone();
            }
            Event::Rendered { .. } => {}
        }
    }

    fn body(&mut self) -> Vec<u8> {
        let mut content = Vec::new();
        if !self.thinking.is_empty() {
            content.push(ContentBlock {
                kind: "thinking".into(),
                thinking: Some(self.thinking.clone()),
                ..Default::default()
            });
        }
        if !self.text.is_empty() {
            content.push(ContentBlock {
                kind: "text".into(),
                text: Some(self.text.clone()),
                ..Default::default()
            });
        }
        for c in &self.calls {
            content.push(ContentBlock {
                kind: "tool_use".into(),
                id: c.id.clone(),
                name: c.name.clone(),
                input: Some(c.arguments.clone()),
                ..Default::default()
            });
        }
        to_line(&MessagesResponse {
            id: self.id.clone(),
            kind: "message".into(),
            role: "assistant".into(),
            model: self.model.clone(),
            // Go marshals the nil slice of an empty answer as null.
            content: (!content.is_empty()).then_some(content),
            stop_reason: stop_reason(&self.reason, !self.calls.is_empty()),
            stop_sequence: None,
            usage: Usage {
                input_tokens: self.stats.prompt_eval_count,
                output_tokens: self.stats.eval_count,
            },
        })
    }
}
