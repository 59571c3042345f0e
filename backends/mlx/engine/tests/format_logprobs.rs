//! `format` (constrained decoding) and logprobs on the real SmolLM2-135M-Instruct GGUF. Skips
//! loudly when the weights are absent (`scripts/fetch-models.sh`, or set `OLLMLX_TEST_GGUF`).

mod common;

use common::model_path;
use std::path::PathBuf;
use std::sync::OnceLock;

use ollmlx_engine::logprobs::Logprob;
use ollmlx_engine::{
    ChatMessage, Engine, EngineConfig, EngineEvent, FinishReason, FormatSpec, GenerateRequest,
    ModelRef, Prompt, SamplerConfig,
};
use serde_json::{json, Value};

/// One engine for the whole file (the model stays resident between tests).
fn engine() -> &'static Engine {
    static E: OnceLock<Engine> = OnceLock::new();
    E.get_or_init(|| Engine::start(EngineConfig::default()).unwrap())
}

fn request(path: PathBuf, q: &str) -> GenerateRequest {
    let prompt = Prompt::Chat {
        messages: vec![ChatMessage {
            role: "user".into(),
            content: q.into(),
            ..Default::default()
        }],
        tools: vec![],
    };
    let mut r = GenerateRequest::new(
        ModelRef {
            name: "smollm2".into(),
            path,
        },
        prompt,
    );
    r.num_predict = Some(96);
    r
}

/// Run to completion: (text, logprobs in order, finish reason, tokens generated).
fn run(req: GenerateRequest) -> (String, Vec<Logprob>, FinishReason, u64) {
    let (tx, mut rx) = tokio::sync::mpsc::channel(64);
    engine().generate(req, tx).unwrap();
    let (mut text, mut lps) = (String::new(), Vec::new());
    loop {
        match rx.blocking_recv().expect("stream closed without Done") {
            EngineEvent::Text(t) => text.push_str(&t),
            EngineEvent::Logprobs(l) => lps.push(l),
            EngineEvent::Done(d) => return (text, lps, d.reason, d.stats.eval_count),
            EngineEvent::Error(e) => panic!("engine error: {e}"),
            other => panic!("unexpected event: {other:?}"),
        }
    }
}

fn country_schema() -> Value {
    json!({"type": "object", "properties": {
        "name": {"type": "string"}, "capital": {"type": "string"},
        "population": {"type": "integer"}},
        "required": ["name", "capital", "population"]})
}

fn assert_country(text: &str) {
    let v: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text:?}"));
    assert!(v["name"].is_string(), "{text}");
    assert!(v["capital"].is_string(), "{text}");
    assert!(
        v["population"].is_i64() || v["population"].is_u64(),
        "{text}"
    );
}

const ASK: &str = "Describe France as JSON with its name, capital and population.";

#[test]
fn format_json_output_parses_greedy_and_sampled() {
    let Some(path) = model_path() else { return };
    for sampler in [
        SamplerConfig {
            temperature: 0.0,
            ..Default::default()
        },
        SamplerConfig {
            temperature: 0.8,
            seed: Some(42),
            ..Default::default()
        },
    ] {
        let mut r = request(
            path.clone(),
            "Return a JSON object with the keys city and country for Paris.",
        );
        r.num_predict = Some(160);
        r.sampler = sampler.clone();
        r.format = Some(FormatSpec::Json);
        let (text, _, reason, _) = run(r);
        let v: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("not JSON at T={}: {e}: {text:?}", sampler.temperature));
        assert!(v.is_object(), "format json is an object: {text}");
        assert_eq!(reason, FinishReason::Stop, "ends when the object closes");
    }
}

#[test]
fn format_schema_output_validates_greedy_and_sampled_and_the_seed_reproduces() {
    let Some(path) = model_path() else { return };
    let mut r = request(path.clone(), ASK);
    r.sampler.temperature = 0.0;
    // Without a penalty this 135M model's answers keep adding properties (the schema allows
    // them) past `num_predict`; the classic 1.1 lets them close the object.
    r.sampler.repeat_penalty = 1.1;
    r.format = Some(FormatSpec::Schema(country_schema()));
    let t0 = std::time::Instant::now();
    let (text, _, reason, n) = run(r);
    let constrained = t0.elapsed();
    assert_country(&text);
    assert_eq!(reason, FinishReason::Stop);
    // Cost of the mask, for the record: the same number of unconstrained greedy tokens.
    let mut r = request(path.clone(), ASK);
    r.sampler.temperature = 0.0;
    r.num_predict = Some(n as usize);
    let t0 = std::time::Instant::now();
    let (_, _, _, m) = run(r);
    eprintln!(
        "format schema: {n} tokens in {constrained:?} (first request builds the vocabulary \
         trie); unconstrained: {m} tokens in {:?}",
        t0.elapsed()
    );

    let sampled = || {
        let mut r = request(path.clone(), ASK);
        r.sampler.temperature = 0.8;
        r.sampler.seed = Some(7);
        r.sampler.repeat_penalty = 1.1;
        r.format = Some(FormatSpec::Schema(country_schema()));
        run(r).0
    };
    let a = sampled();
    assert_country(&a);
    assert_eq!(a, sampled(), "same seed, same constrained output");
}

#[test]
fn an_invalid_schema_fails_the_request() {
    let Some(path) = model_path() else { return };
    let mut r = request(path, ASK);
    r.format = Some(FormatSpec::Schema(json!({"type": 12})));
    let (tx, mut rx) = tokio::sync::mpsc::channel(8);
    engine().generate(r, tx).unwrap();
    match rx.blocking_recv() {
        Some(EngineEvent::Error(e)) => {
            assert!(e.to_string().contains("invalid JSON schema"), "{e}")
        }
        other => panic!("expected an error, got {other:?}"),
    }
}

#[test]
fn logprobs_report_the_greedy_token_as_the_most_likely_with_sorted_alternatives() {
    let Some(path) = model_path() else { return };
    let mut r = request(path, "What is the capital of France?");
    r.sampler.temperature = 0.0;
    r.sampler.repeat_penalty = 1.0;
    r.num_predict = Some(8);
    r.logprobs = Some(5);
    let (text, lps, _, generated) = run(r);
    assert!(!lps.is_empty());
    assert_eq!(lps.len() as u64, generated, "one entry per generated token");
    let joined: Vec<u8> = lps.iter().flat_map(|l| l.chosen.bytes.clone()).collect();
    assert_eq!(
        String::from_utf8_lossy(&joined),
        text,
        "token bytes spell the text: {lps:?}"
    );
    for l in &lps {
        assert_eq!(l.top.len(), 5);
        assert_eq!(
            l.top[0].id, l.chosen.id,
            "greedy picks the most likely token"
        );
        assert!((l.top[0].logprob - l.chosen.logprob).abs() < 1e-9);
        assert!(l.top.windows(2).all(|w| w[0].logprob >= w[1].logprob));
        assert!(l.chosen.logprob <= 0.0);
        let mass: f64 = l.top.iter().map(|t| t.logprob.exp()).sum();
        assert!(mass <= 1.0 + 1e-6, "top-5 mass {mass}");
    }
}

#[test]
fn logprobs_of_sampled_tokens_come_from_the_raw_distribution() {
    let Some(path) = model_path() else { return };
    let mut r = request(path, "Tell me a word.");
    r.sampler.temperature = 1.5;
    r.sampler.seed = Some(3);
    r.num_predict = Some(6);
    r.logprobs = Some(0);
    let (_, lps, _, generated) = run(r);
    assert_eq!(lps.len() as u64, generated);
    for l in &lps {
        assert!(l.top.is_empty(), "top_logprobs 0 gives no alternatives");
        assert!(l.chosen.logprob < 0.0 && l.chosen.logprob.is_finite());
    }
}
