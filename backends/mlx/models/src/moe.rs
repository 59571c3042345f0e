//! Sparse mixture-of-experts feed-forward: a softmax router picks the top-k experts per token and
//! a SwitchGLU (expert-stacked SwiGLU) runs only those, through `gather_mm` (dense experts) or
//! `gather_qmm` (packed experts on GPUs).
//!
//! Used by [`crate::qwen3_moe`] inside each sparse decoder block, after attention; the expert
//! weights are stacked `[experts, out, in]` as mlx-lm's `switch_mlp.{gate,up,down}_proj` stores
//! them.

use mlx_rs::nn::silu;
use mlx_rs::ops::indexing::TryIndexOp;
use mlx_rs::ops::{argpartition_axis, gather_mm, gather_qmm, softmax_axis};
use mlx_rs::{Array, Dtype};

use crate::error::{ModelError, Result};
use crate::nn::Linear;
use crate::quant::SwitchWeights;

impl SwitchWeights {
    /// `x`: `[..., 1, in]` with batch shape broadcastable against `indices` (`[..., k]`);
    /// returns `[..., k, 1, out]`, each row multiplied by the expert its index names.
    pub fn forward(&self, x: &Array, indices: &Array) -> Result<Array> {
        Ok(match self {
            SwitchWeights::Dense(w)
                if w.dtype() == Dtype::Float32 && x.dtype() != Dtype::Float32 =>
            {
                let y = gather_mm(
                    x.as_dtype(Dtype::Float32)?,
                    w.swap_axes(-1, -2)?,
                    None,
                    indices,
                    false,
                )?;
                y.as_dtype(x.dtype())?
            }
            SwitchWeights::Dense(w) => gather_mm(x, w.swap_axes(-1, -2)?, None, indices, false)?,
            SwitchWeights::Quantized {
                weight,
                scales,
                biases,
                spec,
            } => gather_qmm(
                x,
                weight,
                scales,
                biases,
                None,
                indices,
                true,
                spec.group_size,
                spec.bits,
                false,
            )?,
        })
    }

    /// Number of experts.
    pub fn num_experts(&self) -> i32 {
        match self {
            SwitchWeights::Dense(w) => w.dim(0),
            SwitchWeights::Quantized { weight, .. } => weight.dim(0),
        }
    }

    /// All arrays (for evaluation at load time).
    pub fn arrays(&self) -> Vec<&Array> {
        match self {
            SwitchWeights::Dense(w) => vec![w],
            SwitchWeights::Quantized {
                weight,
                scales,
                biases,
                ..
            } => vec![weight, scales, biases],
        }
    }
}

/// Expert-stacked SwiGLU: `down_e(silu(gate_e(x)) * up_e(x))` for each selected expert `e`.
pub struct SwitchGlu {
    /// `[E, hidden, dim]`.
    pub gate_proj: SwitchWeights,
    /// `[E, hidden, dim]`.
    pub up_proj: SwitchWeights,
    /// `[E, dim, hidden]`.
    pub down_proj: SwitchWeights,
}

impl SwitchGlu {
    /// `x`: `[B, L, D]`, `indices`: `[B, L, k]` → `[B, L, k, D]`.
    pub fn forward(&self, x: &Array, indices: &Array) -> Result<Array> {
        let x = x.expand_dims_axes(&[-2, -3])?;
        let up = self.up_proj.forward(&x, indices)?;
        let gate = self.gate_proj.forward(&x, indices)?;
        let h = silu(gate)?.multiply(&up)?;
        Ok(self.down_proj.forward(&h, indices)?.squeeze_axes(&[-2])?)
    }
}

/// Router + experts of one sparse block.
pub struct SparseMoe {
    /// Router `[E, dim]`.
    pub gate: Linear,
    /// The experts.
    pub experts: SwitchGlu,
    /// Experts per token.
    pub top_k: i32,
    /// Renormalise the selected experts' probabilities to sum to one.
    pub norm_topk_prob: bool,
}

impl SparseMoe {
    /// `x`: `[B, L, D]` → `[B, L, D]`.
    pub fn forward(&self, x: &Array) -> Result<Array> {
        let gates = softmax_axis(self.gate.forward(x)?, -1, true)?;
        let e = gates.dim(-1);
        let k = self.top_k;
        if k < 1 || k > e {
            return Err(ModelError::Invalid(format!(
                "num_experts_per_tok {k} with {e} experts"
            )));
        }
        let inds = argpartition_axis(&gates, e - k, -1)?.try_index((.., .., (e - k)..))?;
        let mut scores = gates.take_along_axis(&inds, -1)?;
        if self.norm_topk_prob {
            scores = scores.divide(scores.sum_axis(-1, true)?)?;
        }
        let y = self.experts.forward(x, &inds)?;
        let dt = y.dtype();
        Ok(y.multiply(scores.expand_dims(-1)?)?
            .sum_axis(-2, false)?
            .as_dtype(dt)?)
    }

    /// All arrays (for evaluation at load time).
    pub fn arrays(&self) -> Vec<&Array> {
        let mut v = self.gate.arrays();
        for s in [
            &self.experts.gate_proj,
            &self.experts.up_proj,
            &self.experts.down_proj,
        ] {
            v.extend(s.arrays());
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dense(v: &[f32], shape: &[i32]) -> SwitchWeights {
        SwitchWeights::Dense(Array::from_slice(v, shape))
    }

    #[test]
    fn router_sends_each_token_to_its_top_expert_and_weights_it() {
        // 2 experts, dim 2, hidden 1. Expert e: gate=up rows pick feature e, down writes back
        // to feature e. Router favours expert 0 for token 0 and expert 1 for token 1.
        let gate = Linear::Dense {
            weight: Array::from_slice(&[1.0f32, 0.0, 0.0, 1.0], &[2, 2]),
            bias: None,
        };
        let pick = [1.0f32, 0.0, 0.0, 1.0];
        let moe = SparseMoe {
            gate,
            experts: SwitchGlu {
                gate_proj: dense(&pick, &[2, 1, 2]),
                up_proj: dense(&pick, &[2, 1, 2]),
                down_proj: dense(&pick, &[2, 2, 1]),
            },
            top_k: 1,
            norm_topk_prob: true,
        };
        let x = Array::from_slice(&[3.0f32, 0.0, 0.0, 2.0], &[1, 2, 2]);
        let y = moe.forward(&x).unwrap();
        assert_eq!(y.shape(), &[1, 2, 2]);
        let s = |v: f32| v / (1.0 + (-v).exp());
        let want = [s(3.0) * 3.0, 0.0, 0.0, s(2.0) * 2.0];
        for (a, b) in y.as_slice::<f32>().iter().zip(want) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
    }

    #[test]
    fn quantized_experts_match_their_dequantized_copy() {
        let v: Vec<f32> = (0..3 * 8 * 64)
            .map(|i| ((i * 29 % 23) as f32 - 11.0) / 16.0)
            .collect();
        let w = Array::from_slice(&v, &[3, 8, 64]);
        let (q, s, b) = mlx_rs::ops::quantize(&w, 64, 4).unwrap();
        let d = mlx_rs::ops::dequantize(&q, &s, &b, 64, 4).unwrap();
        assert_eq!(d.shape(), &[3, 8, 64]);
        let qs = SwitchWeights::Quantized {
            weight: q,
            scales: s,
            biases: b,
            spec: crate::nn::QuantSpec {
                group_size: 64,
                bits: 4,
            },
        };
        let ds = SwitchWeights::Dense(d);
        let x = Array::from_slice(&vec![0.25f32; 2 * 64], &[1, 2, 1, 1, 64]);
        let idx = Array::from_slice(&[2i32, 0, 1, 2], &[1, 2, 2]);
        let (a, b) = (qs.forward(&x, &idx).unwrap(), ds.forward(&x, &idx).unwrap());
        assert_eq!(a.shape(), &[1, 2, 2, 1, 8]);
        for (p, q) in a.as_slice::<f32>().iter().zip(b.as_slice::<f32>()) {
            assert!((p - q).abs() < 1e-3, "{p} vs {q}");
        }
    }
}
