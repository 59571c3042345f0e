//! End-to-end engine tests on the real SmolLM2-135M-Instruct GGUF (Q4_1). They skip loudly when
//! the weights are absent: run `scripts/fetch-models.sh` first (or set `OLLMLX_TEST_GGUF`).

mod common;

use common::model_path;
use std::path::PathBuf;
use std::time::Duration;

use ollmlx_engine::{
    ChatMessage, Engine, EngineConfig, EngineEvent, FinishReason, GenerateRequest, ModelRef,
    Prompt, SamplerConfig,
};

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
            other => panic!("unexpected event for SmolLM2: {other:?}"),
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

fn capital_request(path: PathBuf) -> GenerateRequest {
    let mut req = GenerateRequest::new(
        ModelRef {
            name: "smollm2".into(),
            path,
        },
        chat("What is the capital of France?"),
    );
    req.sampler = greedy();
    req
}

#[test]
fn same_seed_reproduces_the_same_sampled_text() {
    let Some(path) = model_path() else { return };
    let e = engine();
    let run = |seed: u64| {
        let mut req = capital_request(path.clone());
        req.sampler = SamplerConfig {
            temperature: 1.0,
            seed: Some(seed),
            ..Default::default()
        };
        req.num_predict = Some(12);
        collect(&e, req).0
    };
    let a = run(42);
    let b = run(42);
    eprintln!("seed 42: {a:?}");
    assert_eq!(a, b);
}

#[test]
fn stop_string_ends_generation_without_emitting_it() {
    let Some(path) = model_path() else { return };
    let e = engine();
    let mut req = capital_request(path);
    req.stop = vec!["Paris".into()];
    req.num_predict = Some(24);
    let (text, done) = collect(&e, req);
    assert_eq!(done.reason, FinishReason::Stop);
    assert!(!text.contains("Paris"), "{text:?}");
    assert!(text.contains("capital of France"), "{text:?}");
}

#[test]
fn num_predict_limits_output_and_reports_length() {
    let Some(path) = model_path() else { return };
    let e = engine();
    let mut req = capital_request(path);
    req.num_predict = Some(3);
    let (_, done) = collect(&e, req);
    assert_eq!(done.reason, FinishReason::Length);
    assert_eq!(done.stats.eval_count, 3);
}

#[test]
fn repeated_prompt_reuses_the_cached_prefix() {
    let Some(path) = model_path() else { return };
    let e = engine();
    let mut req = capital_request(path);
    req.num_predict = Some(2);
    let (first, d1) = collect(&e, req.clone());
    let (second, d2) = collect(&e, req);
    assert_eq!(first, second);
    assert!(d1.stats.prompt_eval_count > 10);
    assert_eq!(d2.stats.prompt_eval_count, 1);
    assert_eq!(d2.stats.load, Duration::ZERO.max(d2.stats.load));
    assert_eq!(e.loaded().len(), 1);
}

#[test]
fn dropping_the_receiver_cancels_and_the_engine_keeps_serving() {
    let Some(path) = model_path() else { return };
    let e = engine();
    let mut req = capital_request(path.clone());
    req.prompt = chat("Write a very long story about a dragon.");
    req.num_predict = Some(500);
    let (tx, mut rx) = tokio::sync::mpsc::channel(1);
    e.generate(req, tx).unwrap();
    assert!(matches!(rx.blocking_recv(), Some(EngineEvent::Text(_))));
    drop(rx);
    let start = std::time::Instant::now();
    let mut next = capital_request(path);
    next.num_predict = Some(8);
    let (text, _) = collect(&e, next);
    assert!(text.contains("Paris"), "{text:?}");
    // 500 tokens would take far longer than this on any machine that runs the suite.
    assert!(start.elapsed() < Duration::from_secs(60));
}

#[test]
fn keep_alive_zero_unloads_right_after_the_request() {
    let Some(path) = model_path() else { return };
    let e = engine();
    let mut req = capital_request(path);
    req.num_predict = Some(1);
    req.keep_alive = Some(ollmlx_engine::KeepAlive::For(Duration::ZERO));
    collect(&e, req);
    assert!(e.loaded().is_empty());
}
