//! One request's decode state on the engine thread, between its prefill and its final event.
//!
//! Request path: the engine thread admits a [`GenerateRequest`] with [`start`] (render, tokenize,
//! reuse a cached prefix, prefill: [`crate::generate`]), which hands back a [`Sequence`] plus the
//! request's own KV caches and first logits; [`crate::batch::Batch`] then decodes it together with
//! the other admitted requests of the same model. Per step the batch picks a token for each row
//! (device argmax, or [`Sequence::pick`] on the host for sampling, `format` and logprobs) and
//! [`Sequence::advance`] streams it: end-of-sequence, detokenizer, stop strings, thinking / tool
//! parsing, `num_predict`, context end. [`Sequence::finish`] flushes and builds the final
//! [`Done`].

use std::time::{Duration, Instant};

use mlx_rs::Array;
use ollmlx_models::KvCache;
use tokio::sync::mpsc::Sender;

use crate::constrain_step::Guide;
use crate::engine::{EngineEvent, Resident};
use crate::error::EngineError;
use crate::generate::{self, Done, FinishReason, GenStats, GenerateRequest, Prompt};
use crate::outbox::Outbox;
use crate::output::OutputPipeline;
use crate::sampler::{Sampler, SamplerConfig};
use crate::stop::StopMatcher;
use crate::thinking::{self, ThinkingParser};
use crate::tokenizer::Detokenizer;
use crate::tools::{ToolFormat, ToolParser};

/// What [`start`] produced.
pub(crate) enum Started {
    /// Finished without decoding (a load-only request).
    Done(Done),
    /// A `render_only` request: the prompt as the template rendered it.
    Rendered(String),
    /// Set up; its prompt is evaluated by [`Prefill::advance`] (in the batch's turn).
    Prefilling(Box<Prefill>),
}

/// What a row does after a token was streamed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flow {
    /// Decode on: feed the token next step.
    Continue,
    /// The context is full: shift it (rebuild this row's cache), then feed the token.
    Shift,
    /// Finished for this reason.
    Stop(FinishReason),
    /// The client went away.
    Cancelled,
}

/// The decode state of one request.
pub(crate) struct Sequence {
    pub(crate) req: Box<GenerateRequest>,
    pub(crate) reply: Outbox,
    t0: Instant,
    stats: GenStats,
    decode_start: Instant,
    pub(crate) sampler: Sampler,
    /// Prompt + generated tokens (after truncation / shifts).
    pub(crate) history: Vec<u32>,
    /// Tokens whose keys/values this row's cache holds, in order.
    pub(crate) cached: Vec<u32>,
    detok: Detokenizer,
    stop: StopMatcher,
    output: OutputPipeline,
    guide: Option<Guide>,
    pub(crate) generated: usize,
    pub(crate) num_ctx: usize,
    /// Greedy without host-side penalties, `format` or logprobs: the token is the device argmax.
    pub(crate) device_greedy: bool,
}

/// Render, tokenize, find the longest cached prefix (the model's live cache or a prefix-cache
/// snapshot) and set up the decode state; the rest of the prompt is evaluated by
/// [`Prefill::advance`].
pub(crate) fn start(
    m: &mut Resident,
    req: Box<GenerateRequest>,
    reply: Sender<EngineEvent>,
    load: Duration,
    t0: Instant,
) -> Result<Started, EngineError> {
    let mut stats = GenStats {
        load,
        ..Default::default()
    };
    if req.prompt == Prompt::LoadOnly {
        stats.total = t0.elapsed();
        return Ok(Started::Done(Done {
            reason: FinishReason::Load,
            stats,
            context: None,
        }));
    }
    if req.think == Some(true) && !m.thinks && !req.relax_thinking {
        return Err(EngineError::Unsupported(format!(
            "\"{}\" does not support thinking",
            req.model.name
        )));
    }
    let thinking_on = m.thinks && req.think != Some(false);
    let text = match &req.rendered {
        Some(t) => t.clone(),
        None => generate::render(m, &req.prompt, m.thinks.then_some(thinking_on))?,
    };
    if req.render_only {
        return Ok(Started::Rendered(text));
    }
    let has_tools = matches!(&req.prompt, Prompt::Chat { tools, .. } if !tools.is_empty());
    let output = OutputPipeline::new(
        m.thinks.then(|| {
            let opened = text.trim_end().ends_with(thinking::OPEN);
            (ThinkingParser::new(opened), thinking_on)
        }),
        tool_format(m.tool_format, &req)
            .filter(|_| has_tools)
            .map(ToolParser::new),
    );
    let ids = generate::tokenize(m, &text, &req)?;
    let num_ctx = req.num_ctx.max(2);
    let (caches, cached) = generate::reuse_prefix(m, &ids);
    let reused = cached.len();
    let guide = Guide::new(m, req.format.as_ref(), req.logprobs, thinking_on, &text)?;
    let device_greedy = sampler_runs_on_device(&req.sampler) && guide.is_none();
    let solo_chunk = req.num_batch.max(m.prefill_chunk).max(1);
    let seq = Sequence {
        sampler: Sampler::new(req.sampler.clone()),
        stop: StopMatcher::new(&req.stop),
        req,
        reply: Outbox::new(reply),
        t0,
        stats,
        decode_start: Instant::now(),
        history: ids,
        cached,
        detok: Detokenizer::new(),
        output,
        guide,
        generated: 0,
        num_ctx,
        device_greedy,
    };
    Ok(Started::Prefilling(Box::new(Prefill {
        seq,
        caches,
        logits: None,
        reused,
        solo_chunk,
        spent: Duration::ZERO,
    })))
}

/// A request whose prompt is being evaluated, chunk by chunk.
pub(crate) struct Prefill {
    seq: Sequence,
    caches: Vec<KvCache>,
    logits: Option<Array>,
    reused: usize,
    solo_chunk: usize,
    spent: Duration,
}

/// Where a [`Prefill`] stands after [`Prefill::advance`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PrefillState {
    /// The whole prompt is in the cache: decode.
    Ready,
    /// More chunks to go.
    More,
    /// The client went away.
    Cancelled,
}

impl Prefill {
    /// Evaluate the prompt: all of it in chunks of `max(num_batch, prefill_chunk)` when
    /// `interleave` is false, else one chunk of `num_batch` tokens (other requests are decoding
    /// and get a step between chunks).
    pub(crate) fn advance(
        &mut self,
        m: &Resident,
        interleave: bool,
    ) -> Result<PrefillState, EngineError> {
        let chunk = self.chunk(interleave);
        let total = self.seq.history.len();
        let before = self.seq.cached.len();
        if self.seq.reply.is_closed() {
            return Ok(PrefillState::Cancelled);
        }
        loop {
            let t = Instant::now();
            let l = generate::prefill_chunk(
                m,
                &mut self.caches,
                &mut self.seq.cached,
                &self.seq.history,
                chunk,
            )?;
            self.spent += t.elapsed();
            self.logits = Some(l);
            if self.seq.reply.is_closed() {
                return Ok(PrefillState::Cancelled);
            }
            if self.seq.cached.len() >= total {
                if total - before > chunk {
                    mlx_rs::memory::clear_cache()?;
                }
                return Ok(PrefillState::Ready);
            }
            if interleave {
                return Ok(PrefillState::More);
            }
        }
    }

    /// Prompt tokens still to evaluate.
    pub(crate) fn remaining(&self) -> usize {
        self.seq.history.len().saturating_sub(self.seq.cached.len())
    }

    /// Tokens one turn may evaluate for this request: `num_batch` while other requests decode
    /// (they get a step between chunks), else `max(num_batch, prefill_chunk)`.
    pub(crate) fn chunk(&self, interleave: bool) -> usize {
        if interleave {
            self.seq.req.num_batch.max(1)
        } else {
            self.solo_chunk
        }
    }

    /// The client went away.
    pub(crate) fn is_cancelled(&self) -> bool {
        self.seq.reply.is_closed()
    }

    /// Its caches (one sequence, holding the `cached` tokens).
    pub(crate) fn caches(&self) -> &[KvCache] {
        &self.caches
    }

    /// Line the rest of the prompt up for a grouped chunk of `len` columns that ends with its
    /// last token ([`crate::prefill_group`]): the chunk's spare room first re-evaluates the
    /// last cached positions (the cache is cut back by as many), then, once nothing cached is
    /// left, starts with fillers (left padding). Returns the fillers' count and the chunk's
    /// token ids, fillers included (id 0).
    pub(crate) fn line_up(&mut self, len: usize) -> (i32, Vec<i32>) {
        let rest = self.remaining();
        let again = self.seq.cached.len().min(len.saturating_sub(rest));
        let keep = self.seq.cached.len() - again;
        self.caches.iter_mut().for_each(|c| c.truncate(keep as i32));
        self.seq.cached.truncate(keep);
        self.reused = self.reused.min(keep);
        let fill = len.saturating_sub(rest + again);
        let mut ids = vec![0; fill];
        ids.extend(self.seq.history[keep..].iter().map(|&t| t as i32));
        (fill as i32, ids)
    }

    /// The decode state once the whole prompt is in, `spent` more having gone into evaluating
    /// it (a grouped chunk, whose group holds the caches and logits; zero for
    /// [`Prefill::into_running`]).
    pub(crate) fn into_decoding(self, spent: Duration) -> Sequence {
        let Prefill {
            mut seq,
            reused,
            spent: before,
            ..
        } = self;
        seq.cached.clone_from(&seq.history);
        seq.stats.prompt_eval = before + spent;
        seq.stats.prompt_eval_count = (seq.history.len() - reused) as u64;
        seq.decode_start = Instant::now();
        seq
    }

    /// The decode state, its caches and the last prompt position's logits.
    pub(crate) fn into_running(mut self) -> Result<(Sequence, Vec<KvCache>, Array), EngineError> {
        let logits = self
            .logits
            .take()
            .ok_or_else(|| EngineError::InvalidRequest("nothing to evaluate".into()))?;
        let caches = std::mem::take(&mut self.caches);
        Ok((self.into_decoding(Duration::ZERO), caches, logits))
    }

    /// The request and what its caches hold, when it stops before decoding.
    pub(crate) fn into_parts(self) -> (Sequence, Vec<KvCache>) {
        (self.seq, self.caches)
    }
}

impl Sequence {
    /// Whether this request decodes speculatively with `m`'s loaded draft: it names that draft
    /// and needs no `format` / logprobs hook (the draft's proposals bypass it).
    pub(crate) fn wants_draft(&self, m: &Resident) -> bool {
        self.guide.is_none()
            && self.req.draft_num_predict != Some(0)
            && match &self.req.draft {
                Some(d) => m.draft.as_ref().is_some_and(|(path, _)| *path == d.path),
                None => self.req.prompt_lookup && m.lookup.is_some(),
            }
    }

    /// The draft this request speculates with, out of a resident model's `draft` and `lookup`:
    /// the draft model it names, or prompt lookup.
    pub(crate) fn draft_of<'m>(
        &self,
        draft: &'m mut Option<(std::path::PathBuf, crate::speculative::Draft)>,
        lookup: &'m mut Option<crate::speculative::Draft>,
    ) -> Option<&'m mut crate::speculative::Draft> {
        match &self.req.draft {
            Some(d) => draft
                .as_mut()
                .filter(|(path, _)| *path == d.path)
                .map(|(_, draft)| draft),
            None => lookup.as_mut().filter(|_| self.req.prompt_lookup),
        }
    }

    /// Tokens this request may still produce before `num_predict` or the context end.
    pub(crate) fn budget(&self) -> usize {
        let predict = self
            .req
            .num_predict
            .map_or(usize::MAX, |n| n.saturating_sub(self.generated));
        predict
            .min(self.num_ctx.saturating_sub(self.history.len()))
            .max(1)
    }

    /// The next token is certainly the last one (`num_predict` or the context end): no step
    /// needs to be scheduled ahead for it.
    pub(crate) fn next_is_last(&self) -> bool {
        self.req
            .num_predict
            .is_some_and(|n| self.generated + 1 >= n)
            || self.history.len() + 1 >= self.num_ctx
    }

    /// Choose a token on the host from this row's logits (sampling, `format`, logprobs).
    /// `None`: the output grammar admits no further token; generation ends with `stop`.
    pub(crate) fn pick(&mut self, mut row: Vec<f32>) -> Result<Option<u32>, EngineError> {
        match &mut self.guide {
            None => Ok(Some(self.sampler.sample(&mut row, &self.history))),
            Some(g) => g.sample(&mut self.sampler, row, &self.history, &mut self.reply),
        }
    }

    /// Take `tok` as the next output token: stream its text and decide how to go on.
    pub(crate) fn advance(&mut self, m: &Resident, tok: u32) -> Result<Flow, EngineError> {
        if m.tokenizer.eos_ids.contains(&tok) {
            return Ok(Flow::Stop(FinishReason::Stop));
        }
        self.history.push(tok);
        self.generated += 1;
        let out = self.stop.push(&self.detok.push(&m.tokenizer, tok)?);
        if !self.reply.send_all(self.output.push(&out.emit)) {
            return Ok(Flow::Cancelled);
        }
        if out.stopped {
            return Ok(Flow::Stop(FinishReason::Stop));
        }
        if let Some(g) = &mut self.guide {
            if g.accept(tok)? {
                return Ok(Flow::Stop(FinishReason::Stop)); // the JSON value is complete
            }
        }
        if self.req.num_predict.is_some_and(|n| self.generated >= n) {
            return Ok(Flow::Stop(FinishReason::Length));
        }
        if self.history.len() >= self.num_ctx {
            if !self.req.shift {
                return Ok(Flow::Stop(FinishReason::Length));
            }
            return Ok(Flow::Shift);
        }
        if self.reply.is_closed() {
            return Ok(Flow::Cancelled);
        }
        Ok(Flow::Continue)
    }

    /// Ollama's context shift for this row: keep the first `num_keep` tokens, drop half of the
    /// rest, rebuild `caches` (this row alone) for what remains except the last token, which is
    /// then fed; returns its logits.
    pub(crate) fn shift(
        &mut self,
        m: &Resident,
        caches: &mut Vec<KvCache>,
    ) -> Result<Array, EngineError> {
        let req = &self.req;
        self.history = generate::shift_context(
            m,
            caches,
            &mut self.cached,
            &self.history,
            req.num_keep,
            self.num_ctx,
            req.num_batch,
        )?;
        let tok = *self.history.last().unwrap_or(&0);
        let logits = generate::forward(m, caches, &[tok])?;
        self.cached.push(tok);
        Ok(logits)
    }

    /// Flush held-back text and build the final event. `None` when the client went away.
    pub(crate) fn finish(&mut self, m: &Resident, reason: FinishReason) -> Option<Done> {
        if !self.stop.is_finished() {
            let tail = match self.detok.flush(&m.tokenizer) {
                Ok(t) => self.stop.push(&t),
                Err(_) => self.stop.push(""),
            };
            let rest = if tail.stopped {
                tail.emit
            } else {
                tail.emit + &self.stop.flush()
            };
            if !self.reply.send_all(self.output.push(&rest)) {
                return None;
            }
        }
        if !self.reply.send_all(self.output.flush()) {
            return None;
        }
        let mut stats = self.stats.clone();
        stats.eval = self.decode_start.elapsed();
        stats.eval_count = self.generated as u64;
        stats.total = self.t0.elapsed();
        Some(Done {
            reason,
            stats,
            context: self
                .req
                .return_context
                .then(|| std::mem::take(&mut self.history)),
        })
    }
}

/// How the model writes tool calls for `req`: read from the Go TEMPLATE the prompt was rendered
/// with, else the model's own (Jinja) template's format. A Go template that renders `.Tools`
/// without any call tag (its `.ToolCalls` are written as bare JSON objects) gets the JSON
/// parser, as Ollama's does: an answer that opens with `{"name":..,"arguments"|"parameters":..}`
/// is a call.
fn tool_format(model: Option<ToolFormat>, req: &GenerateRequest) -> Option<ToolFormat> {
    match (&req.rendered, &req.tool_template) {
        (Some(_), Some(t)) => {
            ToolFormat::detect(t).or_else(|| t.contains(".Tools").then_some(ToolFormat::Llama))
        }
        _ => model,
    }
}

/// Whether the next token can be chosen on the device: greedy and no penalty that needs the
/// history on the host.
pub(crate) fn sampler_runs_on_device(c: &SamplerConfig) -> bool {
    c.temperature <= 0.0
        && (c.repeat_last_n == 0
            || (c.repeat_penalty == 1.0 && c.presence_penalty == 0.0 && c.frequency_penalty == 0.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::ModelRef;

    fn req(rendered: Option<&str>, go: Option<&str>) -> GenerateRequest {
        let mut r = GenerateRequest::new(
            ModelRef {
                name: "m".into(),
                path: "/m".into(),
            },
            Prompt::LoadOnly,
        );
        r.rendered = rendered.map(str::to_string);
        r.tool_template = go.map(str::to_string);
        r
    }

    #[test]
    fn a_go_template_decides_the_tool_call_format_over_the_models_jinja_template() {
        let hermes = "{{ if .Tools }}<tool_call>{{ end }}{{ .Prompt }}";
        // The model's Jinja template has no tool syntax; its Go TEMPLATE writes Hermes calls.
        assert_eq!(
            tool_format(None, &req(Some("x"), Some(hermes))),
            Some(ToolFormat::Hermes)
        );
        // A Go template that renders tools and writes calls as bare JSON: the JSON parser.
        let json_calls = "{{ if .Tools }}{{ range .Tools }}{{ . }}{{ end }}{{ end }}\
                          {{ range .Messages }}{{ range .ToolCalls }}\
                          {\"name\": \"{{ .Function.Name }}\"}{{ end }}{{ end }}";
        assert_eq!(
            tool_format(None, &req(Some("x"), Some(json_calls))),
            Some(ToolFormat::Llama)
        );
        // A Go template without tool syntax: no parser, whatever the Jinja template says.
        assert_eq!(
            tool_format(
                Some(ToolFormat::Hermes),
                &req(Some("x"), Some("{{ .Prompt }}"))
            ),
            None
        );
        // Rendered by the Jinja template: the model's own format.
        assert_eq!(
            tool_format(Some(ToolFormat::Mistral), &req(None, None)),
            Some(ToolFormat::Mistral)
        );
    }
}
