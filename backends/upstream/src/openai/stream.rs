//! Inbound translation for [`super::OpenAiUpstream`]: the SSE chunks of an OpenAI-compatible
//! stream become ollmlx [`Event`]s, the step right before the dialect encoders.
//!
//! [`StreamState`] is a pure state machine (time is passed in) so that the event sequence can be
//! pinned in tests: text and reasoning deltas go out as they arrive, tool-call fragments are
//! accumulated by index and emitted as one [`Event::ToolCalls`] when the choice finishes, and the
//! final [`Event::Done`] carries upstream's token counts with timings measured here (time to
//! first token = prompt evaluation, the rest = generation).

use std::collections::BTreeMap;
use std::time::Instant;

use ollmlx_infer::{BackendError, DoneReason, Event, Logprob, Stats, TokenLogprob, ToolCall};
use serde_json::{Map, Value};

use super::types::{Chunk, ChunkLogprobs, ToolCallDelta, Usage};
use crate::error_body::message_from_json;
use crate::nanos;

/// Status used for an error reported inside a 200 stream without a usable code.
const MID_STREAM_STATUS: u16 = 500;

/// Accumulates one streamed completion.
#[derive(Debug)]
pub struct StreamState {
    label: String,
    started: Instant,
    first_token: Option<Instant>,
    drop_thinking: bool,
    calls: BTreeMap<usize, PartialCall>,
    finish_reason: Option<String>,
    usage: Option<Usage>,
    finished: bool,
}

#[derive(Debug, Default)]
struct PartialCall {
    id: String,
    name: String,
    arguments: String,
}

/// What the caller should do after a data payload.
#[derive(Debug, PartialEq)]
pub enum Step {
    /// Emit these events and keep reading.
    Events(Vec<Event>),
    /// `[DONE]`: emit these final events and stop.
    Done(Vec<Event>),
}

// === impl StreamState ===

impl StreamState {
    /// A stream whose request was sent at `started`. `drop_thinking` discards reasoning text
    /// (the client asked `think: false` but the upstream reasons anyway).
    pub fn new(label: impl Into<String>, started: Instant, drop_thinking: bool) -> Self {
        StreamState {
            label: label.into(),
            started,
            first_token: None,
            drop_thinking,
            calls: BTreeMap::new(),
            finish_reason: None,
            usage: None,
            finished: false,
        }
    }

    /// Consume one SSE `data` payload received at `now`.
    pub fn push(&mut self, data: &str, now: Instant) -> Result<Step, BackendError> {
        if data.trim() == "[DONE]" {
            return Ok(Step::Done(self.finish(now)?));
        }
        let v: Value = serde_json::from_str(data).map_err(|e| {
            BackendError::Unavailable(format!(
                "{} sent a stream event that is not JSON ({e}): {}",
                self.label,
                crate::client::snippet(data.as_bytes())
            ))
        })?;
        if let Some(err) = stream_error(&v) {
            return Err(err);
        }
        let chunk: Chunk = serde_json::from_value(v).map_err(|e| {
            BackendError::Unavailable(format!(
                "{} sent a stream chunk of unexpected shape: {e}",
                self.label
            ))
        })?;
        if let Some(u) = chunk.usage {
            self.usage = Some(u);
        }
        let mut events = Vec::new();
        for choice in chunk.choices.into_iter().filter(|c| c.index == 0) {
            let mut content = choice.text.unwrap_or_default();
            let mut thinking = String::new();
            if let Some(d) = choice.delta {
                content.push_str(d.content.as_deref().unwrap_or_default());
                thinking.push_str(d.reasoning_content.as_deref().unwrap_or_default());
                thinking.push_str(d.reasoning.as_deref().unwrap_or_default());
                for tc in d.tool_calls.unwrap_or_default() {
                    self.first_token.get_or_insert(now);
                    self.add_call_fragment(tc);
                }
            }
            if self.drop_thinking {
                thinking.clear();
            }
            let logprobs = logprobs(choice.logprobs);
            if !content.is_empty() || !thinking.is_empty() || !logprobs.is_empty() {
                self.first_token.get_or_insert(now);
                events.push(Event::Delta {
                    content,
                    thinking,
                    logprobs,
                });
            }
            if let Some(r) = choice.finish_reason {
                self.finish_reason = Some(r);
                if let Some(e) = self.take_tool_calls()? {
                    events.push(e);
                }
            }
        }
        Ok(Step::Events(events))
    }

    /// The stream ended without `[DONE]` at `now`: fine once a finish reason was seen (some
    /// servers omit the sentinel), otherwise the upstream broke off mid-generation.
    pub fn end_of_body(&mut self, now: Instant) -> Result<Vec<Event>, BackendError> {
        if self.finished {
            return Ok(Vec::new());
        }
        if self.finish_reason.is_none() {
            return Err(BackendError::Unavailable(format!(
                "{} ended the stream before the generation finished",
                self.label
            )));
        }
        self.finish(now)
    }

    fn finish(&mut self, now: Instant) -> Result<Vec<Event>, BackendError> {
        if self.finished {
            return Ok(Vec::new());
        }
        self.finished = true;
        let mut events = Vec::new();
        if let Some(e) = self.take_tool_calls()? {
            events.push(e);
        }
        let total = now.saturating_duration_since(self.started);
        let (prompt, eval) = match self.first_token {
            Some(t) => (
                t.saturating_duration_since(self.started),
                now.saturating_duration_since(t),
            ),
            None => (total, std::time::Duration::ZERO),
        };
        let usage = self.usage.unwrap_or_default();
        events.push(Event::Done {
            reason: done_reason(self.finish_reason.as_deref()),
            stats: Stats {
                total_duration: nanos(total),
                load_duration: 0,
                prompt_eval_count: usage.prompt_tokens,
                prompt_eval_duration: nanos(prompt),
                eval_count: usage.completion_tokens,
                eval_duration: nanos(eval),
            },
            context: None,
        });
        Ok(events)
    }

    fn add_call_fragment(&mut self, tc: ToolCallDelta) {
        let index = match tc.index {
            Some(i) => i,
            // No index: a new id starts a new call, anything else continues the last one.
            None => {
                let last = self.calls.keys().next_back().copied();
                match (&tc.id, last) {
                    (Some(id), Some(l)) if !id.is_empty() && self.calls[&l].id != *id => l + 1,
                    (_, Some(l)) => l,
                    (_, None) => 0,
                }
            }
        };
        let call = self.calls.entry(index).or_default();
        if let Some(id) = tc.id.filter(|s| !s.is_empty()) {
            call.id = id;
        }
        if let Some(f) = tc.function {
            call.name.push_str(f.name.as_deref().unwrap_or_default());
            call.arguments
                .push_str(f.arguments.as_deref().unwrap_or_default());
        }
    }

    fn take_tool_calls(&mut self) -> Result<Option<Event>, BackendError> {
        if self.calls.is_empty() {
            return Ok(None);
        }
        let calls = std::mem::take(&mut self.calls);
        let mut out = Vec::with_capacity(calls.len());
        for (position, (_, c)) in calls.into_iter().enumerate() {
            out.push(ToolCall {
                id: c.id,
                index: position,
                arguments: parse_arguments(&self.label, &c.name, &c.arguments)?,
                name: c.name,
            });
        }
        Ok(Some(Event::ToolCalls(out)))
    }
}

/// Tool arguments as an object: `""` is `{}`, a JSON string holding an object is unwrapped.
fn parse_arguments(
    label: &str,
    name: &str,
    text: &str,
) -> Result<Map<String, Value>, BackendError> {
    if text.trim().is_empty() {
        return Ok(Map::new());
    }
    let bad = |why: String| {
        BackendError::Internal(format!(
            "{label} returned arguments for tool call {name:?} that are not a JSON object ({why}): {}",
            crate::client::snippet(text.as_bytes())
        ))
    };
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(Value::String(inner)) => match serde_json::from_str::<Value>(&inner) {
            Ok(Value::Object(m)) => Ok(m),
            _ => Err(bad("a string".into())),
        },
        Ok(other) => Err(bad(format!("a {}", json_kind(&other)))),
        Err(e) => Err(bad(e.to_string())),
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// An error object sent as a stream event (`{"error":{...}}` or vLLM's `{"object":"error",...}`).
fn stream_error(v: &Value) -> Option<BackendError> {
    let is_error = v.get("error").is_some_and(|e| !e.is_null())
        || v.get("object").and_then(Value::as_str) == Some("error");
    if !is_error {
        return None;
    }
    let message = message_from_json(v).unwrap_or_else(|| v.to_string());
    let code = v
        .get("error")
        .and_then(|e| e.get("code"))
        .or_else(|| v.get("code"))
        .and_then(Value::as_u64)
        .and_then(|c| u16::try_from(c).ok())
        .filter(|c| (400..600).contains(c))
        .unwrap_or(MID_STREAM_STATUS);
    Some(BackendError::Upstream {
        status: code,
        message,
    })
}

fn done_reason(r: Option<&str>) -> DoneReason {
    match r {
        None | Some("stop") | Some("tool_calls") | Some("function_call") | Some("eos") => {
            DoneReason::Stop
        }
        Some("length") => DoneReason::Length,
        Some(other) => DoneReason::Other(other.to_string()),
    }
}

fn logprobs(lp: Option<ChunkLogprobs>) -> Vec<Logprob> {
    lp.and_then(|l| l.content)
        .unwrap_or_default()
        .into_iter()
        .map(|t| Logprob {
            bytes: t.bytes.unwrap_or_else(|| t.token.as_bytes().to_vec()),
            token: t.token,
            logprob: t.logprob,
            top_logprobs: t
                .top_logprobs
                .into_iter()
                .map(|a| TokenLogprob {
                    bytes: a.bytes.unwrap_or_else(|| a.token.as_bytes().to_vec()),
                    token: a.token,
                    logprob: a.logprob,
                })
                .collect(),
        })
        .collect()
}

#[cfg(test)]
mod tests;
