//! Shared layers: linear (dense, dense stored transposed, or affine-quantized), projections
//! fused into one matmul, embedding, RMSNorm, grouped-query attention and the gated MLP; RoPE
//! and step positions live in [`crate::rope`] and are re-exported here.
//!
//! Every architecture in this crate is assembled from these pieces; they hold plain MLX arrays
//! and run their math through `mlx_rs::ops` / `mlx_rs::fast`.

use mlx_rs::fast;
use mlx_rs::ops::{dequantize, quantized_matmul};
use mlx_rs::Array;

use crate::cache::KvCache;
use crate::error::Result;
use crate::hostmath::Gate;
use crate::packed::{Packed, PackedSource};
pub use crate::rope::{Rope, RopeScaling, StepPositions};

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
    /// Plain weights stored transposed, `Wᵀ` as a row-major `[in, out]` matrix, so the product
    /// is `x · Wᵀ` with no transpose flag. On the MLX CPU backend (OpenBLAS `sgemm`) this layout
    /// is what makes the one-row products of decoding fast: 1.1-1.3x per projection and 1.8x for
    /// a 49k-row output head, measured (docs/engine.md, "CPU weight layout"); chosen by
    /// `LoadOptions::transpose_dense`.
    DenseT {
        /// The packed twin for decode steps on the CPU ([`crate::packed`]); declared first so
        /// that it is dropped (unregistered) before the weights.
        packed: Option<Packed>,
        /// `[in, out]`, row-major.
        weight_t: Array,
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
            Linear::DenseT {
                packed,
                weight_t,
                bias: Some(b),
            } => {
                if let Some(p) = packed {
                    p.prepare(weight_t, x);
                }
                return Ok(mlx_rs::ops::addmm(b, x, weight_t, None, None)?);
            }
            Linear::DenseT {
                packed,
                weight_t,
                bias,
            } => {
                if let Some(p) = packed {
                    p.prepare(weight_t, x);
                }
                (x.matmul(weight_t)?, bias)
            }
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
            Linear::DenseT { weight_t, .. } => Ok(weight_t.t()),
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
            Linear::DenseT { weight_t, bias, .. } => {
                std::iter::once(weight_t).chain(bias).collect()
            }
            Linear::Quantized {
                weight,
                scales,
                biases,
                bias,
                ..
            } => [weight, scales, biases].into_iter().chain(bias).collect(),
        }
    }

    /// Output features.
    pub fn out_features(&self) -> i32 {
        match self {
            Linear::DenseT { weight_t, .. } => weight_t.dim(1),
            Linear::Dense { weight, .. } | Linear::Quantized { weight, .. } => weight.dim(0),
        }
    }

    /// This layer in the transposed dense layout ([`Linear::DenseT`]); quantized layers and
    /// layers already transposed are returned unchanged. The copy is lazy (made when the
    /// weights are evaluated at load).
    pub fn transposed(self) -> Result<Linear> {
        self.transposed_packed(None)
    }

    /// [`Linear::transposed`], keeping the quantized arrays the weights were dequantized from
    /// for the packed decode route ([`crate::packed`]).
    pub fn transposed_packed(self, source: Option<PackedSource>) -> Result<Linear> {
        match self {
            Linear::Dense { weight, bias } => Ok(Linear::DenseT {
                packed: source.map(Packed::new),
                weight_t: weight.t().contiguous()?,
                bias,
            }),
            other => Ok(other),
        }
    }
}

/// Several projections of the same input (q/k/v, gate/up). When every part is a transposed
/// dense layer they are concatenated into one `[in, Σ out]` matrix at load and applied as one
/// matmul whose output is split again: fewer, larger products, which the CPU backend runs
/// faster than the separate ones (no change to any output element: each is the same dot
/// product). Other layouts keep the parts separate.
pub enum Projections {
    /// Applied one by one.
    Split(Vec<Linear>),
    /// One matmul; `bounds` are the split points along the last axis.
    Fused {
        /// The concatenated layer.
        linear: Linear,
        /// Cumulative output sizes of all parts but the last.
        bounds: Vec<i32>,
    },
}

impl Projections {
    /// Group `parts`, fusing them when they are all [`Linear::DenseT`] with matching biases.
    pub fn new(parts: Vec<Linear>) -> Result<Self> {
        let all_t = parts.iter().all(|p| matches!(p, Linear::DenseT { .. }));
        let biased = parts
            .iter()
            .filter(|p| matches!(p, Linear::DenseT { bias: Some(_), .. }))
            .count();
        if parts.len() < 2 || !all_t || (biased != 0 && biased != parts.len()) {
            return Ok(Projections::Split(parts));
        }
        let mut bounds = Vec::with_capacity(parts.len() - 1);
        let mut acc = 0;
        for p in &parts[..parts.len() - 1] {
            acc += p.out_features();
            bounds.push(acc);
        }
        let (mut ws, mut bs, mut srcs) = (Vec::new(), Vec::new(), Vec::new());
        let n = parts.len();
        for p in parts {
            if let Linear::DenseT {
                packed,
                weight_t,
                bias,
            } = p
            {
                ws.push(weight_t);
                bs.extend(bias);
                srcs.extend(packed.and_then(|p| p.take_source()));
            }
        }
        let packed = if srcs.len() == n {
            PackedSource::concat(&srcs)?.map(Packed::new)
        } else {
            None
        };
        let weight_t = mlx_rs::ops::concatenate(&ws, 1)?;
        let bias = if bs.is_empty() {
            None
        } else {
            Some(mlx_rs::ops::concatenate(&bs, 0)?)
        };
        Ok(Projections::Fused {
            linear: Linear::DenseT {
                packed,
                weight_t,
                bias,
            },
            bounds,
        })
    }

    /// Apply every part to `x`, in order.
    pub fn forward(&self, x: &Array) -> Result<Vec<Array>> {
        match self {
            Projections::Split(parts) => parts.iter().map(|p| p.forward(x)).collect(),
            Projections::Fused { linear, bounds } => {
                Ok(linear.forward(x)?.split_at_indices(bounds, -1)?)
            }
        }
    }

    /// [`Projections::forward`] for exactly `N` parts.
    pub fn forward_n<const N: usize>(&self, x: &Array) -> Result<[Array; N]> {
        let outs = self.forward(x)?;
        let got = outs.len();
        outs.try_into().map_err(|_| {
            crate::error::ModelError::Invalid(format!("{got} projections where {N} are expected"))
        })
    }

    /// `gate(p0(x)) * p1(x)` for a gate/up pair: a fused pair is one product whose gate half
    /// goes through the host math of long CPU chunks ([`crate::hostmath::gated_product`]).
    pub fn gated(&self, x: &Array, gate: Gate) -> Result<Array> {
        if let Projections::Fused { linear, bounds } = self {
            if let [half] = bounds[..] {
                return crate::hostmath::gated_product(&linear.forward(x)?, half, gate);
            }
        }
        let [g, u] = self.forward_n(x)?;
        Ok(gate.mlx(&g)?.multiply(&u)?)
    }

    /// All arrays (for evaluation at load time).
    pub fn arrays(&self) -> Vec<&Array> {
        match self {
            Projections::Split(parts) => parts.iter().flat_map(|p| p.arrays()).collect(),
            Projections::Fused { linear, .. } => linear.arrays(),
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
            // `[dim, B, L]` columns of the transposed table, moved to `[B, L, dim]`.
            Linear::DenseT { weight_t, .. } => {
                Ok(weight_t.take_axis(tokens, 1)?.transpose_axes(&[1, 2, 0])?)
            }
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

/// Multi-head attention with grouped key/value heads.
pub struct Attention {
    /// Query, key and value projections, in that order (fused on the CPU layout).
    pub qkv: Projections,
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
        let [q, k, v] = self.qkv.forward_n(x)?;
        let mut q = heads(q, self.n_heads)?;
        let mut k = heads(k, self.n_kv_heads)?;
        if let Some((qn, kn)) = &self.qk_norm {
            q = qn.forward(&q)?;
            k = kn.forward(&k)?;
        }
        let v = heads(v, self.n_kv_heads)?;
        // A padded batch (rows of different lengths) needs per-row positions and a mask that
        // hides each row's padding; everything else takes the scalar-offset path.
        let pos = StepPositions::of(cache, l);
        let q = pos.rope(&self.rope, &q)?;
        let k = pos.rope(&self.rope, &k)?;
        let (k, v) = cache.update(&k, &v)?;
        let scale = (self.head_dim as f32).powf(-0.5);
        let o = crate::sdpa::attention(&q, &k, &v, scale, pos.mask(l))?;
        let o = o
            .transpose_axes(&[0, 2, 1, 3])?
            .reshape(&[b, l, self.n_heads * self.head_dim])?;
        self.o_proj.forward(&o)
    }
}

/// The SwiGLU feed-forward block: `down(silu(gate(x)) * up(x))`.
pub struct Mlp {
    /// Gate and up projections, in that order (fused on the CPU layout).
    pub gate_up: Projections,
    /// Down projection.
    pub down_proj: Linear,
}

impl Mlp {
    /// Build the block from its three projections.
    pub fn new(gate_proj: Linear, up_proj: Linear, down_proj: Linear) -> Result<Self> {
        Ok(Mlp {
            gate_up: Projections::new(vec![gate_proj, up_proj])?,
            down_proj,
        })
    }

    /// Apply the block.
    pub fn forward(&self, x: &Array) -> Result<Array> {
        self.down_proj.forward(&self.gate_up.gated(x, Gate::Silu)?)
    }

    /// All arrays (for evaluation at load time).
    pub fn arrays(&self) -> Vec<&Array> {
        let mut v = self.gate_up.arrays();
        v.extend(self.down_proj.arrays());
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    fn ramp(n: usize, k: usize) -> Vec<f32> {
        (0..n).map(|i| ((i * k % 23) as f32 - 11.0) / 7.0).collect()
    }

    fn close(a: &Array, b: &Array) {
        assert_eq!(a.shape(), b.shape());
        let (a, b) = (a.contiguous().unwrap(), b.contiguous().unwrap());
        for (p, q) in a.as_slice::<f32>().iter().zip(b.as_slice::<f32>()) {
            assert!((p - q).abs() <= 1e-5 * (1.0 + p.abs()), "{p} vs {q}");
        }
    }

    #[test]
    fn transposed_dense_linear_gives_the_row_layout_result_with_and_without_bias() {
        let w = Array::from_slice(&ramp(6 * 5, 7), &[6, 5]);
        let x = Array::from_slice(&ramp(3 * 5, 11), &[1, 3, 5]);
        for bias in [None, Some(Array::from_slice(&ramp(6, 5), &[6]))] {
            let rows = Linear::Dense {
                weight: w.clone(),
                bias: bias.clone(),
            };
            let t = Linear::Dense {
                weight: w.clone(),
                bias,
            }
            .transposed()
            .unwrap();
            assert!(matches!(t, Linear::DenseT { .. }));
            assert_eq!(t.out_features(), 6);
            close(&rows.forward(&x).unwrap(), &t.forward(&x).unwrap());
            close(&rows.dense_weight().unwrap(), &t.dense_weight().unwrap());
        }
    }

    #[test]
    fn fused_projections_split_back_into_the_separate_outputs() {
        let x = Array::from_slice(&ramp(2 * 4, 3), &[1, 2, 4]);
        let make = |out: i32, seed: usize, bias: bool| Linear::Dense {
            weight: Array::from_slice(&ramp(out as usize * 4, seed), &[out, 4]),
            bias: bias.then(|| Array::from_slice(&ramp(out as usize, seed + 1), &[out])),
        };
        for bias in [false, true] {
            let sizes = [(6, 5), (2, 9), (2, 13)];
            let separate: Vec<Array> = sizes
                .iter()
                .map(|&(o, s)| make(o, s, bias).forward(&x).unwrap())
                .collect();
            let parts = sizes
                .iter()
                .map(|&(o, s)| make(o, s, bias).transposed().unwrap())
                .collect();
            let p = Projections::new(parts).unwrap();
            assert!(matches!(p, Projections::Fused { .. }), "bias {bias}");
            let fused = p.forward(&x).unwrap();
            assert_eq!(fused.len(), 3);
            for (a, b) in separate.iter().zip(&fused) {
                close(a, b);
            }
        }
    }

    #[test]
    fn projections_in_the_row_layout_or_with_mixed_biases_stay_split() {
        let dense = |bias: bool| Linear::Dense {
            weight: Array::from_slice(&ramp(8, 3), &[2, 4]),
            bias: bias.then(|| Array::from_slice(&[1.0f32, 2.0], &[2])),
        };
        let rows = Projections::new(vec![dense(false), dense(false)]).unwrap();
        assert!(matches!(rows, Projections::Split(_)));
        let mixed = Projections::new(vec![
            dense(true).transposed().unwrap(),
            dense(false).transposed().unwrap(),
        ])
        .unwrap();
        assert!(matches!(mixed, Projections::Split(_)));
        assert_eq!(
            mixed
                .forward(&Array::from_slice(&[1.0f32; 4], &[1, 4]))
                .unwrap()
                .len(),
            2
        );
    }

    #[test]
    fn embedding_lookup_and_tied_head_agree_in_both_layouts() {
        let table = Array::from_slice(&ramp(7 * 3, 5), &[7, 3]);
        let rows = Embedding {
            table: Linear::Dense {
                weight: table.clone(),
                bias: None,
            },
        };
        let t = Embedding {
            table: Linear::Dense {
                weight: table,
                bias: None,
            }
            .transposed()
            .unwrap(),
        };
        let ids = Array::from_slice(&[6i32, 0, 3, 3, 1, 2], &[2, 3]);
        let (a, b) = (rows.forward(&ids).unwrap(), t.forward(&ids).unwrap());
        assert_eq!(b.shape(), &[2, 3, 3]);
        close(&a, &b);
        let h = Array::from_slice(&ramp(2 * 3, 2), &[1, 2, 3]);
        close(&rows.as_linear(&h).unwrap(), &t.as_linear(&h).unwrap());
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
