//! mlx-lm parity for the dense families in `llama.rs` / `qwen3.rs`: llama (llama3 RoPE scaling,
//! tied embeddings), mistral (untied lm_head), qwen2 (q/k/v bias), qwen3 (per-head q/k RMSNorm).
//! Fixtures and goldens: `scripts/parity/make_fixtures.py`; harness: `common/mod.rs`.
//!
//! Every (family, variant) runs twice: `cpu_f32` = the engine's CPU defaults
//! (`LoadOptions::for_device(true)`: float32, 4-bit weights dequantized at load) against mlx-lm's
//! float32-upcast run; `native` = bfloat16 compute with 4-bit weights kept packed (the GPU
//! configuration) against mlx-lm running the checkpoint as saved.

mod common;

use common::{check, fixture_dir, golden, Precision};

macro_rules! parity {
    ($($name:ident => ($fixture:literal, $precision:ident);)*) => {$(
        #[test]
        fn $name() {
            check($fixture, Precision::$precision);
        }
    )*};
}

parity! {
    llama_bf16_cpu_f32_matches_mlx_lm => ("llama-bf16", CpuDefault);
    llama_bf16_native_matches_mlx_lm => ("llama-bf16", Native);
    llama_q4_cpu_f32_matches_mlx_lm => ("llama-q4", CpuDefault);
    llama_q4_native_matches_mlx_lm => ("llama-q4", Native);
    mistral_bf16_cpu_f32_matches_mlx_lm => ("mistral-bf16", CpuDefault);
    mistral_bf16_native_matches_mlx_lm => ("mistral-bf16", Native);
    mistral_q4_cpu_f32_matches_mlx_lm => ("mistral-q4", CpuDefault);
    mistral_q4_native_matches_mlx_lm => ("mistral-q4", Native);
    qwen2_bf16_cpu_f32_matches_mlx_lm => ("qwen2-bf16", CpuDefault);
    qwen2_bf16_native_matches_mlx_lm => ("qwen2-bf16", Native);
    qwen2_q4_cpu_f32_matches_mlx_lm => ("qwen2-q4", CpuDefault);
    qwen2_q4_native_matches_mlx_lm => ("qwen2-q4", Native);
    qwen3_bf16_cpu_f32_matches_mlx_lm => ("qwen3-bf16", CpuDefault);
    qwen3_bf16_native_matches_mlx_lm => ("qwen3-bf16", Native);
    qwen3_q4_cpu_f32_matches_mlx_lm => ("qwen3-q4", CpuDefault);
    qwen3_q4_native_matches_mlx_lm => ("qwen3-q4", Native);
}

/// The committed fixtures were recorded with the mlx / mlx-lm versions the generator pins, and
/// every fixture directory has the files the engine loads (a cheap CI check: no mlx-lm needed).
#[test]
fn fixtures_were_recorded_with_the_pinned_mlx_lm_versions() {
    let script = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../scripts/parity/make_fixtures.py"),
    )
    .expect("scripts/parity/make_fixtures.py");
    let pinned = script
        .lines()
        .find_map(|l| l.strip_prefix("PINNED = "))
        .expect("PINNED line in make_fixtures.py");
    let pinned: serde_json::Value = serde_json::from_str(pinned).expect("PINNED is JSON");
    let mut seen = 0;
    for entry in std::fs::read_dir(fixture_dir("")).expect("tests/fixtures") {
        let dir = entry.expect("dir entry").path();
        if !dir.join("golden.json").exists() {
            continue;
        }
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let g = golden(&name);
        assert_eq!(g.format, 1, "{name}: golden format");
        assert_eq!(
            (g.versions.mlx.as_str(), g.versions.mlx_lm.as_str()),
            (
                pinned["mlx"].as_str().unwrap(),
                pinned["mlx-lm"].as_str().unwrap()
            ),
            "{name}: recorded with other versions than make_fixtures.py pins"
        );
        assert_eq!(
            name,
            format!("{}-{}", g.family, g.variant),
            "{name}: naming"
        );
        for f in ["config.json", "model.safetensors"] {
            assert!(dir.join(f).exists(), "{name}: missing {f}");
        }
        seen += 1;
    }
    assert!(
        seen >= 8,
        "expected the fixtures of at least 4 families, saw {seen}"
    );
}

/// An architecture nobody implements is refused with a message naming it.
#[test]
fn unknown_architecture_is_refused_by_name() {
    let dir = std::env::temp_dir().join(format!("ollmlx-parity-unknown-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("config.json"),
        r#"{"architectures": ["FooBarForCausalLM"], "model_type": "foobar"}"#,
    )
    .unwrap();
    let err = match ollmlx_models::load(&dir, ollmlx_models::LoadOptions::for_device(true)) {
        Ok(_) => panic!("FooBarForCausalLM loaded"),
        Err(e) => e.to_string(),
    };
    std::fs::remove_dir_all(&dir).ok();
    assert!(err.contains("FooBarForCausalLM"), "{err}");
}
