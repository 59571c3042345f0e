//! ollmlx-conformance: checkable "drop-in" compatibility with Ollama.
//!
//! - [`cassette`]: the recorded-traffic format; [`formats`]: readers for the public recording
//!   formats (httprr, VCR YAML, body-only fixtures, Ollama's docs examples).
//! - [`normalize`] and [`compare`]: redact what legitimately differs, diff the rest.
//! - [`replay`] (recordings against a target), [`live`] (`record`, `diff` between two live
//!   servers), [`report`] (terminal table, HTML), [`known`] (documented deliberate differences).
//! - [`scenarios`]: the built-in scenario suite; [`mirror`]: scripted models that mirror a
//!   recording; [`scripted`]: the scripted model set of the live-client suites and
//!   `ollmlx-mock-serve`; [`serve`]: start an in-process ollmlx on a loopback port.

#![forbid(unsafe_code)]

pub mod cassette;
pub mod compare;
pub mod error;
pub mod formats;
pub mod http;
pub mod known;
pub mod live;
pub mod mirror;
pub mod normalize;
pub mod replay;
pub mod report;
pub mod scenarios;
pub mod scripted;
pub mod serve;

pub use cassette::Cassette;
pub use error::Error;
