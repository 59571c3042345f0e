//! Embedding families against their references (fixtures from
//! `scripts/parity/make_embed_fixtures.py`): tiny random-weight BERT ([CLS] pooling,
//! mxbai-embed-large style), nomic-bert (nomic-embed-text style) and a Qwen3 decoder served as a
//! last-token embedder (Qwen3-Embedding style), each from its Hugging Face directory and from a
//! llama.cpp-named GGUF file, loaded through `ollmlx_models::load` (the engine's load path).
//!
//! References: an independent numpy forward for the encoders, mlx-lm's own Qwen3 class for the
//! decoder. Float32 on the CPU device: every component within 1e-4 and cosine > 0.9999.

use std::path::{Path, PathBuf};

use mlx_rs::Array;
use ollmlx_models::config::LlamaConfig;
use ollmlx_models::decoder_embed::DecoderEmbedder;
use ollmlx_models::pooling::{Pooling, PoolingConfig};
use ollmlx_models::{load, LoadOptions, LogitsMode, WeightFormat, Weights};
use serde_json::Value;

const TOL: f32 = 1e-4;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

struct Case {
    ids: Vec<u32>,
    pooled: Vec<f32>,
    mean: Option<Vec<f32>>,
}

struct Reference {
    normalize: bool,
    inputs: Vec<Case>,
    truncated: Case,
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn case(v: &Value) -> Case {
    Case {
        ids: v["ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as u32)
            .collect(),
        pooled: floats(&v["pooled"]),
        mean: (!v["mean"].is_null()).then(|| floats(&v["mean"])),
    }
}

fn reference(name: &str) -> Reference {
    let text = std::fs::read_to_string(fixtures().join(name).join("reference.json")).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    Reference {
        normalize: v["normalize"].as_bool().unwrap(),
        inputs: v["inputs"].as_array().unwrap().iter().map(case).collect(),
        truncated: case(&v["truncated"]),
    }
}

fn normalized(v: &[f32]) -> Vec<f32> {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    v.iter().map(|x| x / n).collect()
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let (a, b) = (normalized(a), normalized(b));
    a.iter().zip(&b).map(|(x, y)| x * y).sum()
}

fn assert_close(ours: &[f32], want: &[f32], what: &str) {
    assert_eq!(ours.len(), want.len(), "{what}: dimension");
    let diff = ours
        .iter()
        .zip(want)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    let cos = cosine(ours, want);
    eprintln!("{what}: max |diff| {diff:.2e}, cosine {cos:.7}");
    assert!(
        diff < TOL && cos > 0.9999,
        "{what}: max |diff| {diff}, cosine {cos}"
    );
}

/// Right-padded `[B, L]` tokens (pad id 0) and mask.
fn batch(seqs: &[&[u32]]) -> (Array, Array) {
    let l = seqs.iter().map(|s| s.len()).max().unwrap();
    let mut t = vec![0i32; seqs.len() * l];
    let mut m = vec![0f32; seqs.len() * l];
    for (i, s) in seqs.iter().enumerate() {
        for (j, &id) in s.iter().enumerate() {
            t[i * l + j] = id as i32;
            m[i * l + j] = 1.0;
        }
    }
    let shape = [seqs.len() as i32, l as i32];
    (Array::from_slice(&t, &shape), Array::from_slice(&m, &shape))
}

fn rows(v: &Array) -> Vec<Vec<f32>> {
    v.eval().unwrap();
    let d = v.dim(-1) as usize;
    v.as_slice::<f32>().chunks(d).map(<[f32]>::to_vec).collect()
}

fn cpu() -> LoadOptions {
    LoadOptions::for_device(true)
}

/// Load `path`, embed every reference input in one padded batch and one at a time, and compare
/// with the reference (normalized when `normalized_output`).
fn check(path: &Path, fixture: &str, normalized_output: bool) {
    let r = reference(fixture);
    let loaded = load(path, cpu()).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let enc = loaded
        .model
        .as_encoder()
        .unwrap_or_else(|| panic!("{} did not load as an encoder", path.display()));
    let want = |c: &Case| {
        if normalized_output {
            normalized(&c.pooled)
        } else {
            c.pooled.clone()
        }
    };
    let seqs: Vec<&[u32]> = r.inputs.iter().map(|c| c.ids.as_slice()).collect();
    let (t, m) = batch(&seqs);
    let got = rows(&enc.embed(&t, &m).unwrap());
    for (i, (g, c)) in got.iter().zip(&r.inputs).enumerate() {
        assert_eq!(g.len() as i32, enc.embedding_length());
        assert_close(g, &want(c), &format!("{fixture} batched input {i}"));
    }
    for (i, c) in r.inputs.iter().chain([&r.truncated]).enumerate() {
        let (t, m) = batch(&[&c.ids]);
        let got = rows(&enc.embed(&t, &m).unwrap());
        assert_close(&got[0], &want(c), &format!("{fixture} alone {i}"));
    }
    assert!(
        loaded
            .model
            .forward(&t, &mut loaded.model.new_caches(), LogitsMode::Last)
            .is_err(),
        "an embedding model must refuse to generate"
    );
}

#[test]
fn bert_cls_pooling_dir_matches_the_numpy_reference_batched_and_alone() {
    let r = reference("embed-bert-cls");
    assert!(r.normalize);
    check(&fixtures().join("embed-bert-cls"), "embed-bert-cls", true);
}

#[test]
fn bert_gguf_with_pooling_type_cls_matches_the_same_reference() {
    // GGUF carries no Normalize module: raw [CLS] states (the server normalizes /api/embed).
    check(
        &fixtures().join("embed-gguf/bert-cls.gguf"),
        "embed-bert-cls",
        false,
    );
}

#[test]
fn nomic_bert_dir_matches_the_numpy_reference_unnormalized() {
    let r = reference("embed-nomic");
    assert!(!r.normalize);
    check(&fixtures().join("embed-nomic"), "embed-nomic", false);
}

#[test]
fn nomic_bert_gguf_matches_the_same_reference() {
    check(
        &fixtures().join("embed-gguf/nomic-bert.gguf"),
        "embed-nomic",
        false,
    );
}

#[test]
fn qwen3_embedding_dir_with_bare_tensor_names_matches_mlx_lm_last_token() {
    check(&fixtures().join("embed-qwen3"), "embed-qwen3", true);
}

#[test]
fn qwen3_gguf_with_pooling_type_last_matches_mlx_lm() {
    check(
        &fixtures().join("embed-gguf/qwen3-embed.gguf"),
        "embed-qwen3",
        false,
    );
}

#[test]
fn decoder_mean_pooling_matches_mlx_lm_hidden_states_averaged() {
    let dir = fixtures().join("embed-qwen3");
    let cfg: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    let mut w = Weights::from_safetensors_dir(&dir, cpu(), 64).unwrap();
    assert_eq!(w.format, WeightFormat::SafeTensors);
    let pooling = PoolingConfig {
        pooling: Pooling::Mean,
        normalize: false,
    };
    let m = DecoderEmbedder::new(
        LlamaConfig::from_hf(&cfg).unwrap(),
        &mut w,
        "Qwen3ForCausalLM",
        pooling,
    )
    .unwrap();
    let r = reference("embed-qwen3");
    let seqs: Vec<&[u32]> = r.inputs.iter().map(|c| c.ids.as_slice()).collect();
    let (t, mask) = batch(&seqs);
    let got = rows(&ollmlx_models::bert::Encoder::embed(&m, &t, &mask).unwrap());
    for (i, (g, c)) in got.iter().zip(&r.inputs).enumerate() {
        assert_close(g, c.mean.as_ref().unwrap(), &format!("mean input {i}"));
    }
}

#[test]
fn the_dir_and_gguf_fixtures_are_detected_as_embedding_models() {
    use ollmlx_models::embedding_kind::is_embedding_model;
    for p in [
        "embed-bert-cls",
        "embed-nomic",
        "embed-qwen3",
        "embed-gguf/bert-cls.gguf",
        "embed-gguf/nomic-bert.gguf",
        "embed-gguf/qwen3-embed.gguf",
    ] {
        assert!(is_embedding_model(&fixtures().join(p)), "{p}");
    }
    for p in ["qwen3-bf16", "gguf/qwen3-bf16.gguf", "llama-bf16"] {
        assert!(!is_embedding_model(&fixtures().join(p)), "{p}");
    }
}

#[test]
fn q8_0_bert_gguf_matches_its_dequantized_reference_dense_and_packed() {
    let text = std::fs::read_to_string(fixtures().join("embed-bert-cls/reference.json")).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    let want: Vec<Vec<f32>> = v["gguf_q8_0"]
        .as_array()
        .unwrap()
        .iter()
        .map(floats)
        .collect();
    let r = reference("embed-bert-cls");
    let path = fixtures().join("embed-gguf/bert-cls-q8_0.gguf");
    let packed = LoadOptions {
        compute_dtype: mlx_rs::Dtype::Float32,
        dequantize: false,
        transpose_dense: false,
    };
    for (label, opts) in [("dequantized", cpu()), ("packed", packed)] {
        let loaded = load(&path, opts).unwrap();
        let enc = loaded.model.as_encoder().unwrap();
        let seqs: Vec<&[u32]> = r.inputs.iter().map(|c| c.ids.as_slice()).collect();
        let (t, m) = batch(&seqs);
        let got = rows(&enc.embed(&t, &m).unwrap());
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_close(g, w, &format!("q8_0 {label} input {i}"));
        }
        // And still close to the float model (Q8_0 error only).
        for (i, (g, c)) in got.iter().zip(&r.inputs).enumerate() {
            let cos = cosine(g, &c.pooled);
            assert!(cos > 0.999, "q8_0 {label} input {i} vs float: cosine {cos}");
        }
    }
}

#[test]
fn every_kind_runs_in_bfloat16_with_packed_weights_as_on_gpus() {
    // The GPU load options (bf16 compute, weights kept as stored): the vectors stay close to the
    // float references (bf16 rounding only) and come back as float32.
    let gpu = LoadOptions {
        compute_dtype: mlx_rs::Dtype::Bfloat16,
        dequantize: false,
        transpose_dense: false,
    };
    for (path, fixture) in [
        ("embed-bert-cls", "embed-bert-cls"),
        ("embed-nomic", "embed-nomic"),
        ("embed-qwen3", "embed-qwen3"),
        ("embed-gguf/bert-cls-q8_0.gguf", "embed-bert-cls"),
        ("embed-gguf/nomic-bert.gguf", "embed-nomic"),
        ("embed-gguf/qwen3-embed.gguf", "embed-qwen3"),
    ] {
        let r = reference(fixture);
        let loaded = load(&fixtures().join(path), gpu).unwrap();
        let enc = loaded.model.as_encoder().unwrap();
        let seqs: Vec<&[u32]> = r.inputs.iter().map(|c| c.ids.as_slice()).collect();
        let (t, m) = batch(&seqs);
        let out = enc.embed(&t, &m).unwrap();
        assert_eq!(out.dtype(), mlx_rs::Dtype::Float32, "{path}");
        for (i, (g, c)) in rows(&out).iter().zip(&r.inputs).enumerate() {
            let cos = cosine(g, &c.pooled);
            eprintln!("{path} bf16 input {i}: cosine {cos:.5}");
            assert!(cos > 0.99, "{path} bf16 input {i}: cosine {cos}");
        }
    }
}
