//! Padded-batch decoding (continuous batching's model side): rows of different lengths stacked
//! into one cache with `KvCache::stack` decode in one `[B, 1]` forward pass and each row gets the
//! logits it gets alone; rows leave (`KvCache::select`) and join mid-decode without disturbing
//! the others. Runs the llama-family fixtures (llama, qwen2, qwen3: `nn::Attention`), phi3 and
//! qwen3_moe, gemma3 (`nn::StepPositions`; gemma3 with its sliding window) in float32.
//! Grouped prefill (`KvCache::group`): prompts of different lengths, fresh or continuing a cached
//! prefix, evaluated in one `[B, L]` forward pass, give each row the logits and the decode it gets
//! alone.

mod common;

use common::fixture_dir;
use mlx_rs::{Array, Dtype};
use ollmlx_models::{load, KvCache, LoadOptions, LogitsMode, Model};

fn rows(logits: &Array) -> Vec<Vec<f32>> {
    let (b, v) = (logits.dim(0) as usize, logits.dim(2) as usize);
    let flat = logits.as_dtype(Dtype::Float32).unwrap();
    let flat = flat.as_slice::<f32>();
    (0..b).map(|i| flat[i * v..(i + 1) * v].to_vec()).collect()
}

fn argmax(row: &[f32]) -> i32 {
    (0..row.len()).fold(0, |best, i| if row[i] > row[best] { i } else { best }) as i32
}

/// Prefill `prompt` alone; its caches and its last-position logits row.
fn prefill(model: &dyn Model, prompt: &[i32]) -> (Vec<KvCache>, Vec<f32>) {
    let mut caches = model.new_caches();
    let input = Array::from_slice(prompt, &[1, prompt.len() as i32]);
    let l = model
        .forward(&input, &mut caches, LogitsMode::Last)
        .unwrap();
    (caches, rows(&l).remove(0))
}

/// Greedy tokens and per-step logits of `prompt` decoded alone.
fn alone(model: &dyn Model, prompt: &[i32], n: usize) -> (Vec<i32>, Vec<Vec<f32>>) {
    let (mut caches, mut row) = prefill(model, prompt);
    let (mut toks, mut logits) = (Vec::new(), Vec::new());
    for _ in 0..n {
        let t = argmax(&row);
        toks.push(t);
        logits.push(row);
        let l = model
            .forward(
                &Array::from_slice(&[t], &[1, 1]),
                &mut caches,
                LogitsMode::Last,
            )
            .unwrap();
        row = rows(&l).remove(0);
    }
    (toks, logits)
}

fn stack(parts: &[&Vec<KvCache>]) -> Vec<KvCache> {
    (0..parts[0].len())
        .map(|layer| {
            let layer_parts: Vec<&KvCache> = parts.iter().map(|p| &p[layer]).collect();
            KvCache::stack(&layer_parts).unwrap()
        })
        .collect()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

const TOL: f32 = 1e-4;

fn check_family(fixture: &str) {
    let model = load(&fixture_dir(fixture), LoadOptions::for_device(true))
        .unwrap()
        .model;
    assert!(
        model.supports_batch(),
        "{fixture}: llama-family attention batches"
    );
    let prompts: [&[i32]; 3] = [
        &[5, 17, 42, 99, 3, 250, 11, 7, 64],
        &[300, 2],
        &[77, 78, 79, 80, 12],
    ];
    let n = 8;
    let want: Vec<_> = prompts.iter().map(|p| alone(&*model, p, n)).collect();

    // Rows 0 and 1 start together; row 2 joins after 3 steps; row 1 leaves after 5.
    let (c0, r0) = prefill(&*model, prompts[0]);
    let (c1, r1) = prefill(&*model, prompts[1]);
    let mut caches = stack(&[&c0, &c1]);
    let mut live: Vec<(usize, Vec<f32>)> = vec![(0, r0), (1, r1)];
    let mut got: Vec<Vec<i32>> = vec![Vec::new(); 3];
    for step in 0..n + 3 {
        if step == 3 {
            let (c2, r2) = prefill(&*model, prompts[2]);
            caches = stack(&[&caches, &c2]);
            live.push((2, r2));
        }
        // Row 1 leaves after 5 steps; a row that has its n tokens leaves too.
        let keep: Vec<usize> = (0..live.len())
            .filter(|&i| !(step == 5 && live[i].0 == 1) && got[live[i].0].len() < n)
            .collect();
        if keep.is_empty() {
            break;
        }
        if keep.len() != live.len() {
            caches = caches.iter().map(|c| c.select(&keep).unwrap()).collect();
            live = keep.iter().map(|&i| live[i].clone()).collect();
        }
        let mut input = Vec::new();
        for (seq, row) in &live {
            let k = got[*seq].len();
            let d = max_diff(row, &want[*seq].1[k]);
            assert!(
                d <= TOL,
                "{fixture}: row {seq} step {k}: logits differ by {d}"
            );
            let t = argmax(row);
            got[*seq].push(t);
            input.push(t);
        }
        let x = Array::from_slice(&input, &[input.len() as i32, 1]);
        let l = model.forward(&x, &mut caches, LogitsMode::Last).unwrap();
        for (slot, row) in live.iter_mut().zip(rows(&l)) {
            slot.1 = row;
        }
    }
    for (seq, (toks, _)) in want.iter().enumerate() {
        let upto = got[seq].len();
        assert_eq!(&got[seq][..], &toks[..upto], "{fixture}: row {seq} tokens");
    }
    assert_eq!(got[0].len(), n, "{fixture}: row 0 decoded to the end");
    assert_eq!(
        got[2].len(),
        n,
        "{fixture}: row 2 (joined late) decoded to the end"
    );
    assert_eq!(got[1].len(), 5, "{fixture}: row 1 left after 5 steps");
}

#[test]
fn llama_rows_in_a_padded_batch_decode_as_they_do_alone() {
    check_family("llama-bf16");
}

#[test]
fn qwen2_rows_in_a_padded_batch_decode_as_they_do_alone() {
    check_family("qwen2-bf16");
}

#[test]
fn qwen3_rows_in_a_padded_batch_decode_as_they_do_alone() {
    check_family("qwen3-q4");
}

#[test]
fn phi3_rows_in_a_padded_batch_decode_as_they_do_alone() {
    check_family("phi3-bf16");
}

#[test]
fn qwen3_moe_rows_in_a_padded_batch_decode_as_they_do_alone() {
    check_family("qwen3_moe-q4");
}

#[test]
fn gemma3_rows_in_a_padded_batch_decode_as_they_do_alone_across_sliding_windows() {
    // Window 5 on every other layer: rows of 2-9 prompt tokens plus 8 steps cross it.
    check_family("gemma3_text-bf16");
}

/// The rows of a grouped prefill: three prompts evaluated in one `[3, 9]` forward pass, each
/// ending in the last column. Row 0 fills the chunk (9 fresh tokens); row 1 has 2 fresh tokens
/// after 7 fillers (left padding); row 2 continues a cached prefix of 8 tokens with 3 new ones,
/// recomputing the last 6 cached ones (its cache is cut back to 2), as the engine does.
fn check_group(fixture: &str) {
    let model = load(&fixture_dir(fixture), LoadOptions::for_device(true))
        .unwrap()
        .model;
    let prompts: [&[i32]; 3] = [
        &[5, 17, 42, 99, 3, 250, 11, 7, 64],
        &[300, 2],
        &[77, 78, 79, 80, 12, 13, 14, 15, 16, 17, 18],
    ];
    let n = 8;
    let want: Vec<_> = prompts.iter().map(|p| alone(&*model, p, n)).collect();

    let fresh = model.new_caches();
    let (mut cached, _) = prefill(&*model, &prompts[2][..8]);
    cached.iter_mut().for_each(|c| c.truncate(2));
    let fill = [0, 7, 0];
    let mut caches: Vec<KvCache> = (0..fresh.len())
        .map(|layer| {
            KvCache::group(&[&fresh[layer], &fresh[layer], &cached[layer]], &fill).unwrap()
        })
        .collect();
    let mut input: Vec<i32> = prompts[0].to_vec();
    input.extend(std::iter::repeat_n(0, 7));
    input.extend_from_slice(prompts[1]);
    input.extend_from_slice(&prompts[2][2..]);
    let x = Array::from_slice(&input, &[3, 9]);
    let l = model.forward(&x, &mut caches, LogitsMode::Last).unwrap();
    let mut live = rows(&l);
    let mut got: Vec<Vec<i32>> = vec![Vec::new(); 3];
    for step in 0..n {
        let mut next = Vec::new();
        for (r, row) in live.iter().enumerate() {
            let d = max_diff(row, &want[r].1[step]);
            assert!(
                d <= TOL,
                "{fixture}: grouped row {r} step {step}: logits differ by {d}"
            );
            let t = argmax(row);
            got[r].push(t);
            next.push(t);
        }
        let x = Array::from_slice(&next, &[3, 1]);
        let l = model.forward(&x, &mut caches, LogitsMode::Last).unwrap();
        live = rows(&l);
    }
    for (r, (toks, _)) in want.iter().enumerate() {
        assert_eq!(&got[r], toks, "{fixture}: grouped row {r} tokens");
    }
}

#[test]
fn llama_prompts_prefilled_as_one_group_decode_as_they_do_alone() {
    check_group("llama-bf16");
}

#[test]
fn qwen2_prompts_prefilled_as_one_group_decode_as_they_do_alone() {
    check_group("qwen2-bf16");
}

#[test]
fn qwen3_prompts_prefilled_as_one_group_decode_as_they_do_alone() {
    check_group("qwen3-q4");
}

#[test]
fn phi3_prompts_prefilled_as_one_group_decode_as_they_do_alone() {
    check_group("phi3-bf16");
}

#[test]
fn qwen3_moe_prompts_prefilled_as_one_group_decode_as_they_do_alone() {
    check_group("qwen3_moe-q4");
}

#[test]
fn gemma3_prompts_prefilled_as_one_group_decode_as_they_do_alone_across_sliding_windows() {
    check_group("gemma3_text-bf16");
}
