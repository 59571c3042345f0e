//! What a backend streams back: text deltas, tool calls, and one final `Done`.

use crate::request::ToolCall;

/// One step of a generation stream.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// New visible text and/or reasoning text.
    Delta {
        /// Visible content.
        content: String,
        /// Reasoning ("thinking") content.
        thinking: String,
        /// Log probabilities of the tokens in this delta, when requested.
        logprobs: Vec<Logprob>,
    },
    /// Complete tool calls parsed from the output.
    ToolCalls(Vec<ToolCall>),
    /// The prompt as rendered (only for `_debug_render_only` requests).
    Rendered {
        /// The rendered template.
        prompt: String,
        /// Number of images referenced.
        image_count: usize,
    },
    /// Generation finished. Always the last event of a successful stream.
    Done {
        /// Why it stopped.
        reason: DoneReason,
        /// Counts and timings.
        stats: Stats,
        /// Prompt + output token ids (generate only), for the deprecated `context` field.
        context: Option<Vec<i64>>,
    },
}

impl Event {
    /// A content-only delta.
    pub fn content(s: impl Into<String>) -> Self {
        Event::Delta {
            content: s.into(),
            thinking: String::new(),
            logprobs: Vec::new(),
        }
    }
    /// A thinking-only delta.
    pub fn thinking(s: impl Into<String>) -> Self {
        Event::Delta {
            content: String::new(),
            thinking: s.into(),
            logprobs: Vec::new(),
        }
    }
}

/// Why a generation ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DoneReason {
    /// End of sequence or a stop string.
    Stop,
    /// `num_predict` or the context limit was reached.
    Length,
    /// The request only loaded the model (empty prompt).
    Load,
    /// The request unloaded the model (empty prompt, keep_alive 0).
    Unload,
    /// Anything else a backend reports verbatim (proxy backends).
    Other(String),
}

impl DoneReason {
    /// The wire string (`"stop"`, `"length"`, ...).
    pub fn as_str(&self) -> &str {
        match self {
            DoneReason::Stop => "stop",
            DoneReason::Length => "length",
            DoneReason::Load => "load",
            DoneReason::Unload => "unload",
            DoneReason::Other(s) => s,
        }
    }
    /// Parse a wire string.
    pub fn parse(s: &str) -> Self {
        match s {
            "stop" => DoneReason::Stop,
            "length" => DoneReason::Length,
            "load" => DoneReason::Load,
            "unload" => DoneReason::Unload,
            other => DoneReason::Other(other.to_string()),
        }
    }
}

/// Counts and timings of one request, in the units Ollama reports (nanoseconds).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Wall time of the whole request.
    pub total_duration: u64,
    /// Time spent loading the model for this request.
    pub load_duration: u64,
    /// Prompt tokens processed.
    pub prompt_eval_count: u64,
    /// Time spent on the prompt.
    pub prompt_eval_duration: u64,
    /// Tokens generated.
    pub eval_count: u64,
    /// Time spent generating.
    pub eval_duration: u64,
}

/// Log probability of one sampled token.
#[derive(Debug, Clone, PartialEq)]
pub struct Logprob {
    /// The token text.
    pub token: String,
    /// Its log probability.
    pub logprob: f64,
    /// The token's UTF-8 bytes.
    pub bytes: Vec<u8>,
    /// The most likely alternatives at this position.
    pub top_logprobs: Vec<TokenLogprob>,
}

/// An alternative token and its log probability.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenLogprob {
    /// The token text.
    pub token: String,
    /// Its log probability.
    pub logprob: f64,
    /// The token's UTF-8 bytes.
    pub bytes: Vec<u8>,
}
