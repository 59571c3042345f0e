//! Shared set-up for the MLX backend's store-level tests: find the real SmolLM2 GGUF (skipping
//! loudly without it), upload files as blobs and run creates through a `StoreBackend` served by
//! the `MlxRunner`. Each test binary uses a subset.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use ollmlx_infer::{Backend, ManageRequest, RawBody};
use ollmlx_mlx::MlxRunner;
use ollmlx_store::{Store, StoreBackend};
use ollmlx_wire::ollama as wire;
use sha2::{Digest, Sha256};

/// The SmolLM2-135M-Instruct Q4_1 GGUF (`OLLMLX_TEST_GGUF` or `scripts/fetch-models.sh`'s cache).
pub fn smollm2() -> Option<PathBuf> {
    let p = std::env::var_os("OLLMLX_TEST_GGUF")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../.ollmlx-cache/models/SmolLM2-135M-Instruct.Q4_1.gguf")
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

/// A store in `dir` served by a fresh MLX runner.
pub fn store_backend(dir: &Path) -> StoreBackend {
    let runner = MlxRunner::new(Default::default()).unwrap();
    StoreBackend::new(Store::new(dir)).with_runner(Arc::new(runner))
}

/// Upload `path` as a blob (streamed in 1 MiB chunks); returns its `sha256:` digest.
pub async fn put(backend: &StoreBackend, path: &Path) -> String {
    let data = std::fs::read(path).unwrap();
    let digest = format!("sha256:{:x}", Sha256::digest(&data));
    let body: RawBody = futures::stream::iter(
        data.chunks(1 << 20)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect::<Vec<_>>(),
    )
    .boxed();
    backend.blob_put(digest.clone(), body).await.unwrap();
    digest
}

/// Run a `/api/create` request body to completion.
pub async fn create(backend: &StoreBackend, req: serde_json::Value) {
    let req: wire::CreateRequest = serde_json::from_value(req).unwrap();
    let mut s = backend
        .manage(ManageRequest::Create(req.into()))
        .await
        .unwrap();
    while let Some(p) = s.next().await {
        p.unwrap();
    }
}

/// Import the GGUF at `gguf` as `name`; `extra` adds create fields (template, parameters...).
pub async fn import_gguf(
    backend: &StoreBackend,
    gguf: &Path,
    name: &str,
    extra: serde_json::Value,
) {
    let digest = put(backend, gguf).await;
    let mut req = serde_json::json!({
        "model": name,
        "files": {"SmolLM2-135M-Instruct.Q4_1.gguf": digest},
    });
    if let (Some(r), Some(e)) = (req.as_object_mut(), extra.as_object()) {
        r.extend(e.clone());
    }
    create(backend, req).await;
}
