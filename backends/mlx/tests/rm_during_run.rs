//! Issue #4 fault: `rm` of a model while it is generating. The engine holds the weights in
//! memory (the blob is only read at load), so deleting the manifest and blobs mid-stream lets
//! the request finish cleanly; the next request for the name is a clean "not found", and the
//! engine keeps serving. Real SmolLM2 GGUF; skips loudly without it.

mod common;

use futures::StreamExt;
use ollmlx_infer::{Backend, BackendError, Event, GenerateInput, Input, Request};
use ollmlx_store::StoreBackend;
use sha2::{Digest, Sha256};

use common::{import_gguf, smollm2, store_backend};

async fn import(backend: &StoreBackend, path: &std::path::Path, name: &str) {
    import_gguf(backend, path, name, serde_json::json!({})).await;
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
    let Some(path) = smollm2() else { return };
    let dir = tempfile::tempdir().unwrap();
    let backend = store_backend(dir.path());
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
