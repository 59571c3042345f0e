//! Per-layer quantization plans: the `quantization` table of an MLX `config.json` (a default
//! `group_size`/`bits` plus overrides keyed by module path, e.g. an 8-bit MoE router) and the
//! loaders that honour it for plain and expert-stacked linear layers.
//!
//! Sits at load time, between [`crate::weights::Weights`] (raw tensors) and the architectures
//! (gemma3, phi3, qwen3_moe) that assemble layers; nothing here runs per token.

use std::collections::HashMap;

use mlx_rs::ops::dequantize;
use mlx_rs::Array;
use serde_json::Value;

use crate::error::{ModelError, Result};
use crate::nn::{Linear, QuantSpec};
use crate::weights::Weights;

/// Group sizes per module path (bits are inferred from the packed width).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct QuantPlan {
    default_group: i32,
    overrides: HashMap<String, i32>,
}

impl QuantPlan {
    /// A plan with one group size for every layer (GGUF: 32).
    pub fn uniform(group: i32) -> Self {
        QuantPlan {
            default_group: group,
            overrides: HashMap::new(),
        }
    }

    /// Read `quantization` (or `quantization_config`) of a Hugging Face / MLX `config.json`.
    /// Keys that hold an object with `group_size` are per-module overrides; `root` is stripped
    /// from override paths (`language_model.` for multimodal wrappers).
    pub fn from_hf(cfg: &Value, root: &str) -> Self {
        let q = if cfg["quantization"].is_object() {
            &cfg["quantization"]
        } else {
            &cfg["quantization_config"]
        };
        let default_group = q["group_size"].as_i64().unwrap_or(64) as i32;
        let mut overrides = HashMap::new();
        if let Some(map) = q.as_object() {
            for (k, v) in map {
                if let Some(g) = v.get("group_size").and_then(Value::as_i64) {
                    let path = k.strip_prefix(root).unwrap_or(k).to_string();
                    overrides.insert(path, g as i32);
                }
            }
        }
        QuantPlan {
            default_group,
            overrides,
        }
    }

    /// Group size of the module at `path` (a weight prefix without `.weight`).
    pub fn group_for(&self, path: &str) -> i32 {
        self.overrides
            .get(path)
            .copied()
            .unwrap_or(self.default_group)
    }
}

fn spec_for(prefix: &str, scales: &Array, weight: &Array, group_size: i32) -> Result<QuantSpec> {
    let in_features = scales.dim(-1) * group_size;
    let packed = weight.dim(-1);
    if in_features == 0 || (packed * 32) % in_features != 0 {
        return Err(ModelError::Invalid(format!(
            "{prefix}: cannot infer bits from packed width {packed} and {in_features} inputs"
        )));
    }
    Ok(QuantSpec {
        group_size,
        bits: packed * 32 / in_features,
    })
}

fn cast(w: &Weights, a: Array) -> Result<Array> {
    let dt = w.options().compute_dtype;
    if a.dtype() == dt {
        Ok(a)
    } else {
        Ok(a.as_dtype(dt)?)
    }
}

/// Build a linear layer from `{prefix}.weight` (+ `.scales`/`.biases`, + `.bias`) with the
/// plan's group size for `path` (the module path the plan is keyed by).
pub fn linear(w: &mut Weights, prefix: &str, path: &str, plan: &QuantPlan) -> Result<Linear> {
    let transpose = w.options().transpose_dense;
    linear_as(w, prefix, path, plan, transpose)
}

/// [`linear`] with the dense layout given: `transpose` = [`Linear::DenseT`] (embedding tables
/// are built row-major, `false`).
pub fn linear_as(
    w: &mut Weights,
    prefix: &str,
    path: &str,
    plan: &QuantPlan,
    transpose: bool,
) -> Result<Linear> {
    let weight = w.take_raw(&format!("{prefix}.weight"))?;
    let bias = if w.contains(&format!("{prefix}.bias")) {
        Some(w.take_float(&format!("{prefix}.bias"))?)
    } else {
        None
    };
    if !w.contains(&format!("{prefix}.scales")) {
        let weight = cast(w, weight)?;
        return crate::weights::dense(weight, bias, transpose);
    }
    let scales = w.take_raw(&format!("{prefix}.scales"))?;
    let biases = w.take_raw(&format!("{prefix}.biases"))?;
    let spec = spec_for(prefix, &scales, &weight, plan.group_for(path))?;
    // Scales/biases go to the compute dtype first: dequantizing with bf16 scales would round
    // every weight to bf16 before the float32 upcast.
    let (scales, biases) = (cast(w, scales)?, cast(w, biases)?);
    if w.options().dequantize {
        let d = dequantize(&weight, &scales, &biases, spec.group_size, spec.bits)?;
        let d = cast(w, d)?;
        let source = crate::packed::PackedSource {
            weight,
            scales,
            biases,
            spec,
        };
        return w.dense_from_quantized(d, bias, transpose, source);
    }
    Ok(Linear::Quantized {
        weight,
        scales,
        biases,
        bias,
        spec,
    })
}

/// Expert-stacked weights `[experts, out, in]`, dense or affine-quantized (packed along `in`).
pub enum SwitchWeights {
    /// Plain `[E, out, in]`.
    Dense(Array),
    /// Packed `[E, out, in * bits / 32]` with `[E, out, in / group]` scales and biases.
    Quantized {
        /// Packed values.
        weight: Array,
        /// Per-group scales.
        scales: Array,
        /// Per-group biases.
        biases: Array,
        /// Group size and bits.
        spec: QuantSpec,
    },
}

/// Dense stacked experts in the compute dtype, except on the CPU device, where MLX's `GatherMM`
/// only runs in float32: there they stay float32 and [`SwitchWeights::forward`] upcasts the
/// activations around the product.
pub fn dense_experts(w: &Weights, a: Array) -> Result<SwitchWeights> {
    let cpu = matches!(
        mlx_rs::Device::try_default().and_then(|d| d.get_type()),
        Ok(mlx_rs::DeviceType::Cpu)
    );
    if cpu {
        Ok(SwitchWeights::Dense(a.as_dtype(mlx_rs::Dtype::Float32)?))
    } else {
        Ok(SwitchWeights::Dense(cast(w, a)?))
    }
}

/// Load `{prefix}.weight` as stacked experts (dequantized when the load options say so).
pub fn switch_weights(
    w: &mut Weights,
    prefix: &str,
    path: &str,
    plan: &QuantPlan,
) -> Result<SwitchWeights> {
    let weight = w.take_raw(&format!("{prefix}.weight"))?;
    if weight.ndim() != 3 {
        return Err(ModelError::Invalid(format!(
            "{prefix}.weight: expected [experts, out, in], got {:?}",
            weight.shape()
        )));
    }
    if !w.contains(&format!("{prefix}.scales")) {
        return dense_experts(w, weight);
    }
    let scales = w.take_raw(&format!("{prefix}.scales"))?;
    let biases = w.take_raw(&format!("{prefix}.biases"))?;
    let spec = spec_for(prefix, &scales, &weight, plan.group_for(path))?;
    let (scales, biases) = (cast(w, scales)?, cast(w, biases)?);
    if w.options().dequantize {
        let d = dequantize(&weight, &scales, &biases, spec.group_size, spec.bits)?;
        return dense_experts(w, d);
    }
    Ok(SwitchWeights::Quantized {
        weight,
        scales,
        biases,
        spec,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_module_group_overrides_are_read_from_config() {
        let cfg = serde_json::json!({"quantization": {
            "group_size": 64, "bits": 4,
            "model.layers.0.mlp.gate": {"group_size": 32, "bits": 8},
            "language_model.model.layers.1.mlp.gate": {"group_size": 128, "bits": 8}
        }});
        let p = QuantPlan::from_hf(&cfg, "language_model.");
        assert_eq!(p.group_for("model.layers.0.mlp.gate"), 32);
        assert_eq!(p.group_for("model.layers.1.mlp.gate"), 128);
        assert_eq!(p.group_for("model.layers.0.mlp.up_proj"), 64);
        assert_eq!(
            QuantPlan::from_hf(&serde_json::json!({}), "").group_for("x"),
            64
        );
    }

    #[test]
    fn an_override_group_size_decides_how_a_packed_layer_is_read() {
        use crate::weights::{LoadOptions, WeightFormat};
        let v: Vec<f32> = (0..8 * 64)
            .map(|i| ((i * 13 % 11) as f32 - 5.0) / 4.0)
            .collect();
        let dense = Array::from_slice(&v, &[8, 64]);
        let (q, s, b) = mlx_rs::ops::quantize(&dense, 32, 8).unwrap();
        let map = HashMap::from([
            ("l.weight".to_string(), q),
            ("l.scales".to_string(), s),
            ("l.biases".to_string(), b),
        ]);
        let opts = LoadOptions {
            compute_dtype: mlx_rs::Dtype::Float32,
            dequantize: false,
            transpose_dense: false,
        };
        // Read with the default group (64) the same packed width would pass as 4-bit: only
        // the override gives the right reading.
        let cfg = serde_json::json!({"quantization": {"group_size": 64, "bits": 4,
                                                       "l": {"group_size": 32, "bits": 8}}});
        let plan = QuantPlan::from_hf(&cfg, "");
        let mut w = Weights::new(map, opts, WeightFormat::SafeTensors, 64);
        let l = linear(&mut w, "l", "l", &plan).unwrap();
        match &l {
            Linear::Quantized { spec, .. } => assert_eq!(
                *spec,
                QuantSpec {
                    group_size: 32,
                    bits: 8
                }
            ),
            _ => panic!("expected packed"),
        }
        let got = l.dense_weight().unwrap();
        for (a, b) in got.as_slice::<f32>().iter().zip(&v) {
            assert!((a - b).abs() < 0.02, "{a} vs {b}");
        }
    }
}
