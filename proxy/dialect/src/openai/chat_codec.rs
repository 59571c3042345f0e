//! The `/v1/chat/completions` codec: backend events into `chat.completion.chunk` SSE data
//! (streaming) or one `chat.completion` body, mirroring Ollama's `ChatWriter`.
//!
//! Streaming shape: the role appears only on the first chunk; a delta carrying both reasoning and
//! content is split into a reasoning chunk then a content chunk; the finish reason travels in a
//! dedicated chunk with an empty delta `{}` (`stop` becomes `tool_calls` once a tool call was
//! sent); `include_usage` adds a chunk with `choices: []`; `[DONE]` closes the stream.

use ollmlx_infer::{Event, Logprob, Stats, ToolCall};
use ollmlx_wire::json::{to_line, to_vec};
use ollmlx_wire::ollama::DebugInfo;
use ollmlx_wire::openai::chat::{
    ChatCompletion, ChatCompletionChunk, Choice, ChoiceLogprobs, ChunkChoice, Delta,
    ResponseMessage, Usage,
};
use ollmlx_wire::openai::error::ErrorResponse;

use super::common::{to_wire_calls, to_wire_logprobs, with_ids};
use crate::{Chunk, Codec};

/// Encoder for one chat completion.
#[derive(Debug)]
pub struct ChatCodec {
    id: String,
    created: i64,
    model: String,
    include_usage: bool,
    first_sent: bool,
    tool_call_sent: bool,
    // Aggregation for non-streaming replies.
    content: String,
    thinking: String,
    tool_calls: Vec<ToolCall>,
    logprobs: Vec<Logprob>,
    reason: Option<String>,
    stats: Stats,
    debug: Option<DebugInfo>,
}

impl ChatCodec {
    /// A codec with a fixed id (`chatcmpl-<n>`) and `created` shared by every chunk.
    pub fn new(id: String, created: i64, model: String, include_usage: bool) -> Self {
        ChatCodec {
            id,
            created,
            model,
            include_usage,
            first_sent: false,
            tool_call_sent: false,
            content: String::new(),
            thinking: String::new(),
            tool_calls: Vec::new(),
            logprobs: Vec::new(),
            reason: None,
            stats: Stats::default(),
            debug: None,
        }
    }

    fn chunk(&self, choices: Vec<ChunkChoice>, usage: Option<Usage>) -> Chunk {
        Chunk::Data(to_vec(&ChatCompletionChunk {
            id: self.id.clone(),
            object: "chat.completion.chunk".into(),
            created: self.created,
            model: self.model.clone(),
            system_fingerprint: "fp_ollama".into(),
            choices,
            usage,
        }))
    }

    fn delta_chunk(&mut self, delta: Delta, logprobs: &[Logprob]) -> Chunk {
        let logprobs = (!logprobs.is_empty()).then(|| ChoiceLogprobs {
            content: to_wire_logprobs(logprobs),
        });
        self.chunk(
            vec![ChunkChoice {
                index: 0,
                delta,
                finish_reason: None,
                logprobs,
            }],
            None,
        )
    }

    fn role(&mut self) -> String {
        if self.first_sent {
            String::new()
        } else {
            self.first_sent = true;
            "assistant".into()
        }
    }
}

/// Usage from the final stats.
pub(crate) fn usage(stats: &Stats) -> Usage {
    Usage {
        prompt_tokens: stats.prompt_eval_count,
        completion_tokens: stats.eval_count,
        total_tokens: stats.prompt_eval_count + stats.eval_count,
    }
}

impl Codec for ChatCodec {
    fn stream(&mut self, ev: &Event) -> Vec<Chunk> {
        match ev {
            Event::Delta {
                content,
                thinking,
                logprobs,
            } => {
                if content.is_empty() && thinking.is_empty() && logprobs.is_empty() {
                    return Vec::new();
                }
                let role = self.role();
                if !thinking.is_empty() && !content.is_empty() {
                    // Reasoning first, then the content on its own chunk.
                    let first = Delta {
                        role,
                        content: None,
                        reasoning: thinking.clone(),
                        tool_calls: Vec::new(),
                    };
                    let second = Delta {
                        content: Some(content.clone()),
                        ..Default::default()
                    };
                    vec![
                        self.delta_chunk(first, logprobs),
                        self.delta_chunk(second, &[]),
                    ]
                } else {
                    let delta = Delta {
                        role,
                        content: Some(content.clone()),
                        reasoning: thinking.clone(),
                        tool_calls: Vec::new(),
                    };
                    vec![self.delta_chunk(delta, logprobs)]
                }
            }
            Event::ToolCalls(calls) => {
                if calls.is_empty() {
                    return Vec::new();
                }
                let calls = with_ids(calls);
                let role = self.role();
                self.tool_call_sent = true;
                let delta = Delta {
                    role,
                    content: Some(String::new()),
                    reasoning: String::new(),
                    tool_calls: to_wire_calls(&calls),
                };
                vec![self.delta_chunk(delta, &[])]
            }
            Event::Rendered { .. } => Vec::new(),
            Event::Done { reason, stats, .. } => {
                let mut out = Vec::new();
                if !self.first_sent {
                    // A wholly empty completion still opens with a role chunk.
                    let role = self.role();
                    let delta = Delta {
                        role,
                        content: Some(String::new()),
                        ..Default::default()
                    };
                    out.push(self.delta_chunk(delta, &[]));
                }
                let mut finish = reason.as_str().to_string();
                if finish.is_empty() {
                    finish = "stop".into();
                }
                if finish == "stop" && self.tool_call_sent {
                    finish = "tool_calls".into();
                }
                out.push(self.chunk(
                    vec![ChunkChoice {
                        index: 0,
                        delta: Delta::default(),
                        finish_reason: Some(finish),
                        logprobs: None,
                    }],
                    None,
                ));
                if self.include_usage {
                    out.push(self.chunk(Vec::new(), Some(usage(stats))));
                }
                out
            }
        }
    }

    fn stream_end(&mut self) -> Vec<Chunk> {
        vec![Chunk::Done]
    }

    fn stream_error(&mut self, status: u16, message: &str) -> Vec<Chunk> {
        // OpenAI SDKs raise on an SSE chunk that carries `error`.
        vec![Chunk::Data(to_vec(&ErrorResponse::new(status, message)))]
    }

    fn collect(&mut self, ev: &Event) {
        match ev {
            Event::Delta {
                content,
                thinking,
                logprobs,
            } => {
                self.content.push_str(content);
                self.thinking.push_str(thinking);
                self.logprobs.extend(logprobs.iter().cloned());
            }
            Event::ToolCalls(calls) => self.tool_calls.extend(with_ids(calls)),
            Event::Rendered {
                prompt,
                image_count,
            } => {
                self.debug = Some(DebugInfo {
                    rendered_template: prompt.clone(),
                    image_count: *image_count,
                });
            }
            Event::Done { reason, stats, .. } => {
                self.reason = Some(reason.as_str().to_string());
                self.stats = stats.clone();
            }
        }
    }

    fn body(&mut self) -> Vec<u8> {
        let tool_calls = to_wire_calls(&self.tool_calls);
        let finish_reason = self.reason.clone().and_then(|mut r| {
            if r == "stop" && !tool_calls.is_empty() {
                r = "tool_calls".into();
            }
            (!r.is_empty()).then_some(r)
        });
        let logprobs = (!self.logprobs.is_empty()).then(|| ChoiceLogprobs {
            content: to_wire_logprobs(&self.logprobs),
        });
        let role = if self.debug.is_some() {
            String::new()
        } else {
            "assistant".into()
        };
        to_line(&ChatCompletion {
            id: self.id.clone(),
            object: "chat.completion".into(),
            created: self.created,
            model: self.model.clone(),
            system_fingerprint: "fp_ollama".into(),
            choices: vec![Choice {
                index: 0,
                message: ResponseMessage {
                    role,
                    content: self.content.clone(),
                    reasoning: self.thinking.clone(),
                    tool_calls,
                },
                finish_reason,
                logprobs,
            }],
            usage: usage(&self.stats),
            debug_info: self.debug.clone(),
        })
    }
}
