//! `format`, logprobs and the tools capability through the store's `StoreBackend` + `MlxRunner`
//! on the real SmolLM2 GGUF (its chat template has no tools). Skips loudly without the file.

mod common;

use futures::StreamExt;
use ollmlx_infer::{Backend, BackendError, ChatInput, Event, Format, Input, Message, Request};
use ollmlx_store::StoreBackend;

use common::{import_gguf, smollm2, store_backend};

/// A store in `dir` holding SmolLM2 as `smollm2:135m`, served by the MLX runner.
async fn backend(dir: &std::path::Path, gguf: &std::path::Path) -> StoreBackend {
    let backend = store_backend(dir);
    import_gguf(
        &backend,
        gguf,
        "smollm2:135m",
        serde_json::json!({"parameters": {"temperature": 0, "num_predict": 96}}),
    )
    .await;
    backend
}

fn chat(q: &str, tools: Vec<serde_json::Value>) -> Request {
    Request {
        model: "smollm2:135m".into(),
        input: Input::Chat(ChatInput {
            messages: vec![Message {
                role: "user".into(),
                content: q.into(),
                ..Default::default()
            }],
            tools,
        }),
        ..Default::default()
    }
}

#[tokio::test]
async fn tools_on_a_model_without_tools_get_upstreams_400_and_format_logprobs_flow_through() {
    let Some(gguf) = smollm2() else { return };
    let dir = tempfile::tempdir().unwrap();
    let backend = backend(dir.path(), &gguf).await;

    // SmolLM2's template never mentions tools: Ollama refuses with the fully-qualified name.
    let tool = serde_json::json!({"type": "function", "function": {
        "name": "get_weather", "parameters": {"type": "object", "properties": {}}}});
    let err = backend
        .generate(chat("Weather in Paris?", vec![tool]))
        .await
        .err()
        .expect("tools must be refused");
    assert_eq!(
        err,
        BackendError::Unsupported(
            "registry.ollama.ai/library/smollm2:135m does not support tools".into()
        )
    );

    // format (a schema) + logprobs through the store, the runner and the event mapping.
    let mut req = chat(
        "Describe France as JSON with its name, capital and population.",
        vec![],
    );
    req.format = Some(Format::Schema(serde_json::json!({"type": "object",
        "properties": {"name": {"type": "string"}, "capital": {"type": "string"},
                       "population": {"type": "integer"}},
        "required": ["name", "capital", "population"]})));
    req.logprobs = true;
    req.top_logprobs = 2;
    let mut s = backend.generate(req).await.unwrap();
    let (mut text, mut lps, mut eval_count) = (String::new(), Vec::new(), 0);
    while let Some(ev) = s.next().await {
        match ev.unwrap() {
            Event::Delta {
                content, logprobs, ..
            } => {
                text.push_str(&content);
                lps.extend(logprobs);
            }
            Event::Done { stats, reason, .. } => {
                assert_eq!(reason.as_str(), "stop");
                eval_count = stats.eval_count;
            }
            _ => {}
        }
    }
    let v: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text:?}"));
    assert!(v["name"].is_string() && v["capital"].is_string() && v["population"].is_i64());
    assert_eq!(
        lps.len() as u64,
        eval_count,
        "one logprob per generated token"
    );
    let spelled: Vec<u8> = lps.iter().flat_map(|l| l.bytes.clone()).collect();
    assert_eq!(String::from_utf8_lossy(&spelled), text);
    assert!(lps.iter().all(|l| l.top_logprobs.len() == 2));
}
