//! Issue #4 fault: `rm` of a model while it is generating. The engine holds the weights in
//! memory (the blob is only read at load), so deleting the manifest and blobs mid-stream lets
//! the request finish cleanly; the next request for the name is a clean "not found", and the
//! engine keeps serving. Real SmolLM2 GGUF; skips loudly without it.

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use ollmlx_infer::{
    Backend, BackendError, Event, GenerateInput, Input, ManageRequest, RawBody, Request,
};
use ollmlx_mlx::MlxRunner;
use ollmlx_store::{Store, StoreBackend};
use ollmlx_wire::ollama as wire;
use sha2::{Digest, Sha256};

fn model_path() -> Option<PathBuf> {
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

async fn import(backend: &StoreBackend, path: &PathBuf, name: &str) {
    let data = std::fs::read(path).unwrap();
    let digest = format!("sha256:{:x}", Sha256::digest(&data));
    let body: RawBody = futures::stream::iter(
        data.chunks(1 << 20)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect::<Vec<_>>(),
    )
    .boxed();
    backend.blob_put(digest.clone(), body).await.unwrap();
    let req: wire::CreateRequest = serde_json::from_value(serde_json::json!({
        "model": name,
        "files": {"m.gguf": digest},
    }))
    .unwrap();
    let mut s = backend
        .manage(ManageRequest::Create(req.into()))
        .await
        .unwrap();
    while let Some(p) = s.next().await {
        p.unwrap();
    }
}

fn request(name: &str, num_predict: i64) -> Request {
    let mut r = Request {
        model: name.into(),
        input: Input::Generate(GenerateInput {
            prompt: "Count from one to fifty in words:".into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    r.options.temperature = Some(0.0);
    r.options.num_predict = Some(num_predict);
    r
}

#[tokio::test]
async fn rm_while_generating_lets_the_request_finish_and_the_engine_survive() {
    let Some(path) = model_path() else { return };
    let dir = tempfile::tempdir().unwrap();
    let runner = MlxRunner::new(Default::default()).unwrap();
    let backend = StoreBackend::new(Store::new(dir.path())).with_runner(Arc::new(runner));
    import(&backend, &path, "doomed:latest").await;
    let digest = format!("sha256-{:x}", Sha256::digest(std::fs::read(&path).unwrap()));
    let weights = dir.path().join("blobs").join(&digest);
    assert!(weights.exists());

    let mut s = backend.generate(request("doomed", 40)).await.unwrap();
    // Wait for the first token: the model is loaded and decoding.
    let first = s.next().await.unwrap().unwrap();
    assert!(matches!(first, Event::Delta { .. }), "{first:?}");
    backend.delete("doomed".into()).await.unwrap();
    assert!(
        !weights.exists(),
        "rm removed the now unreferenced weights blob"
    );
    let mut done = None;
    while let Some(ev) = s.next().await {
        match ev {
            Ok(Event::Done { .. }) => done = Some(ev),
            Ok(_) => {}
            Err(e) => panic!("the request must finish cleanly, got {e}"),
        }
    }
    assert!(done.is_some(), "the stream ended with Done");

    // The name is gone: a clean not-found, not a crash.
    let err = match backend.generate(request("doomed", 4)).await {
        Err(e) => e,
        Ok(mut s) => match s.next().await {
            Some(Err(e)) => e,
            other => panic!("expected an error, got {other:?}"),
        },
    };
    assert!(matches!(err, BackendError::ModelNotFound { .. }), "{err:?}");

    // The engine keeps serving: the same weights imported again under another name answer.
    import(&backend, &path, "other:latest").await;
    let mut s = backend.generate(request("other", 4)).await.unwrap();
    let mut saw_done = false;
    while let Some(ev) = s.next().await {
        saw_done |= matches!(ev.unwrap(), Event::Done { .. });
    }
    assert!(saw_done);
}
