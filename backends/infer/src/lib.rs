//! ollmlx-infer: the seam between the protocol layer and inference.
//!
//! Every dialect (Ollama native, OpenAI, Anthropic) is decoded into one [`Request`], routed to a
//! [`Backend`] by model name, and answered with a stream of [`Event`]s. Backends always stream;
//! `stream: false` is aggregation done by the dialect layer. Nothing in this crate knows about HTTP
//! or MLX.

pub mod backend;
pub mod error;
pub mod event;
pub mod metrics;
pub mod options;
pub mod request;

pub use backend::{
    Backend, BackendFuture, DynBackend, EventStream, ManageRequest, ProgressStream, RawBody,
    RawRequest, RawResponse,
};
pub use error::BackendError;
pub use event::{DoneReason, Event, Logprob, Stats, TokenLogprob};
pub use metrics::{BackendMetric, MetricKind};
pub use options::{OptionError, Options};
pub use request::{
    ChatInput, EmbedRequest, EmbedResponse, Format, GenerateInput, Input, KeepAlive, Message,
    Request, Think, ToolCall,
};
