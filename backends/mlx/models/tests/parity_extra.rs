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

use common::{check, fixture_dir, full_forward, golden, greedy_cached, Precision};
use mlx_rs::Dtype;
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
