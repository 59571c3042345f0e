//! ollmlx's command line, as a library: the HTTP client, environment configuration
//! ([`env::Env`], shared with the server), output formatting, progress display, turning a
//! Modelfile into a create request, and the commands themselves ([`cmd::main`]).

pub mod client;
pub mod cmd;
pub mod config;
pub mod duration;
pub mod env;
pub mod format;
pub mod modelfile;
pub mod params;
pub mod progress;
