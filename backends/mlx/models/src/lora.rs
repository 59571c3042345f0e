//! LoRA adapters in mlx-lm's format, merged into the base weights at load.
//!
//! Request path: `ollmlx-mlx` (runner assembles `<model dir>/adapters/` from the Modelfile
//! `ADAPTER` layers) → `ollmlx-engine` → [`crate::load`] → **here**, between reading the
//! [`Weights`] and the architecture taking its Linears. Nothing here runs per token: after the
//! merge the model is an ordinary dense/quantized model.
//!
//! Format (mlx-lm `mlx_lm.lora` output): `adapter_config.json` with `fine_tune_type` (default
//! `"lora"`), `num_layers`, `lora_parameters: {rank, scale, dropout, keys?}`; and
//! `adapters.safetensors` holding `<module path>.lora_a` `[in, r]` and `<module path>.lora_b`
//! `[r, out]` for every adapted Linear, where mlx-lm computes
//! `y = x·Wᵀ + scale·(x·lora_a)·lora_b`. That is the Linear with weight
//! `W' = W + scale·(lora_a·lora_b)ᵀ`, which is what this module writes into the weight map
//! (mlx-lm's own `fuse` makes the same matrix).
//!
//! - Dense weights: merged in float32, stored in the compute dtype.
//! - Quantized weights, dequantize-at-load (CPU): dequantized in float32, merged, stored dense.
//! - Quantized weights kept packed (GPU): dequantized, merged, re-quantized with the same bits and
//!   group size (what mlx-lm's `fuse` does too). Re-quantization moves each weight by up to one
//!   quantization step of its group (measured ≤ 1.002 steps on the q4 fixture, incl. the bf16
//!   rounding of the stored scales/biases), i.e. about the base's own quantization error again.
//! - GGUF llama bases store q/k rows permuted for adjacent-pair RoPE; the delta of `q_proj` /
//!   `k_proj` gets the same row permutation ([`QkPermute`]).
//!
//! Refused with [`ModelError::Adapter`]: `fine_tune_type` other than `lora` (`dora`, `full`),
//! tensors that are not `lora_a`/`lora_b`, a `lora_a` without its `lora_b`, adapter modules that
//! match no weight of the model (or an embedding), and shape mismatches.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use mlx_rs::ops::{dequantize, quantize};
use mlx_rs::{Array, Dtype};
use serde::Deserialize;

use crate::error::{ModelError, Result};
use crate::weights::Weights;

/// Sub-directory of a model directory that holds an adapter.
pub const ADAPTER_DIR: &str = "adapters";
/// The adapter's configuration file.
pub const CONFIG_FILE: &str = "adapter_config.json";
/// The adapter's tensors.
pub const TENSORS_FILE: &str = "adapters.safetensors";

/// `adapter_config.json` (the fields the merge needs; training-only fields are ignored).
#[derive(Debug, Clone, Deserialize)]
pub struct AdapterConfig {
    /// `lora`, `dora` or `full` (mlx-lm's default when absent: `lora`).
    #[serde(default = "default_fine_tune_type")]
    pub fine_tune_type: String,
    /// Blocks adapted, counted from the last (informational: the tensors say which).
    #[serde(default)]
    pub num_layers: Option<i64>,
    /// Rank / scale / dropout.
    pub lora_parameters: LoraParameters,
}

fn default_fine_tune_type() -> String {
    "lora".into()
}

/// `lora_parameters` of the adapter config.
#[derive(Debug, Clone, Deserialize)]
pub struct LoraParameters {
    /// Rank r (checked against the tensors' shapes when present).
    #[serde(default)]
    pub rank: Option<i64>,
    /// The multiplier of the low-rank update (mlx-lm requires it).
    pub scale: f32,
    /// Training-time dropout (no effect at inference).
    #[serde(default)]
    pub dropout: Option<f32>,
}

/// Head counts for permuting q/k deltas into llama.cpp's GGUF row order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QkPermute {
    /// Query heads.
    pub num_heads: i32,
    /// Key/value heads.
    pub num_kv_heads: i32,
}

/// What a merge did (for logs and tests).
#[derive(Debug, Clone, PartialEq)]
pub struct MergeReport {
    /// Linears changed.
    pub merged: usize,
    /// Of those, quantized weights re-quantized after the merge.
    pub requantized: usize,
    /// The adapter's scale.
    pub scale: f32,
    /// Rank of the update.
    pub rank: i32,
}

/// The adapter directory of a model directory, when it has one (`<dir>/adapters/` with an
/// `adapter_config.json`).
pub fn adapter_dir(model_dir: &Path) -> Option<PathBuf> {
    let d = model_dir.join(ADAPTER_DIR);
    d.join(CONFIG_FILE).is_file().then_some(d)
}

fn err(msg: impl Into<String>) -> ModelError {
    ModelError::Adapter(msg.into())
}

/// Read and validate `adapter_config.json`.
pub fn read_config(dir: &Path) -> Result<AdapterConfig> {
    let path = dir.join(CONFIG_FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| ModelError::File {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    let cfg: AdapterConfig =
        serde_json::from_str(&text).map_err(|e| err(format!("{}: {e}", path.display())))?;
    if cfg.fine_tune_type != "lora" {
        return Err(err(format!(
            "fine_tune_type {:?} is not supported (only \"lora\" adapters can be applied)",
            cfg.fine_tune_type
        )));
    }
    if !cfg.lora_parameters.scale.is_finite() {
        return Err(err("lora_parameters.scale is not a finite number"));
    }
    Ok(cfg)
}

/// Merge the adapter in `dir` into `w`. `qk` permutes q/k deltas for GGUF llama bases.
pub fn apply(w: &mut Weights, dir: &Path, qk: Option<QkPermute>) -> Result<MergeReport> {
    let cfg = read_config(dir)?;
    let path = dir.join(TENSORS_FILE);
    if !path.is_file() {
        return Err(ModelError::File {
            path: path.display().to_string(),
            message: "adapter has no adapters.safetensors".into(),
        });
    }
    let tensors = Array::load_safetensors(&path)?;
    merge(w, tensors.into_iter().collect(), &cfg, qk)
}

/// Merge named `lora_a` / `lora_b` tensors into `w` with `cfg`'s scale.
pub fn merge(
    w: &mut Weights,
    tensors: BTreeMap<String, Array>,
    cfg: &AdapterConfig,
    qk: Option<QkPermute>,
) -> Result<MergeReport> {
    let mut pairs: BTreeMap<String, (Option<Array>, Option<Array>)> = BTreeMap::new();
    for (name, t) in tensors {
        let (module, leaf) = name
            .rsplit_once('.')
            .ok_or_else(|| err(format!("adapter tensor {name:?} is not <module>.lora_a/b")))?;
        let slot = pairs.entry(module.to_string()).or_default();
        match leaf {
            "lora_a" => slot.0 = Some(t),
            "lora_b" => slot.1 = Some(t),
            "m" => return Err(err(format!("{name}: DoRA magnitudes are not supported"))),
            _ => {
                return Err(err(format!(
                    "adapter tensor {name:?} is not a LoRA tensor (lora_a/lora_b)"
                )))
            }
        }
    }
    if pairs.is_empty() {
        return Err(err("adapters.safetensors holds no lora_a/lora_b tensors"));
    }
    let scale = cfg.lora_parameters.scale;
    let mut report = MergeReport {
        merged: 0,
        requantized: 0,
        scale,
        rank: 0,
    };
    for (module, (a, b)) in pairs {
        let (Some(a), Some(b)) = (a, b) else {
            return Err(err(format!("{module}: needs both lora_a and lora_b")));
        };
        let requantized = merge_one(w, &module, &a, &b, cfg, qk)?;
        report.rank = a.dim(-1);
        report.merged += 1;
        report.requantized += usize::from(requantized);
    }
    Ok(report)
}

/// Merge one module; returns whether the weight was re-quantized.
fn merge_one(
    w: &mut Weights,
    module: &str,
    a: &Array,
    b: &Array,
    cfg: &AdapterConfig,
    qk: Option<QkPermute>,
) -> Result<bool> {
    if module.contains("embed_tokens") {
        return Err(err(format!(
            "{module}: LoRA on embeddings is not supported (only Linear layers)"
        )));
    }
    let weight_name = format!("{module}.weight");
    if !w.contains(&weight_name) {
        return Err(err(format!(
            "adapter module {module:?} matches no weight of the model (no {weight_name})"
        )));
    }
    if a.ndim() != 2 || b.ndim() != 2 || a.dim(1) != b.dim(0) {
        return Err(err(format!(
            "{module}: lora_a {:?} / lora_b {:?} are not [in, r] / [r, out]",
            a.shape(),
            b.shape()
        )));
    }
    let rank = a.dim(1);
    if let Some(r) = cfg.lora_parameters.rank {
        if r != i64::from(rank) {
            return Err(err(format!(
                "{module}: tensors have rank {rank}, adapter_config.json says {r}"
            )));
        }
    }
    let group = w.quant_group_size();
    let compute = w.options().compute_dtype;
    let dequantize_at_load = w.options().dequantize;
    let map = w.map_mut();
    let raw = map
        .remove(&weight_name)
        .ok_or_else(|| err(format!("{module}: weight vanished")))?;
    let scales_name = format!("{module}.scales");
    let biases_name = format!("{module}.biases");
    let quant = match map.remove(&scales_name) {
        Some(s) => {
            let bz = map
                .remove(&biases_name)
                .ok_or_else(|| ModelError::MissingTensor(biases_name.clone()))?;
            let in_features = s.dim(-1) * group;
            let packed = raw.dim(-1);
            if raw.ndim() != 2 || in_features == 0 || (packed * 32) % in_features != 0 {
                return Err(err(format!(
                    "{module}: cannot infer quantization of a {:?} weight",
                    raw.shape()
                )));
            }
            Some((s, bz, packed * 32 / in_features))
        }
        None => None,
    };
    let dense = match &quant {
        Some((s, bz, bits)) => dequantize(
            &raw,
            &s.as_dtype(Dtype::Float32)?,
            &bz.as_dtype(Dtype::Float32)?,
            group,
            *bits,
        )?,
        None => raw.as_dtype(Dtype::Float32)?,
    };
    if dense.ndim() != 2 {
        return Err(err(format!(
            "{module}: weight {:?} is not a 2-D Linear (expert/switch layers are not supported)",
            dense.shape()
        )));
    }
    let (out, inp) = (dense.dim(0), dense.dim(1));
    if a.dim(0) != inp || b.dim(1) != out {
        return Err(err(format!(
            "{module}: lora_a {:?} / lora_b {:?} do not fit the weight [{out}, {inp}] \
             (want [{inp}, r] / [r, {out}])",
            a.shape(),
            b.shape()
        )));
    }
    // delta = scale · (a·b)ᵀ = scale · bᵀ·aᵀ, [out, in].
    let a32 = a.as_dtype(Dtype::Float32)?;
    let b32 = b.as_dtype(Dtype::Float32)?;
    let mut delta = b32
        .t()
        .matmul(a32.t())?
        .multiply(Array::from_f32(cfg.lora_parameters.scale))?;
    if let Some(p) = qk {
        let heads = if module.ends_with("self_attn.q_proj") {
            Some(p.num_heads)
        } else if module.ends_with("self_attn.k_proj") {
            Some(p.num_kv_heads)
        } else {
            None
        };
        if let Some(h) = heads {
            delta = gguf_row_permute(&delta, h)?;
        }
    }
    let merged = dense.add(&delta)?;
    match quant {
        Some((s, _, bits)) if !dequantize_at_load => {
            let (q, qs, qb) = quantize(&merged, group, bits)?;
            let dt = s.dtype();
            map.insert(weight_name, q);
            map.insert(scales_name, qs.as_dtype(dt)?);
            map.insert(biases_name, qb.as_dtype(dt)?);
            Ok(true)
        }
        _ => {
            map.insert(weight_name, merged.as_dtype(compute)?);
            Ok(false)
        }
    }
}

/// llama.cpp's q/k row order for adjacent-pair RoPE: rows `[h, 2, d/2]` → `[h, d/2, 2]`.
fn gguf_row_permute(m: &Array, heads: i32) -> Result<Array> {
    let (out, inp) = (m.dim(0), m.dim(1));
    if heads <= 0 || out % (2 * heads) != 0 {
        return Err(err(format!(
            "cannot permute a [{out}, {inp}] q/k delta for {heads} heads"
        )));
    }
    Ok(m.reshape(&[heads, 2, out / heads / 2, inp])?
        .swap_axes(1, 2)?
        .reshape(&[out, inp])?)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::weights::{LoadOptions, WeightFormat};

    fn cfg(kind: &str, rank: Option<i64>, scale: f32) -> AdapterConfig {
        AdapterConfig {
            fine_tune_type: kind.into(),
            num_layers: Some(1),
            lora_parameters: LoraParameters {
                rank,
                scale,
                dropout: None,
            },
        }
    }

    fn f32s(v: &[f32], shape: &[i32]) -> Array {
        Array::from_slice(v, shape)
    }

    fn dense_weights(dequantize: bool) -> Weights {
        let w: Vec<f32> = (0..4 * 64).map(|i| ((i % 11) as f32 - 5.0) / 8.0).collect();
        let map = HashMap::from([("l.weight".to_string(), f32s(&w, &[4, 64]))]);
        Weights::new(
            map,
            LoadOptions {
                compute_dtype: Dtype::Float32,
                dequantize,
                transpose_dense: false,
            },
            WeightFormat::SafeTensors,
            64,
        )
    }

    fn lora(a_in: i32, out: i32, r: i32) -> BTreeMap<String, Array> {
        let a: Vec<f32> = (0..a_in * r).map(|i| (i % 5) as f32 * 0.1).collect();
        let b: Vec<f32> = (0..r * out).map(|i| (i % 3) as f32 - 1.0).collect();
        BTreeMap::from([
            ("l.lora_a".to_string(), f32s(&a, &[a_in, r])),
            ("l.lora_b".to_string(), f32s(&b, &[r, out])),
        ])
    }

    #[test]
    fn dense_merge_is_w_plus_scaled_transposed_product() {
        let mut w = dense_weights(true);
        let before = w.map_mut()["l.weight"].as_slice::<f32>().to_vec();
        let t = lora(64, 4, 2);
        let (a, b) = (t["l.lora_a"].clone(), t["l.lora_b"].clone());
        let rep = merge(&mut w, t, &cfg("lora", Some(2), 3.0), None).unwrap();
        assert_eq!((rep.merged, rep.requantized, rep.rank), (1, 0, 2));
        let after = w.map_mut()["l.weight"].as_slice::<f32>().to_vec();
        let (a, b) = (a.as_slice::<f32>().to_vec(), b.as_slice::<f32>().to_vec());
        for o in 0..4 {
            for i in 0..64 {
                let d: f32 = (0..2).map(|k| a[i * 2 + k] * b[k * 4 + o]).sum::<f32>() * 3.0;
                let (got, want) = (after[o * 64 + i], before[o * 64 + i] + d);
                assert!((got - want).abs() < 1e-5, "[{o},{i}] {got} vs {want}");
            }
        }
    }

    #[test]
    fn packed_weights_are_requantized_with_their_bits_and_group() {
        let mut w = dense_weights(false);
        let dense = w.map_mut().remove("l.weight").unwrap();
        let (q, s, b0) = quantize(&dense, 64, 4).unwrap();
        w.map_mut().insert("l.weight".into(), q.clone());
        w.map_mut().insert("l.scales".into(), s.clone());
        w.map_mut().insert("l.biases".into(), b0.clone());
        let rep = merge(&mut w, lora(64, 4, 2), &cfg("lora", None, 0.5), None).unwrap();
        assert_eq!(rep.requantized, 1);
        let m = w.map_mut();
        assert_eq!(m["l.weight"].shape(), q.shape(), "same packing (4 bits)");
        assert_eq!(m["l.scales"].shape(), s.shape(), "same group size");
        assert_ne!(m["l.weight"].as_slice::<u32>(), q.as_slice::<u32>());
        // Dequantizing the new triple gives W + ΔW within one quantization step.
        let back = dequantize(&m["l.weight"], &m["l.scales"], &m["l.biases"], 64, 4).unwrap();
        let dq = dequantize(&q, &s, &b0, 64, 4).unwrap();
        let t = lora(64, 4, 2);
        let delta = t["l.lora_b"]
            .t()
            .matmul(t["l.lora_a"].t())
            .unwrap()
            .multiply(Array::from_f32(0.5))
            .unwrap();
        let want = dq.add(&delta).unwrap();
        let step = m["l.scales"]
            .abs()
            .unwrap()
            .max(None)
            .unwrap()
            .as_slice::<f32>()[0];
        let err = back
            .subtract(&want)
            .unwrap()
            .abs()
            .unwrap()
            .max(None)
            .unwrap()
            .as_slice::<f32>()[0];
        assert!(err <= step, "requantization error {err} > one step {step}");
    }

    #[test]
    fn dora_and_full_adapters_are_refused() {
        for kind in ["dora", "full"] {
            let dir = tempdir(kind);
            std::fs::write(
                dir.join(CONFIG_FILE),
                format!(r#"{{"fine_tune_type":"{kind}","lora_parameters":{{"scale":1.0}}}}"#),
            )
            .unwrap();
            let msg = read_config(&dir).unwrap_err().to_string();
            let _ = std::fs::remove_dir_all(&dir);
            assert!(msg.contains(&format!("fine_tune_type \"{kind}\"")), "{msg}");
        }
    }

    fn tempdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("ollmlx-lora-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn unknown_modules_shape_mismatches_and_half_pairs_are_refused() {
        let mut t = lora(64, 4, 2);
        let a = t.remove("l.lora_a").unwrap();
        let b = t.remove("l.lora_b").unwrap();
        let c = cfg("lora", None, 1.0);
        let run = |t: BTreeMap<String, Array>| {
            merge(&mut dense_weights(true), t, &c, None)
                .unwrap_err()
                .to_string()
        };
        let msg = run(BTreeMap::from([
            ("nope.lora_a".into(), a.clone()),
            ("nope.lora_b".into(), b.clone()),
        ]));
        assert!(msg.contains("matches no weight"), "{msg}");
        let msg = run(BTreeMap::from([
            ("l.lora_a".into(), b.clone()),
            ("l.lora_b".into(), a.clone()),
        ]));
        assert!(msg.contains("not [in, r]"), "{msg}");
        let msg = run(BTreeMap::from([("l.lora_a".into(), a.clone())]));
        assert!(msg.contains("needs both"), "{msg}");
        let msg = run(BTreeMap::from([("l.weight".into(), a)]));
        assert!(msg.contains("not a LoRA tensor"), "{msg}");
        let msg = merge(
            &mut dense_weights(true),
            lora(64, 4, 2),
            &cfg("lora", Some(8), 1.0),
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(msg.contains("rank 2") && msg.contains("says 8"), "{msg}");
    }

    #[test]
    fn gguf_permutation_interleaves_the_two_rope_halves_per_head() {
        // One head of dim 4, one input: rows [0,1,2,3] → [0,2,1,3].
        let m = f32s(&[0.0, 1.0, 2.0, 3.0], &[4, 1]);
        let p = gguf_row_permute(&m, 1).unwrap();
        assert_eq!(p.as_slice::<f32>(), &[0.0, 2.0, 1.0, 3.0]);
    }
}
