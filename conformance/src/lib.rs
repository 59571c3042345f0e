//! ollmlx-conformance: test tooling around the server.
//!
//! Holds the scripted model set used by the live-client suites (`scripted`), and the
//! `ollmlx-mock-serve` binary that serves it over the real server stack.

#![forbid(unsafe_code)]

pub mod scripted;
