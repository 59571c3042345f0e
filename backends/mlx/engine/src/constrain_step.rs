//! The hook at the sampling call site of the decode loop ([`crate::generate`]) for requests with
//! `format` and/or `logprobs`: takes one step's logits, reports the raw distribution's logprobs
//! for the chosen token ([`crate::logprobs`]), masks the logits with the grammar
//! ([`crate::constrain`]), samples, and advances the grammar once the token is taken. Requests
//! with neither never build one (and keep the device-side greedy path).

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::PathBuf;
use std::rc::Rc;

use crate::constrain::{self, Constraint, FormatSpec, ThinkGate};
use crate::constrain_vocab::VocabBytes;
use crate::engine::{EngineEvent, Resident};
use crate::error::EngineError;
use crate::logprobs;
use crate::outbox::Outbox;
use crate::sampler::Sampler;
use crate::thinking;

thread_local! {
    /// Byte tables of the engine thread's tokenizers, per weights path.
    static VOCABS: RefCell<HashMap<PathBuf, Rc<VocabBytes>>> = RefCell::new(HashMap::new());
}

fn vocab_for(m: &Resident) -> Result<Rc<VocabBytes>, EngineError> {
    let key = m.info.path.clone();
    if let Some(v) = VOCABS.with(|c| c.borrow().get(&key).cloned()) {
        return Ok(v);
    }
    let v = Rc::new(VocabBytes::from_tokenizer(
        &m.tokenizer.embedding_tokenizer(),
    )?);
    VOCABS.with(|c| c.borrow_mut().insert(key, v.clone()));
    Ok(v)
}

/// Per-request state of the hook.
pub(crate) struct Guide {
    format: Option<FormatSpec>,
    gate: ThinkGate,
    constraint: Option<Constraint>,
    top_logprobs: Option<usize>,
    vocab: Rc<VocabBytes>,
    eos: Vec<u32>,
    path: PathBuf,
}

impl Guide {
    /// The hook for a request, or `None` when it asks for neither `format` nor logprobs.
    /// `thinking` = the model thinks and thinking is on; `prompt` is the rendered prompt.
    pub(crate) fn new(
        m: &Resident,
        format: Option<&FormatSpec>,
        top_logprobs: Option<usize>,
        thinking: bool,
        prompt: &str,
    ) -> Result<Option<Self>, EngineError> {
        if format.is_none() && top_logprobs.is_none() {
            return Ok(None);
        }
        let vocab = vocab_for(m)?;
        let gate = if !thinking {
            ThinkGate::Off
        } else if prompt.trim_end().ends_with(thinking::OPEN) {
            ThinkGate::Inside
        } else {
            let open = vocab
                .bytes
                .iter()
                .position(|b| b == thinking::OPEN.as_bytes())
                .map(|i| i as u32);
            ThinkGate::MayOpen(open)
        };
        let mut eos: Vec<u32> = m.tokenizer.eos_ids.iter().copied().collect();
        eos.sort_unstable();
        Ok(Some(Guide {
            format: format.cloned(),
            gate,
            constraint: None,
            top_logprobs,
            vocab,
            eos,
            path: m.info.path.clone(),
        }))
    }

    /// Choose the next token from `row` (one step's logits). Sends the token's logprobs on
    /// `reply` when asked for (not for end-of-sequence). `None`: the grammar admits no token,
    /// generation ends.
    pub(crate) fn sample(
        &mut self,
        sampler: &mut Sampler,
        mut row: Vec<f32>,
        history: &[u32],
        reply: &mut Outbox,
    ) -> Result<Option<u32>, EngineError> {
        if let (Some(spec), None) = (&self.format, &self.constraint) {
            let env = constrain::env_for(&self.path, row.len(), &self.vocab, &self.eos)?;
            self.constraint = Some(Constraint::new(
                &env,
                spec,
                self.gate.clone(),
                row.len(),
                self.vocab.clone(),
            )?);
        }
        let raw = self.top_logprobs.map(|_| row.clone());
        if let Some(c) = &mut self.constraint {
            if !c.mask(&mut row)? {
                return Ok(None);
            }
        }
        let tok = sampler.sample(&mut row, history);
        if let (Some(raw), Some(n)) = (raw, self.top_logprobs) {
            if !self.eos.contains(&tok) {
                let lp = logprobs::report(&raw, tok, n, &self.vocab);
                // A closed channel is noticed by the decode loop right after.
                reply.send(EngineEvent::Logprobs(lp));
            }
        }
        Ok(Some(tok))
    }

    /// The chosen (non-EOS) token was taken: advance the grammar. True when the output is now
    /// complete and generation must end.
    pub(crate) fn accept(&mut self, tok: u32) -> Result<bool, EngineError> {
        match &mut self.constraint {
            Some(c) => {
                c.accept(tok)?;
                Ok(c.is_complete())
            }
            None => Ok(false),
        }
    }
}
