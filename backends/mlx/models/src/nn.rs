//! Shared layers: linear (dense or affine-quantized), embedding, RMSNorm, RoPE (plain, linear and
//! llama3 scaling), grouped-query attention and the gated MLP.
//!
//! Every architecture in this crate is assembled from these pieces; they hold plain MLX arrays
//! and run their math through `mlx_rs::ops` / `mlx_rs::fast`.

use mlx_rs::fast::{self, ScaledDotProductAttentionMask};
use mlx_rs::nn::silu;
use mlx_rs::ops::{dequantize, quantized_matmul};
use mlx_rs::Array;

use crate::cache::KvCache;
use crate::error::Result;

/// Affine quantization parameters (MLX layout: packed `uint32` weights, per-group scales/biases).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuantSpec {
    /// Values per scale/bias group (32 for GGUF Q4_0/Q4_1/Q8_0).
    pub group_size: i32,
    /// Bits per value (4 or 8).
    pub bits: i32,
}

/// A linear layer `y = x Wᵀ (+ b)` with `W` of shape `[out, in]`.
pub enum Linear {
    /// Plain weights.
    Dense {
        /// `[out, in]`.
        weight: Array,
        /// Optional `[out]` bias.
        bias: Option<Array>,
    },
    /// Affine-quantized weights, kept packed.
    Quantized {
        /// Packed `[out, in * bits / 32]` `uint32`.
        weight: Array,
        /// `[out, in / group_size]`.
        scales: Array,
        /// `[out, in / group_size]`.
        biases: Array,
        /// Optional `[out]` bias.
        bias: Option<Array>,
        /// Group size and bits.
        spec: QuantSpec,
    },
}

impl Linear {
    /// Apply the layer to `x` (`[..., in]` → `[..., out]`).
    pub fn forward(&self, x: &Array) -> Result<Array> {
        let (y, bias) = match self {
            // Fused like MLX's nn.Linear (one rounding in half precision: bit-identical to mlx-lm).
            Linear::Dense {
                weight,
                bias: Some(b),
            } => return Ok(mlx_rs::ops::addmm(b, x, weight.t(), None, None)?),
            Linear::Dense { weight, bias } => (x.matmul(weight.t())?, bias),
            Linear::Quantized {
                weight,
                scales,
                biases,
                bias,
                spec,
            } => (
                quantized_matmul(x, weight, scales, biases, true, spec.group_size, spec.bits)?,
                bias,
            ),
        };
        match bias {
            Some(b) => Ok(y.add(b)?),
            None => Ok(y),
        }
    }

    /// The weights as a dense `[out, in]` matrix (dequantized when needed).
    pub fn dense_weight(&self) -> Result<Array> {
        match self {
            Linear::Dense { weight, .. } => Ok(weight.clone()),
            Linear::Quantized {
                weight,
                scales,
                biases,
                spec,
                ..
            } => Ok(dequantize(
                weight,
                scales,
                biases,
                spec.group_size,
                spec.bits,
            )?),
        }
    }

    /// All arrays of the layer (for evaluation at load time).
    pub fn arrays(&self) -> Vec<&Array> {
        match self {
            Linear::Dense { weight, bias } => std::iter::once(weight).chain(bias).collect(),
            Linear::Quantized {
                weight,
                scales,
                biases,
                bias,
                ..
            } => [weight, scales, biases].into_iter().chain(bias).collect(),
        }
    }
}

/// Token embedding table; doubles as the output projection when embeddings are tied.
pub struct Embedding {
    /// The table as a (possibly quantized) `[vocab, dim]` linear layer.
    pub table: Linear,
}

impl Embedding {
    /// Look up `tokens` (`[B, L]` int32) → `[B, L, dim]`.
    pub fn forward(&self, tokens: &Array) -> Result<Array> {
        match &self.table {
            Linear::Dense { weight, .. } => Ok(weight.take_axis(tokens, 0)?),
            Linear::Quantized {
                weight,
                scales,
                biases,
                spec,
                ..
            } => {
                let w = weight.take_axis(tokens, 0)?;
                let s = scales.take_axis(tokens, 0)?;
                let b = biases.take_axis(tokens, 0)?;
                Ok(dequantize(&w, &s, &b, spec.group_size, spec.bits)?.as_dtype(scales.dtype())?)
            }
        }
    }

    /// Project hidden states onto the vocabulary (tied output head).
    pub fn as_linear(&self, x: &Array) -> Result<Array> {
        self.table.forward(x)
    }
}

/// Root-mean-square normalisation with a learned gain.
pub struct RmsNorm {
    /// `[dim]` gain.
    pub weight: Array,
    /// Epsilon added to the mean square.
    pub eps: f32,
}

impl RmsNorm {
    /// Normalise the last axis of `x`.
    pub fn forward(&self, x: &Array) -> Result<Array> {
        Ok(fast::rms_norm(x, Some(&self.weight), self.eps)?)
    }
}

/// RoPE scaling variants.
#[derive(Debug, Clone, PartialEq)]
pub enum RopeScaling {
    /// No scaling.
    None,
    /// Positions divided by `factor` (`rope_scaling.type = linear`).
    Linear {
        /// Divisor of the positions.
        factor: f32,
    },
    /// Llama 3.x frequency-dependent scaling.
    Llama3 {
        /// Scale applied to low frequencies.
        factor: f32,
        /// Wavelength boundary (low side), as a factor of the original context.
        low_freq_factor: f32,
        /// Wavelength boundary (high side).
        high_freq_factor: f32,
        /// Context length the model was trained with before scaling.
        original_max_position_embeddings: f32,
    },
    /// Explicit per-dimension divisors of the frequencies (GGUF `rope_freqs.weight`).
    Factors(Vec<f32>),
}

/// Rotary position embedding over the first `dims` features of each head.
pub struct Rope {
    dims: i32,
    traditional: bool,
    base: f32,
    scale: f32,
    /// Periods per rotated pair when scaling needs explicit frequencies.
    freqs: Option<Array>,
}

impl Rope {
    /// Build a RoPE. `traditional` rotates adjacent pairs (GGUF llama layout); otherwise the two
    /// halves of the head (Hugging Face layout).
    pub fn new(dims: i32, traditional: bool, base: f32, scaling: &RopeScaling) -> Self {
        let periods = |f: &dyn Fn(usize, f32) -> f32| -> Array {
            let v: Vec<f32> = (0..dims / 2)
                .map(|i| {
                    let p = base.powf(2.0 * i as f32 / dims as f32);
                    f(i as usize, p)
                })
                .collect();
            Array::from_slice(&v, &[dims / 2])
        };
        let (scale, freqs) = match scaling {
            RopeScaling::None => (1.0, None),
            RopeScaling::Linear { factor } => (1.0 / factor, None),
            RopeScaling::Factors(fs) => (
                1.0,
                Some(periods(&|i, p| p * fs.get(i).copied().unwrap_or(1.0))),
            ),
            RopeScaling::Llama3 {
                factor,
                low_freq_factor,
                high_freq_factor,
                original_max_position_embeddings: old,
            } => {
                let low_wavelen = old / low_freq_factor;
                let high_wavelen = old / high_freq_factor;
                let f = move |_: usize, p: f32| -> f32 {
                    let wavelen = 2.0 * std::f32::consts::PI * p;
                    if wavelen > low_wavelen {
                        p * factor
                    } else if wavelen > high_wavelen {
                        let smooth = (old / wavelen - low_freq_factor)
                            / (high_freq_factor - low_freq_factor);
                        p / ((1.0 - smooth) / factor + smooth)
                    } else {
                        p
                    }
                };
                (1.0, Some(periods(&f)))
            }
        };
        Rope {
            dims,
            traditional,
            base,
            scale,
            freqs,
        }
    }

    /// Rotate `x` (`[B, H, L, D]`) where row `b` starts at position `offsets[b]` (`[B]` int32):
    /// the rows of a padded batch.
    pub fn forward_rows(&self, x: &Array, offsets: &Array) -> Result<Array> {
        let base = if self.freqs.is_some() {
            None
        } else {
            Some(self.base)
        };
        Ok(fast::rope_dynamic(
            x,
            self.dims,
            self.traditional,
            base,
            self.scale,
            offsets,
            self.freqs.as_ref(),
        )?)
    }

    /// Rotate `x` (`[B, H, L, D]`) for positions `offset..offset+L`.
    pub fn forward(&self, x: &Array, offset: i32) -> Result<Array> {
        let base = if self.freqs.is_some() {
            None
        } else {
            Some(self.base)
        };
        Ok(fast::rope(
            x,
            self.dims,
            self.traditional,
            base,
            self.scale,
            offset,
            self.freqs.as_ref(),
        )?)
    }
}

/// Where this step's new positions sit, read from the cache before it is updated: one scalar
/// offset when no row of the cache is padded, or per-row offsets and the padding mask of a
/// padded batch ([`KvCache::stack`]). Every attention that supports batching goes through it.
pub enum StepPositions {
    /// Every row continues at this position.
    Scalar(i32),
    /// Row `r` continues at `offsets[r]`; `mask` hides padding (and later new positions).
    Rows {
        /// `[rows]` int32.
        offsets: Array,
        /// Boolean `[rows, 1, L, cols]`.
        mask: Array,
    },
}

impl StepPositions {
    /// Positions of `l` new tokens appended to `cache`.
    pub fn of(cache: &KvCache, l: i32) -> Self {
        match cache.padding() {
            Some(_) => StepPositions::Rows {
                offsets: cache.row_offsets(),
                mask: cache.batch_mask(l),
            },
            None => StepPositions::Scalar(cache.offset()),
        }
    }

    /// Rotate `x` (`[B, H, L, D]`) for these positions.
    pub fn rope(&self, rope: &Rope, x: &Array) -> Result<Array> {
        match self {
            StepPositions::Scalar(offset) => rope.forward(x, *offset),
            StepPositions::Rows { offsets, .. } => rope.forward_rows(x, offsets),
        }
    }

    /// The attention mask for `l` new positions: the batch mask, or causal when `l > 1`.
    pub fn mask(&self, l: i32) -> Option<ScaledDotProductAttentionMask<'_>> {
        match self {
            StepPositions::Rows { mask, .. } => Some(ScaledDotProductAttentionMask::Array(mask)),
            StepPositions::Scalar(_) => (l > 1).then_some(ScaledDotProductAttentionMask::Causal),
        }
    }
}

/// Multi-head attention with grouped key/value heads.
pub struct Attention {
    /// Query projection.
    pub q_proj: Linear,
    /// Key projection.
    pub k_proj: Linear,
    /// Value projection.
    pub v_proj: Linear,
    /// Output projection.
    pub o_proj: Linear,
    /// Query heads.
    pub n_heads: i32,
    /// Key/value heads.
    pub n_kv_heads: i32,
    /// Features per head.
    pub head_dim: i32,
    /// Positional embedding.
    pub rope: Rope,
    /// Per-head RMSNorm of queries and keys before RoPE (Qwen3); `None` elsewhere.
    pub qk_norm: Option<(RmsNorm, RmsNorm)>,
}

impl Attention {
    /// `x`: `[B, L, D]`; appends this step's keys/values to `cache`.
    pub fn forward(&self, x: &Array, cache: &mut KvCache) -> Result<Array> {
        let (b, l) = (x.dim(0), x.dim(1));
        let heads = |y: Array, n: i32| -> Result<Array> {
            Ok(y.reshape(&[b, l, n, self.head_dim])?
                .transpose_axes(&[0, 2, 1, 3])?)
        };
        let mut q = heads(self.q_proj.forward(x)?, self.n_heads)?;
        let mut k = heads(self.k_proj.forward(x)?, self.n_kv_heads)?;
        if let Some((qn, kn)) = &self.qk_norm {
            q = qn.forward(&q)?;
            k = kn.forward(&k)?;
        }
        let v = heads(self.v_proj.forward(x)?, self.n_kv_heads)?;
        // A padded batch (rows of different lengths) needs per-row positions and a mask that
        // hides each row's padding; everything else takes the scalar-offset path.
        let pos = StepPositions::of(cache, l);
        let q = pos.rope(&self.rope, &q)?;
        let k = pos.rope(&self.rope, &k)?;
        let (k, v) = cache.update(&k, &v)?;
        let scale = (self.head_dim as f32).powf(-0.5);
        let o = fast::scaled_dot_product_attention(&q, &k, &v, scale, pos.mask(l), None)?;
        let o = o
            .transpose_axes(&[0, 2, 1, 3])?
            .reshape(&[b, l, self.n_heads * self.head_dim])?;
        self.o_proj.forward(&o)
    }
}

/// The SwiGLU feed-forward block: `down(silu(gate(x)) * up(x))`.
pub struct Mlp {
    /// Gate projection.
    pub gate_proj: Linear,
    /// Up projection.
    pub up_proj: Linear,
    /// Down projection.
    pub down_proj: Linear,
}

impl Mlp {
    /// Apply the block.
    pub fn forward(&self, x: &Array) -> Result<Array> {
        let g = silu(self.gate_proj.forward(x)?)?;
        let u = self.up_proj.forward(x)?;
        self.down_proj.forward(&g.multiply(&u)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn llama3_scaling_keeps_high_frequencies_and_stretches_low_ones() {
        let s = RopeScaling::Llama3 {
            factor: 8.0,
            low_freq_factor: 1.0,
            high_freq_factor: 4.0,
            original_max_position_embeddings: 8192.0,
        };
        let r = Rope::new(64, false, 500000.0, &s);
        let f = r.freqs.as_ref().unwrap().as_slice::<f32>().to_vec();
        assert_eq!(f[0], 1.0);
        let last = 500000f32.powf(62.0 / 64.0);
        assert!((f[31] - last * 8.0).abs() / (last * 8.0) < 1e-5);
    }

    #[test]
    fn dense_linear_multiplies_by_the_transposed_weight() {
        let w = Array::from_slice(&[1.0f32, 0.0, 0.0, 2.0, 1.0, 1.0], &[3, 2]);
        let l = Linear::Dense {
            weight: w,
            bias: None,
        };
        let y = l
            .forward(&Array::from_slice(&[3.0f32, 4.0], &[1, 2]))
            .unwrap();
        assert_eq!(y.as_slice::<f32>(), &[3.0, 8.0, 7.0]);
    }

    #[test]
    fn quantized_linear_matches_its_dequantized_weight() {
        let v: Vec<f32> = (0..64 * 8)
            .map(|i| ((i * 37 % 17) as f32 - 8.0) / 8.0)
            .collect();
        let w = Array::from_slice(&v, &[8, 64]);
        let (q, s, b) = mlx_rs::ops::quantize(&w, 32, 4).unwrap();
        let spec = QuantSpec {
            group_size: 32,
            bits: 4,
        };
        let ql = Linear::Quantized {
            weight: q,
            scales: s,
            biases: b,
            bias: None,
            spec,
        };
        let dl = Linear::Dense {
            weight: ql.dense_weight().unwrap(),
            bias: None,
        };
        let x = Array::from_slice(&vec![0.5f32; 64], &[1, 64]);
        let (a, b) = (ql.forward(&x).unwrap(), dl.forward(&x).unwrap());
        for (p, q) in a.as_slice::<f32>().iter().zip(b.as_slice::<f32>()) {
            assert!((p - q).abs() < 1e-3, "{p} vs {q}");
        }
    }
}
