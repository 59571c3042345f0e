//! Exponential-heavy elementwise math of long CPU chunks, computed on the host: the SwiGLU gate
//! of the MLP blocks ([`gated`]) and the softmax of causal attention ([`causal_softmax`]),
//! called by `nn::Mlp` and `sdpa` during prefill, between two matrix products.
//!
//! Why: on the x86_64 MLX CPU wheel every `exp` is a scalar call (`simd::exp<float, 1>`, with a
//! libm `fmaf` call per polynomial step) and all non-BLAS ops of a stream run on one thread, so
//! in a 512-token prefill the sigmoid and softmax took about as long as all the matrix products
//! (docs/engine.md, "Host math"). Here the same math runs as a branch-free polynomial that the
//! compiler vectorizes, split over the cores. The price is one evaluation (host sync) per call,
//! so it is used only for chunks of at least [`MIN_ELEMENTS`] elements on the CPU device; decode
//! steps and the GPU devices keep MLX's kernels. `OLLMLX_HOST_MATH=0` turns it off.

use std::sync::OnceLock;

use mlx_rs::{Array, Device, DeviceType, Dtype};

use crate::error::Result;

/// Smallest call (elements) worth a host sync; below it MLX's own kernel runs.
pub const MIN_ELEMENTS: usize = 1 << 15;

/// Whether host math is in force: the CPU default device and no `OLLMLX_HOST_MATH=0`.
pub fn enabled() -> bool {
    static ENV: OnceLock<bool> = OnceLock::new();
    let allowed =
        *ENV.get_or_init(|| std::env::var("OLLMLX_HOST_MATH").map_or(true, |v| v.trim() != "0"));
    allowed
        && Device::try_default()
            .and_then(|d| d.get_type())
            .is_ok_and(|t| matches!(t, DeviceType::Cpu))
}

/// Worker threads for one call (the machine's cores, at most 8).
fn threads() -> usize {
    static N: OnceLock<usize> = OnceLock::new();
    *N.get_or_init(|| {
        std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .clamp(1, 8)
    })
}

/// `e^x` in single precision, branch-free so that loops over it vectorize: Cody-Waite reduction
/// by `ln 2`, a degree-7 Taylor polynomial on `|f| <= ln(2)/2`, and the power of two put into
/// the exponent bits. Within 2 ulp of the true value on `[-87, 88]`; `0` below, `inf` above,
/// NaN stays NaN.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    // ln 2 split so that `r * LN2_HI` is exact for |r| <= 128.
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // 1.5 * 2^23: adding it rounds to an integer held in the low mantissa bits.
    const MAGIC: f32 = 12_582_912.0;
    let xc = x.clamp(-87.0, 88.0);
    let t = xc * LOG2E + MAGIC;
    let r = t - MAGIC;
    let n = (t.to_bits() as i32).wrapping_sub(MAGIC.to_bits() as i32);
    let f = xc - r * LN2_HI - r * LN2_LO;
    let p = 1.0
        + f * (1.0
            + f * (0.5
                + f * (1.0 / 6.0
                    + f * (1.0 / 24.0
                        + f * (1.0 / 120.0 + f * (1.0 / 720.0 + f * (1.0 / 5040.0)))))));
    let y = p * f32::from_bits(((n + 127) as u32) << 23);
    let y = if x > 88.0 { f32::INFINITY } else { y };
    let y = if x < -87.0 { 0.0 } else { y };
    if x.is_nan() {
        x
    } else {
        y
    }
}

/// Run `f(first_row, rows)` over `out` split into row ranges, one per worker thread.
fn par_rows(out: &mut [f32], row_len: usize, f: impl Fn(usize, &mut [f32]) + Sync) {
    let rows = out.len() / row_len.max(1);
    let per = rows.div_ceil(threads()).max(1);
    if per >= rows {
        return f(0, out);
    }
    std::thread::scope(|s| {
        for (i, part) in out.chunks_mut(per * row_len).enumerate() {
            let f = &f;
            s.spawn(move || f(i * per, part));
        }
    });
}

/// The activation on the gate half of a gated MLP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// `silu(g) = g * sigmoid(g)` (SwiGLU: llama, qwen, mistral, phi3).
    Silu,
    /// The tanh approximation of GELU (GeGLU: gemma), computed as the equal
    /// `g * sigmoid(2 * sqrt(2 / pi) * (g + 0.044715 g^3))`.
    GeluTanh,
}

impl Gate {
    /// The activation through MLX's own kernels (the path for everything the host skips).
    pub fn mlx(self, g: &Array) -> Result<Array> {
        Ok(match self {
            Gate::Silu => mlx_rs::nn::silu(g)?,
            Gate::GeluTanh => mlx_rs::nn::gelu_approximate(g)?,
        })
    }

    #[inline(always)]
    fn apply(self, g: f32) -> f32 {
        match self {
            Gate::Silu => g / (1.0 + exp(-g)),
            Gate::GeluTanh => {
                // 2 * sqrt(2 / pi)
                const K: f32 = 2.0 * std::f32::consts::FRAC_2_SQRT_PI / std::f32::consts::SQRT_2;
                g / (1.0 + exp(-K * (g + 0.044_715 * g * g * g)))
            }
        }
    }
}

/// `gate(g) * u` for a fused gate/up output `gu` (`[..., 2F]`, gate first): `[..., F]`.
/// `None` when the host path does not apply (not the CPU, not float32, too small, or not
/// contiguous), so that the caller runs MLX's kernels instead.
pub fn gated(gu: &Array, gate: Gate) -> Result<Option<Array>> {
    let shape = gu.shape().to_vec();
    let Some(&two_f) = shape.last() else {
        return Ok(None);
    };
    if two_f % 2 != 0 || gu.dtype() != Dtype::Float32 || gu.size() < MIN_ELEMENTS || !enabled() {
        return Ok(None);
    }
    let Ok(src) = gu.try_as_slice::<f32>() else {
        return Ok(None);
    };
    let f = (two_f / 2) as usize;
    let mut out = vec![0f32; src.len() / 2];
    par_rows(&mut out, f, |row0, part| {
        for (i, o) in part.chunks_mut(f).enumerate() {
            let row = &src[(row0 + i) * 2 * f..(row0 + i + 1) * 2 * f];
            let (g, u) = row.split_at(f);
            match gate {
                Gate::Silu => {
                    for ((o, &g), &u) in o.iter_mut().zip(g).zip(u) {
                        *o = Gate::Silu.apply(g) * u;
                    }
                }
                Gate::GeluTanh => {
                    for ((o, &g), &u) in o.iter_mut().zip(g).zip(u) {
                        *o = Gate::GeluTanh.apply(g) * u;
                    }
                }
            }
        }
    });
    let mut out_shape = shape;
    if let Some(last) = out_shape.last_mut() {
        *last = two_f / 2;
    }
    Ok(Some(Array::from_slice(&out, &out_shape)))
}

/// `gate(g) * u` of a fused gate/up product `gu` (`[..., 2F]`, gate first, `F == half`): on the
/// host when [`gated`] takes it, else split and computed by MLX.
pub fn gated_product(gu: &Array, half: i32, gate: Gate) -> Result<Array> {
    if gu.dim(-1) == 2 * half {
        if let Some(h) = gated(gu, gate)? {
            return Ok(h);
        }
    }
    let parts = gu.split_at_indices(&[half], -1)?;
    Ok(gate.mlx(&parts[0])?.multiply(&parts[1])?)
}

/// Softmax of `scale * row[..visible]` into `out[..visible]`, zeros after.
fn softmax_row(row: &[f32], visible: usize, scale: f32, out: &mut [f32]) {
    let visible = visible.min(row.len());
    let (live, dead) = out.split_at_mut(visible);
    dead.fill(0.0);
    if visible == 0 {
        return;
    }
    let src = &row[..visible];
    let max = src.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    // Eight partial sums so that the sum vectorizes too.
    let mut acc = [0f32; 8];
    let mut chunks = live.chunks_exact_mut(8);
    let mut src_chunks = src.chunks_exact(8);
    for (o, s) in (&mut chunks).zip(&mut src_chunks) {
        for k in 0..8 {
            o[k] = exp((s[k] - max) * scale);
            acc[k] += o[k];
        }
    }
    let mut sum: f32 = acc.iter().sum();
    for (o, &s) in chunks
        .into_remainder()
        .iter_mut()
        .zip(src_chunks.remainder())
    {
        *o = exp((s - max) * scale);
        sum += *o;
    }
    let inv = 1.0 / sum;
    for o in live.iter_mut() {
        *o *= inv;
    }
}

/// Causal softmax of attention scores `[rows, keys]` (row-major, unscaled `q . k`): row `r`
/// sees keys `0..=keys - block + r % block`, the last `block` keys being the chunk's own
/// positions, as MLX's causal mask aligns them. Returns the probabilities in the same layout.
pub fn causal_softmax(scores: &[f32], keys: usize, block: usize, scale: f32) -> Vec<f32> {
    let mut out = vec![0f32; scores.len()];
    if keys == 0 || block == 0 {
        return out;
    }
    par_rows(&mut out, keys, |row0, part| {
        for (i, o) in part.chunks_mut(keys).enumerate() {
            let r = row0 + i;
            let visible = keys - block + r % block + 1;
            softmax_row(&scores[r * keys..(r + 1) * keys], visible, scale, o);
        }
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ulps(a: f32, b: f32) -> i64 {
        (a.to_bits() as i64 - b.to_bits() as i64).abs()
    }

    #[test]
    fn exp_is_within_two_ulp_over_the_float_range() {
        let mut worst = 0;
        let mut x = -87.0f32;
        while x <= 88.0 {
            let want = (x as f64).exp() as f32;
            worst = worst.max(ulps(exp(x), want));
            x += 0.001_37;
        }
        for x in [0.0f32, -0.0, 1e-8, -1e-8, 1.0, -1.0, 0.346_57, -0.346_57] {
            worst = worst.max(ulps(exp(x), (x as f64).exp() as f32));
        }
        assert!(worst <= 2, "worst error {worst} ulp");
    }

    #[test]
    fn exp_saturates_and_keeps_nan() {
        assert_eq!(exp(-88.0), 0.0);
        assert_eq!(exp(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp(89.0), f32::INFINITY);
        assert_eq!(exp(f32::INFINITY), f32::INFINITY);
        assert!(exp(f32::NAN).is_nan());
    }

    #[test]
    fn gated_silu_and_gelu_match_mlx_activation_times_up() {
        let (rows, f) = (40usize, 1024usize);
        let vals: Vec<f32> = (0..rows * 2 * f)
            .map(|i| ((i * 7919 % 2003) as f32 / 2003.0 - 0.5) * 24.0)
            .collect();
        let gu = Array::from_slice(&vals, &[1, rows as i32, 2 * f as i32]);
        let parts = gu.split_at_indices(&[f as i32], -1).unwrap();
        for gate in [Gate::Silu, Gate::GeluTanh] {
            let got = gated(&gu, gate)
                .unwrap()
                .expect("host path for a 80k-element chunk");
            let want = gate.mlx(&parts[0]).unwrap().multiply(&parts[1]).unwrap();
            assert_eq!(got.shape(), want.shape());
            let (g, w) = (got.as_slice::<f32>(), want.as_slice::<f32>());
            for (i, (a, b)) in g.iter().zip(w).enumerate() {
                assert!(
                    (a - b).abs() <= 1e-5 * b.abs().max(1.0),
                    "{gate:?} {i}: {a} vs {b}"
                );
            }
        }
    }

    #[test]
    fn small_chunks_are_left_to_mlx() {
        let gu = Array::from_slice(&[0.5f32; 64], &[1, 2, 32]);
        assert!(gated(&gu, Gate::Silu).unwrap().is_none());
        let via = gated_product(&gu, 16, Gate::Silu).unwrap();
        assert_eq!(via.shape(), &[1, 2, 16]);
    }

    #[test]
    fn softmax_rows_sum_to_one_and_ignore_later_keys() {
        // 3 rows of a 3-token chunk after 2 cached keys: rows see 3, 4 and 5 keys.
        let keys = 5;
        let scores: Vec<f32> = (0..15).map(|i| (i as f32 * 0.7).sin() * 4.0).collect();
        let p = causal_softmax(&scores, keys, 3, 0.5);
        for r in 0..3 {
            let row = &p[r * keys..(r + 1) * keys];
            let visible = 3 + r;
            assert!(row[visible..].iter().all(|&v| v == 0.0), "row {r}: {row:?}");
            let sum: f32 = row.iter().sum();
            assert!((sum - 1.0).abs() < 1e-6, "row {r} sums to {sum}");
            let s = &scores[r * keys..r * keys + visible];
            let m = s
                .iter()
                .copied()
                .fold(f64::NEG_INFINITY, |a, b| a.max(b as f64));
            let z: f64 = s.iter().map(|&v| ((v as f64 - m) * 0.5).exp()).sum();
            for (j, &v) in s.iter().enumerate() {
                let want = ((v as f64 - m) * 0.5).exp() / z;
                assert!((row[j] as f64 - want).abs() < 1e-6, "row {r} key {j}");
            }
        }
    }

    #[test]
    fn a_row_split_over_threads_equals_one_thread() {
        // Many rows so that par_rows splits them; the result must not depend on the split.
        let (keys, block, rows) = (100, 64, 128);
        let scores: Vec<f32> = (0..rows * keys)
            .map(|i| ((i * 31 % 97) as f32) * 0.1)
            .collect();
        let p = causal_softmax(&scores, keys, block, 1.0 / 8.0);
        for r in 0..rows {
            let mut want = vec![0f32; keys];
            let visible = keys - block + r % block + 1;
            softmax_row(
                &scores[r * keys..(r + 1) * keys],
                visible,
                1.0 / 8.0,
                &mut want,
            );
            assert_eq!(&p[r * keys..(r + 1) * keys], &want[..], "row {r}");
        }
    }
}
