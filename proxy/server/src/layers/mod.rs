//! Hand-written tower middleware: Ollama's CORS rules and the loopback Host-header check.

pub mod cors;
pub mod host;
