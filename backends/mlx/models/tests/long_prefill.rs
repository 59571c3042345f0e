//! Long prefill chunks: on the CPU a causal chunk of at least two query blocks (256 positions at
//! the default 128-row blocks) is attended block by block against its key prefix
//! (`ollmlx_models::sdpa`). These tests pin that the logits of every position of such a chunk
//! equal the ones the same positions get one token at a time through the KV cache (where
//! attention is a single unmasked row), from an empty cache and after a cached prefix, for
//! every decoder family (gemma3 with its sliding-window layers).

mod common;

use common::{fixture_dir, SELF_TOL};
use mlx_rs::{Array, Dtype};
use ollmlx_models::{load, KvCache, LoadOptions, LogitsMode, Model};

fn rows(logits: &Array) -> Vec<Vec<f32>> {
    let (l, v) = (logits.dim(1) as usize, logits.dim(2) as usize);
    let flat = logits.as_dtype(Dtype::Float32).unwrap();
    let flat = flat.as_slice::<f32>();
    (0..l).map(|i| flat[i * v..(i + 1) * v].to_vec()).collect()
}

fn ids(n: usize, vocab: i32, seed: usize) -> Vec<i32> {
    (0..n)
        .map(|i| ((i * 7919 + seed * 104_729 + 13) % vocab as usize) as i32)
        .collect()
}

/// Fresh caches holding `prefix` (evaluated in one forward pass).
fn caches_after(model: &dyn Model, prefix: &[i32]) -> Vec<KvCache> {
    let mut caches = model.new_caches();
    if !prefix.is_empty() {
        let p = Array::from_slice(prefix, &[1, prefix.len() as i32]);
        model
            .forward(&p, &mut caches, LogitsMode::Last)
            .unwrap()
            .eval()
            .unwrap();
    }
    caches
}

/// Logits of each of `seq`'s positions, fed one token per forward pass after `prefix`.
fn one_at_a_time(model: &dyn Model, prefix: &[i32], seq: &[i32]) -> Vec<Vec<f32>> {
    let mut caches = caches_after(model, prefix);
    seq.iter()
        .map(|&t| {
            let x = Array::from_slice(&[t], &[1, 1]);
            rows(&model.forward(&x, &mut caches, LogitsMode::Last).unwrap()).remove(0)
        })
        .collect()
}

/// Logits of each of `seq`'s positions from one forward pass over all of them after `prefix`.
fn one_chunk(model: &dyn Model, prefix: &[i32], seq: &[i32]) -> Vec<Vec<f32>> {
    let mut caches = caches_after(model, prefix);
    let x = Array::from_slice(seq, &[1, seq.len() as i32]);
    rows(&model.forward(&x, &mut caches, LogitsMode::All).unwrap())
}

fn assert_same_logits(name: &str, what: &str, chunk: &[Vec<f32>], steps: &[Vec<f32>]) {
    assert_eq!(chunk.len(), steps.len());
    for (pos, (a, b)) in chunk.iter().zip(steps).enumerate() {
        for (id, (x, y)) in a.iter().zip(b).enumerate() {
            assert!(
                (x - y).abs() <= SELF_TOL * (1.0 + y.abs()),
                "{name}, {what}: position {pos}, id {id}: chunk {x} vs one at a time {y}"
            );
        }
    }
}

#[test]
fn a_long_chunk_gets_the_logits_of_one_token_at_a_time_in_every_family() {
    for name in [
        "llama-bf16",
        "qwen2-bf16",
        "qwen3-bf16",
        "mistral-bf16",
        "phi3-bf16",
        "qwen3_moe-bf16",
        "gemma3_text-bf16",
    ] {
        let model = load(&fixture_dir(name), LoadOptions::for_device(true))
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .model;
        let vocab = model.info().vocab_size;
        // 300 positions: two full 128-row blocks and a ragged one.
        let seq = ids(300, vocab, 1);
        let chunk = one_chunk(model.as_ref(), &[], &seq);
        let steps = one_at_a_time(model.as_ref(), &[], &seq);
        assert_same_logits(name, "from an empty cache", &chunk, &steps);
        // After 70 cached positions: each block's keys start with the cached prefix.
        let prefix = ids(70, vocab, 2);
        let seq = ids(260, vocab, 3);
        let chunk = one_chunk(model.as_ref(), &prefix, &seq);
        let steps = one_at_a_time(model.as_ref(), &prefix, &seq);
        assert_same_logits(name, "after a cached prefix", &chunk, &steps);
    }
}
