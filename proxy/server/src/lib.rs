//! ollmlx-server: the HTTP front door.
//!
//! A hyper 1.x accept loop drives one tower stack (request ids, tracing, panic catching, CORS,
//! the loopback Host check) around the app service, which matches the route table, decodes the
//! body through the route's dialect, picks a backend by model name, and encodes the answer
//! (NDJSON or SSE) or the error (in the route's dialect, with upstream's status and text).

#![forbid(unsafe_code)]

pub mod app;
pub mod body;
pub mod encode;
pub mod handlers;
pub mod layers;
pub mod metrics;
pub mod respond;
pub mod router;
pub mod routes;
pub mod serve;
pub mod stack;
pub mod state;

pub use layers::cors::Origins;
pub use layers::host::HostPolicy;
pub use router::BackendRouter;
pub use serve::serve;
pub use stack::{build, StackConfig};
pub use state::{AppState, OLLAMA_API_VERSION};
