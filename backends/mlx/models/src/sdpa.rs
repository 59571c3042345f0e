//! Scaled dot-product attention for the decoder layers: where every attention block of this
//! crate (`nn::Attention`, gemma3, phi3, qwen3_moe) turns rotated queries and cached keys/values into
//! its output, between the KV cache update and the output projection.
//!
//! On the MLX CPU device, `fast::scaled_dot_product_attention` computes a causal chunk of `L`
//! new positions against all `S` keys as full `L x S` score matrices: the masked upper triangle
//! is multiplied, exponentiated (one scalar `exp` per element on the x86_64 wheel) and
//! multiplied again before it contributes zeros. Here a long causal chunk is split into blocks of
//! query rows, each attending only to the keys up to its last row, which skips most of the
//! masked triangle (a 512-token chunk in 128-row blocks does 5/8 of the work) and keeps each
//! block's scores in cache. Each row sees the same keys with the same mask as before (the keys
//! a block leaves out are masked for all its rows), so only the summation shape of the
//! products changes. Metal and CUDA run MLX's fused kernels, which skip masked tiles
//! themselves: there the chunk is passed through whole.
//!
//! On the CPU, a causal chunk with enough scores ([`crate::hostmath::MIN_ELEMENTS`]) is
//! computed by [`host_block`]: the scores and the value products stay BLAS matrix products and
//! the masked softmax runs in [`crate::hostmath`] (vectorized `exp` on every core, masked
//! entries never exponentiated) instead of MLX's scalar kernel.
//!
//! `OLLMLX_CAUSAL_BLOCK=<rows>` sets the block height (`0` turns the split off). (Sharing the
//! blocks between two CPU streams, so that both cores run the scalar softmax, was tried: no
//! measurable gain on the 2-core box, as OpenBLAS's spinning worker holds the second core.)

use std::sync::OnceLock;

use mlx_rs::fast::{self, ScaledDotProductAttentionMask};
use mlx_rs::ops::concatenate;
use mlx_rs::ops::indexing::IndexOp;
use mlx_rs::{Array, Device, DeviceType, Dtype};

use crate::error::Result;
use crate::hostmath;

/// Query rows per block on the CPU when `OLLMLX_CAUSAL_BLOCK` does not say otherwise.
pub const DEFAULT_CAUSAL_BLOCK: i32 = 128;

fn default_device_is_cpu() -> bool {
    Device::try_default()
        .and_then(|d| d.get_type())
        .is_ok_and(|t| matches!(t, DeviceType::Cpu))
}

/// The block height in force: the environment override, else the default on the CPU device,
/// else 0 (no split).
fn causal_block() -> i32 {
    static ENV: OnceLock<Option<i32>> = OnceLock::new();
    let env = ENV.get_or_init(|| {
        let v = std::env::var("OLLMLX_CAUSAL_BLOCK").ok()?;
        v.trim().parse::<i32>().ok().map(|v| v.max(0))
    });
    if let Some(v) = *env {
        return v;
    }
    if default_device_is_cpu() {
        DEFAULT_CAUSAL_BLOCK
    } else {
        0
    }
}

/// Attention of `q` (`[B, H, L, D]`) over `k`/`v` (`[B, Hkv, S, D]`, `S >= L`, the new positions
/// last) with `mask`; a causal chunk of at least two blocks goes through [`causal_blocks`].
pub fn attention(
    q: &Array,
    k: &Array,
    v: &Array,
    scale: f32,
    mask: Option<ScaledDotProductAttentionMask<'_>>,
) -> Result<Array> {
    if let Some(ScaledDotProductAttentionMask::Causal) = mask {
        let block = causal_block();
        let l = q.dim(2);
        let scores = (q.dim(0) * q.dim(1) * l) as usize * k.dim(2) as usize;
        if q.dtype() == Dtype::Float32
            && k.dtype() == Dtype::Float32
            && scores >= hostmath::MIN_ELEMENTS
            && hostmath::enabled()
        {
            let block = if block > 0 && l >= 2 * block {
                block
            } else {
                l
            };
            return blockwise(q, k, v, scale, block, host_block);
        }
        if block > 0 && l >= 2 * block {
            return causal_blocks(q, k, v, scale, block);
        }
    }
    Ok(fast::scaled_dot_product_attention(
        q, k, v, scale, mask, None,
    )?)
}

/// Causal attention in blocks of `block` query rows: block `i` (rows `r0..r1` of the chunk)
/// attends to keys `0..S-L+r1` with the causal mask aligned to its last row, and the blocks'
/// outputs are joined along the sequence axis.
pub fn causal_blocks(q: &Array, k: &Array, v: &Array, scale: f32, block: i32) -> Result<Array> {
    blockwise(q, k, v, scale, block, |qb, kb, vb, scale| {
        Ok(fast::scaled_dot_product_attention(
            qb,
            kb,
            vb,
            scale,
            ScaledDotProductAttentionMask::Causal,
            None,
        )?)
    })
}

/// One causal block on the host path: the scores `q . k` as BLAS products (one per KV head,
/// its query heads stacked as rows), the masked softmax in [`hostmath::causal_softmax`], and
/// the products with the values. Shapes as [`attention`]'s, for a block of `L` rows over `S`
/// keys whose last `L` are its own positions.
pub fn host_block(q: &Array, k: &Array, v: &Array, scale: f32) -> Result<Array> {
    let (b, h, l, d) = (q.dim(0), q.dim(1), q.dim(2), q.dim(3));
    let (hkv, s) = (k.dim(1), k.dim(2));
    let rep = h / hkv.max(1);
    let qg = q.reshape(&[b, hkv, rep * l, d])?;
    let scores = qg.matmul(k.swap_axes(-1, -2)?)?;
    let probs =
        hostmath::causal_softmax(scores.try_as_slice::<f32>()?, s as usize, l as usize, scale);
    let probs = Array::from_slice(&probs, &[b, hkv, rep * l, s]);
    Ok(probs.matmul(v)?.reshape(&[b, h, l, d])?)
}

/// Causal attention in blocks of `block` query rows, each computed by `one` over the keys up to
/// its last row.
fn blockwise(
    q: &Array,
    k: &Array,
    v: &Array,
    scale: f32,
    block: i32,
    one: impl Fn(&Array, &Array, &Array, f32) -> Result<Array>,
) -> Result<Array> {
    let (l, s) = (q.dim(2), k.dim(2));
    let before = s - l;
    let mut outs = Vec::with_capacity(((l + block - 1) / block.max(1)) as usize);
    let mut r0 = 0;
    while r0 < l {
        let r1 = (r0 + block.max(1)).min(l);
        let keys = before + r1;
        let qb = q.index((.., .., r0..r1, ..));
        let (kb, vb) = if keys == s {
            (k.clone(), v.clone())
        } else {
            (k.index((.., .., ..keys, ..)), v.index((.., .., ..keys, ..)))
        };
        outs.push(one(&qb, &kb, &vb, scale)?);
        r0 = r1;
    }
    if outs.len() == 1 {
        return Ok(outs.remove(0));
    }
    Ok(concatenate(&outs, 2)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(a: &Array) -> Vec<f32> {
        a.contiguous().unwrap().as_slice::<f32>().to_vec()
    }

    fn max_abs_diff(a: &Array, b: &Array) -> f32 {
        let (a, b) = (host(a), host(b));
        assert_eq!(a.len(), b.len());
        a.iter()
            .zip(&b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max)
    }

    /// Deterministic values in [-1, 1) from a 64-bit LCG.
    fn noise(n: usize, seed: u64) -> Vec<f32> {
        let mut x = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (0..n)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((x >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    fn qkv(l: i32, s: i32, seed: u64) -> (Array, Array, Array) {
        let d = 16;
        let arr = |h: i32, n: i32, sd: u64| {
            Array::from_slice(&noise((h * n * d) as usize, sd), &[1, h, n, d])
        };
        (arr(6, l, seed), arr(2, s, seed + 1), arr(2, s, seed + 2))
    }

    fn whole(q: &Array, k: &Array, v: &Array) -> Array {
        fast::scaled_dot_product_attention(
            q,
            k,
            v,
            0.25,
            ScaledDotProductAttentionMask::Causal,
            None,
        )
        .unwrap()
    }

    #[test]
    fn blocked_causal_attention_equals_the_whole_chunk_at_any_offset_and_block_height() {
        // (new positions, keys already cached before them, block height): blocks that divide
        // the chunk, a ragged last block, a block of one row, a chunk after a cached prefix.
        for (l, before, block) in [
            (64, 0, 16),
            (70, 0, 16),
            (65, 0, 64),
            (40, 25, 8),
            (33, 7, 1),
        ] {
            let (q, k, v) = qkv(l, before + l, (l * 31 + before) as u64);
            let want = whole(&q, &k, &v);
            let got = causal_blocks(&q, &k, &v, 0.25, block).unwrap();
            assert_eq!(got.shape(), want.shape());
            let d = max_abs_diff(&got, &want);
            assert!(
                d < 1e-5,
                "l {l}, before {before}, block {block}: differs by {d}"
            );
        }
    }

    #[test]
    fn blocked_attention_keeps_every_row_off_its_future_keys() {
        // Changing the keys and values after position p must not change rows 0..=p: the
        // block that holds row p sees later keys only through the causal mask.
        let (l, block, p) = (48, 16, 20);
        let (q, k, v) = qkv(l, l, 7);
        let base = causal_blocks(&q, &k, &v, 0.25, block).unwrap();
        let (_, k2, v2) = qkv(l, l, 99);
        let mix = |a: &Array, b: &Array| {
            concatenate(
                &[
                    a.index((.., .., ..=p, ..)),
                    b.index((.., .., (p + 1).., ..)),
                ],
                2,
            )
            .unwrap()
        };
        let changed = causal_blocks(&q, &mix(&k, &k2), &mix(&v, &v2), 0.25, block).unwrap();
        let head = |a: &Array| a.index((.., .., ..=p, ..));
        assert_eq!(max_abs_diff(&head(&base), &head(&changed)), 0.0);
        let tail = |a: &Array| a.index((.., .., (p + 1).., ..));
        assert!(
            max_abs_diff(&tail(&base), &tail(&changed)) > 1e-3,
            "later rows must see the new keys"
        );
    }

    #[test]
    fn host_softmax_blocks_equal_mlx_attention_with_grouped_heads_and_a_cached_prefix() {
        // 6 query heads over 2 KV heads; whole chunk as one host block, and in blocks.
        for (l, before, block) in [
            (64, 0, 64),
            (70, 0, 16),
            (40, 25, 40),
            (40, 25, 8),
            (5, 60, 5),
        ] {
            let (q, k, v) = qkv(l, before + l, (l * 17 + before) as u64);
            let want = whole(&q, &k, &v);
            let got = blockwise(&q, &k, &v, 0.25, block, host_block).unwrap();
            assert_eq!(got.shape(), want.shape());
            let d = max_abs_diff(&got, &want);
            assert!(
                d < 1e-5,
                "l {l}, before {before}, block {block}: differs by {d}"
            );
        }
    }

    #[test]
    fn long_causal_chunks_take_the_host_path_on_the_cpu_with_the_same_result() {
        // 9 heads x 128 rows x 128 keys is past hostmath::MIN_ELEMENTS: attention() goes
        // through host_block and must agree with MLX's kernel.
        let (q, k, v) = qkv(128, 128, 5);
        let want = whole(&q, &k, &v);
        let got = attention(
            &q,
            &k,
            &v,
            0.25,
            Some(ScaledDotProductAttentionMask::Causal),
        )
        .unwrap();
        assert!(max_abs_diff(&got, &want) < 1e-5);
    }

    #[test]
    fn short_chunks_and_explicit_masks_are_passed_through_whole() {
        let (q, k, v) = qkv(8, 8, 3);
        let direct = whole(&q, &k, &v);
        let via = attention(
            &q,
            &k,
            &v,
            0.25,
            Some(ScaledDotProductAttentionMask::Causal),
        )
        .unwrap();
        assert_eq!(max_abs_diff(&direct, &via), 0.0);
        let mask = Array::from_slice(&[true; 64], &[1, 1, 8, 8]);
        let masked = attention(
            &q,
            &k,
            &v,
            0.25,
            Some(ScaledDotProductAttentionMask::Array(&mask)),
        )
        .unwrap();
        let none = fast::scaled_dot_product_attention(&q, &k, &v, 0.25, None, None).unwrap();
        assert!(max_abs_diff(&masked, &none) < 1e-6);
    }
}
