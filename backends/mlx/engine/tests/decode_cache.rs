//! Decode pipeline, prefix cache and KV quantization on the real SmolLM2-135M-Instruct GGUF.
//! They skip loudly when the weights are absent (run `scripts/fetch-models.sh`).

mod common;

use common::model_path;
use ollmlx_engine::{
    ChatMessage, Done, Engine, EngineConfig, EngineEvent, GenerateRequest, ModelRef, Prompt,
    SamplerConfig,
};

fn msg(role: &str, content: &str) -> ChatMessage {
    ChatMessage {
        role: role.into(),
        content: content.into(),
        ..Default::default()
    }
}

/// Greedy without penalties: the token is picked on the device (pipelined decode).
fn device_greedy() -> SamplerConfig {
    SamplerConfig {
        temperature: 0.0,
        repeat_penalty: 1.0,
        ..Default::default()
    }
}

fn request(path: &std::path::Path, messages: Vec<ChatMessage>, n: usize) -> GenerateRequest {
    let mut req = GenerateRequest::new(
        ModelRef {
            name: "smollm2".into(),
            path: path.to_path_buf(),
        },
        Prompt::Chat {
            messages,
            tools: vec![],
        },
    );
    req.sampler = device_greedy();
    req.num_predict = Some(n);
    req
}

fn collect(engine: &Engine, req: GenerateRequest) -> (String, Done) {
    let (tx, mut rx) = tokio::sync::mpsc::channel(64);
    engine.generate(req, tx).unwrap();
    let mut text = String::new();
    loop {
        match rx.blocking_recv().expect("stream closed without Done") {
            EngineEvent::Text(t) => text.push_str(&t),
            EngineEvent::Done(d) => return (text, d),
            EngineEvent::Error(e) => panic!("engine error: {e}"),
            other => panic!("unexpected event: {other:?}"),
        }
    }
}

fn engine_with(f: impl FnOnce(&mut EngineConfig)) -> Engine {
    let mut c = EngineConfig::default();
    f(&mut c);
    Engine::start(c).unwrap()
}

#[test]
fn pipelined_device_greedy_matches_host_greedy_token_for_token() {
    let Some(path) = model_path() else { return };
    let e = engine_with(|c| c.prefix_cache_bytes = 0);
    let q = vec![msg(
        "user",
        "List three primary colors and describe each briefly.",
    )];
    let (device, d1) = collect(&e, request(&path, q.clone(), 40));
    // A frequency penalty far below one ulp of the logits sends sampling to the host without
    // changing any logit: same argmax, other code path.
    let mut host = request(&path, q, 40);
    host.sampler.frequency_penalty = 1e-30;
    let (host_text, d2) = collect(&e, host);
    assert_eq!(device, host_text);
    assert_eq!(d1.stats.eval_count, d2.stats.eval_count);
    assert_eq!(d1.stats.eval_count, 40);
}

#[test]
fn second_turn_prefills_only_new_tokens_and_matches_a_cold_run() {
    let Some(path) = model_path() else { return };
    let warm = engine_with(|_| {});
    let turn1 = vec![msg(
        "user",
        "What is the capital of France? Answer in one sentence.",
    )];
    let (a1, d1) = collect(&warm, request(&path, turn1.clone(), 24));
    let mut turn2 = turn1;
    turn2.push(msg("assistant", &a1));
    turn2.push(msg("user", "And what is the capital of Germany?"));
    let (a2, d2) = collect(&warm, request(&path, turn2.clone(), 24));

    let cold = engine_with(|c| c.prefix_cache_bytes = 0);
    let (a2_cold, d2_cold) = collect(&cold, request(&path, turn2, 24));
    assert_eq!(a2, a2_cold, "cache reuse must not change greedy output");
    let total = d2_cold.stats.prompt_eval_count;
    // The first turn's prompt is never re-run: only the new messages (plus at most the tail
    // of the re-tokenized answer) are evaluated.
    assert!(
        d2.stats.prompt_eval_count + d1.stats.prompt_eval_count <= total,
        "turn 2 prefilled {} of {total} tokens; turn 1's prompt was {}",
        d2.stats.prompt_eval_count,
        d1.stats.prompt_eval_count
    );
    let s = warm.prefix_cache_stats();
    assert_eq!(s.hits, 1, "{s:?}");
    assert_eq!(s.misses, 1, "{s:?}");
}

#[test]
fn interleaved_conversations_each_resume_from_the_prefix_cache() {
    let Some(path) = model_path() else { return };
    let e = engine_with(|_| {});
    let a1 = vec![
        msg("system", "You are a terse geography tutor."),
        msg("user", "Name the longest river in Africa."),
    ];
    let b1 = vec![msg("user", "Write a haiku about autumn leaves.")];
    let (ra, _) = collect(&e, request(&path, a1.clone(), 16));
    let (rb, _) = collect(&e, request(&path, b1.clone(), 16));
    // Conversation A again: the live cache now holds B, so A's history comes from a snapshot.
    let mut a2 = a1;
    a2.push(msg("assistant", &ra));
    a2.push(msg("user", "How long is it?"));
    let (ra2, da2) = collect(&e, request(&path, a2.clone(), 16));
    let mut b2 = b1;
    b2.push(msg("assistant", &rb));
    b2.push(msg("user", "Another one, about snow."));
    let (rb2, db2) = collect(&e, request(&path, b2.clone(), 16));

    let cold = engine_with(|c| c.prefix_cache_bytes = 0);
    let (ca2, ca2d) = collect(&cold, request(&path, a2, 16));
    let (cb2, cb2d) = collect(&cold, request(&path, b2, 16));
    assert_eq!((ra2, rb2), (ca2, cb2));
    assert!(da2.stats.prompt_eval_count * 2 < ca2d.stats.prompt_eval_count);
    assert!(db2.stats.prompt_eval_count * 2 < cb2d.stats.prompt_eval_count);
    let s = e.prefix_cache_stats();
    // Conversation B's first turn may share a few template tokens with A (a hit), the rest are
    // real reuses.
    assert_eq!(s.hits + s.misses, 4, "{s:?}");
    assert!(s.hits >= 2, "{s:?}");
    assert!(s.entries >= 2 && s.bytes > 0, "{s:?}");
}

#[test]
fn quantized_kv_cache_q8_keeps_the_greedy_text_and_q4_still_generates() {
    let Some(path) = model_path() else { return };
    let q = vec![msg("user", "What is the capital of France?")];
    let plain = engine_with(|_| {});
    let (p, pd) = collect(&plain, request(&path, q.clone(), 16));
    drop(plain);
    for kind in ["q8_0", "q4_0"] {
        let e = engine_with(|c| c.kv_cache_type = kind.into());
        let (t, d) = collect(&e, request(&path, q.clone(), 16));
        eprintln!("{kind}: {t:?} (f32 KV: {p:?})");
        assert!(d.stats.eval_count > 0 && !t.trim().is_empty());
        if kind == "q8_0" {
            assert_eq!(t, p, "8-bit KV keeps this short greedy answer");
            assert_eq!(d.stats.eval_count, pd.stats.eval_count);
        }
    }
}
