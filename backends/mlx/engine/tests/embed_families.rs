//! Embeddings end to end through the engine (tokenizer → context fit → padded batches → encoder
//! → pooling) on the tiny fixtures of `scripts/parity/make_embed_fixtures.py`: a BERT with
//! [CLS] pooling + Normalize (mxbai-embed-large style), a nomic-bert with mean pooling and no
//! Normalize (nomic-embed-text style) and a Qwen3 decoder with last-token pooling + Normalize
//! whose tokenizer appends `<|endoftext|>` (Qwen3-Embedding style).
//!
//! Each text's vector must equal the fixture's reference (numpy encoders, mlx-lm decoder) for the
//! token ids the Python `tokenizers` package produced, so tokenization is pinned too.

use std::path::PathBuf;

use ollmlx_engine::embed::{EmbedJob, EmbedOutput, INPUT_TOO_LONG};
use ollmlx_engine::{Engine, EngineConfig, EngineError, EngineEvent, ModelRef};
use serde_json::Value;

const FIXTURES: [&str; 3] = ["embed-bert-cls", "embed-nomic", "embed-qwen3"];
const DIM: usize = 32;

fn dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../models/tests/fixtures")
        .join(name)
}

struct Reference {
    normalize: bool,
    /// (text, token count, pooled vector)
    inputs: Vec<(String, usize, Vec<f32>)>,
    /// (ctx, pooled vector of the truncated ids)
    truncated: (usize, Vec<f32>),
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn reference(name: &str) -> Reference {
    let text = std::fs::read_to_string(dir(name).join("reference.json")).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    Reference {
        normalize: v["normalize"].as_bool().unwrap(),
        inputs: v["inputs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["text"].as_str().unwrap().to_string(),
                    e["ids"].as_array().unwrap().len(),
                    floats(&e["pooled"]),
                )
            })
            .collect(),
        truncated: (
            v["truncated"]["ctx"].as_u64().unwrap() as usize,
            floats(&v["truncated"]["pooled"]),
        ),
    }
}

fn job(name: &str, inputs: Vec<String>, truncate: bool, num_ctx: Option<usize>) -> EmbedJob {
    EmbedJob {
        model: ModelRef {
            name: name.into(),
            path: dir(name),
        },
        inputs,
        truncate,
        num_ctx,
        keep_alive: None,
    }
}

fn embed(engine: &Engine, j: EmbedJob) -> Result<EmbedOutput, EngineError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    engine.embed(j, tx).unwrap();
    rx.blocking_recv().unwrap()
}

fn norm(v: &[f32]) -> f32 {
    v.iter().map(|x| x * x).sum::<f32>().sqrt()
}

fn normalized(v: &[f32]) -> Vec<f32> {
    let n = norm(v).max(1e-12);
    v.iter().map(|x| x / n).collect()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max)
}

#[test]
fn each_new_family_embeds_texts_like_its_reference_with_the_right_dimension() {
    let engine = Engine::start(EngineConfig::default()).unwrap();
    for name in FIXTURES {
        let r = reference(name);
        let texts: Vec<String> = r.inputs.iter().map(|i| i.0.clone()).collect();
        let out = embed(&engine, job(name, texts, true, None)).unwrap();
        assert_eq!(out.embeddings.len(), r.inputs.len(), "{name}");
        assert_eq!(
            out.prompt_eval_count as usize,
            r.inputs.iter().map(|i| i.1).sum::<usize>(),
            "{name}: token counts (tokenizer.json incl. special tokens)"
        );
        for ((text, _, pooled), got) in r.inputs.iter().zip(&out.embeddings) {
            assert_eq!(got.len(), DIM, "{name}");
            let want = if r.normalize {
                normalized(pooled)
            } else {
                pooled.clone()
            };
            let d = max_diff(got, &want);
            eprintln!("{name} {text:?}: max |diff| {d:.2e}");
            assert!(d < 1e-4, "{name} {text:?}: max |diff| {d}");
            if r.normalize {
                // A Normalize module: unit vectors, as /api/embed returns them.
                assert!((norm(got) - 1.0).abs() < 1e-5, "{name}: norm {}", norm(got));
            } else {
                // Raw mean pooling; what /api/embed returns after the server's L2 step.
                assert!(max_diff(&normalized(got), &normalized(pooled)) < 1e-5);
            }
        }
    }
}

#[test]
fn overlong_inputs_are_cut_to_num_ctx_keeping_the_final_token_or_refused() {
    let engine = Engine::start(EngineConfig::default()).unwrap();
    for name in FIXTURES {
        let r = reference(name);
        let (ctx, want) = &r.truncated;
        let long = r.inputs.last().unwrap().0.clone();
        let out = embed(&engine, job(name, vec![long.clone()], true, Some(*ctx))).unwrap();
        assert_eq!(out.prompt_eval_count as usize, *ctx, "{name}");
        let want = if r.normalize {
            normalized(want)
        } else {
            want.clone()
        };
        let d = max_diff(&out.embeddings[0], &want);
        assert!(d < 1e-4, "{name}: truncated max |diff| {d}");
        let e = embed(&engine, job(name, vec![long], false, Some(*ctx))).unwrap_err();
        assert_eq!(
            e,
            EngineError::InvalidRequest(INPUT_TOO_LONG.into()),
            "{name}"
        );
    }
}

#[test]
fn a_decoder_loaded_as_an_embedding_model_refuses_generate() {
    let engine = Engine::start(EngineConfig::default()).unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::channel(8);
    let req = ollmlx_engine::GenerateRequest::new(
        ModelRef {
            name: "qwen3-embed".into(),
            path: dir("embed-qwen3"),
        },
        ollmlx_engine::Prompt::Text {
            prompt: "hello world".into(),
            system: String::new(),
            raw: false,
        },
    );
    engine.generate(req, tx).unwrap();
    match rx.blocking_recv() {
        Some(EngineEvent::Error(e)) => {
            assert_eq!(e.to_string(), "\"qwen3-embed\" does not support generate")
        }
        other => panic!("expected an error, got {other:?}"),
    }
}

#[test]
fn embedding_detection_covers_the_new_kinds_for_the_backend_gate() {
    for name in FIXTURES {
        assert!(ollmlx_engine::embed::is_embedding_dir(&dir(name)), "{name}");
    }
    assert!(ollmlx_engine::embed::is_embedding_dir(&dir(
        "embed-gguf/qwen3-embed.gguf"
    )));
    assert!(!ollmlx_engine::embed::is_embedding_dir(&dir("qwen3-bf16")));
}
