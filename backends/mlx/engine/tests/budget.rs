//! The memory budget on the real SmolLM2-135M GGUF: a model that cannot fit is refused with
//! Ollama's error (not a crash), a second model evicts the first when only one fits, and the
//! estimate reported as `size` matches what MLX actually allocates. Skips loudly without the
//! weights (`scripts/fetch-models.sh`, or `OLLMLX_TEST_GGUF`).

mod common;

use common::model_path;
use std::path::Path;
use std::sync::Mutex;

use ollmlx_engine::budget::{self, BudgetError};
use ollmlx_engine::{
    Engine, EngineConfig, EngineError, EngineEvent, GenerateRequest, ModelRef, Prompt,
};
use ollmlx_models::LoadOptions;

/// MLX's allocation counters are process-wide: one model-loading test at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn cpu_engine(limit: u64, max_loaded: usize) -> Engine {
    Engine::start(EngineConfig {
        device: ollmlx_engine::DeviceChoice::Cpu,
        memory_limit: Some(limit),
        max_loaded,
        ..Default::default()
    })
    .unwrap()
}

/// Send a load-only request for `name`; the terminal event.
fn load(engine: &Engine, name: &str, path: &Path, num_ctx: usize) -> EngineEvent {
    let mut req = GenerateRequest::new(
        ModelRef {
            name: name.into(),
            path: path.to_path_buf(),
        },
        Prompt::LoadOnly,
    );
    req.num_ctx = num_ctx;
    let (tx, mut rx) = tokio::sync::mpsc::channel(8);
    engine.generate(req, tx).unwrap();
    loop {
        let ev = rx
            .blocking_recv()
            .expect("stream closed without a final event");
        if matches!(ev, EngineEvent::Done(_) | EngineEvent::Error(_)) {
            return ev;
        }
    }
}

fn names(engine: &Engine) -> Vec<String> {
    let mut v: Vec<_> = engine.loaded().into_iter().map(|m| m.name).collect();
    v.sort();
    v
}

fn need(path: &Path, num_ctx: u64) -> u64 {
    budget::estimate(path, LoadOptions::for_device(true), num_ctx, 1)
        .unwrap()
        .total()
}

#[test]
fn a_model_over_the_budget_is_refused_with_ollamas_error_and_the_engine_keeps_serving() {
    let Some(path) = model_path() else { return };
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let engine = cpu_engine(64 << 20, 3);
    let ev = load(&engine, "a", &path, 4096);
    let EngineEvent::Error(e) = ev else {
        panic!("expected a refusal, got {ev:?}")
    };
    assert!(
        matches!(e, EngineError::Memory(BudgetError::TooLarge { available, .. }) if available == 64 << 20),
        "{e:?}"
    );
    let msg = e.to_string();
    assert!(
        msg.starts_with("model requires more system memory (")
            && msg.ends_with(") than is available (64.0 MiB)"),
        "{msg}"
    );
    assert!(engine.loaded().is_empty());
    // The engine thread is alive: it still answers (and refuses again, identically).
    let EngineEvent::Error(again) = load(&engine, "a", &path, 4096) else {
        panic!("expected the same refusal")
    };
    assert_eq!(again.to_string(), msg);
}

#[test]
fn a_second_model_evicts_the_first_when_the_budget_only_fits_one() {
    let Some(path) = model_path() else { return };
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let one = need(&path, 4096);
    let engine = cpu_engine(one + one / 2, 4);
    assert!(matches!(
        load(&engine, "a", &path, 4096),
        EngineEvent::Done(_)
    ));
    assert_eq!(names(&engine), ["a"]);
    assert!(matches!(
        load(&engine, "b", &path, 4096),
        EngineEvent::Done(_)
    ));
    assert_eq!(names(&engine), ["b"], "a was evicted to make room");

    // With room for two, both stay (max_loaded 4 is not the limit).
    let engine = cpu_engine(2 * one + one / 2, 4);
    load(&engine, "a", &path, 4096);
    load(&engine, "b", &path, 4096);
    assert_eq!(names(&engine), ["a", "b"]);
}

#[test]
fn ps_size_is_the_estimate_for_the_loaded_num_ctx_and_matches_mlx_allocations() {
    let Some(path) = model_path() else { return };
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let before = mlx_rs::memory::active_memory().unwrap_or(0) as u64;
    let engine = cpu_engine(u64::MAX / 2, 1);
    assert!(matches!(
        load(&engine, "a", &path, 2048),
        EngineEvent::Done(_)
    ));
    let m = &engine.loaded()[0];
    assert_eq!(m.context_length, 2048);
    assert_eq!(m.size, need(&path, 2048));

    // The weight estimate is what MLX really holds after loading (float32, dequantized).
    let est = budget::estimate(&path, LoadOptions::for_device(true), 2048, 1).unwrap();
    let active = mlx_rs::memory::active_memory().unwrap() as u64 - before;
    let ratio = active as f64 / est.weights as f64;
    eprintln!(
        "estimated weights {} B, MLX active {} B (ratio {ratio:.3}), kv {} B",
        est.weights, active, est.kv
    );
    assert!((0.9..1.1).contains(&ratio), "ratio {ratio}");

    // A request with another num_ctx re-sizes the record without reloading.
    assert!(matches!(
        load(&engine, "a", &path, 8192),
        EngineEvent::Done(_)
    ));
    let m = &engine.loaded()[0];
    assert_eq!(m.context_length, 8192);
    assert_eq!(m.size, need(&path, 8192));
}
