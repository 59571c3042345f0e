//! `MlxRunner` behind the store's `StoreBackend`: import the real SmolLM2 GGUF into a temporary
//! store, then chat through the store (Modelfile parameters apply). Skips loudly without the file.

mod common;

use futures::StreamExt;
use ollmlx_infer::{Backend, ChatInput, Event, Input, Message, Request};

use common::{import_gguf, smollm2, store_backend};

#[tokio::test]
async fn stored_gguf_model_answers_through_the_store_backend() {
    let Some(path) = smollm2() else { return };
    let dir = tempfile::tempdir().unwrap();
    let backend = store_backend(dir.path());
    import_gguf(
        &backend,
        &path,
        "smollm2:135m",
        serde_json::json!({"parameters": {"temperature": 0, "num_predict": 16}}),
    )
    .await;

    let req = Request {
        model: "smollm2:135m".into(),
        input: Input::Chat(ChatInput {
            messages: vec![Message {
                role: "user".into(),
                content: "What is the capital of France?".into(),
                ..Default::default()
            }],
            tools: vec![],
        }),
        ..Default::default()
    };
    let mut s = backend.generate(req).await.unwrap();
    let mut text = String::new();
    while let Some(ev) = s.next().await {
        if let Event::Delta { content, .. } = ev.unwrap() {
            text.push_str(&content);
        }
    }
    assert!(text.contains("Paris"), "{text:?}");
    let ps = backend.loaded().await.unwrap();
    assert_eq!(ps.len(), 1);
    assert_eq!(ps[0].details.family, "llama");
    assert!(!ps[0].digest.is_empty());
    // The engine's prefix-cache counters reach /metrics through the store backend.
    let metric = |name: &str| {
        backend
            .metrics()
            .into_iter()
            .find(|m| m.name == name)
            .map(|m| m.value)
    };
    assert!(metric("prefix_cache_prefilled_tokens_total").unwrap() > 10.0);
    let lookups =
        metric("prefix_cache_hits_total").unwrap() + metric("prefix_cache_misses_total").unwrap();
    assert!(lookups >= 1.0, "{lookups}");

    // An unload names the model the way the client typed it (case, no tag): it still unloads.
    let unload = Request {
        model: "SmolLM2:135M".into(),
        input: Input::Chat(ChatInput::default()),
        keep_alive: Some(ollmlx_infer::KeepAlive::For(std::time::Duration::ZERO)),
        ..Default::default()
    };
    let mut s = backend.generate(unload).await.unwrap();
    while let Some(ev) = s.next().await {
        ev.unwrap();
    }
    assert!(backend.loaded().await.unwrap().is_empty());
}

/// A Modelfile TEMPLATE (Go syntax) replaces the GGUF's Jinja template: the prompt is rendered
/// the Ollama way (`_debug_render_only` shows it) and the model still answers through it.
#[tokio::test]
async fn go_template_from_the_modelfile_renders_the_prompt() {
    let Some(path) = smollm2() else { return };
    let dir = tempfile::tempdir().unwrap();
    let backend = store_backend(dir.path());
    let template = "{{- range $i, $_ := .Messages }}\
{{- $last := eq (len (slice $.Messages $i)) 1 -}}\
<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n\
{{ if and $last (ne .Role \"assistant\") }}<|im_start|>assistant\n{{ end }}\
{{- end }}";
    import_gguf(
        &backend,
        &path,
        "smollm2-go:135m",
        serde_json::json!({
            "template": template,
            "system": "You are a helpful AI assistant named SmolLM, trained by Hugging Face",
            "parameters": {"temperature": 0, "num_predict": 16}
        }),
    )
    .await;
    let chat = |debug: bool, num_ctx: Option<i64>| Request {
        model: "smollm2-go:135m".into(),
        input: Input::Chat(ChatInput {
            messages: vec![Message {
                role: "user".into(),
                content: "What is the capital of France?".into(),
                ..Default::default()
            }],
            tools: vec![],
        }),
        debug_render_only: debug,
        options: ollmlx_infer::Options {
            num_ctx,
            ..Default::default()
        },
        ..Default::default()
    };

    let mut s = backend.generate(chat(true, None)).await.unwrap();
    match s.next().await.unwrap().unwrap() {
        Event::Rendered { prompt, .. } => assert_eq!(
            prompt,
            "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n\
             <|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n"
        ),
        other => panic!("expected the rendered prompt, got {other:?}"),
    }

    // A context far beyond SmolLM2's trained 8192 is clamped, as Ollama does, not allocated.
    let mut s = backend
        .generate(chat(false, Some(10_000_000)))
        .await
        .unwrap();
    let mut text = String::new();
    while let Some(ev) = s.next().await {
        if let Event::Delta { content, .. } = ev.unwrap() {
            text.push_str(&content);
        }
    }
    assert!(text.contains("Paris"), "{text:?}");
    let ps = backend.loaded().await.unwrap();
    assert_eq!(ps[0].context_length, 8192);
}
