//! End-to-end embedding tests on the real all-MiniLM-L6-v2 (BERT, safetensors). The expected
//! vectors in `fixtures/minilm_reference.json` come from our numpy BERT forward:
//! `python3 scripts/reference/minilm_embed.py .ollmlx-cache/models/all-minilm-l6-v2`.
//! They skip loudly when the weights are absent: run `scripts/fetch-models.sh` first.

use std::path::PathBuf;

use ollmlx_engine::embed::{EmbedJob, EmbedOutput};
use ollmlx_engine::{Engine, EngineConfig, EngineError, EngineEvent, ModelRef};

fn model_dir() -> Option<PathBuf> {
    let p = std::env::var_os("OLLMLX_TEST_MINILM")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../../.ollmlx-cache/models/all-minilm-l6-v2")
        });
    if p.join("model.safetensors").exists() {
        Some(p)
    } else {
        eprintln!(
            "SKIPPED: {} not found; run scripts/fetch-models.sh",
            p.display()
        );
        None
    }
}

fn reference() -> Vec<(String, usize, Vec<f32>)> {
    let text = include_str!("fixtures/minilm_reference.json");
    let v: serde_json::Value = serde_json::from_str(text).unwrap();
    v["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let e = r["embedding"].as_array().unwrap();
            (
                r["input"].as_str().unwrap().to_string(),
                r["tokens"].as_u64().unwrap() as usize,
                e.iter().map(|x| x.as_f64().unwrap() as f32).collect(),
            )
        })
        .collect()
}

fn job(dir: PathBuf, inputs: Vec<String>, truncate: bool) -> EmbedJob {
    EmbedJob {
        model: ModelRef {
            name: "all-minilm".into(),
            path: dir,
        },
        inputs,
        truncate,
        num_ctx: None,
        keep_alive: None,
    }
}

fn embed(engine: &Engine, j: EmbedJob) -> Result<EmbedOutput, EngineError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    engine.embed(j, tx).unwrap();
    rx.blocking_recv().unwrap()
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let n = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (n(a) * n(b))
}

#[test]
fn minilm_vectors_match_the_numpy_reference_in_one_batch() {
    let Some(dir) = model_dir() else { return };
    let engine = Engine::start(EngineConfig::default()).unwrap();
    let refs = reference();
    let out = embed(
        &engine,
        job(dir, refs.iter().map(|r| r.0.clone()).collect(), true),
    )
    .unwrap();
    assert_eq!(out.embeddings.len(), refs.len());
    assert_eq!(
        out.prompt_eval_count as usize,
        refs.iter().map(|r| r.1).sum::<usize>()
    );
    assert!(out.total >= out.load && !out.total.is_zero());
    for ((input, _, want), got) in refs.iter().zip(&out.embeddings) {
        assert_eq!(got.len(), 384);
        let c = cosine(want, got);
        let max_diff = want
            .iter()
            .zip(got)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        eprintln!("{input:?}: cosine {c:.6}, max |diff| {max_diff:.2e}");
        assert!(c >= 0.999, "{input:?}: cosine {c}");
    }
}

#[test]
fn minilm_refuses_overlong_input_unless_truncating_and_refuses_generate() {
    let Some(dir) = model_dir() else { return };
    let engine = Engine::start(EngineConfig::default()).unwrap();
    let long = "word ".repeat(600);
    let e = embed(&engine, job(dir.clone(), vec![long.clone()], false)).unwrap_err();
    assert_eq!(e.to_string(), "the input length exceeds the context length");
    let out = embed(&engine, job(dir.clone(), vec![long], true)).unwrap();
    assert_eq!(out.prompt_eval_count, 512);
    let (tx, mut rx) = tokio::sync::mpsc::channel(8);
    let req = ollmlx_engine::GenerateRequest::new(
        ModelRef {
            name: "all-minilm".into(),
            path: dir,
        },
        ollmlx_engine::Prompt::Text {
            prompt: "hi".into(),
            system: String::new(),
            raw: false,
        },
    );
    engine.generate(req, tx).unwrap();
    match rx.blocking_recv() {
        Some(EngineEvent::Error(e)) => {
            assert_eq!(e.to_string(), "\"all-minilm\" does not support generate")
        }
        other => panic!("expected an error, got {other:?}"),
    }
}
