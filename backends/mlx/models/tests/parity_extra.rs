//! mlx-lm parity for gemma3 (`gemma3.rs`: sliding-window + global layers with two RoPE bases,
//! (1+w) norms, scaled and tied embeddings), phi3 (`phi3.rs`: fused qkv/gate_up, partial rotary,
//! longrope) and qwen3_moe (`qwen3_moe.rs` + `moe.rs`: routed experts through gather_mm /
//! gather_qmm, an 8-bit router in the 4-bit variant). Fixtures and goldens:
//! `scripts/parity/make_fixtures.py`; harness: `common/mod.rs`.
//!
//! The second fixture prompt (14 tokens) is longer than the gemma3 fixture's sliding window (5),
//! so local layers really drop positions, both in the prefill and in cached decoding.
//!
//! Every (family, variant) runs twice: `cpu_f32` = the engine's CPU defaults (float32, 4-bit
//! weights and experts dequantized at load) against mlx-lm's float32-upcast run; `native` =
//! bfloat16 compute with packed 4-bit weights (`quantized_matmul`, `gather_qmm`) against mlx-lm
//! running the checkpoint as saved.

mod common;

use std::collections::HashMap;

use common::{check, fixture_dir, full_forward, golden, greedy_cached, Precision};
use mlx_rs::io::{GgufFile, GgufMetadataValue};
use mlx_rs::{Array, Dtype};
use ollmlx_models::{load, LoadOptions};

macro_rules! parity {
    ($($name:ident => ($fixture:literal, $precision:ident);)*) => {$(
        #[test]
        fn $name() {
            check($fixture, Precision::$precision);
        }
    )*};
}

parity! {
    gemma3_bf16_cpu_f32_matches_mlx_lm => ("gemma3_text-bf16", CpuDefault);
    gemma3_bf16_native_matches_mlx_lm => ("gemma3_text-bf16", Native);
    gemma3_q4_cpu_f32_matches_mlx_lm => ("gemma3_text-q4", CpuDefault);
    gemma3_q4_native_matches_mlx_lm => ("gemma3_text-q4", Native);
    phi3_bf16_cpu_f32_matches_mlx_lm => ("phi3-bf16", CpuDefault);
    phi3_bf16_native_matches_mlx_lm => ("phi3-bf16", Native);
    phi3_q4_cpu_f32_matches_mlx_lm => ("phi3-q4", CpuDefault);
    phi3_q4_native_matches_mlx_lm => ("phi3-q4", Native);
    qwen3_moe_bf16_cpu_f32_matches_mlx_lm => ("qwen3_moe-bf16", CpuDefault);
    qwen3_moe_q4_cpu_f32_matches_mlx_lm => ("qwen3_moe-q4", CpuDefault);
    qwen3_moe_q4_native_matches_mlx_lm => ("qwen3_moe-q4", Native);
}

/// mlx-lm cannot run the bfloat16 MoE checkpoint on the CPU (MLX's CPU `GatherMM` is float32
/// only), so the fixture has no native record. We can: on the CPU device dense experts stay
/// float32 and the activations are upcast around `gather_mm`. Our bfloat16 run must give
/// mlx-lm's float32 greedy tokens and logits within the bfloat16 tolerance.
#[test]
fn qwen3_moe_bf16_native_runs_on_cpu_and_matches_the_f32_record() {
    let name = "qwen3_moe-bf16";
    let g = golden(name);
    let opts = LoadOptions {
        compute_dtype: Dtype::Bfloat16,
        dequantize: false,
        transpose_dense: false,
    };
    let model = load(&fixture_dir(name), opts).expect("load bf16").model;
    for (pi, p) in g.prompts.iter().enumerate() {
        let rec = &p.f32;
        let (ours, _) = greedy_cached(model.as_ref(), &p.prompt, g.gen_tokens);
        assert_eq!(
            ours, rec.tokens,
            "prompt #{pi}: greedy tokens (bf16 vs mlx-lm f32)"
        );
        let mut seq = p.prompt.clone();
        seq.extend_from_slice(&rec.tokens[..rec.tokens.len() - 1]);
        let full = full_forward(model.as_ref(), &seq);
        for (pos, row) in full.iter().enumerate() {
            for (&id, &want) in rec.top_ids[pos].iter().zip(&rec.top_logits[pos]) {
                let got = row[id as usize];
                let tol = Precision::Native.tolerance(want);
                assert!(
                    (got - want).abs() <= tol,
                    "prompt #{pi} position {pos} id {id}: ours {got}, mlx-lm f32 {want}"
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// GGUF paths: each bf16 fixture re-written as a GGUF file with llama.cpp's tensor names and
// metadata keys (Gemma norms stored as 1+w, phi3's fused `attn_qkv`/`ffn_up` and
// `rope_factors_long`, qwen3moe's `ffn_*_exps` and `ffn_gate_inp`), loaded through the GGUF
// loader, must give the same logits as the safetensors load.

fn gguf_tensor_name(hf: &str, arch: &str) -> String {
    let (stem, suffix) = hf.rsplit_once('.').expect("tensor name with suffix");
    let mapped = match stem {
        "model.embed_tokens" => "token_embd".to_string(),
        "model.norm" => "output_norm".to_string(),
        "lm_head" => "output".to_string(),
        _ => {
            let rest = stem.strip_prefix("model.layers.").expect("layer tensor");
            let (n, part) = rest.split_once('.').expect("layer part");
            let g = match part {
                "input_layernorm" => "attn_norm",
                "post_attention_layernorm" if arch == "gemma3" => "post_attention_norm",
                "post_attention_layernorm" => "ffn_norm",
                "pre_feedforward_layernorm" => "ffn_norm",
                "post_feedforward_layernorm" => "post_ffw_norm",
                "self_attn.q_proj" => "attn_q",
                "self_attn.k_proj" => "attn_k",
                "self_attn.v_proj" => "attn_v",
                "self_attn.o_proj" => "attn_output",
                "self_attn.qkv_proj" => "attn_qkv",
                "self_attn.q_norm" => "attn_q_norm",
                "self_attn.k_norm" => "attn_k_norm",
                "mlp.gate_proj" => "ffn_gate",
                "mlp.up_proj" | "mlp.gate_up_proj" => "ffn_up",
                "mlp.down_proj" => "ffn_down",
                "mlp.gate" => "ffn_gate_inp",
                "mlp.switch_mlp.gate_proj" => "ffn_gate_exps",
                "mlp.switch_mlp.up_proj" => "ffn_up_exps",
                "mlp.switch_mlp.down_proj" => "ffn_down_exps",
                other => panic!("no GGUF name for {other}"),
            };
            format!("blk.{n}.{g}")
        }
    };
    format!("{mapped}.{suffix}")
}

enum Meta {
    I(i32),
    F(f32),
}

/// Write fixture `name` as `<tmp>/ollmlx-parity-<name>.gguf` and compare both loads.
fn gguf_matches_safetensors(
    name: &str,
    arch: &str,
    meta: &[(&str, Meta)],
    extra: &[(&str, Array)],
) {
    let dir = fixture_dir(name);
    let mut tensors: HashMap<String, Array> = HashMap::new();
    for entry in std::fs::read_dir(&dir).expect("fixture dir") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|x| x == "safetensors") {
            tensors.extend(Array::load_safetensors(&path).expect("safetensors"));
        }
    }
    let mut file = GgufFile::new().expect("gguf");
    file.insert_metadata("general.architecture", arch)
        .expect("arch");
    for (k, v) in meta {
        let value = match v {
            Meta::I(i) => GgufMetadataValue::from(Array::from_int(*i)),
            Meta::F(f) => GgufMetadataValue::from(Array::from_f32(*f)),
        };
        file.insert_metadata(format!("{arch}.{k}"), value)
            .expect("metadata");
    }
    let mut names: Vec<_> = tensors.keys().cloned().collect();
    names.sort();
    for hf in names {
        let mut a = tensors[&hf].as_dtype(Dtype::Float32).expect("f32");
        if arch == "gemma3" && hf.ends_with("norm.weight") {
            // llama.cpp's converter stores Gemma's RMSNorm gains as 1 + w.
            a = a.add(Array::from_f32(1.0)).expect("+1");
        }
        file.insert_array(gguf_tensor_name(&hf, arch), &a)
            .expect("tensor");
    }
    for (k, a) in extra {
        file.insert_array(k, a).expect("extra tensor");
    }
    let path = std::env::temp_dir().join(format!("ollmlx-parity-{name}.gguf"));
    file.save(&path).expect("save gguf");
    drop(file);

    let opts = LoadOptions::for_device(true);
    let from_gguf = load(&path, opts).expect("load gguf").model;
    let from_st = load(&dir, opts).expect("load safetensors").model;
    let g = golden(name);
    for p in &g.prompts {
        let a = full_forward(from_gguf.as_ref(), &p.prompt);
        let b = full_forward(from_st.as_ref(), &p.prompt);
        let d = a
            .iter()
            .flatten()
            .zip(b.iter().flatten())
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max);
        assert!(d < 1e-4, "{name}: GGUF vs safetensors logits differ by {d}");
        let (ours, _) = greedy_cached(from_gguf.as_ref(), &p.prompt, g.gen_tokens);
        assert_eq!(ours, p.f32.tokens, "{name}: GGUF greedy tokens");
    }
    let _ = std::fs::remove_file(&path);
}

#[test]
fn gemma3_gguf_names_and_metadata_load_like_the_safetensors_checkpoint() {
    use Meta::*;
    gguf_matches_safetensors(
        "gemma3_text-bf16",
        "gemma3",
        &[
            ("embedding_length", I(64)),
            ("block_count", I(4)),
            ("feed_forward_length", I(128)),
            ("attention.head_count", I(4)),
            ("attention.head_count_kv", I(1)),
            ("attention.key_length", I(16)),
            ("attention.layer_norm_rms_epsilon", F(1e-6)),
            ("rope.freq_base", F(1_000_000.0)),
            ("attention.sliding_window", I(5)),
            ("attention.sliding_window_pattern", I(2)),
            ("context_length", I(2048)),
            ("vocab_size", I(512)),
        ],
        &[],
    );
}

#[test]
fn phi3_gguf_fused_tensors_and_longrope_factors_load_like_the_safetensors_checkpoint() {
    use Meta::*;
    let long = Array::from_slice(&[1.0f32, 2.0, 4.0, 8.0], &[4]);
    gguf_matches_safetensors(
        "phi3-bf16",
        "phi3",
        &[
            ("embedding_length", I(64)),
            ("block_count", I(2)),
            ("feed_forward_length", I(128)),
            ("attention.head_count", I(4)),
            ("attention.head_count_kv", I(4)),
            ("attention.layer_norm_rms_epsilon", F(1e-5)),
            ("rope.freq_base", F(10000.0)),
            ("rope.dimension_count", I(8)),
            ("context_length", I(1024)),
            ("rope.scaling.original_context_length", I(256)),
            ("vocab_size", I(512)),
        ],
        &[("rope_factors_long.weight", long)],
    );
}

#[test]
fn qwen3moe_gguf_expert_tensors_load_like_the_safetensors_checkpoint() {
    use Meta::*;
    gguf_matches_safetensors(
        "qwen3_moe-bf16",
        "qwen3moe",
        &[
            ("embedding_length", I(64)),
            ("block_count", I(2)),
            ("feed_forward_length", I(128)),
            ("expert_feed_forward_length", I(64)),
            ("attention.head_count", I(4)),
            ("attention.head_count_kv", I(2)),
            ("attention.key_length", I(16)),
            ("expert_count", I(4)),
            ("expert_used_count", I(2)),
            ("attention.layer_norm_rms_epsilon", F(1e-6)),
            ("rope.freq_base", F(1_000_000.0)),
            ("context_length", I(2048)),
            ("vocab_size", I(512)),
        ],
        &[],
    );
}

/// A multimodal `gemma3` checkpoint (`Gemma3ForConditionalGeneration`: `text_config`, weights
/// under `language_model.`, vision tensors beside them) loads its language model: the bf16
/// fixture re-laid-out that way gives mlx-lm's greedy tokens and the same logits.
#[test]
fn gemma3_multimodal_wrapper_loads_its_language_model() {
    let src = fixture_dir("gemma3_text-bf16");
    let text_cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(src.join("config.json")).expect("config"))
            .expect("json");
    let cfg = serde_json::json!({
        "architectures": ["Gemma3ForConditionalGeneration"],
        "model_type": "gemma3",
        "vocab_size": text_cfg["vocab_size"],
        "text_config": text_cfg,
        "vision_config": {"model_type": "siglip_vision_model"},
    });
    let dir = std::env::temp_dir().join(format!(
        "ollmlx-parity-gemma3-wrapper-{}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    std::fs::write(dir.join("config.json"), cfg.to_string()).expect("write config");
    let mut tensors: HashMap<String, Array> = HashMap::new();
    for entry in std::fs::read_dir(&src).expect("fixture dir") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|x| x == "safetensors") {
            for (k, v) in Array::load_safetensors(&path).expect("safetensors") {
                tensors.insert(format!("language_model.{k}"), v);
            }
        }
    }
    tensors.insert(
        "vision_tower.vision_model.embeddings.patch_embedding.weight".into(),
        Array::from_slice(&[0.0f32; 4], &[2, 2]),
    );
    Array::save_safetensors(&tensors, None, dir.join("model.safetensors")).expect("save");

    let opts = LoadOptions::for_device(true);
    let wrapped = load(&dir, opts).expect("load wrapper").model;
    let plain = load(&src, opts).expect("load text").model;
    let g = golden("gemma3_text-bf16");
    for p in &g.prompts {
        let (ours, _) = greedy_cached(wrapped.as_ref(), &p.prompt, g.gen_tokens);
        assert_eq!(ours, p.f32.tokens, "wrapper greedy tokens");
        let a = full_forward(wrapped.as_ref(), &p.prompt);
        let b = full_forward(plain.as_ref(), &p.prompt);
        let d = a
            .iter()
            .flatten()
            .zip(b.iter().flatten())
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max);
        assert!(d < 1e-5, "wrapper vs text-only logits differ by {d}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
