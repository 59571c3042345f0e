//! One generation on the engine thread: render the prompt, tokenize, reuse the cached prompt
//! prefix, prefill in batches, then decode token by token with the sampler, the incremental
//! detokenizer and the stop-string matcher, checking for cancellation every step.

use std::time::{Duration, Instant};

use mlx_rs::{Array, Dtype};
use ollmlx_models::LogitsMode;
use tokio::sync::mpsc::Sender;

use crate::engine::{EngineEvent, KeepAlive, ModelRef, Resident};
use crate::error::EngineError;
use crate::output::OutputPipeline;
use crate::sampler::{Sampler, SamplerConfig};
use crate::stop::StopMatcher;
use crate::template::ChatMessage;
use crate::thinking::{self, ThinkingParser};
use crate::tokenizer::Detokenizer;
use crate::tools::ToolParser;

/// What to continue.
#[derive(Debug, Clone, PartialEq)]
pub enum Prompt {
    /// A conversation rendered through the model's chat template.
    Chat {
        /// Messages in order.
        messages: Vec<ChatMessage>,
        /// Tool definitions passed to the template.
        tools: Vec<serde_json::Value>,
    },
    /// A completion prompt; templated as one user turn (plus optional system) unless `raw`.
    Text {
        /// The prompt.
        prompt: String,
        /// System prompt (ignored when raw).
        system: String,
        /// Skip the template.
        raw: bool,
    },
    /// Only load the model (Ollama's empty-prompt request); finishes with reason `Load`.
    LoadOnly,
}

/// A generation request as the engine sees it.
#[derive(Debug, Clone)]
pub struct GenerateRequest {
    /// The model.
    pub model: ModelRef,
    /// Input.
    pub prompt: Prompt,
    /// Sampling parameters.
    pub sampler: SamplerConfig,
    /// Maximum new tokens (`None` = until EOS / context end).
    pub num_predict: Option<usize>,
    /// Context window (prompt + output) in tokens.
    pub num_ctx: usize,
    /// Prefill batch size.
    pub num_batch: usize,
    /// Stop strings.
    pub stop: Vec<String>,
    /// Drop the start of an over-long prompt instead of failing.
    pub truncate: bool,
    /// Keep-alive after this request (`None` = engine default).
    pub keep_alive: Option<KeepAlive>,
    /// Return prompt + output ids in `Done::context`.
    pub return_context: bool,
    /// Thinking switch; `None` = the model's default (on for thinking models).
    pub think: Option<bool>,
    /// Silently ignore `think` on models without thinking instead of failing.
    pub relax_thinking: bool,
    /// Prompt text already rendered by the model's Go TEMPLATE (Ollama-style); the Jinja chat
    /// template is skipped when set.
    pub rendered: Option<String>,
    /// When generation fills `num_ctx`: drop half of the context after the first `num_keep`
    /// tokens and go on (Ollama's context shift, `shift` defaults to true), instead of ending
    /// with `length`.
    pub shift: bool,
    /// Tokens at the start of the context a shift keeps (Ollama's `num_keep`, default 4).
    pub num_keep: usize,
    /// Constrain the output to JSON / a JSON schema (`format`).
    pub format: Option<crate::constrain::FormatSpec>,
    /// Report per-token logprobs with this many alternatives (`None` = no logprobs).
    pub logprobs: Option<usize>,
    /// Draft model for speculative decoding (Modelfile `DRAFT` or `options.draft`).
    pub draft: Option<ModelRef>,
}

impl GenerateRequest {
    /// A request with Ollama's defaults (num_ctx 4096, num_batch 512, truncate).
    pub fn new(model: ModelRef, prompt: Prompt) -> Self {
        GenerateRequest {
            model,
            prompt,
            sampler: SamplerConfig::default(),
            num_predict: None,
            num_ctx: 4096,
            num_batch: 512,
            stop: Vec::new(),
            truncate: true,
            keep_alive: None,
            return_context: false,
            think: None,
            relax_thinking: false,
            rendered: None,
            shift: true,
            num_keep: 4,
            format: None,
            logprobs: None,
            draft: None,
        }
    }
}

/// Why generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    /// End-of-sequence token or a stop string.
    Stop,
    /// `num_predict` or the context window reached.
    Length,
    /// Load-only request.
    Load,
    /// Unload request.
    Unload,
}

/// Counts and timings of one request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GenStats {
    /// Whole request.
    pub total: Duration,
    /// Loading the model (zero when it was resident).
    pub load: Duration,
    /// Prompt tokens evaluated (after prefix reuse).
    pub prompt_eval_count: u64,
    /// Prompt evaluation time.
    pub prompt_eval: Duration,
    /// Tokens generated.
    pub eval_count: u64,
    /// Generation time.
    pub eval: Duration,
}

/// The final event of a generation.
#[derive(Debug, Clone, PartialEq)]
pub struct Done {
    /// Why it ended.
    pub reason: FinishReason,
    /// Counts and timings.
    pub stats: GenStats,
    /// Prompt + output ids, when requested.
    pub context: Option<Vec<u32>>,
}

impl Done {
    pub(crate) fn unloaded() -> Self {
        Done {
            reason: FinishReason::Unload,
            stats: GenStats::default(),
            context: None,
        }
    }
}

/// Render the prompt text for `req` with the model's template; `enable_thinking` is passed to
/// the template as is (`None` leaves it undefined).
pub(crate) fn render(
    m: &Resident,
    prompt: &Prompt,
    enable_thinking: Option<bool>,
) -> Result<String, EngineError> {
    let tok = &m.tokenizer;
    match prompt {
        Prompt::Chat { messages, tools } => m.template.render_with(
            messages,
            tools,
            &tok.bos_token,
            &tok.eos_token,
            true,
            enable_thinking,
        ),
        Prompt::Text {
            prompt, raw: true, ..
        } => Ok(prompt.clone()),
        Prompt::Text {
            prompt,
            system,
            raw: false,
        } => {
            let mut msgs = Vec::new();
            if !system.is_empty() {
                msgs.push(ChatMessage {
                    role: "system".into(),
                    content: system.clone(),
                    ..Default::default()
                });
            }
            msgs.push(ChatMessage {
                role: "user".into(),
                content: prompt.clone(),
                ..Default::default()
            });
            m.template.render_with(
                &msgs,
                &[],
                &tok.bos_token,
                &tok.eos_token,
                true,
                enable_thinking,
            )
        }
        Prompt::LoadOnly => Ok(String::new()),
    }
}

/// Run one request. `Ok(None)` means the client went away (cancelled).
pub(crate) fn run(
    m: &mut Resident,
    req: &GenerateRequest,
    reply: &Sender<EngineEvent>,
    load: Duration,
    t0: Instant,
) -> Result<Option<Done>, EngineError> {
    let mut stats = GenStats {
        load,
        ..Default::default()
    };
    if req.prompt == Prompt::LoadOnly {
        stats.total = t0.elapsed();
        return Ok(Some(Done {
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
        None => render(m, &req.prompt, m.thinks.then_some(thinking_on))?,
    };
    let has_tools = matches!(&req.prompt, Prompt::Chat { tools, .. } if !tools.is_empty());
    let mut output = OutputPipeline::new(
        m.thinks.then(|| {
            let opened = text.trim_end().ends_with(thinking::OPEN);
            (ThinkingParser::new(opened), thinking_on)
        }),
        m.tool_format.filter(|_| has_tools).map(ToolParser::new),
    );
    let mut ids = m.tokenizer.encode(&text)?;
    if let Some(bos) = m.tokenizer.bos_id.filter(|_| m.tokenizer.add_bos) {
        if ids.first() != Some(&bos) {
            ids.insert(0, bos);
        }
    }
    if ids.is_empty() {
        return Err(EngineError::InvalidRequest(
            "the prompt is empty after tokenization".into(),
        ));
    }
    let num_ctx = req.num_ctx.max(2);
    if ids.len() >= num_ctx {
        if !req.truncate {
            return Err(EngineError::ContextLength(format!(
                "the input length ({}) exceeds the context length ({num_ctx})",
                ids.len()
            )));
        }
        ids.drain(..ids.len() - (num_ctx - 1));
    }

    // Prompt-prefix reuse: the live cache (the last request) or, when longer, a snapshot from
    // the prefix cache (another conversation of this model). At least one token is evaluated
    // to get logits.
    let max_reuse = ids.len() - 1;
    let live = crate::prefix_cache::common_prefix(&m.cached_tokens, &ids).min(max_reuse);
    let key = m.prefix_key.clone();
    if let Some(hit) = m.prefix.lookup(&key, &ids, live + 1) {
        if hit.common.min(max_reuse) > live {
            m.caches = hit.caches;
            m.cached_tokens = ids[..hit.common].to_vec();
        }
    }
    let common = crate::prefix_cache::common_prefix(&m.cached_tokens, &ids).min(max_reuse);
    if common == 0 {
        m.caches = m.fresh_caches();
    } else {
        m.caches.iter_mut().for_each(|c| c.truncate(common as i32));
    }
    m.cached_tokens.truncate(common);
    m.prefix_counters.record(common, ids.len() - common);

    // Chunked prefill: each chunk is evaluated (bounding the graph and the attention scores)
    // and gives the client a chance to cancel.
    let prefill_start = Instant::now();
    let chunk = req.num_batch.max(m.prefill_chunk).max(1);
    let mut logits = None;
    for part in ids[common..].chunks(chunk) {
        let l = forward(m, part)?;
        l.eval()?;
        m.cached_tokens.extend_from_slice(part);
        logits = Some(l);
        if reply.is_closed() {
            return Ok(None);
        }
    }
    if ids.len() - common > chunk {
        mlx_rs::memory::clear_cache()?;
    }
    let mut logits =
        logits.ok_or_else(|| EngineError::InvalidRequest("nothing to evaluate".into()))?;
    stats.prompt_eval = prefill_start.elapsed();
    stats.prompt_eval_count = (ids.len() - common) as u64;

    let decode_start = Instant::now();
    let mut sampler = Sampler::new(req.sampler.clone());
    let mut history = ids.clone();
    let mut detok = Detokenizer::new();
    let mut stop = StopMatcher::new(&req.stop);
    let mut generated = 0usize;
    // Greedy decoding without penalties picks the token on the device, so step t+1 can be
    // scheduled (async_eval) before step t's token is read: the host's per-token work overlaps
    // the next forward pass. Sampling on the host needs the logits first.
    // `format` / logprobs hook at the sampling call site (crate::constrain_step).
    let mut guide = crate::constrain_step::Guide::new(
        m,
        req.format.as_ref(),
        req.logprobs,
        thinking_on,
        &text,
    )?;
    let device_greedy = sampler_runs_on_device(&req.sampler) && guide.is_none();
    let mut pending = if device_greedy {
        let t = next_token(&logits)?;
        mlx_rs::transforms::async_eval([&t])?;
        Some(t)
    } else {
        None
    };
    let reason = loop {
        let (tok, mut ahead) = match pending.take() {
            Some(t) => {
                // Schedule the next step unless this token is known to be the last one.
                let last = req.num_predict.is_some_and(|n| generated + 1 >= n)
                    || history.len() + 1 >= num_ctx;
                let ahead = if last {
                    None
                } else {
                    let l =
                        m.model
                            .forward(&t.reshape(&[1, 1])?, &mut m.caches, LogitsMode::Last)?;
                    let n = next_token(&l)?;
                    mlx_rs::transforms::async_eval([&n])?;
                    Some(n)
                };
                let tok = t
                    .try_item_exact::<u32>()
                    .map_err(|e| EngineError::Model(e.to_string()))?;
                if ahead.is_some() {
                    m.cached_tokens.push(tok);
                }
                (tok, ahead)
            }
            None => {
                let mut row = logits_row(&logits)?;
                match &mut guide {
                    None => (sampler.sample(&mut row, &history), None),
                    Some(g) => match g.sample(&mut sampler, row, &history, reply)? {
                        Some(t) => (t, None),
                        None => break FinishReason::Stop,
                    },
                }
            }
        };
        if m.tokenizer.eos_ids.contains(&tok) {
            break FinishReason::Stop;
        }
        history.push(tok);
        generated += 1;
        if generated.is_multiple_of(CLEAR_CACHE_EVERY) {
            mlx_rs::memory::clear_cache()?;
        }
        let out = stop.push(&detok.push(&m.tokenizer, tok)?);
        if !send_all(reply, output.push(&out.emit)) {
            return Ok(None);
        }
        if out.stopped {
            break FinishReason::Stop;
        }
        if let Some(g) = &mut guide {
            if g.accept(tok)? {
                break FinishReason::Stop; // the JSON value is complete
            }
        }
        if req.num_predict.is_some_and(|n| generated >= n) {
            break FinishReason::Length;
        }
        if history.len() >= num_ctx {
            if !req.shift {
                break FinishReason::Length;
            }
            // Context shift: keep the first `num_keep` tokens, drop half of the rest, and
            // rebuild the KV cache for what remains (all but `tok`, which is fed next). A step
            // scheduled ahead on the old cache is discarded.
            history = shift_context(m, &history, req.num_keep, num_ctx, req.num_batch)?;
            ahead = None;
            if reply.is_closed() {
                return Ok(None);
            }
        }
        if reply.is_closed() {
            return Ok(None);
        }
        if device_greedy {
            pending = match ahead {
                Some(n) => Some(n),
                None => {
                    let l = forward(m, &[tok])?;
                    m.cached_tokens.push(tok);
                    Some(next_token(&l)?)
                }
            };
        } else {
            logits = forward(m, &[tok])?;
            m.cached_tokens.push(tok);
        }
    };
    if !stop.is_finished() {
        let tail = stop.push(&detok.flush(&m.tokenizer)?);
        let rest = if tail.stopped {
            tail.emit
        } else {
            tail.emit + &stop.flush()
        };
        if !send_all(reply, output.push(&rest)) {
            return Ok(None);
        }
    }
    if !send_all(reply, output.flush()) {
        return Ok(None);
    }
    stats.eval = decode_start.elapsed();
    stats.eval_count = generated as u64;
    stats.total = t0.elapsed();
    Ok(Some(Done {
        reason,
        stats,
        context: req.return_context.then_some(history),
    }))
}

/// Send `events` in order; false when the client went away.
fn send_all(reply: &Sender<EngineEvent>, events: Vec<EngineEvent>) -> bool {
    events.into_iter().all(|e| reply.blocking_send(e).is_ok())
}

/// Ollama's context shift: `history` filled the window; keep `history[..n_keep]`, drop
/// `(num_ctx - n_keep) / 2` tokens after it, keep the rest. The KV cache is rebuilt for the kept
/// tokens except the last one (the caller feeds it next), reusing the kept prefix. Returns the
/// shifted history.
fn shift_context(
    m: &mut Resident,
    history: &[u32],
    num_keep: usize,
    num_ctx: usize,
    chunk: usize,
) -> Result<Vec<u32>, EngineError> {
    // Like Ollama, the BOS token does not count against `num_keep`.
    let bos = usize::from(m.tokenizer.add_bos && m.tokenizer.bos_id.is_some());
    let n_keep = (num_keep + bos).min(num_ctx.saturating_sub(2));
    let discard = ((num_ctx - n_keep) / 2).max(1);
    let mut kept = history[..n_keep].to_vec();
    kept.extend_from_slice(&history[(n_keep + discard).min(history.len())..]);
    let reuse = crate::prefix_cache::common_prefix(&m.cached_tokens, &kept[..kept.len() - 1]);
    if reuse == 0 {
        m.caches = m.fresh_caches();
    } else {
        m.caches.iter_mut().for_each(|c| c.truncate(reuse as i32));
    }
    m.cached_tokens.truncate(reuse);
    for part in kept[reuse..kept.len() - 1].chunks(chunk.max(m.prefill_chunk).max(1)) {
        forward(m, part)?.eval()?;
        m.cached_tokens.extend_from_slice(part);
    }
    Ok(kept)
}

fn forward(m: &mut Resident, tokens: &[u32]) -> Result<Array, EngineError> {
    let ids: Vec<i32> = tokens.iter().map(|&t| t as i32).collect();
    let input = Array::from_slice(&ids, &[1, ids.len() as i32]);
    Ok(m.model.forward(&input, &mut m.caches, LogitsMode::Last)?)
}

/// Decode steps between releases of MLX's buffer cache.
const CLEAR_CACHE_EVERY: usize = 256;

/// Whether the next token can be chosen on the device: greedy and no penalty that needs the
/// history on the host.
fn sampler_runs_on_device(c: &SamplerConfig) -> bool {
    c.temperature <= 0.0
        && (c.repeat_last_n == 0
            || (c.repeat_penalty == 1.0 && c.presence_penalty == 0.0 && c.frequency_penalty == 0.0))
}

/// Argmax of the logits of one position (`[1, 1, vocab]`), as a lazy `[1, 1]` token.
fn next_token(logits: &Array) -> Result<Array, EngineError> {
    Ok(mlx_rs::ops::indexing::argmax_axis(logits, -1, false)?)
}

fn logits_row(logits: &Array) -> Result<Vec<f32>, EngineError> {
    let l = if logits.dtype() == Dtype::Float32 {
        logits.clone()
    } else {
        logits.as_dtype(Dtype::Float32)?
    };
    l.eval()?;
    Ok(l.try_as_slice::<f32>()
        .map_err(|e| EngineError::Model(e.to_string()))?
        .to_vec())
}
