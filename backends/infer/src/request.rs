//! The one internal request type that every generation endpoint normalizes into.

use std::time::Duration;

use serde_json::{Map, Value};

use crate::options::Options;

/// A normalized generation request (chat or raw completion), whichever dialect it came from.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Request {
    /// The model name exactly as the client sent it (echoed back in responses).
    pub model: String,
    /// Chat messages or a single prompt.
    pub input: Input,
    /// Sampling and runtime options, already merged from the request (model defaults are the backend's).
    pub options: Options,
    /// Requested output format: free text, JSON, or a JSON schema.
    pub format: Option<Format>,
    /// Thinking switch; `None` means "model default" (on for thinking-capable models).
    pub think: Option<Think>,
    /// How long the model should stay loaded after this request; `None` means server default.
    pub keep_alive: Option<KeepAlive>,
    /// Whether the client asked for a stream (the backend streams either way).
    pub stream: bool,
    /// Return per-token log probabilities.
    pub logprobs: bool,
    /// Number of alternatives per token when `logprobs` is set (0..=20).
    pub top_logprobs: u32,
    /// Truncate the prompt to fit the context (default true).
    pub truncate: Option<bool>,
    /// Shift the context when generation reaches the limit (default true).
    pub shift: Option<bool>,
    /// Render the prompt only and return it instead of generating.
    pub debug_render_only: bool,
    /// Whether thinking may be silently dropped on non-thinking models (Anthropic route).
    pub relax_thinking: bool,
}

/// What the model is asked to continue.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// A conversation (`/api/chat`, `/v1/chat/completions`, `/v1/messages`, `/v1/responses`).
    Chat(ChatInput),
    /// A prompt (`/api/generate`, `/v1/completions`).
    Generate(GenerateInput),
}

impl Default for Input {
    fn default() -> Self {
        Input::Chat(ChatInput::default())
    }
}

/// A conversation plus the tools the model may call.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChatInput {
    /// The messages in order.
    pub messages: Vec<Message>,
    /// Tool definitions in Ollama's shape (`{"type":"function","function":{...}}`).
    pub tools: Vec<Value>,
}

/// A raw completion prompt.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GenerateInput {
    /// The prompt text.
    pub prompt: String,
    /// Text after the insertion point (fill-in-the-middle).
    pub suffix: String,
    /// System prompt override.
    pub system: String,
    /// Prompt template override (Go template syntax).
    pub template: String,
    /// Skip templating entirely.
    pub raw: bool,
    /// Decoded images attached to the prompt.
    pub images: Vec<Vec<u8>>,
    /// Token ids of an earlier exchange to continue from (deprecated upstream, still honoured).
    pub context: Vec<i64>,
}

/// One chat message.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Message {
    /// `system`, `user`, `assistant` or `tool` (lower-cased).
    pub role: String,
    /// Text content.
    pub content: String,
    /// Reasoning text of an earlier assistant turn.
    pub thinking: String,
    /// Decoded image bytes.
    pub images: Vec<Vec<u8>>,
    /// Tool calls made by an earlier assistant turn.
    pub tool_calls: Vec<ToolCall>,
    /// For `tool` messages: the tool that produced this result.
    pub tool_name: String,
    /// For `tool` messages: the call this result answers.
    pub tool_call_id: String,
}

/// A tool call produced by (or sent back to) the model.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ToolCall {
    /// Call id (`call_xxxxxxxx`), may be empty.
    pub id: String,
    /// Position of this call in the assistant turn.
    pub index: usize,
    /// Function name.
    pub name: String,
    /// Arguments as an ordered JSON object.
    pub arguments: Map<String, Value>,
}

/// Requested output format.
#[derive(Debug, Clone, PartialEq)]
pub enum Format {
    /// Any valid JSON value (`"json"`).
    Json,
    /// Output must validate against this JSON schema.
    Schema(Value),
}

/// Thinking request: on/off or a level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Think {
    /// `true` / `false`.
    Bool(bool),
    /// `"high"`, `"medium"`, `"low"` or `"max"`.
    Level(String),
}

impl Think {
    /// Whether thinking is on (`true` or any level).
    pub fn enabled(&self) -> bool {
        match self {
            Think::Bool(b) => *b,
            Think::Level(_) => true,
        }
    }
}

/// How long to keep a model loaded after a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeepAlive {
    /// Unload after this long idle (zero unloads right after the request).
    For(Duration),
    /// Never unload (any negative value on the wire).
    Forever,
}

impl KeepAlive {
    /// True when the model should be unloaded as soon as the request finishes.
    pub fn is_zero(&self) -> bool {
        matches!(self, KeepAlive::For(d) if d.is_zero())
    }
}

/// A normalized embedding request (`/api/embed`, `/api/embeddings`, `/v1/embeddings`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EmbedRequest {
    /// Model name as sent.
    pub model: String,
    /// Inputs to embed, in order.
    pub input: Vec<String>,
    /// Truncate inputs longer than the context (default true).
    pub truncate: Option<bool>,
    /// Truncate output vectors to this many dimensions (then re-normalize).
    pub dimensions: Option<usize>,
    /// Runtime options.
    pub options: Options,
    /// Keep-alive override.
    pub keep_alive: Option<KeepAlive>,
    /// Whether vectors are L2-normalized (true for `/api/embed` and `/v1/embeddings`).
    pub normalize: bool,
}

/// Embeddings for an [`EmbedRequest`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EmbedResponse {
    /// One vector per input.
    pub embeddings: Vec<Vec<f32>>,
    /// Tokens processed, summed over inputs.
    pub prompt_eval_count: u64,
    /// Time spent loading the model (ns).
    pub load_duration: u64,
    /// Total time (ns).
    pub total_duration: u64,
}
