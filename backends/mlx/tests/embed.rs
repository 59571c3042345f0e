//! `MlxBackend::embed` through the `ollmlx_infer::Backend` trait on the real all-MiniLM-L6-v2
//! safetensors directory (served by `StaticModels`). Skips loudly when the weights are absent
//! (run `scripts/fetch-models.sh`).

use std::path::PathBuf;
use std::sync::Arc;

use ollmlx_infer::{Backend, BackendError, ChatInput, EmbedRequest, Input, Message, Request};
use ollmlx_mlx::{MlxBackend, ModelSource, StaticModels};

fn model_dir() -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../.ollmlx-cache/models/all-minilm-l6-v2");
    if p.join("model.safetensors").exists() {
        Some(p)
    } else {
        eprintln!(
            "SKIPPED: {} not found; run scripts/fetch-models.sh",
            p.display()
        );
        None
    }
}

fn reference(i: usize) -> (String, Vec<f32>) {
    let v: serde_json::Value = serde_json::from_str(include_str!(
        "../engine/tests/fixtures/minilm_reference.json"
    ))
    .unwrap();
    let r = &v["vectors"][i];
    let e = r["embedding"].as_array().unwrap();
    (
        r["input"].as_str().unwrap().to_string(),
        e.iter().map(|x| x.as_f64().unwrap() as f32).collect(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn backend_embeds_with_minilm_and_refuses_to_chat_with_it() {
    let Some(dir) = model_dir() else { return };
    let models = StaticModels(vec![ModelSource {
        name: "all-minilm".into(),
        path: dir,
    }]);
    let backend = MlxBackend::new(Arc::new(models), Default::default()).unwrap();
    let (a, want_a) = reference(0);
    let (b, want_b) = reference(1);
    let resp = backend
        .embed(EmbedRequest {
            model: "all-minilm:latest".into(),
            input: vec![a, b],
            normalize: true,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(resp.embeddings.len(), 2);
    assert!(resp.prompt_eval_count > 0 && resp.total_duration > 0);
    for (got, want) in resp.embeddings.iter().zip([want_a, want_b]) {
        let dot: f32 = got.iter().zip(&want).map(|(x, y)| x * y).sum();
        assert!(dot >= 0.999, "cosine {dot}");
    }
    let list = backend.list_models().await.unwrap();
    assert_eq!(list[0].capabilities, vec!["embedding".to_string()]);

    let chat = Request {
        model: "all-minilm".into(),
        input: Input::Chat(ChatInput {
            messages: vec![Message {
                role: "user".into(),
                content: "hi".into(),
                ..Default::default()
            }],
            tools: vec![],
        }),
        ..Default::default()
    };
    let err = match backend.generate(chat).await {
        Ok(mut s) => {
            use futures::StreamExt;
            s.next().await.unwrap().unwrap_err()
        }
        Err(e) => e,
    };
    assert_eq!(
        err,
        BackendError::InvalidRequest("\"all-minilm\" does not support generate".into())
    );
}
