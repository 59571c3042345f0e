//! Speculative decoding with a draft model, or with prompt-lookup drafts.
//!
//! Where it sits: the engine thread's decode loop (`generate.rs`) calls [`step`] once per round
//! instead of one target forward per token, when the request names a draft model (Modelfile
//! `DRAFT`, or `options.draft`; resolved to a path by the `ollmlx-mlx` backend) or names none
//! and the engine's [`crate::lookup::LookupPolicy`] covers it ([`Draft::prompt_lookup`]:
//! proposals copied from the history by [`crate::lookup`], no model run). One round:
//!
//! 1. the [`Draft`] catches its own KV cache up to the history (reusing the common prefix) and
//!    proposes up to `k` tokens autoregressively;
//! 2. the target runs ONE forward over `[last, d1..dk]` (`LogitsMode::All`);
//! 3. drafts are accepted left to right, then one token comes from the target (the correction at
//!    the first rejection, or a bonus token after the last draft);
//! 4. both caches are rewound (`KvCache::truncate`) to the accepted state.
//!
//! Acceptance preserves the target's output distribution exactly:
//! - plain greedy (temperature 0, no penalties): argmaxes are taken on the device and a draft is
//!   accepted while it equals the target's argmax, so the output is the plain greedy output;
//! - otherwise (sampling, or greedy with penalties): with `p` and `q` the sampler's final
//!   distributions ([`Sampler::distribution`]: penalties over that position's history,
//!   temperature, top-k, typical-p, top-p, min-p) of the target and the draft, draft token `d`
//!   is accepted with probability `min(1, p(d)/q(d))`; on rejection the token is drawn from
//!   `norm(max(0, p − q))` (Leviathan et al. 2023, Chen et al. 2023). Greedy-with-penalties is
//!   the special case of one-hot `p` and `q`. All draws use the request's sampler RNG, so a seed
//!   reproduces the output.
//!
//! The draft length adapts per round ([`Draft::k`]): it starts at [`START_DRAFT`], grows by one
//! when every draft was accepted, shrinks by one when fewer than half were, within
//! [`MIN_DRAFT`]..=[`MAX_DRAFT`] (or `draft_num_predict`). A draft that keeps missing at length
//! one is paused: rounds then run the target alone (one token, no draft forward) for
//! [`FIRST_PAUSE`] rounds, doubling up to [`MAX_PAUSE`] while it keeps missing, so a useless
//! draft costs a fraction of the decode speed instead of half of it.

use mlx_rs::ops::indexing::argmax_axis;
use mlx_rs::{Array, Dtype};
use ollmlx_models::{KvCache, LogitsMode, Model, ModelInfo};

use crate::error::EngineError;
use crate::sampler::Sampler;

/// Shortest draft per round.
pub const MIN_DRAFT: usize = 1;
/// Longest draft per round: 7, so that the verify forward (`[last, d1..d7]`, 8 rows) stays
/// within the CPU BLAS shim's small-row kernel (1-8 rows; a 9-row product falls back to float
/// `sgemm`). Through `ollmlx serve` with prompt lookup, 5 interleaved rounds: counting 99.9
/// tok/s with at most 7 against 64.7 with at most 8; other prompts within noise.
pub const MAX_DRAFT: usize = 7;
/// The longest draft a request allows: its `draft_num_predict` within
/// [`MIN_DRAFT`]..=[`MAX_DRAFT`], or [`MAX_DRAFT`] when it does not say.
pub fn draft_bound(draft_num_predict: Option<usize>) -> usize {
    draft_num_predict.map_or(MAX_DRAFT, |n| n.clamp(MIN_DRAFT, MAX_DRAFT))
}

/// Draft length of the first round.
pub const START_DRAFT: usize = 4;
/// Tokens per draft forward when the draft catches up with a long history (the prompt).
const CATCH_UP_CHUNK: usize = 512;
/// Consecutive single-token rounds with nothing accepted before drafting pauses.
pub const COLD_ROUNDS: u32 = 3;
/// First pause (rounds decoded without the draft); doubles on each further cold spell.
pub const FIRST_PAUSE: u32 = 8;
/// Longest pause.
pub const MAX_PAUSE: u32 = 256;

/// A probability distribution over token ids: `(token, probability)` pairs.
pub type Dist = Vec<(u32, f32)>;

/// Counters of a draft's work, for telemetry and benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DraftStats {
    /// Speculative rounds run.
    pub rounds: u64,
    /// Draft tokens proposed.
    pub proposed: u64,
    /// Draft tokens accepted.
    pub accepted: u64,
    /// Rounds decoded without drafting (paused after cold spells).
    pub paused: u64,
}

/// A draft: a model with its own caches, or prompt lookup ([`crate::lookup`]).
pub struct Draft {
    /// The draft model (same tokenizer as the target; its vocabulary may be a prefix of the
    /// target's); `None` for a prompt-lookup draft, which copies n-grams of the history.
    model: Option<Box<dyn Model>>,
    /// Its per-layer KV caches.
    caches: Vec<KvCache>,
    /// The tokens `caches` hold, in order.
    cached: Vec<u32>,
    /// Draft length of the next round (adaptive, within [`MIN_DRAFT`]..=`max_k`).
    pub k: usize,
    /// Upper bound of `k` (Ollama's `draft_num_predict`; default [`MAX_DRAFT`]).
    pub max_k: usize,
    /// Work done so far.
    pub stats: DraftStats,
    /// Rounds left to decode without drafting.
    pub pause: u32,
    /// Consecutive one-token rounds with nothing accepted.
    cold: u32,
    /// Length of the next pause.
    next_pause: u32,
}

impl Draft {
    /// Wrap a loaded draft model for `target`; refuses a draft whose vocabulary is not the
    /// target's (same size) or a prefix of it (smaller).
    pub fn new(model: Box<dyn Model>, target: &ModelInfo) -> Result<Self, EngineError> {
        check_vocab(target, model.info())?;
        Ok(Draft::with(Some(model)))
    }

    /// A prompt-lookup draft ([`crate::lookup::propose`]): no model, proposals copied from
    /// earlier occurrences of the history's last tokens.
    pub fn prompt_lookup() -> Self {
        Draft::with(None)
    }

    /// A fresh draft around `model` (none: prompt lookup), empty caches, first-round length.
    fn with(model: Option<Box<dyn Model>>) -> Self {
        let mut d = Draft {
            model,
            caches: Vec::new(),
            cached: Vec::new(),
            k: START_DRAFT,
            max_k: MAX_DRAFT,
            stats: DraftStats::default(),
            pause: 0,
            cold: 0,
            next_pause: FIRST_PAUSE,
        };
        d.reset();
        d
    }

    /// Whether this draft is prompt lookup (no model).
    pub fn is_lookup(&self) -> bool {
        self.model.is_none()
    }

    /// Bound the draft length by `max_k` (Ollama's `draft_num_predict`; at least 1 — a request
    /// with `draft_num_predict: 0` should not speculate at all).
    pub fn with_max_k(mut self, max_k: usize) -> Self {
        self.max_k = max_k.max(MIN_DRAFT);
        self.k = self.k.min(self.max_k);
        self
    }

    /// Forget the cached history (e.g. after the target's context was shifted; the next round
    /// re-feeds the draft from scratch) and any pause after cold spells. The draft length `k`
    /// is kept (see [`Draft::restart`]).
    pub fn reset(&mut self) {
        self.caches = self
            .model
            .as_ref()
            .map_or_else(Vec::new, |m| m.new_caches());
        self.cached.clear();
        self.pause = 0;
        self.cold = 0;
        self.next_pause = FIRST_PAUSE;
    }

    /// Start afresh for a new request: [`Draft::reset`] plus the first-round draft length, so a
    /// seeded request makes the same draws whatever ran before it (stats are kept).
    pub fn restart(&mut self) {
        self.reset();
        self.k = START_DRAFT.min(self.max_k.max(MIN_DRAFT));
    }

    /// Acceptance rate so far (accepted / proposed; 0 before any proposal).
    pub fn acceptance(&self) -> f64 {
        if self.stats.proposed == 0 {
            0.0
        } else {
            self.stats.accepted as f64 / self.stats.proposed as f64
        }
    }

    /// Record a round and adapt the draft length; after [`COLD_ROUNDS`] one-token rounds in a
    /// row with nothing accepted, drafting pauses ([`FIRST_PAUSE`] rounds, doubling up to
    /// [`MAX_PAUSE`] while the draft keeps missing; any acceptance resets it).
    fn record(&mut self, proposed: usize, accepted: usize) {
        self.stats.rounds += 1;
        self.stats.proposed += proposed as u64;
        self.stats.accepted += accepted as u64;
        self.k = next_k(self.k, proposed, accepted).min(self.max_k.max(MIN_DRAFT));
        if accepted > 0 {
            self.cold = 0;
            self.next_pause = FIRST_PAUSE;
        } else if proposed <= MIN_DRAFT {
            self.cold += 1;
            if self.cold >= COLD_ROUNDS {
                self.cold = 0;
                self.pause = self.next_pause;
                self.next_pause = (self.next_pause * 2).min(MAX_PAUSE);
            }
        }
    }

    /// Feed `tokens` to the draft (ids outside its vocabulary are clamped to its last id: the
    /// draft only guesses, the target decides). Returns the logits of the last position.
    fn feed(&mut self, tokens: &[u32]) -> Result<Array, EngineError> {
        let model = self.model.as_ref().ok_or_else(no_model)?;
        let top = model.info().vocab_size.max(1) as u32 - 1;
        let ids: Vec<i32> = tokens.iter().map(|&t| t.min(top) as i32).collect();
        let input = Array::from_slice(&ids, &[1, ids.len() as i32]);
        let l = model.forward(&input, &mut self.caches, LogitsMode::Last)?;
        self.cached.extend_from_slice(tokens);
        Ok(l)
    }

    /// Bring the draft's cache to `history[..len-1]` (reusing the common prefix) and feed the
    /// last token; returns the logits predicting the token after `history`.
    fn catch_up(&mut self, history: &[u32]) -> Result<Array, EngineError> {
        let n = history.len();
        let common = crate::prefix_cache::common_prefix(&self.cached, history).min(n - 1);
        if common == 0 {
            self.reset();
        } else {
            self.caches
                .iter_mut()
                .for_each(|c| c.truncate(common as i32));
            self.cached.truncate(common);
        }
        let rest = &history[common..];
        let mut chunks = rest.chunks(CATCH_UP_CHUNK).peekable();
        loop {
            let part = chunks.next().expect("at least one token to feed");
            let l = self.feed(part)?;
            if chunks.peek().is_none() {
                return Ok(l);
            }
            l.eval()?;
        }
    }
}

/// The next draft length after a round that proposed `proposed` tokens and had `accepted` of
/// them accepted: +1 when all were accepted, −1 when fewer than half were, bounded by
/// [`MIN_DRAFT`]..=[`MAX_DRAFT`].
pub fn next_k(k: usize, proposed: usize, accepted: usize) -> usize {
    if proposed == 0 {
        return k.clamp(MIN_DRAFT, MAX_DRAFT);
    }
    let k = if accepted >= proposed {
        k + 1
    } else if 2 * accepted < proposed {
        k.saturating_sub(1)
    } else {
        k
    };
    k.clamp(MIN_DRAFT, MAX_DRAFT)
}

/// Refuse a draft whose vocabulary is larger than the target's: its ids would not mean the same
/// tokens (a draft with a smaller vocabulary is taken to be a prefix of the target's, as with
/// padded embedding tables).
pub fn check_vocab(target: &ModelInfo, draft: &ModelInfo) -> Result<(), EngineError> {
    if draft.vocab_size > target.vocab_size || draft.vocab_size <= 0 {
        return Err(EngineError::InvalidRequest(format!(
            "draft model vocabulary ({} tokens) is not compatible with the model's ({} tokens)",
            draft.vocab_size, target.vocab_size
        )));
    }
    Ok(())
}

/// One speculative round. `target_caches` hold the KV of `history[..history.len()-1]` (the last
/// token of `history` is not fed yet). Proposes up to `draft.k` tokens with the draft, verifies
/// them with one target forward over `[last, d1..dk]`, accepts per the module's rule, rewinds
/// both caches to the accepted state and returns the new tokens: the accepted drafts plus one
/// token from the target (the correction or the bonus), at most `max_new` of them. On return the
/// target caches hold `history` + every returned token except the last one (the caller feeds
/// that one next round, as in plain decoding). A caller that cuts the output short (EOS, stop
/// string) must truncate the target caches to what it keeps.
pub fn step(
    target: &dyn Model,
    target_caches: &mut [KvCache],
    draft: &mut Draft,
    history: &[u32],
    sampler: &mut Sampler,
    max_new: usize,
) -> Result<Vec<u32>, EngineError> {
    let n = history.len();
    if max_new == 0 {
        return Ok(Vec::new());
    }
    if n == 0 {
        return Err(EngineError::InvalidRequest(
            "speculative decoding needs at least one token of history".into(),
        ));
    }
    let held = target_caches.first().map_or(0, |c| c.offset() as usize);
    if held != n - 1 {
        return Err(EngineError::Model(format!(
            "speculative step: the target cache holds {held} positions, expected {}",
            n - 1
        )));
    }
    let k = if draft.pause > 0 {
        draft.pause -= 1;
        draft.stats.paused += 1;
        0
    } else {
        draft.k.min(max_new - 1)
    };
    let greedy = sampler.config().is_plain_greedy();
    let (drafts, qs) = match k {
        0 => (Vec::new(), Vec::new()),
        _ if draft.is_lookup() => {
            // copied tokens: `q` puts all its mass on each one
            let d = crate::lookup::propose(history, k);
            let qs = if greedy {
                Vec::new()
            } else {
                d.iter().map(|&t| vec![(t, 1.0)]).collect()
            };
            (d, qs)
        }
        _ if greedy => (propose_greedy(draft, history, k)?, Vec::new()),
        _ => propose_sampled(draft, history, k, sampler)?,
    };

    let mut input: Vec<i32> = Vec::with_capacity(k + 1);
    input.push(history[n - 1] as i32);
    input.extend(drafts.iter().map(|&t| t as i32));
    let tokens = Array::from_slice(&input, &[1, input.len() as i32]);
    let logits = target.forward(&tokens, target_caches, LogitsMode::All)?;
    let out = if greedy {
        let picks = read_tokens(&argmax_axis(&logits, -1, false)?)?;
        accept_greedy(&drafts, &picks)
    } else {
        accept_sampled(&logits, &drafts, &qs, history, sampler)?
    };

    let accepted = out.len() - 1;
    for c in target_caches.iter_mut() {
        c.truncate((n + accepted) as i32);
    }
    if !drafts.is_empty() {
        draft.record(drafts.len(), accepted);
    }
    Ok(out)
}

/// Greedy drafts: each argmax is fed back on the device, so the whole proposal is one lazy graph
/// read back once.
fn propose_greedy(draft: &mut Draft, history: &[u32], k: usize) -> Result<Vec<u32>, EngineError> {
    let mut logits = draft.catch_up(history)?;
    let mut picks = Vec::with_capacity(k);
    for i in 0..k {
        let t = argmax_axis(&logits, -1, false)?.reshape(&[1, 1])?;
        if i + 1 < k {
            let model = draft.model.as_ref().ok_or_else(no_model)?;
            logits = model.forward(&t, &mut draft.caches, LogitsMode::Last)?;
        }
        picks.push(t);
    }
    let tokens = read_tokens(&mlx_rs::ops::concatenate(&picks, 1)?)?;
    // The draft's cache now also holds d1..d(k-1).
    draft.cached.extend_from_slice(&tokens[..k - 1]);
    Ok(tokens)
}

/// Sampled drafts: each token is drawn on the host from the draft's final distribution `q`
/// (kept for the acceptance test).
fn propose_sampled(
    draft: &mut Draft,
    history: &[u32],
    k: usize,
    sampler: &mut Sampler,
) -> Result<(Vec<u32>, Vec<Dist>), EngineError> {
    let mut logits = draft.catch_up(history)?;
    let mut ctx = history.to_vec();
    let mut tokens = Vec::with_capacity(k);
    let mut qs = Vec::with_capacity(k);
    for i in 0..k {
        let mut row = host_rows(&logits)?;
        let q = sampler.distribution(&mut row, &ctx);
        let d = sampler
            .draw(&q)
            .ok_or_else(|| EngineError::Model("draft distribution is empty".into()))?;
        tokens.push(d);
        qs.push(q);
        ctx.push(d);
        if i + 1 < k {
            logits = draft.feed(&[d])?;
        }
    }
    Ok((tokens, qs))
}

/// Greedy acceptance: `picks[j]` is the target's argmax after `[last, d1..dj]`. Accept drafts
/// while they equal it; then the target's pick (correction or bonus).
fn accept_greedy(drafts: &[u32], picks: &[u32]) -> Vec<u32> {
    let mut out = Vec::with_capacity(drafts.len() + 1);
    for (j, &d) in drafts.iter().enumerate() {
        if d != picks[j] {
            break;
        }
        out.push(d);
    }
    out.push(picks[out.len()]);
    out
}

/// Distribution-preserving acceptance over the target's logits `[1, k+1, V]`.
fn accept_sampled(
    logits: &Array,
    drafts: &[u32],
    qs: &[Dist],
    history: &[u32],
    sampler: &mut Sampler,
) -> Result<Vec<u32>, EngineError> {
    let rows = host_rows(logits)?;
    let width = logits.dim(-1) as usize;
    let mut ctx = history.to_vec();
    let mut out = Vec::with_capacity(drafts.len() + 1);
    for (j, (&d, q)) in drafts.iter().zip(qs).enumerate() {
        let mut row = rows[j * width..(j + 1) * width].to_vec();
        let p = sampler.distribution(&mut row, &ctx);
        let u = sampler.uniform();
        match judge(&p, q, d, u) {
            Verdict::Accept => {
                out.push(d);
                ctx.push(d);
            }
            Verdict::Reject(residual) => {
                let t = sampler.draw(&residual).or_else(|| sampler.draw(&p));
                out.push(t.ok_or_else(|| EngineError::Model("empty distribution".into()))?);
                return Ok(out);
            }
        }
    }
    let k = drafts.len();
    let mut row = rows[k * width..(k + 1) * width].to_vec();
    let p = sampler.distribution(&mut row, &ctx);
    let bonus = sampler
        .draw(&p)
        .ok_or_else(|| EngineError::Model("empty distribution".into()))?;
    out.push(bonus);
    Ok(out)
}

/// The outcome of checking one draft token.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Keep the draft token.
    Accept,
    /// Drop it and draw the replacement from this (unnormalized) residual `max(0, p − q)`.
    Reject(Dist),
}

/// The acceptance rule for draft token `d` drawn from `q`, target distribution `p`, uniform draw
/// `u` in `[0, 1)`: accept when `u < p(d) / q(d)`, else reject with residual `max(0, p − q)`.
pub fn judge(p: &[(u32, f32)], q: &[(u32, f32)], d: u32, u: f32) -> Verdict {
    let pd = prob(p, d);
    let qd = prob(q, d);
    if u * qd < pd {
        return Verdict::Accept;
    }
    let q: std::collections::HashMap<u32, f32> = q.iter().copied().collect();
    let residual = p
        .iter()
        .map(|&(t, pt)| (t, pt - q.get(&t).copied().unwrap_or(0.0)))
        .filter(|&(_, r)| r > 0.0)
        .collect();
    Verdict::Reject(residual)
}

fn prob(dist: &[(u32, f32)], t: u32) -> f32 {
    dist.iter().find(|(x, _)| *x == t).map_or(0.0, |&(_, p)| p)
}

fn no_model() -> EngineError {
    EngineError::Model("a prompt-lookup draft has no model to run".into())
}

/// Token ids of an integer array, evaluated and read back.
fn read_tokens(a: &Array) -> Result<Vec<u32>, EngineError> {
    let a = a.as_dtype(Dtype::Uint32)?;
    a.eval()?;
    Ok(a.try_as_slice::<u32>()
        .map_err(|e| EngineError::Model(e.to_string()))?
        .to_vec())
}

/// Logits on the host as float32, row after row (`[.., L, V]` flattened).
fn host_rows(logits: &Array) -> Result<Vec<f32>, EngineError> {
    let l = logits.as_dtype(Dtype::Float32)?;
    l.eval()?;
    Ok(l.try_as_slice::<f32>()
        .map_err(|e| EngineError::Model(e.to_string()))?
        .to_vec())
}

#[cfg(test)]
#[path = "speculative_tests.rs"]
mod tests;
