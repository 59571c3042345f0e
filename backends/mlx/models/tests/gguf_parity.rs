//! The GGUF load path against the same mlx-lm goldens as the safetensors fixtures: the llama,
//! qwen2 and qwen3 bf16 fixtures re-packaged the way llama.cpp's converter writes them
//! (`scripts/parity/make_gguf.py`: GGUF tensor names and metadata keys, q/k rows permuted for
//! `llama` only, llama3 scaling as `rope_freqs.weight`). Passing means the name mapping in
//! `weights.rs`, the `{arch}.*` metadata reading in `config.rs` and the RoPE layout choice
//! (adjacent pairs for llama, half-split for qwen2/qwen3) are right.

mod common;

use common::{check_path, fixture_dir, Precision};

fn gguf(family: &str) -> std::path::PathBuf {
    fixture_dir("gguf").join(format!("{family}-bf16.gguf"))
}

macro_rules! gguf_parity {
    ($($name:ident => ($family:literal, $precision:ident);)*) => {$(
        #[test]
        fn $name() {
            check_path(concat!($family, "-bf16"), &gguf($family), Precision::$precision);
        }
    )*};
}

gguf_parity! {
    llama_gguf_permuted_qk_and_rope_freqs_match_mlx_lm_cpu_f32 => ("llama", CpuDefault);
    llama_gguf_matches_mlx_lm_native => ("llama", Native);
    qwen2_gguf_biases_and_neox_rope_match_mlx_lm_cpu_f32 => ("qwen2", CpuDefault);
    qwen2_gguf_matches_mlx_lm_native => ("qwen2", Native);
    qwen3_gguf_qk_norm_and_head_dim_match_mlx_lm_cpu_f32 => ("qwen3", CpuDefault);
    qwen3_gguf_matches_mlx_lm_native => ("qwen3", Native);
}
