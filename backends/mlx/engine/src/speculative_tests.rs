//! Unit tests of speculative decoding: the acceptance rule on small synthetic distributions
//! (statistical, fixed seeds), the adaptive draft length, the vocabulary check, and `step` on a
//! toy position-dependent model (greedy identity, cache bookkeeping, distribution preservation).

use super::*;
use crate::sampler::SamplerConfig;
use ollmlx_models::ModelInfo;

fn sampler(temperature: f32, seed: u64) -> Sampler {
    Sampler::new(SamplerConfig {
        temperature,
        top_k: 0,
        top_p: 1.0,
        repeat_penalty: 1.0,
        seed: Some(seed),
        ..Default::default()
    })
}

fn dense(p: &[f32]) -> Dist {
    p.iter().enumerate().map(|(i, &x)| (i as u32, x)).collect()
}

/// Pearson's chi-square of observed counts against expected probabilities.
fn chi_square(counts: &[u64], expected: &[f64]) -> f64 {
    let n: u64 = counts.iter().sum();
    counts
        .iter()
        .zip(expected)
        .filter(|(_, &e)| e > 0.0)
        .map(|(&c, &e)| {
            let m = e * n as f64;
            (c as f64 - m).powi(2) / m
        })
        .sum()
}

/// Draw `n` outputs of one speculative position: `d ~ q`, then `rule` decides.
fn simulate(
    p: &Dist,
    q: &Dist,
    n: usize,
    seed: u64,
    rule: impl Fn(&mut Sampler, &Dist, &Dist, u32) -> u32,
) -> Vec<u64> {
    let mut s = sampler(1.0, seed);
    let mut counts = vec![0u64; p.len()];
    for _ in 0..n {
        let d = s.draw(q).unwrap();
        counts[rule(&mut s, p, q, d) as usize] += 1;
    }
    counts
}

fn the_rule(s: &mut Sampler, p: &Dist, q: &Dist, d: u32) -> u32 {
    let u = s.uniform();
    match judge(p, q, d, u) {
        Verdict::Accept => d,
        Verdict::Reject(r) => s.draw(&r).unwrap(),
    }
}

#[test]
fn acceptance_rule_reproduces_the_target_distribution_and_wrong_rules_fail_the_same_bound() {
    let p = dense(&[0.5, 0.2, 0.15, 0.1, 0.05]);
    let q = dense(&[0.1, 0.4, 0.1, 0.1, 0.3]);
    let expected: Vec<f64> = p.iter().map(|&(_, x)| x as f64).collect();
    // 4 degrees of freedom: P(chi2 > 25) ≈ 5e-5.
    let bound = 25.0;
    let n = 100_000;
    for seed in [1, 2, 3] {
        let c = chi_square(&simulate(&p, &q, n, seed, the_rule), &expected);
        assert!(c < bound, "seed {seed}: chi2 {c}");
    }
    // The same test has the power to reject plausible mistakes.
    let always_accept = simulate(&p, &q, n, 1, |_, _, _, d| d);
    assert!(chi_square(&always_accept, &expected) > 100.0 * bound);
    let resample_from_p = simulate(&p, &q, n, 1, |s, p, q, d| {
        let u = s.uniform();
        match judge(p, q, d, u) {
            Verdict::Accept => d,
            Verdict::Reject(_) => s.draw(p).unwrap(),
        }
    });
    assert!(chi_square(&resample_from_p, &expected) > 10.0 * bound);
    let accept_by_ratio_without_min = simulate(&p, &q, n, 1, |s, p, q, d| {
        // Accept with probability p(d) (ignoring q): biased towards q's favourites.
        if s.uniform() < prob(p, d) {
            d
        } else {
            match judge(p, q, d, 1.0) {
                Verdict::Reject(r) => s.draw(&r).unwrap(),
                Verdict::Accept => d,
            }
        }
    });
    assert!(chi_square(&accept_by_ratio_without_min, &expected) > 10.0 * bound);
}

#[test]
fn acceptance_rule_handles_disjoint_supports_and_one_hot_distributions() {
    // q proposes tokens p never picks: always rejected, the residual is p itself.
    let p = dense(&[0.0, 0.0, 0.7, 0.3]);
    let q = dense(&[0.6, 0.4, 0.0, 0.0]);
    for u in [0.0, 0.5, 0.999] {
        match judge(&p, &q, 0, u) {
            Verdict::Reject(r) => assert_eq!(r, vec![(2, 0.7), (3, 0.3)]),
            v => panic!("{v:?}"),
        }
    }
    // One-hot p and q (greedy): accept iff the draft is the target's argmax; the residual of a
    // rejection is the argmax.
    let p = vec![(5u32, 1.0f32)];
    assert_eq!(judge(&p, &[(5, 1.0)], 5, 0.99), Verdict::Accept);
    assert_eq!(
        judge(&p, &[(3, 1.0)], 3, 0.0),
        Verdict::Reject(vec![(5, 1.0)])
    );
    // p(d) ≥ q(d) is always accepted.
    let p = dense(&[0.5, 0.5]);
    let q = dense(&[0.2, 0.8]);
    assert_eq!(judge(&p, &q, 0, 0.999_999), Verdict::Accept);
}

#[test]
fn draft_length_grows_on_full_acceptance_and_shrinks_on_early_rejection_within_bounds() {
    assert_eq!(next_k(4, 4, 4), 5);
    assert_eq!(next_k(4, 4, 2), 4, "half accepted keeps the length");
    assert_eq!(next_k(4, 4, 1), 3);
    assert_eq!(next_k(4, 4, 0), 3);
    assert_eq!(next_k(MAX_DRAFT, MAX_DRAFT, MAX_DRAFT), MAX_DRAFT);
    assert_eq!(next_k(MIN_DRAFT, 1, 0), MIN_DRAFT);
    assert_eq!(next_k(6, 0, 0), 6, "no proposal, no change");
    let mut k = START_DRAFT;
    for _ in 0..20 {
        k = next_k(k, k, k);
    }
    assert_eq!(k, MAX_DRAFT);
    for _ in 0..20 {
        k = next_k(k, k, 0);
    }
    assert_eq!(k, MIN_DRAFT);
}

fn info(vocab: i32) -> ModelInfo {
    ModelInfo {
        architecture: "toy".into(),
        vocab_size: vocab,
        context_length: 4096,
        num_layers: 1,
        dtype: Dtype::Float32,
    }
}

#[test]
fn a_draft_with_a_larger_vocabulary_is_refused_by_name() {
    assert!(check_vocab(&info(100), &info(100)).is_ok());
    assert!(
        check_vocab(&info(100), &info(90)).is_ok(),
        "a prefix is fine"
    );
    let e = check_vocab(&info(100), &info(128)).unwrap_err();
    assert_eq!(
        e.to_string(),
        "draft model vocabulary (128 tokens) is not compatible with the model's (100 tokens)"
    );
    assert!(matches!(e, EngineError::InvalidRequest(_)));
    let e = Draft::new(Box::new(Toy::new(128, 0.0)), &info(100))
        .err()
        .expect("refused");
    assert!(e.to_string().contains("not compatible"), "{e}");
}

/// A toy causal "model": the logits after token `t` at position `pos` are a fixed pseudo-random
/// function of `(t, pos)` (plus `noise` × another one, to make a draft that disagrees
/// sometimes). One cache layer whose offset is the position, so wrong cache rewinds change the
/// output.
struct Toy {
    info: ModelInfo,
    noise: f32,
}

impl Toy {
    fn new(vocab: i32, noise: f32) -> Self {
        Toy {
            info: info(vocab),
            noise,
        }
    }

    fn row(&self, t: u32, pos: usize) -> Vec<f32> {
        let h = |a: u64, b: u64, salt: u64| {
            let mut x = a
                .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                .wrapping_add(b.wrapping_mul(0xC2B2_AE3D_27D4_EB4F))
                .wrapping_add(salt);
            x ^= x >> 29;
            x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
            x ^= x >> 32;
            (x % 1000) as f32 / 250.0
        };
        (0..self.info.vocab_size as u64)
            .map(|v| {
                let base = h(t as u64 * 131 + v, (pos % 7) as u64, 1);
                base + self.noise * h(t as u64 * 131 + v, pos as u64, 2)
            })
            .collect()
    }
}

impl Model for Toy {
    fn info(&self) -> &ModelInfo {
        &self.info
    }
    fn new_caches(&self) -> Vec<KvCache> {
        vec![KvCache::new()]
    }
    fn forward(
        &self,
        tokens: &Array,
        caches: &mut [KvCache],
        mode: LogitsMode,
    ) -> ollmlx_models::Result<Array> {
        let t = tokens.as_dtype(Dtype::Int32)?;
        t.eval()?;
        let ids: Vec<i32> = t.as_slice::<i32>().to_vec();
        let start = caches[0].offset() as usize;
        let kv = mlx_rs::ops::zeros::<f32>(&[1, 1, ids.len() as i32, 1])?;
        caches[0].update(&kv, &kv)?;
        let positions: Vec<usize> = match mode {
            LogitsMode::All => (0..ids.len()).collect(),
            LogitsMode::Last => vec![ids.len() - 1],
        };
        let mut out = Vec::new();
        for &i in &positions {
            out.extend(self.row(ids[i] as u32, start + i));
        }
        Ok(Array::from_slice(
            &out,
            &[1, positions.len() as i32, self.info.vocab_size],
        ))
    }
}

/// Plain decoding of `n` tokens after `prompt` with `s`: one forward per token.
fn plain(model: &Toy, prompt: &[u32], n: usize, s: &mut Sampler) -> Vec<u32> {
    let mut caches = model.new_caches();
    let mut history = prompt.to_vec();
    let ids: Vec<i32> = prompt.iter().map(|&t| t as i32).collect();
    let mut logits = model
        .forward(
            &Array::from_slice(&ids, &[1, ids.len() as i32]),
            &mut caches,
            LogitsMode::Last,
        )
        .unwrap();
    for _ in 0..n {
        let mut row = host_rows(&logits).unwrap();
        let t = s.sample(&mut row, &history);
        history.push(t);
        logits = model
            .forward(
                &Array::from_slice(&[t as i32], &[1, 1]),
                &mut caches,
                LogitsMode::Last,
            )
            .unwrap();
    }
    history[prompt.len()..].to_vec()
}

/// Speculative decoding of `n` tokens after `prompt`, checking the cache contract every round.
fn speculative(
    model: &Toy,
    draft: &mut Draft,
    prompt: &[u32],
    n: usize,
    s: &mut Sampler,
) -> Vec<u32> {
    let mut caches = model.new_caches();
    let ids: Vec<i32> = prompt[..prompt.len() - 1]
        .iter()
        .map(|&t| t as i32)
        .collect();
    if !ids.is_empty() {
        model
            .forward(
                &Array::from_slice(&ids, &[1, ids.len() as i32]),
                &mut caches,
                LogitsMode::Last,
            )
            .unwrap();
    }
    let mut history = prompt.to_vec();
    while history.len() - prompt.len() < n {
        let left = n - (history.len() - prompt.len());
        let new = step(model, &mut caches, draft, &history, s, left).unwrap();
        assert!(
            !new.is_empty() && new.len() <= left,
            "{} of {left}",
            new.len()
        );
        assert!(new.len() <= draft.max_k + 1);
        history.extend(&new);
        assert_eq!(caches[0].offset() as usize, history.len() - 1);
    }
    history[prompt.len()..].to_vec()
}

#[test]
fn greedy_speculative_output_equals_plain_greedy_on_a_position_dependent_toy() {
    let target = Toy::new(16, 0.0);
    let prompt = [1u32, 5, 9];
    let want = plain(&target, &prompt, 60, &mut sampler(0.0, 1));
    for noise in [0.0, 0.3, 3.0] {
        let mut draft = Draft::new(Box::new(Toy::new(16, noise)), target.info()).unwrap();
        let got = speculative(&target, &mut draft, &prompt, 60, &mut sampler(0.0, 1));
        assert_eq!(got, want, "noise {noise}");
        if noise == 0.0 {
            assert_eq!(draft.stats.accepted, draft.stats.proposed);
            assert_eq!(draft.k, MAX_DRAFT, "all accepted: the draft length grew");
        } else if noise == 3.0 {
            assert!(
                draft.stats.accepted < draft.stats.proposed,
                "{:?}",
                draft.stats
            );
        }
    }
}

#[test]
fn greedy_with_penalties_takes_the_host_path_and_still_equals_plain_decoding() {
    let target = Toy::new(16, 0.0);
    let cfg = SamplerConfig {
        temperature: 0.0,
        repeat_penalty: 1.8,
        presence_penalty: 0.5,
        repeat_last_n: 8,
        seed: Some(3),
        ..Default::default()
    };
    assert!(!cfg.is_plain_greedy());
    let want = plain(&target, &[2, 3], 48, &mut Sampler::new(cfg.clone()));
    let mut draft = Draft::new(Box::new(Toy::new(16, 0.5)), target.info()).unwrap();
    let got = speculative(&target, &mut draft, &[2, 3], 48, &mut Sampler::new(cfg));
    assert_eq!(got, want);
}

#[test]
fn a_draft_with_a_smaller_vocabulary_proposes_within_it_and_output_is_unchanged() {
    let target = Toy::new(16, 0.0);
    let want = plain(&target, &[4], 40, &mut sampler(0.0, 1));
    let mut draft = Draft::new(Box::new(Toy::new(12, 0.0)), target.info()).unwrap();
    let got = speculative(&target, &mut draft, &[4], 40, &mut sampler(0.0, 1));
    assert_eq!(got, want);
}

#[test]
fn a_draft_that_keeps_missing_is_paused_with_doubling_backoff_and_output_is_unchanged() {
    // A draft that never agrees: its logits favour (target argmax + 1) mod V.
    struct Wrong(Toy);
    impl Model for Wrong {
        fn info(&self) -> &ModelInfo {
            self.0.info()
        }
        fn new_caches(&self) -> Vec<KvCache> {
            self.0.new_caches()
        }
        fn forward(
            &self,
            tokens: &Array,
            caches: &mut [KvCache],
            mode: LogitsMode,
        ) -> ollmlx_models::Result<Array> {
            let l = self.0.forward(tokens, caches, mode)?;
            let v = l.dim(-1) as usize;
            let mut rows = host_rows(&l).unwrap();
            rows.chunks_mut(v).for_each(|r| r.rotate_right(1));
            Ok(Array::from_slice(&rows, l.shape()))
        }
    }
    let target = Toy::new(16, 0.0);
    let want = plain(&target, &[1, 2], 120, &mut sampler(0.0, 1));
    let mut draft = Draft::new(Box::new(Wrong(Toy::new(16, 0.0))), target.info()).unwrap();
    let got = speculative(&target, &mut draft, &[1, 2], 120, &mut sampler(0.0, 1));
    assert_eq!(got, want);
    assert_eq!(draft.stats.accepted, 0);
    // Start at k=4, shrink to 1, then cold spells of 3 rounds separated by pauses of 8, 16, 32,
    // 64: far more paused rounds than drafted ones.
    assert!(
        draft.stats.paused > 3 * draft.stats.rounds,
        "{:?}",
        draft.stats
    );
    assert!(draft.stats.rounds <= 20, "{:?}", draft.stats);
    // A new request starts afresh: no pause carried over, first-round length.
    assert!(draft.pause > 0 || draft.k == MIN_DRAFT);
    draft.restart();
    assert_eq!((draft.pause, draft.k), (0, START_DRAFT));
    let again = speculative(&target, &mut draft, &[1, 2], 5, &mut sampler(0.0, 1));
    assert_eq!(again, want[..5]);
    assert!(draft.stats.rounds > 20 || draft.stats.paused > 0);
}

#[test]
fn draft_num_predict_caps_the_adaptive_length() {
    let target = Toy::new(16, 0.0);
    let mut draft = Draft::new(Box::new(Toy::new(16, 0.0)), target.info())
        .unwrap()
        .with_max_k(2);
    assert_eq!(draft.k, 2);
    let got = speculative(&target, &mut draft, &[3], 30, &mut sampler(0.0, 1));
    assert_eq!(got, plain(&target, &[3], 30, &mut sampler(0.0, 1)));
    assert_eq!(draft.k, 2, "all accepted, but capped");
    assert!(draft.stats.rounds >= 10, "{:?}", draft.stats);
}

#[test]
fn max_new_bounds_the_tokens_of_a_round_and_one_means_a_plain_step() {
    let target = Toy::new(16, 0.0);
    let mut draft = Draft::new(Box::new(Toy::new(16, 0.0)), target.info()).unwrap();
    draft.k = MAX_DRAFT;
    let mut caches = target.new_caches();
    let mut s = sampler(0.0, 1);
    assert!(step(&target, &mut caches, &mut draft, &[7], &mut s, 0)
        .unwrap()
        .is_empty());
    let one = step(&target, &mut caches, &mut draft, &[7], &mut s, 1).unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(draft.stats.rounds, 0, "no draft was proposed");
    assert_eq!(caches[0].offset(), 1);
    let three = step(&target, &mut caches, &mut draft, &[7, one[0]], &mut s, 3).unwrap();
    assert_eq!(three.len(), 3);
    // A cache that does not hold history[..len-1] is a caller bug, reported, not a panic.
    let e = step(&target, &mut caches, &mut draft, &[7], &mut s, 3).unwrap_err();
    assert!(e.to_string().contains("expected 0"), "{e}");
}

/// The toy target's exact joint distribution of the two tokens after `prompt` (sampler `s`),
/// as a `v × v` table: `p(x1) p(x2 | x1)`.
fn joint_of_two(target: &Toy, prompt: &[u32], s: &Sampler) -> Vec<f64> {
    let v = target.info().vocab_size as u32;
    let n = prompt.len();
    let p1 = s.distribution(&mut target.row(prompt[n - 1], n - 1), prompt);
    let mut expected = vec![0.0f64; (v * v) as usize];
    for &(a, pa) in &p1 {
        let mut h = prompt.to_vec();
        h.push(a);
        for (b, pb) in s.distribution(&mut target.row(a, n), &h) {
            expected[(a * v + b) as usize] = pa as f64 * pb as f64;
        }
    }
    expected
}

/// Chi-square of `counts` against `expected` below mean + 6 sd (mean ≈ cells − 1,
/// sd ≈ sqrt(2(cells − 1))).
fn assert_matches(counts: &[u64], expected: &[f64]) {
    let cells = expected.iter().filter(|&&e| e > 0.0).count() as f64;
    let c = chi_square(counts, expected);
    let bound = (cells - 1.0) + 6.0 * (2.0 * (cells - 1.0)).sqrt();
    assert!(c < bound, "chi2 {c} over {cells} cells (bound {bound})");
}

#[test]
fn sampled_speculative_decoding_preserves_the_joint_distribution_of_two_tokens() {
    // The first two of four tokens (rounds of up to 3 drafts) after a fixed prompt; the target's own joint p(x1) p(x2 | x1) is computed
    // exactly from the toy and compared with many seeded speculative runs (chi-square).
    let v = 6;
    let target = Toy::new(v, 0.0);
    let prompt = [2u32, 4];
    let expected = joint_of_two(&target, &prompt, &sampler(1.0, 0));
    let mut counts = vec![0u64; (v * v) as usize];
    let trials = 6000;
    let mut s = sampler(1.0, 42);
    for _ in 0..trials {
        let mut draft = Draft::new(Box::new(Toy::new(v, 1.5)), target.info()).unwrap();
        draft.k = 3;
        let out = speculative(&target, &mut draft, &prompt, 4, &mut s);
        counts[(out[0] * v as u32 + out[1]) as usize] += 1;
    }
    assert_matches(&counts, &expected);
}

#[test]
fn prompt_lookup_drafts_are_accepted_on_repeating_output_and_greedy_output_is_unchanged() {
    // The toy's greedy output depends on (last token, position mod 7) only, so it falls into a
    // cycle: what prompt lookup copies.
    let target = Toy::new(16, 0.0);
    let prompt = [1u32, 5, 9];
    let want = plain(&target, &prompt, 200, &mut sampler(0.0, 1));
    let mut draft = Draft::prompt_lookup();
    assert!(draft.is_lookup());
    let got = speculative(&target, &mut draft, &prompt, 200, &mut sampler(0.0, 1));
    assert_eq!(got, want);
    assert!(
        draft.stats.accepted * 2 > draft.stats.proposed && draft.stats.accepted > 50,
        "{:?}",
        draft.stats
    );
    // Rounds that found nothing to copy ran the target alone: fewer rounds than tokens.
    assert!(draft.stats.rounds < 200, "{:?}", draft.stats);
}

#[test]
fn sampled_decoding_with_prompt_lookup_preserves_the_joint_distribution_of_two_tokens() {
    // As above with a lookup draft: `q` is one-hot on each copied token, so a copy is kept with
    // probability p(d) and a rejection draws from p without d. The prompt repeats, so the first
    // rounds do propose.
    let v = 6;
    let target = Toy::new(v, 0.0);
    let prompt = [2u32, 4, 1, 2, 4];
    let expected = joint_of_two(&target, &prompt, &sampler(1.0, 0));
    let mut counts = vec![0u64; (v * v) as usize];
    let trials = 6000;
    let mut s = sampler(1.0, 42);
    let mut proposed = 0;
    for _ in 0..trials {
        let mut draft = Draft::prompt_lookup();
        draft.k = 3;
        let out = speculative(&target, &mut draft, &prompt, 4, &mut s);
        proposed += draft.stats.proposed;
        counts[(out[0] * v as u32 + out[1]) as usize] += 1;
    }
    assert!(proposed >= trials, "every run proposes at least once");
    assert_matches(&counts, &expected);
}
