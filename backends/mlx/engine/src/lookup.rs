//! Prompt-lookup drafts: speculative decoding without a draft model.
//!
//! Where it sits: a [`crate::speculative::Draft`] built with [`Draft::prompt_lookup`] (for
//! requests that name no draft model, per the engine's [`LookupPolicy`]) asks [`propose`] for
//! its tokens instead of running a model. The proposal copies what followed the most recent earlier
//! occurrence of the history's last n tokens (n from [`MAX_NGRAM`] down to [`MIN_NGRAM`]): text
//! that repeats the prompt or itself (code edits, quoting, lists, counting) is drafted for free
//! and verified by the target in one forward pass. The target decides every token, so greedy
//! output is the plain greedy output and sampling keeps the target's distribution.
//!
//! [`Draft::prompt_lookup`]: crate::speculative::Draft::prompt_lookup

use crate::sampler::SamplerConfig;

/// Which requests that name no draft model speculate with prompt lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LookupPolicy {
    /// None.
    #[default]
    Off,
    /// Temperature-0 requests: their output is the same with and without speculation, so
    /// lookup only changes their speed (the `ollmlx serve` default).
    Greedy,
    /// Every request. Sampled output keeps the target's distribution, but a seed's tokens then
    /// depend on whether the request decoded alone (speculating) or batched.
    All,
}

impl LookupPolicy {
    /// Whether a request sampling with `s` speculates with prompt lookup.
    pub fn applies(self, s: &SamplerConfig) -> bool {
        match self {
            LookupPolicy::Off => false,
            LookupPolicy::Greedy => s.temperature <= 0.0,
            LookupPolicy::All => true,
        }
    }
}

/// Longest suffix n-gram looked up.
pub const MAX_NGRAM: usize = 4;
/// Shortest suffix n-gram looked up (a single repeated token is too weak a signal).
pub const MIN_NGRAM: usize = 2;
/// How far back the search looks (tokens): bounds the cost per round on long contexts.
pub const WINDOW: usize = 8192;

/// Up to `k` tokens that followed the most recent earlier occurrence of the longest suffix of
/// `history` (between [`MIN_NGRAM`] and [`MAX_NGRAM`] tokens long) within the last [`WINDOW`]
/// tokens; empty when there is none.
pub fn propose(history: &[u32], k: usize) -> Vec<u32> {
    let n = history.len();
    if k == 0 {
        return Vec::new();
    }
    let window = &history[n.saturating_sub(WINDOW)..];
    let w = window.len();
    for g in (MIN_NGRAM..=MAX_NGRAM).rev() {
        if w <= g {
            continue;
        }
        let tail = &window[w - g..];
        // the latest start i < w - g whose n-gram equals the tail and has a token after it
        if let Some(i) = (0..w - g).rev().find(|&i| &window[i..i + g] == tail) {
            let from = i + g;
            let to = (from + k).min(w);
            return window[from..to].to_vec();
        }
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_greedy_policy_applies_to_temperature_zero_only() {
        let greedy = SamplerConfig {
            temperature: 0.0,
            ..Default::default()
        };
        let sampled = SamplerConfig {
            temperature: 0.8,
            ..Default::default()
        };
        assert!(LookupPolicy::Greedy.applies(&greedy));
        assert!(!LookupPolicy::Greedy.applies(&sampled));
        assert!(LookupPolicy::All.applies(&sampled));
        assert!(!LookupPolicy::Off.applies(&greedy));
        assert_eq!(LookupPolicy::default(), LookupPolicy::Off);
    }

    #[test]
    fn copies_what_followed_the_latest_match_of_the_longest_suffix() {
        // "1 2 3 4 9 | 7 2 3 4 5 6 | 2 3 4": the 3-gram "2 3 4" last occurred before "5 6"
        let h = [1, 2, 3, 4, 9, 7, 2, 3, 4, 5, 6, 2, 3, 4];
        assert_eq!(propose(&h, 2), vec![5, 6]);
        assert_eq!(
            propose(&h, 8),
            vec![5, 6, 2, 3, 4],
            "stops at the end of the history"
        );
    }

    #[test]
    fn prefers_a_longer_match_over_a_more_recent_shorter_one() {
        // suffix "8 2 3": the 3-gram occurs at the start (followed by 1); "2 3" alone occurs
        // later (followed by 5) but the longer match wins
        let h = [8, 2, 3, 1, 0, 2, 3, 5, 8, 2, 3];
        assert_eq!(propose(&h, 1), vec![1]);
    }

    #[test]
    fn proposes_nothing_without_a_repeated_suffix_or_for_k_zero() {
        assert!(propose(&[1, 2, 3, 4, 5], 4).is_empty());
        assert!(propose(&[1, 2, 1, 2], 0).is_empty());
        assert!(propose(&[], 3).is_empty());
        // a single repeated token is below MIN_NGRAM
        assert!(propose(&[7, 1, 7], 2).is_empty());
    }

    #[test]
    fn looks_only_within_the_window() {
        let mut h = vec![5, 6, 42];
        h.extend((0..WINDOW).map(|i| 100 + i as u32));
        h.extend([5, 6]);
        assert!(
            propose(&h, 1).is_empty(),
            "the match lies before the window"
        );
        let mut near = vec![1u32; 10];
        near.extend([5, 6, 42, 9, 5, 6]);
        assert_eq!(propose(&near, 1), vec![42]);
    }
}
