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

impl Default for SamplerConfig {
    fn default() -> Self {
        SamplerConfig {
            temperature: 0.8,
            top_k: 40,
            top_p: 0.9,
            min_p: 0.0,
            typical_p: 1.0,
            repeat_last_n: 64,
            repeat_penalty: 1.1,
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
        let mut cand: Vec<(u32, f32)> = logits
            .iter()
            .enumerate()
            .filter(|(_, l)| l.is_finite())
            .map(|(i, &l)| (i as u32, l))
            .collect();
        if cand.is_empty() {
            return argmax(logits);
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
