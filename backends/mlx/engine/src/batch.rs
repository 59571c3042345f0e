//! Continuous batching: the running requests of one model decode together, one token per row per
//! step, in a single `[rows, 1]` forward pass over a padded batch cache
//! ([`ollmlx_models::KvCache::stack`]).
//!
//! Request path: the engine thread ([`crate::engine`]) admits requests between steps
//! ([`Batch::admit`]); their prompts are evaluated in the batch's turns, on their own or, when
//! several wait together, in one grouped forward pass ([`crate::prefill_group`]), and they
//! join the decoding rows ([`Batch::join`]). The engine thread calls
//! [`Batch::step`] while rows remain; rows that finish, fail or lose their client leave after
//! the step that ended them ([`Left`]), without stalling the others.
//!
//! When every row decodes greedily on the device, step t+1 is scheduled (`async_eval`) before
//! step t's tokens are read, so the host's per-token work (detokenizing, stop strings, sending,
//! building and launching the next graph) overlaps the next forward pass; a single request runs
//! exactly this way. Step t's tokens (the argmax of its logits) are scheduled together with the
//! forward pass that produced those logits, never inside step t+1's graph: MLX signals every
//! array of one evaluation when the whole evaluation ends, so a token computed inside step
//! t+1's graph could only be read once step t+1 had finished, and nothing would overlap. Rows
//! that sample on the host (temperature, penalties, `format`, logprobs) need their logits
//! first, so a batch with any of them steps synchronously. Each row keeps its own sampler,
//! seed, stop strings and history, so what a row produces does not depend on its neighbours: a
//! greedy row yields the tokens it yields alone.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use mlx_rs::ops::concatenate;
use mlx_rs::ops::indexing::argmax_axis;
use mlx_rs::{Array, Dtype};
use ollmlx_models::{KvCache, LogitsMode};

use crate::engine::Resident;
use crate::error::EngineError;
use crate::generate::{FinishReason, CLEAR_CACHE_EVERY};
use crate::sequence::{Flow, Prefill, PrefillState, Sequence};

/// A row that left the batch.
pub(crate) struct Left {
    /// Its state (reply channel, stats).
    pub(crate) seq: Sequence,
    /// Why: finished (`Ok(Some)`), client gone (`Ok(None)`) or failed.
    pub(crate) outcome: Result<Option<FinishReason>, EngineError>,
    /// Its own caches (holding `seq.cached`), for the prefix cache.
    pub(crate) caches: Vec<KvCache>,
}

impl Left {
    fn from_prefill(p: Prefill, outcome: Result<Option<FinishReason>, EngineError>) -> Self {
        let (seq, caches) = p.into_parts();
        Left {
            seq,
            outcome,
            caches,
        }
    }
}

/// The requests of one model decoding together.
pub(crate) struct Batch {
    /// Resident model name.
    pub(crate) model: String,
    rows: Vec<Sequence>,
    /// One per layer, row `i` = `rows[i]`.
    caches: Vec<KvCache>,
    /// Logits (`[rows, 1, vocab]`, possibly still being computed) the next tokens come from.
    logits: Option<Array>,
    /// The rows' greedy tokens from `logits` (`[rows, 1]` argmax), scheduled with them, when
    /// the step that made `logits` computed them ahead; `None` otherwise.
    chosen: Option<Array>,
    steps: usize,
    /// Requests evaluating their prompts, in arrival order: the front one chunk per turn
    /// while rows decode, or several at once as a group.
    joining: VecDeque<Box<Prefill>>,
    /// Rows of the last decode step (0 when the last turn only prefilled).
    pub(crate) last_rows: usize,
    /// Requests prefilled as one group in the last turn (0: none), for telemetry.
    pub(crate) last_group: usize,
    /// Draft tokens proposed and accepted in the last step (a speculative round), for telemetry.
    pub(crate) last_drafts: (u64, u64),
    /// Speculative decoding: the single row's last token is not fed yet (no `logits`); the
    /// next step is a draft-and-verify round ([`crate::speculative::step`]).
    spec: bool,
    /// Where the host's time per decode step goes, logged at debug level.
    timing: StepTiming,
}

/// Whether greedy rows decode one step ahead: yes unless `OLLMLX_PIPELINE=0` (for A/B runs).
/// On a GPU a step is host-bound, so building and launching step t+1 while the device runs
/// step t is where the time goes; on the 2-core CPU one step at a time measured the same
/// within noise (docs/performance.md §2.6).
fn pipelined() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var("OLLMLX_PIPELINE").as_deref() != Ok("0"))
}

/// Host time of pipelined decode steps, split by phase: building step t+1's graph, handing
/// it to MLX (`async_eval`: on a GPU this encodes and launches its kernels), waiting for step
/// t's tokens, and the per-token work (detokenize, stop strings, send). Summed over
/// [`StepTiming::EVERY`] steps, then logged (`OLLAMA_DEBUG=1`) and reset.
#[derive(Default)]
struct StepTiming {
    steps: u32,
    rows: usize,
    build: Duration,
    submit: Duration,
    wait: Duration,
    host: Duration,
}

impl StepTiming {
    const EVERY: u32 = 128;

    fn add(&mut self, rows: usize, [build, submit, wait, host]: [Duration; 4]) {
        self.steps += 1;
        self.rows += rows;
        self.build += build;
        self.submit += submit;
        self.wait += wait;
        self.host += host;
        if self.steps == Self::EVERY {
            let ms = |d: Duration| d.as_secs_f64() * 1e3 / f64::from(self.steps);
            tracing::debug!(
                steps = self.steps,
                rows = self.rows as f64 / f64::from(self.steps),
                build_ms = ms(self.build),
                submit_ms = ms(self.submit),
                wait_ms = ms(self.wait),
                host_ms = ms(self.host),
                "decode step timing (per step)"
            );
            *self = StepTiming::default();
        }
    }
}

impl Batch {
    /// An empty batch for `model`.
    pub(crate) fn new(model: &str) -> Self {
        Batch {
            model: model.to_string(),
            rows: Vec::new(),
            caches: Vec::new(),
            logits: None,
            chosen: None,
            steps: 0,
            joining: VecDeque::new(),
            last_rows: 0,
            last_group: 0,
            last_drafts: (0, 0),
            spec: false,
            timing: StepTiming::default(),
        }
    }

    /// Requests in the batch: decoding, plus those evaluating their prompts.
    pub(crate) fn len(&self) -> usize {
        self.rows.len() + self.joining.len()
    }

    /// Rows decoding.
    pub(crate) fn decoding(&self) -> usize {
        self.rows.len()
    }

    /// Nothing left.
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A request that starts its prefill (after those already waiting); it joins the rows
    /// when its prompt is in.
    pub(crate) fn admit(&mut self, p: Box<Prefill>) {
        self.joining.push_back(p);
    }

    /// Add prefilled requests: their caches (one row each, in order) and last-position logits.
    pub(crate) fn join(
        &mut self,
        m: &Resident,
        seqs: Vec<Sequence>,
        caches: Vec<KvCache>,
        logits: Array,
    ) -> Result<(), EngineError> {
        self.chosen = None;
        if self.spec {
            // The speculating row has not fed its last token yet: feed it, back to logits.
            self.spec = false;
            if let Some(row) = self.rows.first_mut() {
                let last = *row.history.last().unwrap_or(&0);
                self.logits = Some(crate::generate::forward(m, &mut self.caches, &[last])?);
                row.cached.push(last);
            }
        }
        match self.logits.take() {
            Some(current) if !self.rows.is_empty() => {
                let merged = self
                    .caches
                    .iter()
                    .zip(&caches)
                    .map(|(a, b)| KvCache::stack(&[a, b]))
                    .collect::<Result<Vec<_>, _>>()?;
                let logits = concatenate(&[current, logits], 0)?;
                self.caches = merged;
                self.logits = Some(logits);
            }
            _ => {
                self.caches = caches;
                self.logits = Some(logits);
            }
        }
        self.rows.extend(seqs);
        Ok(())
    }

    /// Every request, removed (the batch failed or the engine is stopping).
    pub(crate) fn drain(&mut self) -> Vec<Sequence> {
        self.caches.clear();
        self.logits = None;
        self.chosen = None;
        self.spec = false;
        let mut all = std::mem::take(&mut self.rows);
        all.extend(self.joining.drain(..).map(|p| p.into_parts().0));
        all
    }

    /// One turn: prompts advance (the front joining request's next chunk, the whole prompt
    /// when no row decodes, or several whole prompts as one group) and join when done, then one
    /// decode step for every row. Returns the requests that left. An `Err` means a decode
    /// forward pass itself failed: the caller fails every request ([`Batch::drain`]).
    pub(crate) fn step(&mut self, m: &mut Resident) -> Result<Vec<Left>, EngineError> {
        let mut out = Vec::new();
        self.last_rows = 0;
        self.last_drafts = (0, 0);
        self.last_group = 0;
        let (gone, waiting): (VecDeque<_>, VecDeque<_>) =
            self.joining.drain(..).partition(|p| p.is_cancelled());
        out.extend(gone.into_iter().map(|p| Left::from_prefill(*p, Ok(None))));
        self.joining = waiting;
        let interleave = !self.rows.is_empty();
        let group = crate::prefill_group::group_len(&self.joining, interleave);
        if group >= 2 {
            let members: Vec<Prefill> = self.joining.drain(..group).map(|p| *p).collect();
            self.last_group = group;
            match crate::prefill_group::run(m, members) {
                Ok(g) => self.join(m, g.seqs, g.caches, g.logits)?,
                Err((e, members)) => out.extend(
                    members
                        .into_iter()
                        .map(|p| Left::from_prefill(p, Err(e.clone()))),
                ),
            }
        } else if let Some(mut p) = self.joining.pop_front() {
            match p.advance(m, interleave) {
                Ok(PrefillState::Ready) => {
                    let (seq, caches, logits) = p.into_running()?;
                    self.join(m, vec![seq], caches, logits)?;
                }
                Ok(PrefillState::More) => self.joining.push_front(p),
                Ok(PrefillState::Cancelled) => out.push(Left::from_prefill(*p, Ok(None))),
                Err(e) => out.push(Left::from_prefill(*p, Err(e))),
            }
        }
        if self.rows.is_empty() {
            return Ok(out);
        }
        if self.spec {
            out.extend(self.speculate(m)?);
        } else {
            out.extend(self.decode(m)?);
        }
        Ok(out)
    }

    /// One draft-and-verify round for the single speculating row, then its tokens streamed in
    /// order; the row goes back to plain decoding when it shifts its context.
    fn speculate(&mut self, m: &mut Resident) -> Result<Vec<Left>, EngineError> {
        self.last_rows = 1;
        let mut row = self.rows.remove(0);
        let Some(draft) = row.draft_of(&mut m.draft, &mut m.lookup) else {
            // The draft went away (another one was loaded): feed the token, decode plainly.
            self.spec = false;
            let last = *row.history.last().unwrap_or(&0);
            let l = crate::generate::forward(m, &mut self.caches, &[last])?;
            row.cached.push(last);
            let caches = std::mem::take(&mut self.caches);
            self.join(m, vec![row], caches, l)?;
            return Ok(Vec::new());
        };
        let budget = row.budget();
        let before = draft.stats;
        let toks = crate::speculative::step(
            &*m.model,
            &mut self.caches,
            draft,
            &row.history,
            &mut row.sampler,
            budget,
        )?;
        self.last_drafts = (
            draft.stats.proposed - before.proposed,
            draft.stats.accepted - before.accepted,
        );
        // The cache now holds the history and every new token but the last.
        let last = *row.history.last().unwrap_or(&0);
        row.cached.push(last);
        row.cached
            .extend_from_slice(&toks[..toks.len().saturating_sub(1)]);
        self.steps += 1;
        let mut flow = Ok(Flow::Continue);
        for &tok in &toks {
            flow = row.advance(m, tok);
            if !matches!(flow, Ok(Flow::Continue)) {
                break;
            }
        }
        let caches = std::mem::take(&mut self.caches);
        let outcome = match flow {
            Ok(Flow::Continue) => {
                self.caches = caches;
                self.rows.push(row);
                return Ok(Vec::new());
            }
            Ok(Flow::Shift) => {
                self.spec = false;
                let mut caches = caches;
                match row.shift(m, &mut caches) {
                    Ok(l) => {
                        self.join(m, vec![row], caches, l)?;
                        return Ok(Vec::new());
                    }
                    Err(e) => {
                        return Ok(vec![Left {
                            seq: row,
                            outcome: Err(e),
                            caches,
                        }])
                    }
                }
            }
            Ok(Flow::Stop(reason)) => Ok(Some(reason)),
            Ok(Flow::Cancelled) => Ok(None),
            Err(e) => Err(e),
        };
        self.spec = false;
        Ok(vec![Left {
            seq: row,
            outcome,
            caches,
        }])
    }

    fn decode(&mut self, m: &Resident) -> Result<Vec<Left>, EngineError> {
        self.last_rows = self.rows.len();
        let logits = self
            .logits
            .take()
            .ok_or_else(|| EngineError::Model("batch stepped without logits".into()))?;
        // A lone row with a draft model goes speculative after this token: no step ahead.
        let spec_next =
            self.rows.len() == 1 && self.joining.is_empty() && self.rows[0].wants_draft(m);
        let all_device = self.rows.iter().all(|r| r.device_greedy) && !spec_next;
        let scheduled = self.chosen.take();
        let fresh = scheduled.is_none();
        let chosen = match scheduled {
            Some(c) => c,
            None => argmax_axis(&logits, -1, false)?, // [rows, 1]
        };
        let mut ahead = None;
        let t0 = Instant::now();
        let (mut t1, mut t2) = (t0, t0);
        let picks: Vec<Result<Option<u32>, EngineError>> = if all_device {
            if pipelined() && !self.rows.iter().all(|r| r.next_is_last()) {
                if fresh {
                    // Its own evaluation, so that reading it waits for these logits only,
                    // not for the step scheduled below.
                    mlx_rs::transforms::async_eval([&chosen])?;
                }
                let l = m
                    .model
                    .forward(&chosen, &mut self.caches, LogitsMode::Last)?;
                let next = argmax_axis(&l, -1, false)?;
                t1 = Instant::now();
                mlx_rs::transforms::async_eval([&l, &next])?;
                t2 = Instant::now();
                ahead = Some((l, next));
            }
            tokens(&chosen)?.into_iter().map(|t| Ok(Some(t))).collect()
        } else {
            mlx_rs::transforms::eval([&logits, &chosen])?;
            let greedy = tokens(&chosen)?;
            let host = logits.as_dtype(Dtype::Float32)?;
            let vocab = host.dim(-1) as usize;
            let flat = host
                .try_as_slice::<f32>()
                .map_err(|e| EngineError::Model(e.to_string()))?;
            self.rows
                .iter_mut()
                .enumerate()
                .map(|(i, r)| match r.device_greedy {
                    true => Ok(Some(greedy[i])),
                    false => r.pick(flat[i * vocab..(i + 1) * vocab].to_vec()),
                })
                .collect()
        };
        let t3 = Instant::now();
        if ahead.is_some() {
            for (r, p) in self.rows.iter_mut().zip(&picks) {
                if let Ok(Some(t)) = p {
                    r.cached.push(*t);
                }
            }
        }
        self.steps += 1;
        if self.steps.is_multiple_of(CLEAR_CACHE_EVERY) {
            mlx_rs::memory::clear_cache()?;
        }

        // Stream each row's token and sort the rows by what they do next.
        let mut keep = Vec::new();
        let mut shifting = Vec::new();
        let mut left: Vec<(usize, Result<Option<FinishReason>, EngineError>)> = Vec::new();
        let mut next = Vec::new();
        for (i, (row, pick)) in self.rows.iter_mut().zip(picks).enumerate() {
            next.push(match &pick {
                Ok(Some(tok)) => *tok,
                _ => 0,
            });
            let flow = pick.and_then(|p| match p {
                Some(tok) => row.advance(m, tok),
                None => Ok(Flow::Stop(FinishReason::Stop)),
            });
            match flow {
                Ok(Flow::Continue) => keep.push(i),
                Ok(Flow::Shift) => shifting.push(i),
                Ok(Flow::Stop(reason)) => left.push((i, Ok(Some(reason)))),
                Ok(Flow::Cancelled) => left.push((i, Ok(None))),
                Err(e) => left.push((i, Err(e))),
            }
        }
        if ahead.is_some() {
            let rows = self.rows.len();
            self.timing
                .add(rows, [t1 - t0, t2 - t1, t3 - t2, t3.elapsed()]);
        }

        // Each leaving or shifting row takes its own (unpadded, evaluated) caches along, so the
        // batch buffers stay the only reference the next in-place write sees.
        let mut own: Vec<Option<Vec<KvCache>>> = (0..self.rows.len()).map(|_| None).collect();
        for &i in left.iter().map(|(i, _)| i).chain(&shifting) {
            own[i] = Some(self.row_caches(i)?);
        }
        let mut rows: Vec<Option<Sequence>> = self.rows.drain(..).map(Some).collect();
        let mut out = Vec::new();
        for (i, outcome) in left {
            if let (Some(seq), Some(caches)) = (rows[i].take(), own[i].take()) {
                out.push(Left {
                    seq,
                    outcome,
                    caches,
                });
            }
        }
        let mut rejoin = Vec::new();
        for &i in &shifting {
            if let (Some(mut seq), Some(mut caches)) = (rows[i].take(), own[i].take()) {
                match seq.shift(m, &mut caches) {
                    Ok(l) => rejoin.push((Box::new(seq), caches, l)),
                    Err(e) => out.push(Left {
                        seq,
                        outcome: Err(e),
                        caches,
                    }),
                }
            }
        }

        // The rows that go on.
        if spec_next && keep.len() == 1 && rows.len() == 1 {
            self.rows = keep.iter().filter_map(|&i| rows[i].take()).collect();
            self.logits = None;
            self.spec = true;
        } else if !keep.is_empty() {
            let all = keep.len() == rows.len();
            if !all {
                self.caches = self
                    .caches
                    .iter()
                    .map(|c| c.select(&keep))
                    .collect::<Result<Vec<_>, _>>()?;
            }
            self.rows = keep.iter().filter_map(|&i| rows[i].take()).collect();
            self.logits = Some(match ahead {
                Some((l, next)) if all => {
                    self.chosen = Some(next);
                    l
                }
                Some((l, next)) => {
                    let idx: Vec<i32> = keep.iter().map(|&i| i as i32).collect();
                    let idx = Array::from_slice(&idx, &[idx.len() as i32]);
                    // Scheduled now, so the next step reads it without waiting for itself.
                    let kept = next.take_axis(&idx, 0)?;
                    mlx_rs::transforms::async_eval([&kept])?;
                    self.chosen = Some(kept);
                    l.take_axis(idx, 0)?
                }
                None => {
                    let ids: Vec<i32> = keep.iter().map(|&i| next[i] as i32).collect();
                    let input = Array::from_slice(&ids, &[ids.len() as i32, 1]);
                    let l = m
                        .model
                        .forward(&input, &mut self.caches, LogitsMode::Last)?;
                    for (r, t) in self.rows.iter_mut().zip(&ids) {
                        r.cached.push(*t as u32);
                    }
                    l
                }
            });
        } else {
            self.caches.clear();
            self.logits = None;
        }
        for (seq, caches, l) in rejoin {
            self.join(m, vec![*seq], caches, l)?;
        }
        Ok(out)
    }

    /// Row `i`'s caches on their own: the batch's when it is the only row, else a copy.
    fn row_caches(&self, i: usize) -> Result<Vec<KvCache>, EngineError> {
        if self.rows.len() == 1 {
            return Ok(self.caches.clone());
        }
        let own = self
            .caches
            .iter()
            .map(|c| c.select(&[i]))
            .collect::<Result<Vec<_>, _>>()?;
        let arrays: Vec<&Array> = own.iter().flat_map(KvCache::arrays).collect();
        mlx_rs::transforms::eval(arrays)?;
        Ok(own)
    }
}

/// Host copy of a `[rows, 1]` token array.
fn tokens(chosen: &Array) -> Result<Vec<u32>, EngineError> {
    let t = chosen.as_dtype(Dtype::Uint32)?;
    Ok(t.try_as_slice::<u32>()
        .map_err(|e| EngineError::Model(e.to_string()))?
        .to_vec())
}
