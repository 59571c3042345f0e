//! The documented differences between ollmlx and a recording. Every rule here has a matching
//! entry in `docs/conformance.md`.
//!
//! - [`Verdict::Deliberate`]: ollmlx differs on purpose, or the recording is not of v0.33
//!   behaviour (older version, hand-edited fixture), or the test backend cannot produce it.
//!   The case passes (`pass*`).
//! - [`Verdict::Open`]: a real incompatibility that is known and tracked. The case still fails
//!   (`replay` exits 1); the golden test pins the exact list so a fix must remove the rule.
//!
//! A difference no rule covers fails the case.

use serde_json::Value;

use crate::cassette::{Cassette, Tier};
use crate::compare::Difference;

/// Why a difference is accepted (or tracked).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Documented, deliberate: the case passes.
    Deliberate(&'static str),
    /// Known, tracked incompatibility: the case fails with this note.
    Open(&'static str),
}

/// `/api/chat` field order.
pub const CHAT_DONE_ORDER: &str =
    "recorded from Ollama <= 0.11 (struct order `done_reason`, `done`); \
     v0.33's api.ChatResponse declares `done` before `done_reason`, which ollmlx follows";
/// The scripted backend has no registry.
pub const NO_REGISTRY: &str = "scripted backend has no registry/store: pull, push and create \
     are checked byte for byte in proxy mode only";
/// Seed fixture re-serialized by its publisher.
pub const RESERIALIZED: &str =
    "fixture re-serialized by prism (`model` moved after `embeddings`, INDEX.md)";
/// Tool-call `index` absent in old recordings.
pub const TOOL_INDEX: &str = "recorded before Ollama emitted `function.index` on every tool call (<= v0.9); v0.33 always emits it";
/// Hand-written fixture.
pub const HAND_WRITTEN: &str = "hand-written fixture (INDEX.md): not real Ollama output";
/// Text in the done chunk.
pub const TEXT_IN_DONE: &str =
    "ollmlx sends generated text in content chunks before the done chunk, never inside it";
/// Docs from older versions.
pub const DOCS_OLD: &str =
    "docs example from an older Ollama (`images: null` in assistant messages)";

/// Classify one difference of case `c`.
pub fn classify(c: &Cassette, d: &Difference) -> Option<Verdict> {
    let path = c.request.path.as_str();
    let src = c.meta.source.as_str();
    if matches!(path, "/api/pull" | "/api/push" | "/api/create") {
        return Some(Verdict::Deliberate(NO_REGISTRY));
    }
    if src.contains("stream-with-thinking-1.sse") {
        return Some(Verdict::Deliberate(HAND_WRITTEN));
    }
    if path == "/api/chat"
        && d.kind == "order"
        && d.expected.contains("\"done_reason\", \"done\"")
        && d.actual.contains("\"done\", \"done_reason\"")
    {
        return Some(Verdict::Deliberate(CHAT_DONE_ORDER));
    }
    if src.contains("prism/") && src.contains("embeddings-") && d.kind == "order" {
        return Some(Verdict::Deliberate(RESERIALIZED));
    }
    if d.kind == "extra"
        && d.path.ends_with("function.index")
        && matches!(c.meta.tier, Tier::Body | Tier::Raw)
    {
        return Some(Verdict::Deliberate(TOOL_INDEX));
    }
    if c.meta.tier == Tier::Docs && d.path.ends_with(".images") && d.expected == "null" {
        return Some(Verdict::Deliberate(DOCS_OLD));
    }
    if text_in_done_chunk(c) && d.path.starts_with("body.ndjson") {
        return Some(Verdict::Deliberate(TEXT_IN_DONE));
    }
    None
}

/// True when the recording's done chunk carries generated text.
fn text_in_done_chunk(c: &Cassette) -> bool {
    c.response.frames.iter().flatten().any(|f| {
        serde_json::from_str::<Value>(f.trim()).is_ok_and(|v| {
            v.get("done") == Some(&Value::Bool(true))
                && [v.pointer("/message/content"), v.get("response")]
                    .into_iter()
                    .flatten()
                    .any(|t| t.as_str().is_some_and(|s| !s.is_empty()))
        })
    })
}
