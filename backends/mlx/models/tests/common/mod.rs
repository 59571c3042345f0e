//! mlx-lm parity harness (test support, not part of the request path).
//!
//! Each fixture under `tests/fixtures/<family>-<bf16|q4>/` is a tiny random-weight checkpoint
//! saved by mlx-lm itself (`config.json` + `model.safetensors`) plus `golden.json`, written by
//! `scripts/parity/make_fixtures.py` (format described in `scripts/parity/README.md`). The
//! harness loads the directory through [`ollmlx_models::load`] — the engine's real load path —
//! and checks, per prompt:
//!
//! 1. **greedy with the KV cache** (prefill the prompt, then one token per step) produces
//!    exactly mlx-lm's `generate_step` tokens;
//! 2. **uncached full forward** over `prompt + continuation[..-1]`: at every position the logits
//!    of mlx-lm's top-5 ids agree within the tolerance, no other id beats the 5th by more than
//!    the tolerance, and the argmax is mlx-lm's wherever mlx-lm's own margin exceeds it;
//! 3. **cached == uncached** in our engine: the logits of each cached step equal the uncached
//!    forward at the same position (within [`SELF_TOL`]).
//!
//! Two precisions (see [`Precision`]): the CPU defaults (`LoadOptions::for_device(true)`:
//! float32 compute, quantized weights dequantized at load) against mlx-lm with every parameter
//! upcast to float32 (`f32` record), and the weights' own dtype (bfloat16 compute, quantized
//! weights kept packed) against mlx-lm running the checkpoint as saved (`native` record).

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use mlx_rs::{Array, Dtype};
use ollmlx_models::{load, LoadOptions, LogitsMode, Model};
use serde::Deserialize;

/// Which engine configuration runs the fixture, and which mlx-lm record it is held to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    /// `LoadOptions::for_device(true)`: float32, dequantize at load — what the engine uses on the
    /// CPU device. Compared with mlx-lm's float32-upcast run.
    CpuDefault,
    /// bfloat16 compute, quantized weights stay packed (`quantized_matmul`) — what the engine
    /// uses on GPUs. Compared with mlx-lm running the bfloat16 / 4-bit checkpoint as saved.
    Native,
}

impl Precision {
    fn options(self) -> LoadOptions {
        match self {
            Precision::CpuDefault => LoadOptions::for_device(true),
            Precision::Native => LoadOptions {
                compute_dtype: Dtype::Bfloat16,
                dequantize: false,
                transpose_dense: false,
            },
        }
    }

    /// Allowed |ours - mlx-lm| for a logit of magnitude `v`.
    ///
    /// - float32: both sides compute in float32 from identical weights; only the summation order
    ///   differs (OpenBLAS here, MLX's bundled BLAS in the reference run): `1e-3 + 1e-3·|v|`.
    /// - bfloat16: every op rounds to 8 significant bits; a different (but equally valid)
    ///   rounding order moves a logit by a few ulps of the largest activations:
    ///   `0.05 + 2^-5·|v|` (4 bf16 ulps of the logit plus an absolute floor).
    pub fn tolerance(self, v: f32) -> f32 {
        match self {
            Precision::CpuDefault => 1e-3 + 1e-3 * v.abs(),
            Precision::Native => 0.05 + v.abs() / 32.0,
        }
    }

    fn record(self) -> &'static str {
        match self {
            Precision::CpuDefault => "f32",
            Precision::Native => "native",
        }
    }
}

/// Our own cached-vs-uncached agreement (same dtype, same weights, different op grouping).
pub const SELF_TOL: f32 = 1e-3;

/// `golden.json`.
#[derive(Debug, Deserialize)]
pub struct Golden {
    /// Format version (1).
    pub format: u32,
    /// Versions of mlx / mlx-lm that recorded it.
    pub versions: Versions,
    /// Family name (`llama`, `qwen3_moe`, ...).
    pub family: String,
    /// `bf16` or `q4`.
    pub variant: String,
    /// `architectures[0]` of config.json.
    pub architecture: String,
    /// Why mlx-lm could not run the checkpoint as saved (then every `native` record is null).
    pub native_unavailable: Option<String>,
    /// Top-k width of the per-position records.
    pub top_k: usize,
    /// Generated tokens per prompt.
    pub gen_tokens: usize,
    /// The prompts and their records.
    pub prompts: Vec<PromptGolden>,
}

/// Versions pinned by the generator.
#[derive(Debug, Deserialize)]
pub struct Versions {
    /// MLX.
    pub mlx: String,
    /// mlx-lm.
    #[serde(rename = "mlx-lm")]
    pub mlx_lm: String,
}

/// One prompt with the bfloat16/4-bit (`native`) and float32-upcast (`f32`) records.
#[derive(Debug, Deserialize)]
pub struct PromptGolden {
    /// Token ids.
    pub prompt: Vec<i32>,
    /// mlx-lm on the checkpoint as saved; `None` when mlx-lm cannot run it on the CPU (MoE in
    /// bfloat16: MLX's CPU `GatherMM` is float32-only; see `native_unavailable`).
    pub native: Option<Record>,
    /// mlx-lm with every floating parameter upcast to float32.
    pub f32: Record,
}

/// What mlx-lm produced for one prompt at one precision.
#[derive(Debug, Deserialize)]
pub struct Record {
    /// Greedy continuation (`generate_step`, KV cache).
    pub tokens: Vec<i32>,
    /// top1 - top2 log-prob margin per greedy step.
    pub margins: Vec<f32>,
    /// Top-k ids per position of `prompt + tokens[..-1]` (uncached forward).
    pub top_ids: Vec<Vec<i32>>,
    /// Their logits.
    pub top_logits: Vec<Vec<f32>>,
}

/// `tests/fixtures/<name>`.
pub fn fixture_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Read `golden.json` of a fixture.
pub fn golden(name: &str) -> Golden {
    let path = fixture_dir(name).join("golden.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("parity {name}: reading {}: {e}", path.display()));
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("parity {name}: parsing {}: {e}", path.display()))
}

/// Logits `[1, L, vocab]` → host rows of float32.
fn rows(logits: &Array) -> Vec<Vec<f32>> {
    let l = logits.dim(1) as usize;
    let v = logits.dim(2) as usize;
    let flat = logits
        .as_dtype(Dtype::Float32)
        .expect("cast logits")
        .as_slice::<f32>()
        .to_vec();
    (0..l).map(|i| flat[i * v..(i + 1) * v].to_vec()).collect()
}

fn argmax(row: &[f32]) -> i32 {
    let mut best = 0;
    for (i, &x) in row.iter().enumerate() {
        if x > row[best] {
            best = i;
        }
    }
    best as i32
}

fn tokens(ids: &[i32]) -> Array {
    Array::from_slice(ids, &[1, ids.len() as i32])
}

/// Greedy decoding through the KV cache: prefill `prompt` in one call, then one token per step.
/// Returns the tokens and the logits row of every step.
pub fn greedy_cached(model: &dyn Model, prompt: &[i32], n: usize) -> (Vec<i32>, Vec<Vec<f32>>) {
    let mut caches = model.new_caches();
    let mut out = Vec::with_capacity(n);
    let mut step_logits = Vec::with_capacity(n);
    let mut input = tokens(prompt);
    for _ in 0..n {
        let logits = model
            .forward(&input, &mut caches, LogitsMode::Last)
            .expect("cached forward");
        let row = rows(&logits).pop().expect("one row");
        let t = argmax(&row);
        out.push(t);
        step_logits.push(row);
        input = tokens(&[t]);
    }
    (out, step_logits)
}

/// Uncached forward over `seq`: one logits row per position.
pub fn full_forward(model: &dyn Model, seq: &[i32]) -> Vec<Vec<f32>> {
    let mut caches = model.new_caches();
    let logits = model
        .forward(&tokens(seq), &mut caches, LogitsMode::All)
        .expect("uncached forward");
    rows(&logits)
}

/// Worst agreement seen, for the report line.
#[derive(Debug, Default)]
pub struct Report {
    /// max |ours - mlx-lm| over every recorded logit.
    pub max_diff: f32,
    /// max |cached - uncached| over our own steps.
    pub max_self_diff: f32,
    /// Positions compared.
    pub positions: usize,
}

/// Run fixture `name` (e.g. `"llama-bf16"`) at `precision` and assert parity with mlx-lm.
pub fn check(name: &str, precision: Precision) -> Report {
    check_path(name, &fixture_dir(name), precision)
}

/// Load the model at `path` (a fixture directory, or the same weights in another container such
/// as GGUF) and hold it to the golden record of fixture `name`.
pub fn check_path(name: &str, path: &Path, precision: Precision) -> Report {
    let g = golden(name);
    let file = path.file_name().unwrap_or_default().to_string_lossy();
    let label = format!(
        "parity {name} [{file}] ({} {}, {:?} vs mlx-lm {} record)",
        g.family,
        g.architecture,
        precision,
        precision.record()
    );
    let loaded =
        load(path, precision.options()).unwrap_or_else(|e| panic!("{label}: load failed: {e}"));
    let model = loaded.model.as_ref();
    let mut report = Report::default();
    for (pi, p) in g.prompts.iter().enumerate() {
        let rec = match precision {
            Precision::CpuDefault => &p.f32,
            Precision::Native => p.native.as_ref().unwrap_or_else(|| {
                panic!(
                    "{label}: the fixture has no native record ({})",
                    g.native_unavailable.as_deref().unwrap_or("?")
                )
            }),
        };
        let (ours, steps) = greedy_cached(model, &p.prompt, g.gen_tokens);
        assert_eq!(
            ours, rec.tokens,
            "{label}: prompt #{pi}: greedy continuation (KV cache) differs from mlx-lm's \
             (mlx-lm margins per step: {:?})",
            rec.margins
        );
        let mut seq = p.prompt.clone();
        seq.extend_from_slice(&rec.tokens[..rec.tokens.len() - 1]);
        let full = full_forward(model, &seq);
        assert_eq!(full.len(), rec.top_ids.len(), "{label}: positions");
        for (pos, row) in full.iter().enumerate() {
            let ids = &rec.top_ids[pos];
            let vals = &rec.top_logits[pos];
            for (&id, &want) in ids.iter().zip(vals) {
                let got = row[id as usize];
                let d = (got - want).abs();
                report.max_diff = report.max_diff.max(d);
                assert!(
                    d <= precision.tolerance(want),
                    "{label}: prompt #{pi} position {pos}: logit of id {id}: ours {got}, \
                     mlx-lm {want} (|diff| {d} > tolerance {})",
                    precision.tolerance(want)
                );
            }
            let kth = *vals.last().expect("top-k");
            for (id, &x) in row.iter().enumerate() {
                if x > kth + precision.tolerance(kth) && !ids.contains(&(id as i32)) {
                    panic!(
                        "{label}: prompt #{pi} position {pos}: id {id} (logit {x}) beats \
                         mlx-lm's top-{} {ids:?} {vals:?}",
                        g.top_k
                    );
                }
            }
            if vals[0] - vals[1] > 2.0 * precision.tolerance(vals[0]) {
                assert_eq!(
                    argmax(row),
                    ids[0],
                    "{label}: prompt #{pi} position {pos}: argmax differs from mlx-lm's"
                );
            }
            report.positions += 1;
        }
        let first = p.prompt.len() - 1;
        for (s, step) in steps.iter().enumerate() {
            let uncached = &full[first + s];
            let d = step
                .iter()
                .zip(uncached)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            report.max_self_diff = report.max_self_diff.max(d);
            let tol = match precision {
                Precision::CpuDefault => SELF_TOL,
                Precision::Native => precision.tolerance(rec.top_logits[first + s][0]),
            };
            assert!(
                d <= tol,
                "{label}: prompt #{pi} step {s}: cached logits differ from the uncached \
                 forward by {d} (> {tol})"
            );
        }
    }
    eprintln!(
        "{label}: OK over {} positions; max |ours - mlx-lm| {:.2e}, max |cached - uncached| {:.2e}",
        report.positions, report.max_diff, report.max_self_diff
    );
    report
}
