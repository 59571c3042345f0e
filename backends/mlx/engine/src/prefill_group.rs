//! Grouped prefill: requests waiting together to join the batch evaluate their prompts in one
//! `[rows, len]` forward pass instead of one after another.
//!
//! Request path: [`crate::batch::Batch::step`] asks [`group_len`] how many joining requests,
//! from the front and in arrival order, fit one turn; [`run`] lines each one up so that its
//! last prompt token lands in the last column ([`crate::sequence::Prefill::line_up`],
//! [`ollmlx_models::KvCache::group`]) and evaluates them all at once; the rows then join the
//! decoding batch together with their last-position logits.
//!
//! A row shorter than the longest fills its spare columns first by evaluating again the end of
//! its own cached prefix (its cache is cut back by as many), then, once nothing cached is left,
//! with fillers that are left padding. So a group costs what a chunk of rows × the longest
//! remaining prompt costs, and that is bounded by every member's chunk (`num_batch` while
//! other rows decode, the solo prefill chunk otherwise): the decoding rows wait no longer for
//! a group than for one newcomer's chunk. One forward pass over a group reads the weights
//! once for all of its rows, which is where the time goes for short prompts.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use mlx_rs::Array;
use ollmlx_models::{KvCache, LogitsMode};

use crate::engine::Resident;
use crate::error::EngineError;
use crate::sequence::{Prefill, Sequence};

/// How many requests from the front of `joining` prefill together: the longest run whose
/// whole remaining prompts fit one turn, counted as rows × the longest of them, within every
/// member's own chunk ([`Prefill::chunk`]: `num_batch` while rows decode). 0 when fewer than
/// two fit (the front one then prefills on its own, chunk by chunk).
pub(crate) fn group_len(joining: &VecDeque<Box<Prefill>>, interleave: bool) -> usize {
    let (mut rows, mut longest, mut budget) = (0, 0, usize::MAX);
    for p in joining {
        let rest = p.remaining();
        let len = longest.max(rest);
        let cap = budget.min(p.chunk(interleave));
        if rest == 0 || len * (rows + 1) > cap {
            break;
        }
        (rows, longest, budget) = (rows + 1, len, cap);
    }
    if rows >= 2 {
        rows
    } else {
        0
    }
}

/// A group whose prompts are in.
pub(crate) struct Grouped {
    /// The decode states, in the group's order.
    pub(crate) seqs: Vec<Sequence>,
    /// One per layer, row `i` = `seqs[i]`.
    pub(crate) caches: Vec<KvCache>,
    /// Last-position logits, `[rows, 1, vocab]`.
    pub(crate) logits: Array,
}

/// Evaluate every member's remaining prompt in one forward pass. On failure the members come
/// back (with caches cut back by [`Prefill::line_up`]) to be failed one by one.
pub(crate) fn run(
    m: &Resident,
    mut members: Vec<Prefill>,
) -> Result<Grouped, (EngineError, Vec<Prefill>)> {
    let t = Instant::now();
    let len = members.iter().map(|p| p.remaining()).max().unwrap_or(0);
    let (mut fill, mut ids) = (Vec::new(), Vec::new());
    for p in members.iter_mut() {
        let (f, row) = p.line_up(len);
        fill.push(f);
        ids.extend(row);
    }
    match forward(m, &members, &fill, &ids, len) {
        Ok((caches, logits)) => {
            let spent: Duration = t.elapsed();
            Ok(Grouped {
                seqs: members
                    .into_iter()
                    .map(|p| p.into_decoding(spent))
                    .collect(),
                caches,
                logits,
            })
        }
        Err(e) => Err((e, members)),
    }
}

fn forward(
    m: &Resident,
    members: &[Prefill],
    fill: &[i32],
    ids: &[i32],
    len: usize,
) -> Result<(Vec<KvCache>, Array), EngineError> {
    let layers = members.first().map_or(0, |p| p.caches().len());
    let mut caches = (0..layers)
        .map(|layer| {
            let parts: Vec<&KvCache> = members.iter().map(|p| &p.caches()[layer]).collect();
            KvCache::group(&parts, fill)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let input = Array::from_slice(ids, &[members.len() as i32, len as i32]);
    let logits = m.model.forward(&input, &mut caches, LogitsMode::Last)?;
    logits.eval()?;
    Ok((caches, logits))
}
