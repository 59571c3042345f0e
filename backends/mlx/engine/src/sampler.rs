//! Token sampling on the host: penalties over the recent window, then greedy or
//! temperature + top-k + top-p + min-p sampling with a seedable RNG (same seed, same output).

use std::collections::HashMap;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Sampling parameters (Ollama's option names and defaults).
#[derive(Debug, Clone, PartialEq)]
pub struct SamplerConfig {
    /// 0 = greedy.
    pub temperature: f32,
    /// Keep the k most likely tokens (0 = off).
    pub top_k: usize,
    /// Nucleus mass (1.0 = off).
    pub top_p: f32,
    /// Drop tokens below `min_p × p(max)` (0 = off).
    pub min_p: f32,
    /// Locally typical sampling: keep the tokens whose surprise is closest to the distribution's
    /// entropy, up to this much probability mass (1.0 = off).
    pub typical_p: f32,
    /// How many recent tokens the penalties look at (0 = off).
    pub repeat_last_n: usize,
    /// Multiplicative penalty on tokens seen in the window (1.0 = off).
    pub repeat_penalty: f32,
    /// Subtracted once from tokens seen in the window.
    pub presence_penalty: f32,
    /// Subtracted per occurrence in the window.
    pub frequency_penalty: f32,
    /// RNG seed; `None` = random.
    pub seed: Option<u64>,
}

impl SamplerConfig {
    /// Greedy with no penalty: the next token depends on the logits alone, so it can be picked
    /// on the device (argmax) without the history on the host.
    pub fn is_plain_greedy(&self) -> bool {
        self.temperature <= 0.0
            && (self.repeat_last_n == 0
                || (self.repeat_penalty == 1.0
                    && self.presence_penalty == 0.0
                    && self.frequency_penalty == 0.0))
    }
}

impl Default for SamplerConfig {
    fn default() -> Self {
        SamplerConfig {
            temperature: 0.8,
            top_k: 40,
            top_p: 0.9,
            min_p: 0.0,
            typical_p: 1.0,
            repeat_last_n: 64,
            // Ollama's `DefaultOptions` (1.0 since it stopped penalizing by default): a
            // temperature-0 request with no options is plain greedy, picked on the device.
            repeat_penalty: 1.0,
            presence_penalty: 0.0,
            frequency_penalty: 0.0,
            seed: None,
        }
    }
}

/// Locally typical filtering (Meister et al.): rank tokens by |surprise − entropy|, keep the
/// closest ones until their mass reaches `mass`, renormalize. `cand`/`probs` stay sorted by
/// probability (descending) for the filters that follow.
fn typical(cand: &mut Vec<(u32, f32)>, probs: &mut Vec<f32>, mass: f32) {
    let entropy: f32 = -probs
        .iter()
        .filter(|&&p| p > 0.0)
        .map(|&p| p * p.ln())
        .sum::<f32>();
    let mut order: Vec<usize> = (0..probs.len()).collect();
    let score = |i: usize| {
        let p = probs[i];
        if p > 0.0 {
            (-p.ln() - entropy).abs()
        } else {
            f32::INFINITY
        }
    };
    order.sort_by(|&a, &b| score(a).total_cmp(&score(b)));
    let mut kept = vec![false; probs.len()];
    let mut acc = 0.0;
    for &i in &order {
        kept[i] = true;
        acc += probs[i];
        if acc >= mass {
            break;
        }
    }
    let mut i = 0;
    cand.retain(|_| {
        i += 1;
        kept[i - 1]
    });
    let mut j = 0;
    probs.retain(|_| {
        j += 1;
        kept[j - 1]
    });
    let total: f32 = probs.iter().sum();
    if total > 0.0 {
        probs.iter_mut().for_each(|p| *p /= total);
    }
}

/// A sampler with its RNG state.
pub struct Sampler {
    cfg: SamplerConfig,
    rng: StdRng,
}

impl Sampler {
    /// Build a sampler; a fixed seed makes the token sequence reproducible.
    pub fn new(cfg: SamplerConfig) -> Self {
        let rng = match cfg.seed {
            Some(s) => StdRng::seed_from_u64(s),
            None => StdRng::from_entropy(),
        };
        Sampler { cfg, rng }
    }

    /// Pick the next token from `logits` given the token `history` (prompt + generated).
    pub fn sample(&mut self, logits: &mut [f32], history: &[u32]) -> u32 {
        self.apply_penalties(logits, history);
        if self.cfg.temperature <= 0.0 {
            return argmax(logits);
        }
        let Some((cand, probs, keep)) = self.filtered(logits) else {
            return argmax(logits);
        };
        let total: f32 = probs[..keep].iter().sum();
        let mut r = self.rng.gen::<f32>() * total;
        for i in 0..keep {
            r -= probs[i];
            if r <= 0.0 {
                return cand[i].0;
            }
        }
        cand[keep - 1].0
    }

    /// The configuration this sampler was built with.
    pub fn config(&self) -> &SamplerConfig {
        &self.cfg
    }

    /// The distribution [`Sampler::sample`] draws from for these `logits` after `history`:
    /// penalties, temperature, top-k, typical-p, top-p and min-p applied, as `(token,
    /// probability)` pairs (most likely first, summing to 1, zero-probability tokens left out).
    /// Greedy (temperature 0) gives the penalized argmax with probability 1. Used by speculative
    /// decoding's distribution-preserving acceptance; `logits` is modified like `sample` does.
    pub fn distribution(&self, logits: &mut [f32], history: &[u32]) -> Vec<(u32, f32)> {
        self.apply_penalties(logits, history);
        if self.cfg.temperature <= 0.0 {
            return vec![(argmax(logits), 1.0)];
        }
        let Some((cand, probs, keep)) = self.filtered(logits) else {
            return vec![(argmax(logits), 1.0)];
        };
        let total: f32 = probs[..keep].iter().sum();
        cand[..keep]
            .iter()
            .zip(&probs[..keep])
            .filter(|(_, &p)| p > 0.0)
            .map(|(&(t, _), &p)| (t, p / total))
            .collect()
    }

    /// One uniform draw in `[0, 1)` from this sampler's RNG (seeded runs stay reproducible).
    pub fn uniform(&mut self) -> f32 {
        self.rng.gen::<f32>()
    }

    /// Draw a token from `(token, weight)` pairs (weights need not sum to 1); `None` when there
    /// is nothing to draw from.
    pub fn draw(&mut self, dist: &[(u32, f32)]) -> Option<u32> {
        let total: f32 = dist.iter().map(|&(_, p)| p.max(0.0)).sum();
        if total.is_nan() || total <= 0.0 {
            return None;
        }
        let mut r = self.rng.gen::<f32>() * total;
        for &(t, p) in dist {
            r -= p.max(0.0);
            if r <= 0.0 {
                return Some(t);
            }
        }
        dist.iter().rev().find(|(_, p)| *p > 0.0).map(|&(t, _)| t)
    }

    /// The candidates `sample` draws from when temperature > 0: `(token, logit)` sorted by
    /// logit, their probabilities after temperature/top-k/typical-p, and how many of them
    /// survive top-p and min-p. `None` when no logit is finite.
    #[allow(clippy::type_complexity)]
    fn filtered(&self, logits: &[f32]) -> Option<(Vec<(u32, f32)>, Vec<f32>, usize)> {
        let mut cand: Vec<(u32, f32)> = logits
            .iter()
            .enumerate()
            .filter(|(_, l)| l.is_finite())
            .map(|(i, &l)| (i as u32, l))
            .collect();
        if cand.is_empty() {
            return None;
        }
        cand.sort_unstable_by(|a, b| b.1.total_cmp(&a.1));
        if self.cfg.top_k > 0 && cand.len() > self.cfg.top_k {
            cand.truncate(self.cfg.top_k);
        }
        // Softmax with temperature over the survivors (sorted, so cand[0] is the max).
        let max = cand[0].1;
        let mut probs: Vec<f32> = cand
            .iter()
            .map(|(_, l)| ((l - max) / self.cfg.temperature).exp())
            .collect();
        let sum: f32 = probs.iter().sum();
        probs.iter_mut().for_each(|p| *p /= sum);
        if self.cfg.typical_p > 0.0 && self.cfg.typical_p < 1.0 {
            typical(&mut cand, &mut probs, self.cfg.typical_p);
        }
        let mut keep = probs.len();
        if self.cfg.top_p > 0.0 && self.cfg.top_p < 1.0 {
            let mut acc = 0.0;
            for (i, p) in probs.iter().enumerate() {
                acc += p;
                if acc >= self.cfg.top_p {
                    keep = i + 1;
                    break;
                }
            }
        }
        if self.cfg.min_p > 0.0 {
            let floor = probs[0] * self.cfg.min_p;
            keep = keep.min(probs.iter().take_while(|&&p| p >= floor).count().max(1));
        }
        Some((cand, probs, keep))
    }

    fn apply_penalties(&self, logits: &mut [f32], history: &[u32]) {
        let c = &self.cfg;
        if c.repeat_last_n == 0
            || (c.repeat_penalty == 1.0 && c.presence_penalty == 0.0 && c.frequency_penalty == 0.0)
        {
            return;
        }
        let window = &history[history.len().saturating_sub(c.repeat_last_n)..];
        let mut counts: HashMap<u32, u32> = HashMap::new();
        for &t in window {
            *counts.entry(t).or_default() += 1;
        }
        for (&t, &n) in &counts {
            let Some(l) = logits.get_mut(t as usize) else {
                continue;
            };
            if c.repeat_penalty != 1.0 && c.repeat_penalty > 0.0 {
                *l = if *l > 0.0 {
                    *l / c.repeat_penalty
                } else {
                    *l * c.repeat_penalty
                };
            }
            *l -= n as f32 * c.frequency_penalty + c.presence_penalty;
        }
    }
}

fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (i, l) in logits.iter().enumerate() {
        if *l > logits[best] {
            best = i;
        }
    }
    best as u32
}

#[cfg(test)]
mod typical_tests {
    use super::*;

    #[test]
    fn typical_keeps_tokens_near_the_entropy_and_drops_the_outliers() {
        // p = 0.4 and twenty tokens at 0.03: entropy ≈ 2.47 nats; the tail's surprise (3.51) is
        // closer to it than the top token's (0.92), so a small typical mass drops the top token.
        let mut probs = vec![0.4f32];
        probs.extend(std::iter::repeat_n(0.03, 20));
        let mut cand: Vec<(u32, f32)> = (0..probs.len() as u32).map(|i| (i, 0.0)).collect();
        typical(&mut cand, &mut probs, 0.2);
        assert!(cand.iter().all(|(i, _)| *i != 0), "{cand:?}");
        assert!((probs.iter().sum::<f32>() - 1.0).abs() < 1e-5);
        assert_eq!(cand.len(), 7, "0.2 of mass at 0.03 each");
    }

    #[test]
    fn typical_p_one_is_off_and_a_seed_still_reproduces() {
        let logits: Vec<f32> = (0..64).map(|i| ((i * 7 % 13) as f32) * 0.3).collect();
        let run = |typical_p: f32| {
            let mut s = Sampler::new(SamplerConfig {
                temperature: 1.0,
                typical_p,
                repeat_penalty: 1.0,
                seed: Some(7),
                ..Default::default()
            });
            (0..32)
                .map(|_| s.sample(&mut logits.clone(), &[]))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(1.0), run(1.0));
        assert_eq!(run(0.5), run(0.5));
        // A tight typical mass narrows the choice to fewer distinct tokens.
        let distinct = |v: Vec<u32>| {
            let mut v = v;
            v.sort();
            v.dedup();
            v.len()
        };
        assert!(distinct(run(0.05)) <= distinct(run(1.0)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(temperature: f32) -> SamplerConfig {
        SamplerConfig {
            temperature,
            repeat_penalty: 1.0,
            seed: Some(7),
            ..Default::default()
        }
    }

    #[test]
    fn zero_temperature_is_greedy() {
        let mut s = Sampler::new(cfg(0.0));
        assert_eq!(s.sample(&mut [0.1, 3.0, 2.0], &[]), 1);
    }

    #[test]
    fn same_seed_gives_the_same_sequence() {
        let logits: Vec<f32> = (0..100).map(|i| (i % 13) as f32 * 0.3).collect();
        let run = || {
            let mut s = Sampler::new(SamplerConfig {
                top_k: 0,
                top_p: 1.0,
                ..cfg(1.0)
            });
            (0..20)
                .map(|_| s.sample(&mut logits.clone(), &[]))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(), run());
        assert!(run().iter().any(|&t| t != run()[0]), "sampling should vary");
    }

    #[test]
    fn top_k_one_always_picks_the_best() {
        let mut s = Sampler::new(SamplerConfig {
            top_k: 1,
            ..cfg(5.0)
        });
        for _ in 0..20 {
            assert_eq!(s.sample(&mut [1.0, 1.5, 1.4], &[]), 1);
        }
    }

    #[test]
    fn min_p_removes_unlikely_tokens() {
        let mut s = Sampler::new(SamplerConfig {
            top_k: 0,
            top_p: 1.0,
            min_p: 0.5,
            ..cfg(1.0)
        });
        for _ in 0..50 {
            assert_ne!(s.sample(&mut [5.0, 4.9, -3.0], &[]), 2);
        }
    }

    #[test]
    fn defaults_are_ollamas_so_temperature_zero_alone_is_plain_greedy() {
        let d = SamplerConfig::default();
        assert_eq!(
            (d.temperature, d.top_k, d.top_p, d.min_p, d.typical_p),
            (0.8, 40, 0.9, 0.0, 1.0)
        );
        assert_eq!(
            (
                d.repeat_last_n,
                d.repeat_penalty,
                d.presence_penalty,
                d.frequency_penalty
            ),
            (64, 1.0, 0.0, 0.0)
        );
        assert!(SamplerConfig {
            temperature: 0.0,
            ..d
        }
        .is_plain_greedy());
    }

    #[test]
    fn repeat_penalty_discourages_recent_tokens() {
        let mut s = Sampler::new(SamplerConfig {
            repeat_penalty: 2.0,
            ..cfg(0.0)
        });
        assert_eq!(s.sample(&mut [3.0, 2.0], &[0]), 1);
        let mut s = Sampler::new(SamplerConfig {
            presence_penalty: 2.0,
            ..cfg(0.0)
        });
        assert_eq!(s.sample(&mut [3.0, 2.0], &[0]), 1);
    }
}

#[cfg(test)]
mod distribution_tests {
    use super::*;

    #[test]
    fn distribution_is_what_sample_draws_from() {
        // top-k 4 + top-p 0.8 + temperature 0.7 over 10 logits: the empirical frequencies of
        // `sample` match `distribution` (same filters, renormalized over the survivors).
        let logits: Vec<f32> = vec![2.0, 1.5, 1.4, 0.3, 3.0, -1.0, 0.0, 2.2, 1.0, 0.5];
        let cfg = SamplerConfig {
            temperature: 0.7,
            top_k: 4,
            top_p: 0.8,
            repeat_penalty: 1.0,
            seed: Some(11),
            ..Default::default()
        };
        let mut s = Sampler::new(cfg);
        let dist = s.distribution(&mut logits.clone(), &[]);
        assert!(dist.len() <= 4 && !dist.is_empty());
        assert!((dist.iter().map(|d| d.1).sum::<f32>() - 1.0).abs() < 1e-5);
        assert!(
            dist.windows(2).all(|w| w[0].1 >= w[1].1),
            "most likely first"
        );
        let n = 40_000;
        let mut counts = [0u32; 10];
        for _ in 0..n {
            counts[s.sample(&mut logits.clone(), &[]) as usize] += 1;
        }
        for (t, p) in &dist {
            let f = counts[*t as usize] as f32 / n as f32;
            assert!((f - p).abs() < 0.01, "token {t}: {f} vs {p}");
        }
        let listed: u32 = dist.iter().map(|(t, _)| counts[*t as usize]).sum();
        assert_eq!(
            listed, n,
            "sample never picks a token outside the distribution"
        );
    }

    #[test]
    fn greedy_distribution_is_the_penalized_argmax_with_probability_one() {
        let s = Sampler::new(SamplerConfig {
            temperature: 0.0,
            repeat_penalty: 2.0,
            ..Default::default()
        });
        assert_eq!(s.distribution(&mut [3.0, 2.0], &[0]), vec![(1, 1.0)]);
        assert!(!s.config().is_plain_greedy());
        let plain = SamplerConfig {
            temperature: 0.0,
            repeat_penalty: 1.0,
            ..Default::default()
        };
        assert!(plain.is_plain_greedy());
        // A penalty with an empty window is no penalty.
        assert!(SamplerConfig {
            repeat_last_n: 0,
            ..s.config().clone()
        }
        .is_plain_greedy());
    }

    #[test]
    fn draw_follows_the_weights_and_refuses_an_empty_distribution() {
        let mut s = Sampler::new(SamplerConfig {
            seed: Some(5),
            ..Default::default()
        });
        assert_eq!(s.draw(&[]), None);
        assert_eq!(s.draw(&[(3, 0.0)]), None);
        assert_eq!(s.draw(&[(3, 0.0), (9, 2.5)]), Some(9));
        let n = 20_000;
        let hits = (0..n)
            .filter(|_| s.draw(&[(1, 1.0), (2, 3.0)]) == Some(2))
            .count();
        assert!((hits as f32 / n as f32 - 0.75).abs() < 0.015, "{hits}");
        let u = s.uniform();
        assert!((0.0..1.0).contains(&u));
    }
}
