//! Prefill/decode throughput of the engine on a GGUF (default: SmolLM2 from
//! `scripts/fetch-models.sh`). `cargo run --release -p ollmlx-engine --example bench [PATH] [N]`.

use std::path::PathBuf;

use ollmlx_engine::{
    ChatMessage, Engine, EngineConfig, EngineEvent, GenerateRequest, ModelRef, Prompt,
    SamplerConfig,
};

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../../.ollmlx-cache/models/SmolLM2-135M-Instruct.Q4_1.gguf")
    });
    let n: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(64);
    let engine = match Engine::start(EngineConfig::default()) {
        Ok(e) => e,
        Err(e) => return eprintln!("engine: {e}"),
    };
    let prompt = "Explain in a few sentences why the sky is blue, and mention Rayleigh scattering.";
    for round in 0..2 {
        let mut req = GenerateRequest::new(
            ModelRef {
                name: "bench".into(),
                path: path.clone(),
            },
            Prompt::Chat {
                messages: vec![ChatMessage {
                    role: "user".into(),
                    content: prompt.into(),
                    ..Default::default()
                }],
                tools: vec![],
            },
        );
        req.sampler = SamplerConfig {
            temperature: 0.0,
            repeat_penalty: 1.0,
            ..Default::default()
        };
        req.num_predict = Some(n);
        req.stop = vec!["\u{0}".into()];
        let (tx, mut rx) = tokio::sync::mpsc::channel(256);
        if let Err(e) = engine.generate(req, tx) {
            return eprintln!("generate: {e}");
        }
        while let Some(ev) = rx.blocking_recv() {
            match ev {
                EngineEvent::Text(_) | EngineEvent::Thinking(_) | EngineEvent::ToolCalls(_) => {}
                EngineEvent::Done(d) => {
                    let s = d.stats;
                    println!(
                        "round {round} device {}: load {:.2}s | prefill {} tok in {:.3}s = {:.1} tok/s | decode {} tok in {:.3}s = {:.1} tok/s",
                        engine.device(),
                        s.load.as_secs_f64(),
                        s.prompt_eval_count,
                        s.prompt_eval.as_secs_f64(),
                        s.prompt_eval_count as f64 / s.prompt_eval.as_secs_f64(),
                        s.eval_count,
                        s.eval.as_secs_f64(),
                        s.eval_count as f64 / s.eval.as_secs_f64(),
                    );
                    break;
                }
                EngineEvent::Error(e) => return eprintln!("error: {e}"),
            }
        }
        // The second round shows prompt-prefix reuse: only the last prompt token is prefilled.
    }
}
