//! End-to-end engine tests on the real SmolLM2-135M-Instruct GGUF (Q4_1). They skip loudly when
//! the weights are absent: run `scripts/fetch-models.sh` first (or set `OLLMLX_TEST_GGUF`).

use std::path::PathBuf;
use std::time::Duration;

use ollmlx_engine::{
    ChatMessage, Engine, EngineConfig, EngineEvent, GenerateRequest, ModelRef, Prompt,
    SamplerConfig,
};

fn model_path() -> Option<PathBuf> {
    let p = std::env::var_os("OLLMLX_TEST_GGUF")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../../.ollmlx-cache/models/SmolLM2-135M-Instruct.Q4_1.gguf")
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

fn chat(q: &str) -> Prompt {
    Prompt::Chat {
        messages: vec![ChatMessage {
            role: "user".into(),
            content: q.into(),
            ..Default::default()
        }],
        tools: vec![],
    }
}

fn greedy() -> SamplerConfig {
    SamplerConfig {
        temperature: 0.0,
        ..Default::default()
    }
}

/// Run a request to completion: (text, done).
fn collect(engine: &Engine, req: GenerateRequest) -> (String, ollmlx_engine::Done) {
    let (tx, mut rx) = tokio::sync::mpsc::channel(64);
    engine.generate(req, tx).unwrap();
    let mut text = String::new();
    loop {
        match rx
            .blocking_recv()
            .expect("engine closed the stream without Done")
        {
            EngineEvent::Text(t) => text.push_str(&t),
            EngineEvent::Done(d) => return (text, d),
            EngineEvent::Error(e) => panic!("engine error: {e}"),
        }
    }
}

fn engine() -> Engine {
    Engine::start(EngineConfig::default()).unwrap()
}

#[test]
fn greedy_chat_answers_the_capital_of_france_with_paris() {
    let Some(path) = model_path() else { return };
    let e = engine();
    let model = ModelRef {
        name: "smollm2".into(),
        path,
    };
    let mut req = GenerateRequest::new(model, chat("What is the capital of France?"));
    req.sampler = greedy();
    req.num_predict = Some(24);
    let (text, done) = collect(&e, req);
    eprintln!("answer: {text:?}\nstats: {:?}", done.stats);
    assert!(text.contains("Paris"), "{text:?}");
    assert!(done.stats.prompt_eval_count > 10);
    assert!(done.stats.eval_count > 0 && done.stats.eval > Duration::ZERO);
}
