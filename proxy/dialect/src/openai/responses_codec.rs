//! The `/v1/responses` codec: backend events into Responses API stream events (each with a
//! `sequence_number`, framed as named SSE events) or one response object, mirroring Ollama's
//! `ResponsesStreamConverter` and `ToResponse`.
//!
//! Event order: `response.created`, `response.in_progress`; reasoning as an output item with
//! `response.reasoning_summary_text.delta`/`.done`; tool calls as `function_call` items with
//! `response.function_call_arguments.delta`/`.done`; text as a `message` item with
//! `response.content_part.added`, `response.output_text.delta`/`.done`,
//! `response.content_part.done`, `response.output_item.done`; finally `response.completed`.
//! Once a tool call was sent, later text is dropped (as upstream).

use ollmlx_infer::{Event, Stats, ToolCall};
use ollmlx_wire::json::{to_line, to_vec};
use ollmlx_wire::openai::responses::ResponsesRequest;
use serde_json::{json, Value};

use super::common::{now_unix, rand_id, to_wire_calls, with_ids};
use super::responses_object::{gomap, stream_response_object, stream_usage, to_response, Outcome};
use crate::{Chunk, Codec};

/// Encoder for one Responses API request.
pub struct ResponsesCodec {
    response_id: String,
    item_id: String,
    created_at: i64,
    request: ResponsesRequest,
    clock: fn() -> i64,
    ids: Box<dyn FnMut(&str) -> String + Send>,
    // Stream state.
    first_write: bool,
    sequence: u64,
    output_index: usize,
    content_started: bool,
    tool_calls_sent: bool,
    text: String,
    reasoning_started: bool,
    reasoning_id: String,
    thinking: String,
    completed: Vec<Value>,
    // Aggregation for non-streaming replies.
    all_text: String,
    all_thinking: String,
    calls: Vec<ToolCall>,
    stats: Stats,
}

impl std::fmt::Debug for ResponsesCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponsesCodec")
            .field("response_id", &self.response_id)
            .field("sequence", &self.sequence)
            .finish_non_exhaustive()
    }
}

impl ResponsesCodec {
    /// A codec for `request` with its response id (`resp_<n>`), message item id (`msg_<n>`) and
    /// creation time.
    pub fn new(
        response_id: String,
        item_id: String,
        created_at: i64,
        request: ResponsesRequest,
    ) -> Self {
        ResponsesCodec {
            response_id,
            item_id,
            created_at,
            request,
            clock: now_unix,
            ids: Box::new(|prefix| rand_id(prefix, 999_999)),
            first_write: true,
            sequence: 0,
            output_index: 0,
            content_started: false,
            tool_calls_sent: false,
            text: String::new(),
            reasoning_started: false,
            reasoning_id: String::new(),
            thinking: String::new(),
            completed: Vec::new(),
            all_text: String::new(),
            all_thinking: String::new(),
            calls: Vec::new(),
            stats: Stats::default(),
        }
    }

    /// Replace the clock (`completed_at`) and the random item-id source (tests).
    pub fn with_sources(
        mut self,
        clock: fn() -> i64,
        ids: impl FnMut(&str) -> String + Send + 'static,
    ) -> Self {
        self.clock = clock;
        self.ids = Box::new(ids);
        self
    }

    fn event(&mut self, kind: &'static str, mut fields: Vec<(&str, Value)>) -> Chunk {
        fields.push(("type", json!(kind)));
        fields.push(("sequence_number", json!(self.sequence)));
        self.sequence += 1;
        Chunk::Named(kind, to_vec(&gomap(fields)))
    }

    fn response(&self, status: &str, output: Value, usage: Value) -> Value {
        stream_response_object(
            &self.response_id,
            &self.request,
            self.created_at,
            status,
            output,
            usage,
        )
    }

    fn start(&mut self, out: &mut Vec<Chunk>) {
        if self.first_write {
            self.first_write = false;
            for kind in ["response.created", "response.in_progress"] {
                let r = self.response("in_progress", json!([]), Value::Null);
                out.push(self.event(kind, vec![("response", r)]));
            }
        }
    }

    fn thinking_delta(&mut self, thinking: &str, out: &mut Vec<Chunk>) {
        if !self.reasoning_started {
            self.reasoning_started = true;
            self.reasoning_id = (self.ids)("rs_");
            let item = gomap(vec![
                ("id", json!(self.reasoning_id)),
                ("type", json!("reasoning")),
                ("summary", json!([])),
            ]);
            let ev = self.event(
                "response.output_item.added",
                vec![("output_index", json!(self.output_index)), ("item", item)],
            );
            out.push(ev);
        }
        self.thinking.push_str(thinking);
        let ev = self.event(
            "response.reasoning_summary_text.delta",
            vec![
                ("item_id", json!(self.reasoning_id)),
                ("output_index", json!(self.output_index)),
                ("summary_index", json!(0)),
                ("delta", json!(thinking)),
            ],
        );
        out.push(ev);
    }

    fn finish_reasoning(&mut self, out: &mut Vec<Chunk>) {
        if !self.reasoning_started {
            return;
        }
        let id = std::mem::take(&mut self.reasoning_id);
        let thinking = std::mem::take(&mut self.thinking);
        let index = self.output_index;
        let item = gomap(vec![
            ("id", json!(id)),
            ("type", json!("reasoning")),
            (
                "summary",
                json!([gomap(vec![
                    ("type", json!("summary_text")),
                    ("text", json!(thinking))
                ])]),
            ),
            ("encrypted_content", json!(thinking)),
        ]);
        self.completed.push(item.clone());
        self.reasoning_started = false;
        self.output_index += 1;
        let ev = self.event(
            "response.reasoning_summary_text.done",
            vec![
                ("item_id", json!(id)),
                ("output_index", json!(index)),
                ("summary_index", json!(0)),
                ("text", json!(thinking)),
            ],
        );
        out.push(ev);
        let ev = self.event(
            "response.output_item.done",
            vec![("output_index", json!(index)), ("item", item)],
        );
        out.push(ev);
    }

    fn function_calls(&mut self, calls: &[ToolCall], out: &mut Vec<Chunk>) {
        self.finish_reasoning(out);
        let converted = to_wire_calls(calls);
        for (i, tc) in converted.iter().enumerate() {
            let index = self.output_index + i;
            let id = (self.ids)("fc_");
            let id = format!("{id}_{i}");
            let item = |status: &str, args: &str| {
                gomap(vec![
                    ("id", json!(id)),
                    ("type", json!("function_call")),
                    ("status", json!(status)),
                    ("call_id", json!(tc.id)),
                    ("name", json!(tc.function.name)),
                    ("arguments", json!(args)),
                ])
            };
            let done_item = item("completed", &tc.function.arguments);
            self.completed.push(done_item.clone());
            let added = item("in_progress", "");
            let evs = [
                self.event(
                    "response.output_item.added",
                    vec![("output_index", json!(index)), ("item", added)],
                ),
                self.event(
                    "response.function_call_arguments.delta",
                    vec![
                        ("item_id", json!(id)),
                        ("output_index", json!(index)),
                        ("delta", json!(tc.function.arguments)),
                    ],
                ),
                self.event(
                    "response.function_call_arguments.done",
                    vec![
                        ("item_id", json!(id)),
                        ("output_index", json!(index)),
                        ("arguments", json!(tc.function.arguments)),
                    ],
                ),
                self.event(
                    "response.output_item.done",
                    vec![("output_index", json!(index)), ("item", done_item)],
                ),
            ];
            out.extend(evs);
        }
        self.output_index += converted.len();
    }

    fn part(text: &str) -> Value {
        gomap(vec![
            ("type", json!("output_text")),
            ("text", json!(text)),
            ("annotations", json!([])),
            ("logprobs", json!([])),
        ])
    }

    fn message_item(&self, status: &str, content: Value) -> Value {
        gomap(vec![
            ("id", json!(self.item_id)),
            ("type", json!("message")),
            ("status", json!(status)),
            ("role", json!("assistant")),
            ("content", content),
        ])
    }

    fn text_delta(&mut self, content: &str, out: &mut Vec<Chunk>) {
        self.finish_reasoning(out);
        if !self.content_started {
            self.content_started = true;
            let item = self.message_item("in_progress", json!([]));
            let ev = self.event(
                "response.output_item.added",
                vec![("output_index", json!(self.output_index)), ("item", item)],
            );
            out.push(ev);
            let ev = self.event(
                "response.content_part.added",
                vec![
                    ("item_id", json!(self.item_id)),
                    ("output_index", json!(self.output_index)),
                    ("content_index", json!(0)),
                    ("part", Self::part("")),
                ],
            );
            out.push(ev);
        }
        self.text.push_str(content);
        let ev = self.event(
            "response.output_text.delta",
            vec![
                ("item_id", json!(self.item_id)),
                ("output_index", json!(self.output_index)),
                ("content_index", json!(0)),
                ("delta", json!(content)),
                ("logprobs", json!([])),
            ],
        );
        out.push(ev);
    }

    fn completion(&mut self, stats: &Stats, out: &mut Vec<Chunk>) {
        self.finish_reasoning(out);
        let text = self.text.clone();
        if !self.tool_calls_sent && self.content_started {
            let common = |this: &Self| {
                vec![
                    ("item_id", json!(this.item_id)),
                    ("output_index", json!(this.output_index)),
                    ("content_index", json!(0)),
                ]
            };
            let mut f = common(self);
            f.push(("text", json!(text)));
            f.push(("logprobs", json!([])));
            let ev = self.event("response.output_text.done", f);
            out.push(ev);
            let mut f = common(self);
            f.push(("part", Self::part(&text)));
            let ev = self.event("response.content_part.done", f);
            out.push(ev);
            let item = self.message_item("completed", json!([Self::part(&text)]));
            let ev = self.event(
                "response.output_item.done",
                vec![("output_index", json!(self.output_index)), ("item", item)],
            );
            out.push(ev);
        }
        let mut output = self.completed.clone();
        if self.content_started {
            output.push(self.message_item("completed", json!([Self::part(&text)])));
        }
        // Go marshals an empty (nil) output slice as null.
        let output = if output.is_empty() {
            Value::Null
        } else {
            Value::Array(output)
        };
        let mut response = self.response("completed", output, stream_usage(stats));
        if let Some(o) = response.as_object_mut() {
            o.insert("completed_at".into(), json!((self.clock)()));
        }
        let ev = self.event("response.completed", vec![("response", response)]);
        out.push(ev);
    }
}

impl Codec for ResponsesCodec {
    fn stream(&mut self, ev: &Event) -> Vec<Chunk> {
        let mut out = Vec::new();
        self.start(&mut out);
        match ev {
            Event::Delta {
                content, thinking, ..
            } => {
                if !thinking.is_empty() {
                    self.thinking_delta(thinking, &mut out);
                }
                if !self.tool_calls_sent && !content.is_empty() {
                    self.text_delta(content, &mut out);
                }
            }
            Event::ToolCalls(calls) if !calls.is_empty() => {
                let calls = with_ids(calls);
                self.function_calls(&calls, &mut out);
                self.tool_calls_sent = true;
            }
            Event::Done { stats, .. } => self.completion(stats, &mut out),
            _ => {}
        }
        out
    }

    fn stream_end(&mut self) -> Vec<Chunk> {
        Vec::new()
    }

    fn stream_error(&mut self, _status: u16, message: &str) -> Vec<Chunk> {
        let mut response = self.response("failed", Value::Null, Value::Null);
        if let Some(o) = response.as_object_mut() {
            o.insert(
                "error".into(),
                gomap(vec![
                    ("code", json!("server_error")),
                    ("message", json!(message)),
                ]),
            );
        }
        vec![self.event("response.failed", vec![("response", response)])]
    }

    fn collect(&mut self, ev: &Event) {
        match ev {
            Event::Delta {
                content, thinking, ..
            } => {
                self.all_text.push_str(content);
                self.all_thinking.push_str(thinking);
            }
            Event::ToolCalls(calls) => self.calls.extend(with_ids(calls)),
            Event::Done { stats, .. } => self.stats = stats.clone(),
            Event::Rendered { .. } => {}
        }
    }

    fn body(&mut self) -> Vec<u8> {
        let outcome = Outcome {
            content: &self.all_text,
            thinking: &self.all_thinking,
            tool_calls: &self.calls,
            stats: self.stats.clone(),
        };
        to_line(&to_response(
            &self.response_id,
            &self.item_id,
            self.created_at,
            (self.clock)(),
            &outcome,
            &self.request,
        ))
    }
}
