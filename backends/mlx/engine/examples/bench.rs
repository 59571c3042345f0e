//! Prefill/decode throughput of the engine on a GGUF (default: SmolLM2 from
//! `scripts/fetch-models.sh`), then the time to first token of a second chat turn over a long
//! history, cold (no prefix cache) and warm (the first turn cached).
//! `cargo run --release -p ollmlx-engine --example bench [PATH] [N] [HISTORY_TOKENS]`.

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
    let history: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(2000);
    // `OLLMLX_BENCH_ROW_LAYOUT=1`: CPU defaults but dense weights kept `[out, in]` and
    // projections unfused (the layout before `LoadOptions::transpose_dense`), for A/B runs.
    let mut config = EngineConfig::default();
    if std::env::var_os("OLLMLX_BENCH_ROW_LAYOUT").is_some() {
        config.load = Some(ollmlx_models::LoadOptions {
            transpose_dense: false,
            ..ollmlx_models::LoadOptions::for_device(true)
        });
    }
    let engine = match Engine::start(config) {
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
            // A penalty far below one ulp of the logits: same tokens, host-side sampling
            // (unpipelined) — for A/B runs of the decode pipeline.
            frequency_penalty: if std::env::var_os("OLLMLX_BENCH_HOST_SAMPLING").is_some() {
                1e-30
            } else {
                0.0
            },
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
                _ => {}
            }
        }
        // The second round shows prompt-prefix reuse: only the last prompt token is prefilled.
    }
    if history > 0 {
        multi_turn(&path, history);
    }
}

fn msg(role: &str, content: &str) -> ChatMessage {
    ChatMessage {
        role: role.into(),
        content: content.into(),
        ..Default::default()
    }
}

/// Run one greedy request; returns (answer, time to first token, Done stats).
fn turn(
    engine: &Engine,
    path: &std::path::Path,
    messages: Vec<ChatMessage>,
    n: usize,
) -> (String, std::time::Duration, ollmlx_engine::GenStats) {
    let mut req = GenerateRequest::new(
        ModelRef {
            name: "bench".into(),
            path: path.to_path_buf(),
        },
        Prompt::Chat {
            messages,
            tools: vec![],
        },
    );
    req.sampler = SamplerConfig {
        temperature: 0.0,
        repeat_penalty: 1.0,
        ..Default::default()
    };
    req.num_predict = Some(n);
    req.num_ctx = 8192;
    let (tx, mut rx) = tokio::sync::mpsc::channel(256);
    let t0 = std::time::Instant::now();
    engine.generate(req, tx).expect("generate");
    let (mut text, mut ttft) = (String::new(), None);
    while let Some(ev) = rx.blocking_recv() {
        match ev {
            EngineEvent::Text(t) => {
                ttft.get_or_insert_with(|| t0.elapsed());
                text.push_str(&t);
            }
            EngineEvent::Done(d) => {
                return (text, ttft.unwrap_or_else(|| t0.elapsed()), d.stats);
            }
            EngineEvent::Error(e) => panic!("error: {e}"),
            _ => {}
        }
    }
    panic!("stream ended without Done");
}

/// Second-turn TTFT over a long history: cold (prefix cache off, nothing cached) vs warm.
fn multi_turn(path: &std::path::Path, history_tokens: usize) {
    let para = "The committee reviewed the quarterly figures for the northern region, noting that \
shipping delays had eased while warehouse costs rose slightly; several members asked for a \
breakdown by product line before the next meeting. ";
    // ~45 tokens per paragraph with SmolLM2's tokenizer.
    let mut messages = vec![msg("system", "You are a careful analyst.")];
    let per_turn = 4;
    let turns = (history_tokens / (45 * per_turn)).max(1);
    for i in 0..turns {
        messages.push(msg(
            "user",
            &format!("Report {i}: {}", para.repeat(per_turn)),
        ));
        messages.push(msg("assistant", &format!("Noted report {i}.")));
    }
    messages.push(msg("user", "Summarize the reports in one sentence."));
    let cold_engine = Engine::start(EngineConfig {
        prefix_cache_bytes: 0,
        ..EngineConfig::default()
    })
    .expect("engine");
    let warm_engine = Engine::start(EngineConfig::default()).expect("engine");
    // Load both models first (load time is not part of TTFT).
    turn(&cold_engine, path, vec![msg("user", "hi")], 1);
    turn(&warm_engine, path, vec![msg("user", "hi")], 1);
    // Turn 1 on the warm engine: the whole history is prefilled and cached.
    let (a1, t1, s1) = turn(&warm_engine, path, messages.clone(), 16);
    let mut next = messages;
    next.push(msg("assistant", &a1));
    next.push(msg("user", "Which report mentioned warehouse costs?"));
    // Something else in between, so the live cache does not hold the conversation.
    turn(&warm_engine, path, vec![msg("user", "Say hello.")], 4);
    let (w, tw, sw) = turn(&warm_engine, path, next.clone(), 16);
    let (c, tc, sc) = turn(&cold_engine, path, next, 16);
    println!(
        "multi-turn: turn 1 prefilled {} tok, TTFT {:.3}s | turn 2 cold: prefill {} tok, TTFT {:.3}s | warm: prefill {} tok, TTFT {:.3}s = {:.1}% of cold | same text: {}",
        s1.prompt_eval_count,
        t1.as_secs_f64(),
        sc.prompt_eval_count,
        tc.as_secs_f64(),
        sw.prompt_eval_count,
        tw.as_secs_f64(),
        100.0 * tw.as_secs_f64() / tc.as_secs_f64(),
        w == c
    );
    println!("prefix cache: {:?}", warm_engine.prefix_cache_stats());
}
