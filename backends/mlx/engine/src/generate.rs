//! A generation request as the engine sees it, and the steps before decoding: render the prompt
//! (chat template or Go TEMPLATE), tokenize (BOS, truncation), reuse the cached prompt prefix and
//! prefill in chunks; plus Ollama's context shift. Decoding itself is [`crate::sequence`] (one
//! request's state) and [`crate::batch`] (the requests of one model stepping together).

use std::time::Duration;

use mlx_rs::Array;
use ollmlx_models::{KvCache, LogitsMode};

use crate::engine::{KeepAlive, ModelRef, Resident};
use crate::error::EngineError;
use crate::sampler::SamplerConfig;
use crate::template::ChatMessage;

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
    /// The Go TEMPLATE's source when `rendered` came from it: how the model writes tool calls is
    /// read from it (as Ollama does) instead of from the Jinja template.
    pub tool_template: Option<String>,
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
    /// Most tokens the draft proposes per round (Ollama's `draft_num_predict`; `None` = the
    /// engine's adaptive bound, 0 = do not speculate).
    pub draft_num_predict: Option<usize>,
    /// Speculate with prompt-lookup drafts when no draft model is named. Set by the engine
    /// from its [`crate::lookup::LookupPolicy`]; what a caller sets is overwritten.
    pub prompt_lookup: bool,
    /// Render the prompt and answer with it ([`crate::EngineEvent::Rendered`]) instead of
    /// generating (Ollama's `_debug_render_only`).
    pub render_only: bool,
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
            tool_template: None,
            shift: true,
            num_keep: 4,
            format: None,
            logprobs: None,
            draft: None,
            draft_num_predict: None,
            prompt_lookup: false,
            render_only: false,
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

/// Token ids of the rendered prompt: BOS added when the model wants it, an over-long prompt
/// cut from the start (`truncate`) or refused.
pub(crate) fn tokenize(
    m: &Resident,
    text: &str,
    req: &GenerateRequest,
) -> Result<Vec<u32>, EngineError> {
    let mut ids = m.tokenizer.encode(text)?;
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
    Ok(ids)
}

/// The longest cached prefix of `ids`: the model's live cache (the last finished request, taken
/// over) or, when longer, a snapshot from the prefix cache (another conversation of this model),
/// cut to the common prefix (at most `ids.len() - 1`: one token is always evaluated, for the
/// logits). Returns the caches and the tokens they hold; counts the hit/miss.
pub(crate) fn reuse_prefix(m: &mut Resident, ids: &[u32]) -> (Vec<KvCache>, Vec<u32>) {
    let max_reuse = ids.len().saturating_sub(1);
    let mut caches = std::mem::take(&mut m.caches);
    let mut cached = std::mem::take(&mut m.cached_tokens);
    let live = crate::prefix_cache::common_prefix(&cached, ids).min(max_reuse);
    let key = m.prefix_key.clone();
    if let Some(hit) = m.prefix.lookup(&key, ids, live + 1) {
        if hit.common.min(max_reuse) > live {
            caches = hit.caches;
            cached = ids[..hit.common].to_vec();
        }
    }
    let common = crate::prefix_cache::common_prefix(&cached, ids).min(max_reuse);
    if common == 0 || caches.is_empty() {
        caches = m.fresh_caches();
        cached.clear();
    } else {
        caches.iter_mut().for_each(|c| c.truncate(common as i32));
        cached.truncate(common);
    }
    m.prefix_counters
        .record(cached.len(), ids.len() - cached.len());
    (caches, cached)
}

/// Evaluate the next `chunk` tokens of `ids` after the `cached` ones (evaluated now: bounds the
/// graph and the attention scores); their logits at the last position.
pub(crate) fn prefill_chunk(
    m: &Resident,
    caches: &mut [KvCache],
    cached: &mut Vec<u32>,
    ids: &[u32],
    chunk: usize,
) -> Result<Array, EngineError> {
    let from = cached.len().min(ids.len());
    let part = &ids[from..(from + chunk.max(1)).min(ids.len())];
    if part.is_empty() {
        return Err(EngineError::InvalidRequest("nothing to evaluate".into()));
    }
    let l = forward(m, caches, part)?;
    l.eval()?;
    cached.extend_from_slice(part);
    Ok(l)
}

/// Ollama's context shift: `history` filled the window; keep `history[..n_keep]`, drop
/// `(num_ctx - n_keep) / 2` tokens after it, keep the rest. `caches` (one sequence, holding
/// `cached`) are rebuilt for the kept tokens except the last one (the caller feeds it next),
/// reusing the kept prefix. Returns the shifted history.
pub(crate) fn shift_context(
    m: &Resident,
    caches: &mut Vec<KvCache>,
    cached: &mut Vec<u32>,
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
    let reuse = crate::prefix_cache::common_prefix(cached, &kept[..kept.len() - 1]);
    if reuse == 0 {
        *caches = m.fresh_caches();
    } else {
        caches.iter_mut().for_each(|c| c.truncate(reuse as i32));
    }
    cached.truncate(reuse);
    for part in kept[reuse..kept.len() - 1].chunks(chunk.max(m.prefill_chunk).max(1)) {
        forward(m, caches, part)?.eval()?;
        cached.extend_from_slice(part);
    }
    Ok(kept)
}

/// Run `tokens` of one sequence through the model after what `caches` hold; logits of the
/// last position (lazy).
pub(crate) fn forward(
    m: &Resident,
    caches: &mut [KvCache],
    tokens: &[u32],
) -> Result<Array, EngineError> {
    let ids: Vec<i32> = tokens.iter().map(|&t| t as i32).collect();
    let input = Array::from_slice(&ids, &[1, ids.len() as i32]);
    Ok(m.model.forward(&input, caches, LogitsMode::Last)?)
}

/// Decode steps between releases of MLX's buffer cache.
pub(crate) const CLEAR_CACHE_EVERY: usize = 256;
