//! Ollama's context shift on the real SmolLM2 GGUF: when generation fills `num_ctx`, half of the
//! context after `num_keep` is dropped and generation goes on (`shift`, the default); with
//! `shift: false` it ends with `length` at the window. Skips loudly without the weights.

mod common;

use std::path::PathBuf;

use common::model_path;
use ollmlx_engine::{
    Engine, EngineConfig, EngineEvent, FinishReason, GenerateRequest, ModelRef, Prompt,
    SamplerConfig,
};

fn counting(path: PathBuf, shift: bool, device_greedy: bool) -> GenerateRequest {
    let mut r = GenerateRequest::new(
        ModelRef {
            name: "smollm2".into(),
            path,
        },
        Prompt::Text {
            prompt: "Numbers: one, two, three, four, five, six, seven,".into(),
            system: String::new(),
            raw: true,
        },
    );
    r.sampler = SamplerConfig {
        temperature: 0.0,
        // A repeat penalty keeps the sampler on the host (the unpipelined path).
        repeat_penalty: if device_greedy { 1.0 } else { 1.05 },
        ..Default::default()
    };
    r.num_ctx = 40;
    r.num_predict = Some(45);
    r.shift = shift;
    r.return_context = true;
    r
}

fn run(engine: &Engine, req: GenerateRequest) -> (String, ollmlx_engine::Done) {
    let (tx, mut rx) = tokio::sync::mpsc::channel(256);
    engine.generate(req, tx).unwrap();
    let mut text = String::new();
    loop {
        match rx.blocking_recv().expect("stream closed without Done") {
            EngineEvent::Text(t) => text.push_str(&t),
            EngineEvent::Done(d) => return (text, d),
            EngineEvent::Error(e) => panic!("engine error: {e}"),
            _ => {}
        }
    }
}

#[test]
fn generation_past_num_ctx_shifts_the_context_unless_shift_is_off() {
    let Some(path) = model_path() else { return };
    let engine = Engine::start(EngineConfig::default()).unwrap();
    for device_greedy in [true, false] {
        let (text, done) = run(&engine, counting(path.clone(), false, device_greedy));
        assert_eq!(done.reason, FinishReason::Length, "{text:?}");
        assert!(
            done.stats.eval_count < 40,
            "no shift must stop at the window: {:?}",
            done.stats
        );
        let stopped_at = done.context.as_ref().unwrap().len();
        assert!(stopped_at <= 40, "context grew past num_ctx: {stopped_at}");

        let (text, done) = run(&engine, counting(path.clone(), true, device_greedy));
        eprintln!("shifted ({device_greedy}): {text:?}");
        assert_eq!(done.reason, FinishReason::Length);
        assert_eq!(
            done.stats.eval_count, 45,
            "with shift the full num_predict is generated: {:?}",
            done.stats
        );
        // The context never exceeds the window, and it kept its first tokens.
        let ctx = done.context.unwrap();
        assert!(ctx.len() <= 40, "{}", ctx.len());
        assert!(!text.trim().is_empty());
    }
}
