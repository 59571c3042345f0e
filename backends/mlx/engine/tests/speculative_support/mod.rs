//! Shared by `tests/speculative_smollm2.rs` and `examples/speculative_bench.rs`: the real
//! SmolLM2-135M-Instruct GGUF as the target, a same-family draft built in memory from a subset of
//! its layers (nothing written to disk), and the two decode loops compared — plain greedy
//! (pipelined like the engine's device-greedy path) and `speculative::step` in a loop.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mlx_rs::io::GgufFile;
use mlx_rs::Array;
use ollmlx_engine::sampler::Sampler;
use ollmlx_engine::speculative::{self, Draft};
use ollmlx_engine::tokenizer::Tokenizer;
use ollmlx_models::config::{GgufMeta, LlamaConfig};
use ollmlx_models::weights::gguf_to_hf_name;
use ollmlx_models::{KvCache, LoadOptions, LogitsMode, Model, WeightFormat, Weights};

/// The SmolLM2-135M-Instruct Q4_1 GGUF (`OLLMLX_TEST_GGUF` or `scripts/fetch-models.sh`'s cache).
pub fn smollm2() -> Option<PathBuf> {
    let p = std::env::var_os("OLLMLX_TEST_GGUF")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../../.ollmlx-cache/models/SmolLM2-135M-Instruct.Q4_1.gguf")
        });
    if p.exists() {
        Some(p)
    } else {
        eprintln!(
            "SKIPPED: {} not found; run scripts/fetch-models.sh",
            p.display()
        );
        None
    }
}

/// The CPU defaults the engine uses (float32, dequantized at load).
pub fn cpu() -> LoadOptions {
    LoadOptions::for_device(true)
}

/// The whole model, as the engine loads it, and its tokenizer.
pub fn load_target(path: &Path) -> (Box<dyn Model>, Tokenizer) {
    let loaded = ollmlx_models::load(path, cpu()).expect("load target");
    let gguf = loaded.gguf.as_ref().expect("a GGUF file");
    let tok = Tokenizer::from_gguf(&GgufMeta::new(gguf)).expect("tokenizer");
    (loaded.model, tok)
}

/// A llama-family draft made of `layers` (in order) of the GGUF at `path`, plus its embeddings,
/// final norm and output head: the layers are renumbered `0..layers.len()` and the block count
/// set to match. Built in memory from the same file.
pub fn layer_draft(path: &Path, layers: &[i32]) -> Box<dyn Model> {
    let file = GgufFile::load(path).expect("open gguf");
    let meta = GgufMeta::new(&file);
    let arch = meta
        .string("general.architecture")
        .unwrap()
        .expect("architecture");
    let renumber: HashMap<i32, i32> = layers
        .iter()
        .enumerate()
        .map(|(j, &i)| (i, j as i32))
        .collect();
    let mut map = HashMap::new();
    for (k, v) in file.arrays().expect("tensors") {
        let name = gguf_to_hf_name(&k);
        let kept = match name.strip_prefix("model.layers.") {
            Some(rest) => {
                let (idx, tail) = rest.split_once('.').expect("layer tensor name");
                let idx: i32 = idx.parse().expect("layer index");
                renumber
                    .get(&idx)
                    .map(|j| format!("model.layers.{j}.{tail}"))
            }
            None => Some(name),
        };
        if let Some(n) = kept {
            map.insert(n, v);
        }
    }
    let mut w = Weights::new(map, cpu(), WeightFormat::Gguf, 32);
    let mut cfg = LlamaConfig::from_gguf(&meta, &arch, w.contains("lm_head.weight")).unwrap();
    cfg.num_layers = layers.len() as i32;
    Box::new(ollmlx_models::llama::Llama::new(cfg, &mut w, &arch).expect("draft model"))
}

/// Parse `0-5` / `0-3,28,29` into layer indices.
pub fn parse_layers(spec: &str) -> Vec<i32> {
    let mut out = Vec::new();
    for part in spec.split(',') {
        match part.split_once('-') {
            Some((a, b)) => out.extend(a.parse::<i32>().unwrap()..=b.parse::<i32>().unwrap()),
            None => out.push(part.parse().unwrap()),
        }
    }
    out
}

/// SmolLM2's ChatML prompt for one user turn, tokenized.
pub fn chat_ids(tok: &Tokenizer, user: &str) -> Vec<u32> {
    let text = format!(
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n"
    );
    tok.encode(&text).expect("encode")
}

fn input(ids: &[u32]) -> Array {
    let v: Vec<i32> = ids.iter().map(|&t| t as i32).collect();
    Array::from_slice(&v, &[1, v.len() as i32])
}

/// Feed `ids` into fresh caches of `model` (the prefill), evaluated.
pub fn prefill(model: &dyn Model, ids: &[u32]) -> (Vec<KvCache>, Array) {
    let mut caches = model.new_caches();
    let logits = model
        .forward(&input(ids), &mut caches, LogitsMode::Last)
        .expect("prefill");
    logits.eval().unwrap();
    (caches, logits)
}

/// Plain greedy decoding of `n` tokens after `prompt`, pipelined like the engine's device-greedy
/// path (step t+1 is scheduled before token t is read). Returns the tokens and the decode time
/// (prefill excluded).
pub fn plain_greedy(model: &dyn Model, prompt: &[u32], n: usize) -> (Vec<u32>, Duration) {
    let (mut caches, logits) = prefill(model, prompt);
    let t0 = Instant::now();
    let argmax = |l: &Array| mlx_rs::ops::indexing::argmax_axis(l, -1, false).unwrap();
    let mut pending = argmax(&logits);
    mlx_rs::transforms::async_eval([&pending]).unwrap();
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let ahead = if out.len() + 1 < n {
            let l = model
                .forward(
                    &pending.reshape(&[1, 1]).unwrap(),
                    &mut caches,
                    LogitsMode::Last,
                )
                .unwrap();
            let a = argmax(&l);
            mlx_rs::transforms::async_eval([&a]).unwrap();
            Some(a)
        } else {
            None
        };
        out.push(pending.try_item_exact::<u32>().expect("token id"));
        match ahead {
            Some(a) => pending = a,
            None => break,
        }
    }
    (out, t0.elapsed())
}

/// Speculative decoding of `n` tokens after `prompt` with `draft`: the target is prefilled with
/// `prompt[..len-1]` (the draft catches up inside the first round), then `step` runs until `n`
/// tokens exist. Returns the tokens and the decode time (the target's prefill excluded; the
/// draft's prompt catch-up included).
pub fn speculative_decode(
    model: &dyn Model,
    draft: &mut Draft,
    prompt: &[u32],
    n: usize,
    sampler: &mut Sampler,
) -> (Vec<u32>, Duration) {
    let (mut caches, _) = prefill(model, &prompt[..prompt.len() - 1]);
    let t0 = Instant::now();
    let mut history = prompt.to_vec();
    while history.len() - prompt.len() < n {
        let left = n - (history.len() - prompt.len());
        let new = speculative::step(model, &mut caches, draft, &history, sampler, left)
            .expect("speculative step");
        history.extend(new);
    }
    (history[prompt.len()..].to_vec(), t0.elapsed())
}

/// A free "draft model" for benchmarks: prompt lookup (n-gram copying). Its logits after a
/// position put all the mass on the token that followed the most recent earlier occurrence of
/// the last 3 (then 2, then 1) tokens; no match gives flat logits. Costs no matmul, so it
/// isolates what `speculative::step` itself costs and gains when drafts are accepted.
pub struct Lookup {
    info: ollmlx_models::ModelInfo,
    seen: std::cell::RefCell<Vec<u32>>,
}

impl Lookup {
    /// A lookup draft for a target with this vocabulary.
    pub fn new(target: &ollmlx_models::ModelInfo) -> Self {
        Lookup {
            info: ollmlx_models::ModelInfo {
                architecture: "prompt-lookup".into(),
                num_layers: 1,
                ..target.clone()
            },
            seen: Default::default(),
        }
    }

    fn predict(seen: &[u32]) -> Option<u32> {
        for n in (1..=3usize).rev() {
            if seen.len() <= n {
                continue;
            }
            let tail = &seen[seen.len() - n..];
            if let Some(i) = (0..seen.len() - n).rev().find(|&i| &seen[i..i + n] == tail) {
                return Some(seen[i + n]);
            }
        }
        None
    }
}

impl Model for Lookup {
    fn info(&self) -> &ollmlx_models::ModelInfo {
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
        let t = tokens.as_dtype(mlx_rs::Dtype::Int32)?;
        t.eval()?;
        let ids: Vec<u32> = t.as_slice::<i32>().iter().map(|&x| x as u32).collect();
        let start = caches[0].offset() as usize;
        let kv = mlx_rs::ops::zeros::<f32>(&[1, 1, ids.len() as i32, 1])?;
        caches[0].update(&kv, &kv)?;
        let mut seen = self.seen.borrow_mut();
        seen.truncate(start);
        seen.extend(&ids);
        let positions: Vec<usize> = match mode {
            LogitsMode::All => (0..ids.len()).collect(),
            LogitsMode::Last => vec![ids.len() - 1],
        };
        let v = self.info.vocab_size as usize;
        let mut out = vec![0f32; v * positions.len()];
        for (row, &i) in positions.iter().enumerate() {
            if let Some(t) = Self::predict(&seen[..start + i + 1]) {
                out[row * v + t as usize] = 30.0;
            }
        }
        Ok(Array::from_slice(
            &out,
            &[1, positions.len() as i32, v as i32],
        ))
    }
}
