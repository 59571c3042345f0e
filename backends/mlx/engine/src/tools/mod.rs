//! Tool calls in generated text. The format is detected from the chat template: Qwen/Hermes
//! (`<tool_call>{json}</tool_call>`), Llama 3.x (a bare `{"name":..,"parameters":..}` object at
//! the start of the answer, optionally after `<|python_tag|>`) and Mistral
//! (`[TOOL_CALLS][{..},..]`). [`ToolParser`] buffers text that may be a call (as Ollama does),
//! passes everything else through, and turns complete calls into [`ToolCall`]s with
//! `call_xxxxxxxx` ids; a call whose JSON does not parse is given back as text.

mod json;

use rand::Rng;
use serde_json::{Map, Value};

use crate::thinking::partial_suffix;

/// How a model writes tool calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToolFormat {
    /// `<tool_call>{"name":..,"arguments":{..}}</tool_call>` (Qwen, Hermes, SmolLM3...).
    Hermes,
    /// A JSON object `{"name":..,"parameters":{..}}` as the whole answer (Llama 3.x).
    Llama,
    /// `[TOOL_CALLS]` followed by a JSON array of calls (Mistral).
    Mistral,
}

const HERMES_OPEN: &str = "<tool_call>";
const HERMES_CLOSE: &str = "</tool_call>";
const MISTRAL_OPEN: &str = "[TOOL_CALLS]";
const PYTHON_TAG: &str = "<|python_tag|>";

impl ToolFormat {
    /// The format a chat template asks for, if it renders tools at all.
    pub fn detect(template: &str) -> Option<Self> {
        if template.contains(HERMES_OPEN) {
            Some(ToolFormat::Hermes)
        } else if template.contains(MISTRAL_OPEN) {
            Some(ToolFormat::Mistral)
        } else if template.contains(PYTHON_TAG)
            || (template.contains("tools") && template.contains("\"parameters\""))
        {
            Some(ToolFormat::Llama)
        } else {
            None
        }
    }
}

/// A parsed tool call.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    /// `call_` + 8 characters `[a-z0-9]`.
    pub id: String,
    /// Position among the calls of this answer.
    pub index: usize,
    /// Function name.
    pub name: String,
    /// Arguments, in the order the model wrote them.
    pub arguments: Map<String, Value>,
}

/// A fresh call id: `call_` + 8 random `[a-z0-9]`.
pub fn call_id() -> String {
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::thread_rng();
    let tail: String = (0..8)
        .map(|_| CHARS[rng.gen_range(0..CHARS.len())] as char)
        .collect();
    format!("call_{tail}")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Looking for the start of a call.
    Scan,
    /// Inside a call: collecting its body.
    Body,
    /// Plain text from here on (Llama: the answer did not start with a call).
    Text,
}

/// What one [`ToolParser::push`] produced.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Parsed {
    /// Text to show.
    pub content: String,
    /// Complete calls.
    pub calls: Vec<ToolCall>,
}

/// Incremental tool-call extractor.
#[derive(Debug, Clone)]
pub struct ToolParser {
    format: ToolFormat,
    state: State,
    buf: String,
    next_index: usize,
}

impl ToolParser {
    /// A parser for `format`.
    pub fn new(format: ToolFormat) -> Self {
        ToolParser {
            format,
            state: State::Scan,
            buf: String::new(),
            next_index: 0,
        }
    }

    /// Feed content text.
    pub fn push(&mut self, text: &str) -> Parsed {
        self.buf.push_str(text);
        let mut out = Parsed::default();
        loop {
            let progressed = match self.state {
                State::Text => {
                    out.content.push_str(&std::mem::take(&mut self.buf));
                    false
                }
                State::Scan => self.scan(&mut out),
                State::Body => self.body(&mut out, false),
            };
            if !progressed {
                return out;
            }
        }
    }

    /// End of generation: complete what can be completed, give the rest back as text.
    pub fn flush(&mut self) -> Parsed {
        let mut out = Parsed::default();
        if self.state == State::Body {
            self.body(&mut out, true);
        }
        out.content.push_str(&std::mem::take(&mut self.buf));
        out
    }

    /// Returns true when the state changed and the loop should continue.
    fn scan(&mut self, out: &mut Parsed) -> bool {
        match self.format {
            ToolFormat::Hermes | ToolFormat::Mistral => {
                let tag = if self.format == ToolFormat::Hermes {
                    HERMES_OPEN
                } else {
                    MISTRAL_OPEN
                };
                if let Some(p) = self.buf.find(tag) {
                    out.content.push_str(&self.buf[..p]);
                    self.buf.drain(..p + tag.len());
                    self.state = State::Body;
                    return true;
                }
                let cut = self.buf.len() - partial_suffix(&self.buf, tag);
                out.content.push_str(&self.buf[..cut]);
                self.buf.drain(..cut);
                false
            }
            ToolFormat::Llama => {
                let owned = self.buf.clone();
                let t = owned.trim_start().trim_start_matches(';').trim_start();
                if t.is_empty() || (PYTHON_TAG.starts_with(t) && t.len() < PYTHON_TAG.len()) {
                    return false; // whitespace or a partial tag: wait
                }
                let t = t.strip_prefix(PYTHON_TAG).unwrap_or(t).trim_start();
                if t.starts_with('{') {
                    self.buf = t.to_string();
                    self.state = State::Body;
                } else if !t.is_empty() {
                    self.state = State::Text;
                }
                !t.is_empty()
            }
        }
    }

    /// Try to finish the call in `buf`; `end` = no more text is coming.
    fn body(&mut self, out: &mut Parsed, end: bool) -> bool {
        let (raw, rest, prefix) = match self.format {
            ToolFormat::Hermes => match self.buf.find(HERMES_CLOSE) {
                Some(p) => (
                    self.buf[..p].to_string(),
                    self.buf[p + HERMES_CLOSE.len()..].to_string(),
                    (HERMES_OPEN, HERMES_CLOSE),
                ),
                None if end => (
                    std::mem::take(&mut self.buf),
                    String::new(),
                    (HERMES_OPEN, ""),
                ),
                None => return false,
            },
            ToolFormat::Mistral | ToolFormat::Llama => {
                let lead = self.buf.len() - self.buf.trim_start().len();
                match json::value_end(&self.buf[lead..]) {
                    Some(n) => (
                        self.buf[..lead + n].to_string(),
                        self.buf[lead + n..].to_string(),
                        (
                            if self.format == ToolFormat::Mistral {
                                MISTRAL_OPEN
                            } else {
                                ""
                            },
                            "",
                        ),
                    ),
                    None if end || json::cannot_start(&self.buf[lead..]) => {
                        let open = if self.format == ToolFormat::Mistral {
                            MISTRAL_OPEN
                        } else {
                            ""
                        };
                        (std::mem::take(&mut self.buf), String::new(), (open, ""))
                    }
                    None => return false,
                }
            }
        };
        match serde_json::from_str::<Value>(raw.trim())
            .ok()
            .and_then(|v| calls_from(&v))
        {
            Some(calls) => {
                for (name, arguments) in calls {
                    out.calls.push(ToolCall {
                        id: call_id(),
                        index: self.next_index,
                        name,
                        arguments,
                    });
                    self.next_index += 1;
                }
            }
            None => {
                out.content.push_str(prefix.0);
                out.content.push_str(&raw);
                out.content.push_str(prefix.1);
                if self.format == ToolFormat::Llama {
                    self.state = State::Text;
                    self.buf = rest;
                    return true;
                }
            }
        }
        self.buf = rest;
        self.state = State::Scan;
        true
    }
}

/// `(name, arguments)` of each call in `v` (an object or an array of them).
fn calls_from(v: &Value) -> Option<Vec<(String, Map<String, Value>)>> {
    match v {
        Value::Array(items) if !items.is_empty() => items.iter().map(call_from).collect(),
        Value::Object(_) => call_from(v).map(|c| vec![c]),
        _ => None,
    }
}

fn call_from(v: &Value) -> Option<(String, Map<String, Value>)> {
    let o = v.as_object()?;
    let o = o.get("function").and_then(Value::as_object).unwrap_or(o);
    let name = o.get("name")?.as_str()?.to_string();
    let args = match o.get("arguments").or_else(|| o.get("parameters")) {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(Value::String(s)) => match serde_json::from_str::<Value>(s).ok()? {
            Value::Object(m) => m,
            _ => return None,
        },
        Some(_) => return None,
    };
    Some((name, args))
}

#[cfg(test)]
mod tests;
