//! `MlxBackend` through the `ollmlx_infer::Backend` trait on the real SmolLM2 GGUF. Skips loudly
//! when the weights are absent (run `scripts/fetch-models.sh`).

use std::path::PathBuf;
use std::sync::Arc;

use futures::StreamExt;
use ollmlx_infer::{Backend, ChatInput, DoneReason, Event, Input, Message, Options, Request};
use ollmlx_mlx::{MlxBackend, ModelSource, StaticModels};

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

fn backend(path: PathBuf) -> MlxBackend {
    let models = StaticModels(vec![ModelSource {
        name: "smollm2:135m".into(),
        path,
    }]);
    MlxBackend::new(Arc::new(models), Default::default()).unwrap()
}

fn chat(q: &str, options: Options) -> Request {
    Request {
        model: "smollm2:135m".into(),
        input: Input::Chat(ChatInput {
            messages: vec![Message {
                role: "user".into(),
                content: q.into(),
                ..Default::default()
            }],
            tools: vec![],
        }),
        options,
        stream: true,
        ..Default::default()
    }
}

#[tokio::test]
async fn chat_streams_deltas_then_done_and_shows_in_ps() {
    let Some(path) = model_path() else { return };
    let b = backend(path);
    assert_eq!(b.device(), "cpu");
    assert!(b.has_model("smollm2:135m").await.unwrap());
    let opts = Options {
        temperature: Some(0.0),
        num_predict: Some(16),
        ..Default::default()
    };
    let mut s = b
        .generate(chat("What is the capital of France?", opts))
        .await
        .unwrap();
    let mut text = String::new();
    let mut done = None;
    while let Some(ev) = s.next().await {
        match ev.unwrap() {
            Event::Delta { content, .. } => text.push_str(&content),
            Event::Done { reason, stats, .. } => done = Some((reason, stats)),
            other => panic!("unexpected {other:?}"),
        }
    }
    let (reason, stats) = done.expect("no Done event");
    assert!(text.contains("Paris"), "{text:?}");
    assert_eq!(reason, DoneReason::Stop);
    assert!(stats.eval_count > 0 && stats.prompt_eval_duration > 0 && stats.total_duration > 0);
    let ps = b.loaded().await.unwrap();
    assert_eq!(ps.len(), 1);
    assert_eq!(ps[0].name, "smollm2:135m");
    assert_eq!(ps[0].size_vram, 0, "CPU device reports no VRAM");
}

#[tokio::test]
async fn unknown_model_is_not_found() {
    let b = backend(PathBuf::from("/nonexistent.gguf"));
    assert!(!b.has_model("nope").await.unwrap());
    let mut r = chat("hi", Options::default());
    r.model = "nope".into();
    let err = b.generate(r).await.err().unwrap();
    assert_eq!(
        err,
        ollmlx_infer::BackendError::ModelNotFound {
            model: "nope".into()
        }
    );
}

#[tokio::test]
async fn debug_render_only_answers_with_the_jinja_rendered_prompt_and_generates_nothing() {
    let Some(path) = model_path() else { return };
    let b = backend(path);
    let mut r = chat("What is the capital of France?", Options::default());
    r.debug_render_only = true;
    let events: Vec<Event> = b
        .generate(r)
        .await
        .unwrap()
        .map(|e| e.unwrap())
        .collect()
        .await;
    match events.as_slice() {
        [Event::Rendered {
            prompt,
            image_count,
        }] => {
            // SmolLM2's GGUF carries a ChatML Jinja template (with its default system turn).
            assert!(
                prompt.ends_with(
                    "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n"
                ),
                "{prompt:?}"
            );
            assert!(prompt.starts_with("<|im_start|>system\n"), "{prompt:?}");
            assert_eq!(*image_count, 0);
        }
        other => panic!("expected one Rendered event, got {other:?}"),
    }
}
