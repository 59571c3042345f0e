//! Draft-model plumbing through `StoreBackend` + `MlxRunner` on the real SmolLM2 GGUF: a
//! Modelfile `DRAFT <name>` (params layer `draft`) or `options.draft` naming an installed model
//! reaches the engine, an unknown draft is upstream's 404 before anything is generated, and a
//! greedy answer with a draft is the greedy answer without one. Skips loudly without the file.

mod common;

use futures::StreamExt;
use ollmlx_infer::{Backend, BackendError, ChatInput, Event, Input, Message, Options, Request};

use common::{import_gguf, smollm2, store_backend};

fn chat(model: &str, draft: Option<&str>) -> Request {
    Request {
        model: model.into(),
        input: Input::Chat(ChatInput {
            messages: vec![Message {
                role: "user".into(),
                content: "Count from 1 to 10 separated by commas.".into(),
                ..Default::default()
            }],
            tools: vec![],
        }),
        options: Options {
            temperature: Some(0.0),
            num_predict: Some(24),
            draft: draft.map(str::to_string),
            ..Default::default()
        },
        ..Default::default()
    }
}

async fn text(backend: &impl Backend, req: Request) -> Result<String, BackendError> {
    let mut s = backend.generate(req).await?;
    let mut text = String::new();
    while let Some(ev) = s.next().await {
        if let Event::Delta { content, .. } = ev? {
            text.push_str(&content);
        }
    }
    Ok(text)
}

#[tokio::test]
async fn a_named_draft_is_resolved_an_unknown_one_is_404_and_greedy_output_is_unchanged() {
    let Some(path) = smollm2() else { return };
    let dir = tempfile::tempdir().unwrap();
    let backend = store_backend(dir.path());
    import_gguf(&backend, &path, "smollm2:135m", serde_json::json!({})).await;
    // A second model whose Modelfile names the first as its draft (DRAFT smollm2:135m).
    import_gguf(
        &backend,
        &path,
        "smollm2-spec",
        serde_json::json!({"parameters": {"draft": "smollm2:135m"}}),
    )
    .await;

    let plain = text(&backend, chat("smollm2:135m", None)).await.unwrap();
    assert!(plain.contains('1'), "{plain:?}");
    // Draft from the Modelfile; then from the request.
    let with_modelfile_draft = text(&backend, chat("smollm2-spec", None)).await.unwrap();
    assert_eq!(with_modelfile_draft, plain);
    let with_request_draft = text(&backend, chat("smollm2:135m", Some("smollm2-spec")))
        .await
        .unwrap();
    assert_eq!(with_request_draft, plain);

    // Unknown draft: Ollama's not-found error, before generation starts.
    let e = text(&backend, chat("smollm2:135m", Some("no-such-draft")))
        .await
        .unwrap_err();
    assert_eq!(
        e,
        BackendError::ModelNotFound {
            model: "no-such-draft".into()
        }
    );
    // (the server words it per route: `model "no-such-draft" not found, try pulling it first`)
    assert_eq!(e.status(), 404);
}

/// Upstream's `DRAFT <file>`: the file becomes a draft layer; the runner hands that blob to the
/// engine when its architecture is one the engine runs, and greedy output is unchanged.
#[tokio::test]
async fn an_upstream_draft_layer_of_a_supported_architecture_is_used() {
    let Some(path) = smollm2() else { return };
    let dir = tempfile::tempdir().unwrap();
    let runner = std::sync::Arc::new(ollmlx_mlx::MlxRunner::new(Default::default()).unwrap());
    let backend = ollmlx_store::StoreBackend::new(ollmlx_store::Store::new(dir.path()))
        .with_runner(runner.clone());
    import_gguf(&backend, &path, "plain", serde_json::json!({})).await;
    let digest = common::put(&backend, &path).await;
    import_gguf(
        &backend,
        &path,
        "layered",
        serde_json::json!({"draft_files": {"draft.gguf": digest}}),
    )
    .await;
    let m = backend.resolve("layered").await.unwrap().unwrap();
    assert!(m.draft.is_none());
    assert_eq!(
        m.config.draft.as_ref().map(|d| d.architecture.as_str()),
        Some("llama")
    );
    let d = runner.draft(&m).unwrap().expect("the draft layer is used");
    assert_eq!(Some(&d.path), m.draft_path.as_ref());
    assert!(runner
        .draft(&backend.resolve("plain").await.unwrap().unwrap())
        .unwrap()
        .is_none());
    let want = text(&backend, chat("plain", None)).await.unwrap();
    assert_eq!(text(&backend, chat("layered", None)).await.unwrap(), want);
}
