//! GGML block formats: dequantization of the types MLX cannot load (K-quants, Q5_0/Q5_1) and
//! quantization into the ones it can (Q8_0, Q4_0, Q4_1), for rewriting GGUF models at
//! `POST /api/create` time (see `crate::create::gguf`).
//!
//! Block layouts follow the GGUF/ggml specification (`QK_K` = 256 values per super-block for
//! K-quants, 32 per block for the legacy types; all scales little-endian). Quantizers follow
//! ggml's reference rounding so a re-quantized tensor matches what llama.cpp's `quantize` writes.

use super::FloatType;

/// GGML tensor type codes used here.
pub mod kind {
    /// float32
    pub const F32: u32 = 0;
    /// float16
    pub const F16: u32 = 1;
    /// 4-bit, 32 per block, scale only.
    pub const Q4_0: u32 = 2;
    /// 4-bit, 32 per block, scale and min.
    pub const Q4_1: u32 = 3;
    /// 5-bit, 32 per block, scale only.
    pub const Q5_0: u32 = 6;
    /// 5-bit, 32 per block, scale and min.
    pub const Q5_1: u32 = 7;
    /// 8-bit, 32 per block.
    pub const Q8_0: u32 = 8;
    /// 2-bit K-quant.
    pub const Q2_K: u32 = 10;
    /// 3-bit K-quant.
    pub const Q3_K: u32 = 11;
    /// 4-bit K-quant.
    pub const Q4_K: u32 = 12;
    /// 5-bit K-quant.
    pub const Q5_K: u32 = 13;
    /// 6-bit K-quant.
    pub const Q6_K: u32 = 14;
    /// 8-bit K-quant (intermediate type; rare in files).
    pub const Q8_K: u32 = 15;
    /// bfloat16
    pub const BF16: u32 = 30;
}

const QK_K: usize = 256;

/// `(values per block, bytes per block)` of a type this module can read, `None` otherwise.
pub fn block_layout(t: u32) -> Option<(usize, usize)> {
    Some(match t {
        kind::F32 => (1, 4),
        kind::F16 | kind::BF16 => (1, 2),
        kind::Q4_0 => (32, 18),
        kind::Q4_1 => (32, 20),
        kind::Q5_0 => (32, 22),
        kind::Q5_1 => (32, 24),
        kind::Q8_0 => (32, 34),
        kind::Q2_K => (QK_K, 84),
        kind::Q3_K => (QK_K, 110),
        kind::Q4_K => (QK_K, 144),
        kind::Q5_K => (QK_K, 176),
        kind::Q6_K => (QK_K, 210),
        kind::Q8_K => (QK_K, 292),
        _ => return None,
    })
}

/// Bytes `n` values of type `t` occupy (`None` for unknown types or a partial block).
pub fn byte_size(t: u32, n: u64) -> Option<u64> {
    let (per, bytes) = block_layout(t)?;
    n.is_multiple_of(per as u64)
        .then(|| n / per as u64 * bytes as u64)
}

fn f16(b: &[u8], at: usize) -> f32 {
    FloatType::F16.decode(&b[at..at + 2])[0]
}

/// Dequantize whole blocks of type `t` from `data`, appending to `out`. `data` must hold a
/// whole number of blocks; returns `false` for a type this module cannot read.
pub fn dequantize(t: u32, data: &[u8], out: &mut Vec<f32>) -> bool {
    let Some((per, bytes)) = block_layout(t) else {
        return false;
    };
    out.reserve(data.len() / bytes * per);
    match t {
        kind::F32 => out.extend(FloatType::F32.decode(data)),
        kind::F16 => out.extend(FloatType::F16.decode(data)),
        kind::BF16 => out.extend(FloatType::BF16.decode(data)),
        _ => {
            let f = match t {
                kind::Q4_0 => deq_q4_0,
                kind::Q4_1 => deq_q4_1,
                kind::Q5_0 => deq_q5_0,
                kind::Q5_1 => deq_q5_1,
                kind::Q8_0 => deq_q8_0,
                kind::Q2_K => deq_q2_k,
                kind::Q3_K => deq_q3_k,
                kind::Q4_K => deq_q4_k,
                kind::Q5_K => deq_q5_k,
                kind::Q6_K => deq_q6_k,
                _ => deq_q8_k,
            };
            let mut buf = [0f32; QK_K];
            for b in data.chunks_exact(bytes) {
                f(b, &mut buf[..per]);
                out.extend_from_slice(&buf[..per]);
            }
        }
    }
    true
}

fn deq_q4_0(b: &[u8], y: &mut [f32]) {
    let d = f16(b, 0);
    for j in 0..16 {
        y[j] = ((b[2 + j] & 0xF) as i32 - 8) as f32 * d;
        y[j + 16] = ((b[2 + j] >> 4) as i32 - 8) as f32 * d;
    }
}

fn deq_q4_1(b: &[u8], y: &mut [f32]) {
    let (d, m) = (f16(b, 0), f16(b, 2));
    for j in 0..16 {
        y[j] = (b[4 + j] & 0xF) as f32 * d + m;
        y[j + 16] = (b[4 + j] >> 4) as f32 * d + m;
    }
}

fn q5_values(qh: u32, qs: &[u8], y: &mut [f32], scale: impl Fn(i32) -> f32) {
    for j in 0..16 {
        let h0 = ((qh >> j) & 1) << 4;
        let h1 = (qh >> (j + 12)) & 0x10;
        y[j] = scale(((qs[j] & 0xF) as u32 | h0) as i32);
        y[j + 16] = scale(((qs[j] >> 4) as u32 | h1) as i32);
    }
}

fn deq_q5_0(b: &[u8], y: &mut [f32]) {
    let d = f16(b, 0);
    let qh = u32::from_le_bytes([b[2], b[3], b[4], b[5]]);
    q5_values(qh, &b[6..22], y, |q| (q - 16) as f32 * d);
}

fn deq_q5_1(b: &[u8], y: &mut [f32]) {
    let (d, m) = (f16(b, 0), f16(b, 2));
    let qh = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
    q5_values(qh, &b[8..24], y, |q| q as f32 * d + m);
}

fn deq_q8_0(b: &[u8], y: &mut [f32]) {
    let d = f16(b, 0);
    for j in 0..32 {
        y[j] = b[2 + j] as i8 as f32 * d;
    }
}

// Q2_K: scales[16] (low nibble scale, high nibble min), qs[64], d, dmin.
fn deq_q2_k(b: &[u8], y: &mut [f32]) {
    let (scales, qs) = (&b[0..16], &b[16..80]);
    let (d, dmin) = (f16(b, 80), f16(b, 82));
    let mut is = 0;
    let mut o = 0;
    for n in 0..2 {
        let q = &qs[n * 32..n * 32 + 32];
        for shift in [0, 2, 4, 6] {
            for half in 0..2 {
                let sc = scales[is];
                is += 1;
                let (dl, ml) = (d * (sc & 0xF) as f32, dmin * (sc >> 4) as f32);
                for l in 0..16 {
                    y[o] = dl * ((q[l + 16 * half] >> shift) & 3) as f32 - ml;
                    o += 1;
                }
            }
        }
    }
}

// Q3_K: hmask[32], qs[64], scales[12] (16 packed 6-bit values, offset 32), d.
fn deq_q3_k(b: &[u8], y: &mut [f32]) {
    let (hm, qs, sc) = (&b[0..32], &b[32..96], &b[96..108]);
    let d = f16(b, 108);
    let mut scales = [0i32; 16];
    for (i, s) in scales.iter_mut().enumerate() {
        let low = if i < 8 { sc[i] & 0xF } else { sc[i - 8] >> 4 };
        let high = (sc[8 + i % 4] >> (2 * (i / 4))) & 3;
        *s = (low | (high << 4)) as i32 - 32;
    }
    let mut is = 0;
    let mut o = 0;
    let mut m = 1u8;
    for n in 0..2 {
        let q = &qs[n * 32..n * 32 + 32];
        for shift in [0, 2, 4, 6] {
            for half in 0..2 {
                let dl = d * scales[is] as f32;
                is += 1;
                for l in 0..16 {
                    let k = l + 16 * half;
                    let v = ((q[k] >> shift) & 3) as i32 - if hm[k] & m != 0 { 0 } else { 4 };
                    y[o] = dl * v as f32;
                    o += 1;
                }
            }
            m <<= 1;
        }
    }
}

/// The `j`-th 6-bit (scale, min) pair of a Q4_K/Q5_K `scales[12]`.
fn scale_min_k4(j: usize, q: &[u8]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        (
            (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4),
            (q[j + 4] >> 4) | ((q[j] >> 6) << 4),
        )
    }
}

// Q4_K: d, dmin, scales[12], qs[128].
fn deq_q4_k(b: &[u8], y: &mut [f32]) {
    let (d, dmin) = (f16(b, 0), f16(b, 2));
    let (sc, qs) = (&b[4..16], &b[16..144]);
    for chunk in 0..4 {
        let q = &qs[chunk * 32..chunk * 32 + 32];
        let (s1, m1) = scale_min_k4(2 * chunk, sc);
        let (s2, m2) = scale_min_k4(2 * chunk + 1, sc);
        let (d1, m1) = (d * s1 as f32, dmin * m1 as f32);
        let (d2, m2) = (d * s2 as f32, dmin * m2 as f32);
        let o = chunk * 64;
        for l in 0..32 {
            y[o + l] = d1 * (q[l] & 0xF) as f32 - m1;
            y[o + 32 + l] = d2 * (q[l] >> 4) as f32 - m2;
        }
    }
}

// Q5_K: d, dmin, scales[12], qh[32], qs[128].
fn deq_q5_k(b: &[u8], y: &mut [f32]) {
    let (d, dmin) = (f16(b, 0), f16(b, 2));
    let (sc, qh, qs) = (&b[4..16], &b[16..48], &b[48..176]);
    for chunk in 0..4 {
        let q = &qs[chunk * 32..chunk * 32 + 32];
        let (u1, u2) = (1u8 << (2 * chunk), 2u8 << (2 * chunk));
        let (s1, m1) = scale_min_k4(2 * chunk, sc);
        let (s2, m2) = scale_min_k4(2 * chunk + 1, sc);
        let (d1, m1) = (d * s1 as f32, dmin * m1 as f32);
        let (d2, m2) = (d * s2 as f32, dmin * m2 as f32);
        let o = chunk * 64;
        for l in 0..32 {
            let h1 = if qh[l] & u1 != 0 { 16 } else { 0 };
            let h2 = if qh[l] & u2 != 0 { 16 } else { 0 };
            y[o + l] = d1 * ((q[l] & 0xF) + h1) as f32 - m1;
            y[o + 32 + l] = d2 * ((q[l] >> 4) + h2) as f32 - m2;
        }
    }
}

// Q6_K: ql[128], qh[64], scales[16] (i8), d.
fn deq_q6_k(b: &[u8], y: &mut [f32]) {
    let d = f16(b, 208);
    for n in 0..2 {
        let ql = &b[n * 64..n * 64 + 64];
        let qh = &b[128 + n * 32..128 + n * 32 + 32];
        let sc = &b[192 + n * 8..192 + n * 8 + 8];
        let o = n * 128;
        for l in 0..32 {
            let is = l / 16;
            let q1 = ((ql[l] & 0xF) | ((qh[l] & 3) << 4)) as i32 - 32;
            let q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) as i32 - 32;
            let q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) as i32 - 32;
            let q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) as i32 - 32;
            y[o + l] = d * (sc[is] as i8) as f32 * q1 as f32;
            y[o + l + 32] = d * (sc[is + 2] as i8) as f32 * q2 as f32;
            y[o + l + 64] = d * (sc[is + 4] as i8) as f32 * q3 as f32;
            y[o + l + 96] = d * (sc[is + 6] as i8) as f32 * q4 as f32;
        }
    }
}

// Q8_K: d (f32), qs[256] (i8), bsums[16] (unused here).
fn deq_q8_k(b: &[u8], y: &mut [f32]) {
    let d = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    for l in 0..QK_K {
        y[l] = b[4 + l] as i8 as f32 * d;
    }
}

/// Quantize `x` (a multiple of 32 values) into type `t` (`Q8_0`, `Q4_0`, `Q4_1`, `F16`, `F32`,
/// `BF16`), appending the blocks to `out`. Returns `false` for other types.
pub fn quantize(t: u32, x: &[f32], out: &mut Vec<u8>) -> bool {
    match t {
        kind::F32 | kind::F16 | kind::BF16 => {
            let ft = match t {
                kind::F32 => FloatType::F32,
                kind::F16 => FloatType::F16,
                _ => FloatType::BF16,
            };
            for &v in x {
                ft.encode(v, out);
            }
        }
        kind::Q8_0 | kind::Q4_0 | kind::Q4_1 if x.len().is_multiple_of(32) => {
            for b in x.chunks_exact(32) {
                match t {
                    kind::Q8_0 => q8_0_block(b, out),
                    kind::Q4_0 => q4_0_block(b, out),
                    _ => q4_1_block(b, out),
                }
            }
        }
        _ => return false,
    }
    true
}

fn put_f16(v: f32, out: &mut Vec<u8>) {
    FloatType::F16.encode(v, out);
}

fn q8_0_block(x: &[f32], out: &mut Vec<u8>) {
    let amax = x.iter().fold(0f32, |a, v| a.max(v.abs()));
    let d = amax / 127.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    put_f16(d, out);
    out.extend(x.iter().map(|v| (v * id).round() as i8 as u8));
}

fn q4_0_block(x: &[f32], out: &mut Vec<u8>) {
    // the value with the largest magnitude, sign kept
    let (mut amax, mut max) = (0f32, 0f32);
    for &v in x {
        if v.abs() > amax {
            amax = v.abs();
            max = v;
        }
    }
    let d = max / -8.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    put_f16(d, out);
    let q = |v: f32| ((v * id + 8.5) as i8).clamp(0, 15) as u8;
    for j in 0..16 {
        out.push(q(x[j]) | (q(x[j + 16]) << 4));
    }
}

fn q4_1_block(x: &[f32], out: &mut Vec<u8>) {
    let min = x.iter().copied().fold(f32::INFINITY, f32::min);
    let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let d = (max - min) / 15.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    put_f16(d, out);
    put_f16(min, out);
    let q = |v: f32| (((v - min) * id + 0.5) as i8).clamp(0, 15) as u8;
    for j in 0..16 {
        out.push(q(x[j]) | (q(x[j + 16]) << 4));
    }
}

#[cfg(test)]
#[path = "ggml_tests.rs"]
mod tests;
