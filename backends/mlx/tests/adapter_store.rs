//! ADAPTER end to end through the store: create a model from the `llama-bf16` parity fixture's
//! safetensors files plus the mlx-lm adapter of `llama-lora` (`adapters.safetensors` +
//! `adapter_config.json`, as the CLI uploads an ADAPTER directory) via `StoreBackend`, resolve it,
//! let `MlxRunner` assemble its weights directory, load that with `ollmlx_models::load` and
//! decode greedily. The fixture has no tokenizer, so the engine's text path cannot run it; this
//! checks the same chain up to the token ids (store layers → runner assembly → LoRA merge): the
//! stored adapter model decodes mlx-lm's adapted golden tokens, differs from the base, and the
//! base created without ADAPTER still decodes the base golden.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use mlx_rs::Array;
use ollmlx_infer::{Backend, ManageRequest, RawBody};
use ollmlx_mlx::MlxRunner;
use ollmlx_models::{load, LoadOptions, LogitsMode};
use ollmlx_store::{Store, StoreBackend};
use ollmlx_wire::ollama as wire;
use sha2::{Digest, Sha256};

/// Both tests point the runner at the same assembly directory (the env var is process-wide;
/// entries are keyed by manifest digest, so the tests do not collide).
fn assembled_dir() {
    std::env::set_var(
        "OLLMLX_MLX_MODELS_DIR",
        concat!(env!("CARGO_TARGET_TMPDIR"), "/adapter-store-models"),
    );
}

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/tests/fixtures")
}

async fn put(backend: &StoreBackend, path: &Path) -> String {
    let data = std::fs::read(path).unwrap();
    let digest = format!("sha256:{:x}", Sha256::digest(&data));
    let body: RawBody = futures::stream::iter(vec![Ok(Bytes::copy_from_slice(&data))]).boxed();
    backend.blob_put(digest.clone(), body).await.unwrap();
    digest
}

async fn create(backend: &StoreBackend, req: serde_json::Value) {
    let req: wire::CreateRequest = serde_json::from_value(req).unwrap();
    let mut s = backend
        .manage(ManageRequest::Create(req.into()))
        .await
        .unwrap();
    while let Some(p) = s.next().await {
        p.unwrap();
    }
}

fn greedy(dir: &Path, prompt: &[i32], n: usize) -> Vec<i32> {
    let m = load(dir, LoadOptions::for_device(true)).expect("load assembled model");
    let mut caches = m.model.new_caches();
    let mut input = Array::from_slice(prompt, &[1, prompt.len() as i32]);
    let mut out = vec![];
    for _ in 0..n {
        let logits = m
            .model
            .forward(&input, &mut caches, LogitsMode::Last)
            .unwrap();
        let t = mlx_rs::ops::indexing::argmax_axis(&logits, -1, None)
            .unwrap()
            .as_dtype(mlx_rs::Dtype::Int32)
            .unwrap()
            .as_slice::<i32>()[0];
        out.push(t);
        input = Array::from_slice(&[t], &[1, 1]);
    }
    out
}

fn golden_tokens(name: &str) -> Vec<(Vec<i32>, Vec<i32>)> {
    let g: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures().join(name).join("golden.json")).unwrap(),
    )
    .unwrap();
    g["prompts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let ids = |v: &serde_json::Value| -> Vec<i32> {
                v.as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_i64().unwrap() as i32)
                    .collect()
            };
            (ids(&p["prompt"]), ids(&p["f32"]["tokens"]))
        })
        .collect()
}

#[tokio::test]
async fn stored_adapter_model_decodes_mlx_lm_adapted_tokens() {
    let store_dir = tempfile::tempdir().unwrap();
    assembled_dir();
    let runner = Arc::new(MlxRunner::new(Default::default()).unwrap());
    let backend = StoreBackend::new(Store::new(store_dir.path())).with_runner(runner.clone());

    let base = fixtures().join("llama-bf16");
    let adapter = fixtures().join("llama-lora/adapters");
    let mut files = serde_json::Map::new();
    for f in ["config.json", "model.safetensors"] {
        files.insert(f.into(), put(&backend, &base.join(f)).await.into());
    }
    let mut adapters = serde_json::Map::new();
    for f in ["adapters.safetensors", "adapter_config.json"] {
        adapters.insert(f.into(), put(&backend, &adapter.join(f)).await.into());
    }
    create(
        &backend,
        serde_json::json!({"model": "tiny-base", "files": files}),
    )
    .await;
    create(
        &backend,
        serde_json::json!({"model": "tiny-lora", "files": files, "adapters": adapters}),
    )
    .await;

    let lora = backend
        .resolve("tiny-lora")
        .await
        .unwrap()
        .expect("tiny-lora");
    assert_eq!(lora.adapter_paths.len(), 2, "config + tensors stored");
    let base_m = backend
        .resolve("tiny-base")
        .await
        .unwrap()
        .expect("tiny-base");
    assert!(base_m.adapter_paths.is_empty());
    let lora_dir = runner.weights(&lora).unwrap();
    let base_dir = runner.weights(&base_m).unwrap();
    assert!(lora_dir.join("adapters/adapter_config.json").exists());
    assert!(!base_dir.join("adapters").exists());

    let want_lora = golden_tokens("llama-lora");
    let want_base = golden_tokens("llama-bf16");
    for ((prompt, lora_tokens), (_, base_tokens)) in want_lora.iter().zip(&want_base) {
        let got_lora = greedy(&lora_dir, prompt, lora_tokens.len());
        let got_base = greedy(&base_dir, prompt, base_tokens.len());
        assert_eq!(
            &got_lora, lora_tokens,
            "stored adapter model = mlx-lm with adapter"
        );
        assert_eq!(&got_base, base_tokens, "stored base model = mlx-lm base");
        assert_ne!(got_lora, got_base, "the adapter changes the output");
    }
}

/// A GGUF base (`FROM llama-bf16.gguf`, the same weights) with the same ADAPTER: the runner links
/// `model.gguf` + `adapters/`, the loader permutes the q/k deltas for llama.cpp's row order, and
/// the memory estimate reads the directory as GGUF.
#[tokio::test]
async fn stored_gguf_base_with_adapter_decodes_mlx_lm_adapted_tokens() {
    let store_dir = tempfile::tempdir().unwrap();
    assembled_dir();
    let runner = Arc::new(MlxRunner::new(Default::default()).unwrap());
    let backend = StoreBackend::new(Store::new(store_dir.path())).with_runner(runner.clone());
    let gguf = put(&backend, &fixtures().join("gguf/llama-bf16.gguf")).await;
    let adapter = fixtures().join("llama-lora/adapters");
    let mut adapters = serde_json::Map::new();
    for f in ["adapters.safetensors", "adapter_config.json"] {
        adapters.insert(f.into(), put(&backend, &adapter.join(f)).await.into());
    }
    create(
        &backend,
        serde_json::json!({"model": "g-lora", "files": {"llama-bf16.gguf": gguf},
                           "adapters": adapters}),
    )
    .await;
    let m = backend.resolve("g-lora").await.unwrap().expect("g-lora");
    let dir = runner.weights(&m).unwrap();
    assert!(dir.join(ollmlx_models::GGUF_IN_DIR).exists());
    let est = ollmlx_engine::budget::estimate(&dir, LoadOptions::for_device(true), 2048, 1)
        .expect("estimate a model.gguf directory");
    assert!(est.weights > 0);
    for (prompt, want) in golden_tokens("llama-lora") {
        assert_eq!(greedy(&dir, &prompt, want.len()), want);
    }
}
