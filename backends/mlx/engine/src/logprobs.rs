//! Per-token log probabilities (`logprobs` / `top_logprobs` of Ollama's /api/generate and
//! /api/chat, OpenAI's `logprobs`): computed on the engine thread at the sampling call site of
//! the decode loop, from the raw logits of the step — log-softmax of the model's distribution
//! before penalties, temperature, truncation and the `format` mask, as llama-server reports them
//! to Ollama — then sent as [`crate::EngineEvent::Logprobs`] ahead of the token's text.

use crate::constrain_vocab::VocabBytes;

/// One token and its log probability.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenLogprob {
    /// The token id.
    pub id: u32,
    /// The token's text (lossy UTF-8 of `bytes`).
    pub token: String,
    /// The token's raw bytes.
    pub bytes: Vec<u8>,
    /// `ln p(token)`.
    pub logprob: f64,
}

/// The sampled token plus the most likely alternatives at its position.
#[derive(Debug, Clone, PartialEq)]
pub struct Logprob {
    /// The token that was generated.
    pub chosen: TokenLogprob,
    /// The `top_logprobs` most likely tokens, most likely first (empty when 0 were asked for).
    pub top: Vec<TokenLogprob>,
}

/// `ln Σ exp(row)`, computed stably in f64 (non-finite entries count as probability 0).
pub fn log_sum_exp(row: &[f32]) -> f64 {
    let max = row
        .iter()
        .filter(|l| l.is_finite())
        .fold(f64::NEG_INFINITY, |m, &l| m.max(l as f64));
    if !max.is_finite() {
        return f64::NEG_INFINITY;
    }
    let sum: f64 = row
        .iter()
        .filter(|l| l.is_finite())
        .map(|&l| (l as f64 - max).exp())
        .sum();
    max + sum.ln()
}

/// The ids of the `n` largest entries of `row`, largest first (ties: lower id first).
pub fn top_ids(row: &[f32], n: usize) -> Vec<u32> {
    let n = n.min(row.len());
    if n == 0 {
        return Vec::new();
    }
    let key = |&i: &u32| {
        let l = row[i as usize];
        if l.is_nan() {
            f32::NEG_INFINITY
        } else {
            l
        }
    };
    let cmp = |a: &u32, b: &u32| key(b).total_cmp(&key(a)).then(a.cmp(b));
    let mut ids: Vec<u32> = (0..row.len() as u32).collect();
    if n < ids.len() {
        ids.select_nth_unstable_by(n - 1, cmp);
        ids.truncate(n);
    }
    ids.sort_unstable_by(cmp);
    ids
}

/// The logprob report for `chosen` given the raw logits `row` of its step.
pub fn report(row: &[f32], chosen: u32, top_n: usize, vocab: &VocabBytes) -> Logprob {
    let lse = log_sum_exp(row);
    let entry = |id: u32| {
        let bytes = vocab.get(id).to_vec();
        let l = row.get(id as usize).copied().unwrap_or(f32::NEG_INFINITY) as f64;
        TokenLogprob {
            id,
            token: String::from_utf8_lossy(&bytes).into_owned(),
            bytes,
            logprob: l - lse,
        }
    };
    Logprob {
        chosen: entry(chosen),
        top: top_ids(row, top_n).into_iter().map(entry).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vocab(n: usize) -> VocabBytes {
        VocabBytes {
            bytes: (0..n).map(|i| format!("t{i}").into_bytes()).collect(),
            special: vec![false; n],
        }
    }

    #[test]
    fn logprobs_are_log_softmax_of_the_raw_logits() {
        let row = [1.0f32, 2.0, 3.0, f32::NEG_INFINITY];
        let r = report(&row, 1, 0, &vocab(4));
        let z: f64 = [1.0f64, 2.0, 3.0].iter().map(|x| x.exp()).sum();
        assert!((r.chosen.logprob - (2.0 - z.ln())).abs() < 1e-9);
        assert_eq!(r.chosen.token, "t1");
        assert_eq!(r.chosen.bytes, b"t1");
        assert!(r.top.is_empty(), "top_logprobs 0 reports no alternatives");
    }

    #[test]
    fn top_logprobs_are_sorted_and_capped() {
        let row: Vec<f32> = (0..1000)
            .map(|i| ((i * 37) % 1000) as f32 / 100.0)
            .collect();
        let r = report(&row, 5, 20, &vocab(1000));
        assert_eq!(r.top.len(), 20);
        assert!(r.top.windows(2).all(|w| w[0].logprob >= w[1].logprob));
        let best = top_ids(&row, 1)[0];
        assert_eq!(r.top[0].id, best);
        let mass: f64 = r.top.iter().map(|t| t.logprob.exp()).sum();
        assert!(mass <= 1.0 + 1e-9);
    }

    #[test]
    fn masked_tokens_have_no_probability_and_top_n_beyond_the_vocab_is_clamped() {
        let row = [0.5f32, f32::NEG_INFINITY];
        let r = report(&row, 0, 5, &vocab(2));
        assert!(
            r.chosen.logprob.abs() < 1e-12,
            "the only finite token has p = 1"
        );
        assert_eq!(r.top.len(), 2);
        assert_eq!(r.top[1].logprob, f64::NEG_INFINITY);
    }
}
