//! Constrained decoding for `format` (Ollama's `"json"` or a JSON schema; OpenAI's
//! `response_format`). Sits at the sampling call site of the decode loop
//! ([`crate::generate`]): before each token is sampled, [`Constraint::mask`] sets the logits of
//! every token that cannot continue a valid prefix to −∞; after it is chosen,
//! [`Constraint::accept`] advances the grammar. When the grammar is complete the request ends
//! (`done_reason: "stop"`), like a grammar that only admits EOS.
//!
//! The grammar engine is `llguidance` (JSON schema → Earley parser + lexer, token masks over a
//! trie of the vocabulary's bytes from [`VocabBytes`]). `"json"` is Ollama's JSON grammar: a
//! top-level object. Whitespace between JSON tokens is limited to runs of
//! [`MAX_WHITESPACE`] characters so a small model cannot loop on newlines forever.
//!
//! Thinking models think unconstrained, as Ollama does (it restarts with the grammar once content
//! begins): when the prompt opened `<think>` (or the model opens it with its first token), the
//! grammar applies from the token that closes `</think>` on.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;

use llguidance::api::TopLevelGrammar;
use llguidance::{Matcher, ParserFactory};
use serde_json::{json, Value};
use toktrie::{ApproximateTokEnv, TokEnv, TokRxInfo, TokTrie};

use crate::constrain_vocab::VocabBytes;
use crate::error::EngineError;

/// Longest whitespace run allowed between JSON tokens.
pub const MAX_WHITESPACE: usize = 24;

/// The requested output format.
#[derive(Debug, Clone, PartialEq)]
pub enum FormatSpec {
    /// Any JSON object (Ollama's `format: "json"`, OpenAI's `json_object`).
    Json,
    /// An instance of this JSON schema.
    Schema(Value),
}

impl FormatSpec {
    /// The JSON schema the grammar is compiled from, with our whitespace limit (a schema's own
    /// `x-guidance` options win).
    pub fn schema(&self) -> Value {
        let mut s = match self {
            FormatSpec::Json => json!({"type": "object"}),
            FormatSpec::Schema(v) => v.clone(),
        };
        if let Value::Object(o) = &mut s {
            o.entry("x-guidance").or_insert_with(|| {
                json!({
                    "whitespace_pattern": format!("[\\x20\\x0A\\x0D\\x09]{{1,{MAX_WHITESPACE}}}"),
                    "lenient": true,
                    "json_allow_general_unicode_escapes": true,
                })
            });
        }
        s
    }
}

/// The vocabulary of one model as llguidance sees it (built once per model and logits width).
pub struct GrammarEnv {
    factory: ParserFactory,
}

impl GrammarEnv {
    /// A grammar environment over `vocab` padded to `n_vocab` ids (the logits width); `eos` are
    /// the ids that end generation (allowed once the grammar is complete).
    pub fn new(vocab: &VocabBytes, n_vocab: usize, eos: &[u32]) -> Result<Self, EngineError> {
        let n = n_vocab.max(vocab.len());
        let mut words: Vec<Vec<u8>> = Vec::with_capacity(n);
        for id in 0..n {
            let special = vocab.special.get(id).copied().unwrap_or(true);
            let bytes = vocab.bytes.get(id).cloned().unwrap_or_default();
            words.push(if special || bytes.is_empty() {
                // Special tokens are spelled with llguidance's marker byte so no grammar
                // matches them.
                let mut w = vec![TokTrie::SPECIAL_TOKEN_MARKER];
                w.extend_from_slice(format!("<[{id}]>").as_bytes());
                w
            } else {
                bytes
            });
        }
        let mut eos: Vec<u32> = eos.iter().copied().filter(|&e| (e as usize) < n).collect();
        eos.sort_unstable();
        let first = *eos.first().ok_or_else(|| {
            EngineError::InvalidRequest("format needs a model with an end-of-sequence token".into())
        })?;
        let info = TokRxInfo::new(n as u32, first);
        let mut trie = TokTrie::from(&info, &words);
        if eos.len() > 1 {
            trie = trie.with_eos_tokens(&eos);
        }
        let env: TokEnv = Arc::new(ApproximateTokEnv::new(trie));
        let mut factory = ParserFactory::new_simple(&env).map_err(grammar_error)?;
        factory.set_stderr_log_level(0);
        Ok(GrammarEnv { factory })
    }

    fn matcher(&self, spec: &FormatSpec) -> Result<Matcher, EngineError> {
        let grammar = TopLevelGrammar::from_json_schema(spec.schema());
        let parser = self.factory.create_parser(grammar).map_err(|e| {
            EngineError::InvalidRequest(format!("invalid JSON schema in format: {e}"))
        })?;
        let m = Matcher::new(Ok(parser));
        if let Some(e) = m.get_error() {
            return Err(EngineError::InvalidRequest(format!(
                "invalid JSON schema in format: {e}"
            )));
        }
        Ok(m)
    }
}

fn grammar_error(e: impl std::fmt::Display) -> EngineError {
    EngineError::Model(format!("constrained decoding: {e}"))
}

thread_local! {
    /// Grammar environments of the engine thread, per weights path and logits width (the
    /// vocabulary trie takes a moment to build; it is reused by every `format` request).
    static ENVS: RefCell<HashMap<(PathBuf, usize), Rc<GrammarEnv>>> = RefCell::new(HashMap::new());
}

/// The cached grammar environment of a model, built on first use.
pub(crate) fn env_for(
    path: &std::path::Path,
    n_vocab: usize,
    vocab: &VocabBytes,
    eos: &[u32],
) -> Result<Rc<GrammarEnv>, EngineError> {
    let key = (path.to_path_buf(), n_vocab);
    if let Some(e) = ENVS.with(|m| m.borrow().get(&key).cloned()) {
        return Ok(e);
    }
    let env = Rc::new(GrammarEnv::new(vocab, n_vocab, eos)?);
    ENVS.with(|m| m.borrow_mut().insert(key, env.clone()));
    Ok(env)
}

/// Where the output is relative to a thinking block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ThinkGate {
    /// Constrain from the first token.
    Off,
    /// The prompt opened `<think>`: unconstrained until `</think>` has been generated.
    Inside,
    /// A thinking model whose prompt did not open the block: the first token may be the
    /// `<think>` token (then [`ThinkGate::Inside`]); otherwise constrain from the start.
    MayOpen(Option<u32>),
}

const THINK_CLOSE: &[u8] = b"</think>";

/// The grammar state of one request.
pub struct Constraint {
    matcher: Matcher,
    gate: ThinkGate,
    /// Generated bytes while inside a thinking block (only the tail is kept).
    thought: Vec<u8>,
    /// Ids beyond the logits width are never allowed.
    n_vocab: usize,
    vocab_bytes: Rc<VocabBytes>,
}

impl Constraint {
    /// A constraint for `spec` over `env`.
    pub fn new(
        env: &GrammarEnv,
        spec: &FormatSpec,
        gate: ThinkGate,
        n_vocab: usize,
        vocab_bytes: Rc<VocabBytes>,
    ) -> Result<Self, EngineError> {
        Ok(Constraint {
            matcher: env.matcher(spec)?,
            gate,
            thought: Vec::new(),
            n_vocab,
            vocab_bytes,
        })
    }

    /// Whether the grammar is being applied now (false while thinking).
    pub fn active(&self) -> bool {
        !matches!(self.gate, ThinkGate::Inside)
    }

    /// Mask `logits` to the tokens allowed next. Returns false when no token is allowed (the
    /// request then ends).
    pub fn mask(&mut self, logits: &mut [f32]) -> Result<bool, EngineError> {
        if !self.active() {
            return Ok(true);
        }
        let allowed = self.matcher.compute_mask_or_eos().map_err(grammar_error)?;
        let mut any = false;
        for (i, l) in logits.iter_mut().enumerate() {
            let ok = i < self.n_vocab && allowed.is_allowed(i as u32);
            let think_open = matches!(self.gate, ThinkGate::MayOpen(Some(t)) if t as usize == i);
            if ok || think_open {
                any |= l.is_finite();
            } else {
                *l = f32::NEG_INFINITY;
            }
        }
        Ok(any)
    }

    /// Advance past the chosen token (not for end-of-sequence ids).
    pub fn accept(&mut self, token: u32) -> Result<(), EngineError> {
        match self.gate {
            ThinkGate::MayOpen(Some(t)) if t == token => {
                self.gate = ThinkGate::Inside;
                return Ok(());
            }
            ThinkGate::MayOpen(_) => self.gate = ThinkGate::Off,
            ThinkGate::Inside => {
                self.thought.extend_from_slice(self.vocab_bytes.get(token));
                if self
                    .thought
                    .windows(THINK_CLOSE.len())
                    .any(|w| w == THINK_CLOSE)
                {
                    self.gate = ThinkGate::Off;
                    self.thought.clear();
                } else {
                    let keep = THINK_CLOSE.len() - 1;
                    if self.thought.len() > keep {
                        self.thought.drain(..self.thought.len() - keep);
                    }
                }
                return Ok(());
            }
            ThinkGate::Off => {}
        }
        self.matcher.consume_token(token).map_err(grammar_error)
    }

    /// True once the output is a complete instance: generation ends here.
    pub fn is_complete(&self) -> bool {
        self.active() && self.matcher.is_stopped()
    }
}

#[cfg(test)]
#[path = "constrain_tests.rs"]
mod tests;
