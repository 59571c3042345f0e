//! Affine quantization of F16/BF16/F32 safetensors weights into MLX's packed layout, for
//! `POST /api/create` with `quantize` on a safetensors import.
//!
//! Per group of `group_size` consecutive values along the last axis:
//! `scale = (max - min) / (2^bits - 1)`, `bias = min`, `q = round((w - bias) / scale)`; the
//! `q`s are packed little-endian into `u32` words (value `j` of a word at bit `bits * j`), as
//! `mlx.core.quantize` lays them out. A quantized `x.weight` becomes `x.weight` (`U32`,
//! `[rows, cols * bits / 32]`), `x.scales` and `x.biases` (source dtype, `[rows, cols /
//! group_size]`), and MLX dequantizes with `w ≈ q * scale + bias`.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use serde_json::Value;

use crate::safetensors::{encode_header, Header, TensorEntry};

pub mod ggml;

/// Bits and group size of an MLX affine quantization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuantSpec {
    /// Bits per value (4 or 8).
    pub bits: u32,
    /// Values sharing one scale/bias (along the last axis).
    pub group_size: usize,
}

impl QuantSpec {
    /// The MLX quantization for an Ollama quantization type (upper-cased): `Q4_0` → 4-bit group
    /// 32; `Q4_K_M`/`Q4_K_S`/`Q4_K`/`INT4` → 4-bit group 64; `Q8_0`/`INT8` → 8-bit group 64.
    pub fn for_type(t: &str) -> Option<Self> {
        let (bits, group_size) = match t {
            "Q4_0" => (4, 32),
            "Q4_K_M" | "Q4_K_S" | "Q4_K" | "INT4" => (4, 64),
            "Q8_0" | "INT8" => (8, 64),
            _ => return None,
        };
        Some(QuantSpec { bits, group_size })
    }

    fn levels(&self) -> u32 {
        (1u32 << self.bits) - 1
    }

    fn per_word(&self) -> usize {
        (32 / self.bits) as usize
    }
}

/// A floating-point safetensors dtype the quantizer reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FloatType {
    /// IEEE half precision.
    F16,
    /// bfloat16.
    BF16,
    /// IEEE single precision.
    F32,
}

impl FloatType {
    /// From a safetensors dtype name.
    pub fn parse(dtype: &str) -> Option<Self> {
        match dtype {
            "F16" => Some(FloatType::F16),
            "BF16" => Some(FloatType::BF16),
            "F32" => Some(FloatType::F32),
            _ => None,
        }
    }

    /// The safetensors dtype name (also Ollama's file-type spelling).
    pub fn name(self) -> &'static str {
        match self {
            FloatType::F16 => "F16",
            FloatType::BF16 => "BF16",
            FloatType::F32 => "F32",
        }
    }

    fn size(self) -> usize {
        match self {
            FloatType::F32 => 4,
            _ => 2,
        }
    }

    /// Decode little-endian values.
    pub fn decode(self, bytes: &[u8]) -> Vec<f32> {
        match self {
            FloatType::F32 => bytes
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            FloatType::F16 => bytes
                .chunks_exact(2)
                .map(|c| f16_to_f32(u16::from_le_bytes([c[0], c[1]])))
                .collect(),
            FloatType::BF16 => bytes
                .chunks_exact(2)
                .map(|c| f32::from_bits((u16::from_le_bytes([c[0], c[1]]) as u32) << 16))
                .collect(),
        }
    }

    /// Append `v` little-endian in this dtype.
    pub fn encode(self, v: f32, out: &mut Vec<u8>) {
        match self {
            FloatType::F32 => out.extend_from_slice(&v.to_le_bytes()),
            FloatType::F16 => out.extend_from_slice(&f32_to_f16(v).to_le_bytes()),
            FloatType::BF16 => out.extend_from_slice(&f32_to_bf16(v).to_le_bytes()),
        }
    }

    /// `v` rounded to this dtype's precision.
    fn round(self, v: f32) -> f32 {
        match self {
            FloatType::F32 => v,
            FloatType::F16 => f16_to_f32(f32_to_f16(v)),
            FloatType::BF16 => f32::from_bits((f32_to_bf16(v) as u32) << 16),
        }
    }
}

fn f32_to_bf16(v: f32) -> u16 {
    let b = v.to_bits();
    if v.is_nan() {
        return ((b >> 16) as u16) | 0x0040;
    }
    let r = b.wrapping_add(0x7fff + ((b >> 16) & 1));
    (r >> 16) as u16
}

fn f16_to_f32(h: u16) -> f32 {
    let sign = ((h & 0x8000) as u32) << 16;
    let exp = ((h >> 10) & 0x1f) as u32;
    let man = (h & 0x3ff) as u32;
    if exp == 0 {
        let v = man as f32 / 16_777_216.0; // man * 2^-24
        return if sign != 0 { -v } else { v };
    }
    let bits = if exp == 0x1f {
        sign | 0x7f80_0000 | (man << 13)
    } else {
        sign | ((exp + 112) << 23) | (man << 13)
    };
    f32::from_bits(bits)
}

fn f32_to_f16(v: f32) -> u16 {
    let b = v.to_bits();
    let sign = ((b >> 16) & 0x8000) as u16;
    let exp = ((b >> 23) & 0xff) as i32;
    let man = b & 0x7f_ffff;
    if exp == 0xff {
        return sign | 0x7c00 | if man != 0 { 0x200 } else { 0 };
    }
    let e = exp - 127 + 15;
    if e >= 0x1f {
        return sign | 0x7c00;
    }
    if e <= 0 {
        if e < -10 {
            return sign;
        }
        let m = man | 0x80_0000;
        let shift = (14 - e) as u32;
        let half = 1u32 << (shift - 1);
        let mut r = m >> shift;
        let rem = m & ((1 << shift) - 1);
        if rem > half || (rem == half && r & 1 == 1) {
            r += 1;
        }
        return sign | r as u16;
    }
    let mut r = ((e as u32) << 10) | (man >> 13);
    let rem = man & 0x1fff;
    if rem > 0x1000 || (rem == 0x1000 && r & 1 == 1) {
        r += 1; // a carry into the exponent is the correct rounding (up to infinity)
    }
    sign | r as u16
}

/// Packed weights with their per-group scales and biases (row-major, like the tensors).
#[derive(Debug, Clone, PartialEq)]
pub struct Quantized {
    /// `rows * cols * bits / 32` words.
    pub weight: Vec<u32>,
    /// `rows * cols / group_size` scales, already rounded to the storage dtype.
    pub scales: Vec<f32>,
    /// `rows * cols / group_size` biases (group minimums), rounded like `scales`.
    pub biases: Vec<f32>,
}

/// Quantize a row-major matrix whose rows have `cols` values (`cols` must be a multiple of
/// `spec.group_size`, which must be a multiple of `32 / bits`). Scales and biases are rounded to
/// `store_as` before the values are quantized against them, so dequantizing what is stored
/// stays within half a step of the input.
pub fn quantize(values: &[f32], cols: usize, spec: QuantSpec, store_as: FloatType) -> Quantized {
    let groups = values.len() / spec.group_size.max(1);
    let mut out = Quantized {
        weight: Vec::with_capacity(values.len() / spec.per_word()),
        scales: Vec::with_capacity(groups),
        biases: Vec::with_capacity(groups),
    };
    debug_assert!(cols.is_multiple_of(spec.group_size));
    let levels = spec.levels();
    for group in values.chunks_exact(spec.group_size) {
        let (mut lo, mut hi) = (f32::INFINITY, f32::NEG_INFINITY);
        for &v in group.iter().filter(|v| v.is_finite()) {
            lo = lo.min(v);
            hi = hi.max(v);
        }
        if lo > hi {
            (lo, hi) = (0.0, 0.0);
        }
        let bias = store_as.round(lo);
        let scale = store_as.round((hi - lo) / levels as f32);
        out.scales.push(scale);
        out.biases.push(bias);
        for word in group.chunks_exact(spec.per_word()) {
            let mut w = 0u32;
            for (j, &v) in word.iter().enumerate() {
                let q = if scale > 0.0 {
                    ((v - bias) / scale).round().clamp(0.0, levels as f32) as u32
                } else {
                    0
                };
                w |= q << (spec.bits as usize * j);
            }
            out.weight.push(w);
        }
    }
    out
}

/// Inverse of [`quantize`]: `q * scale + bias` per value.
pub fn dequantize(q: &Quantized, spec: QuantSpec) -> Vec<f32> {
    let mask = spec.levels();
    let words_per_group = spec.group_size / spec.per_word();
    let mut out = Vec::with_capacity(q.weight.len() * spec.per_word());
    for (g, words) in q.weight.chunks_exact(words_per_group).enumerate() {
        let (scale, bias) = (q.scales[g], q.biases[g]);
        for &w in words {
            for j in 0..spec.per_word() {
                let v = (w >> (spec.bits as usize * j)) & mask;
                out.push(v as f32 * scale + bias);
            }
        }
    }
    out
}

/// Whether a tensor is quantized: a 2-D floating-point `*.weight` of a linear layer whose rows
/// split into whole groups. Norms and embeddings stay as they are.
pub fn should_quantize(t: &TensorEntry, spec: QuantSpec) -> bool {
    let lower = t.name.to_ascii_lowercase();
    t.name.ends_with(".weight")
        && t.shape.len() == 2
        && t.shape[1] > 0
        && t.shape[1].is_multiple_of(spec.group_size as u64)
        && FloatType::parse(&t.dtype).is_some()
        && !lower.contains("norm")
        && !lower.contains("embed")
        && !lower.ends_with("wte.weight")
        && !lower.ends_with("wpe.weight")
}

/// Why a file could not be quantized.
#[derive(Debug, thiserror::Error)]
pub enum QuantizeError {
    /// Reading the source or writing the output failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

type Planned = (String, String, Vec<u64>, u64);

/// Rewrite the safetensors file `src` (header already validated as `header`) into `out`,
/// quantizing the tensors [`should_quantize`] picks. `progress` gets the source bytes done
/// after each tensor. Returns how many tensors were quantized.
pub fn quantize_file(
    src: &Path,
    header: &Header,
    spec: QuantSpec,
    out: &mut dyn Write,
    progress: &mut dyn FnMut(u64),
) -> Result<usize, QuantizeError> {
    let per_word = spec.per_word() as u64;
    let mut plan: Vec<Planned> = Vec::new();
    for t in &header.tensors {
        match (should_quantize(t, spec), FloatType::parse(&t.dtype)) {
            (true, Some(ft)) => {
                let (rows, cols) = (t.shape[0], t.shape[1]);
                let prefix = t.name.strip_suffix(".weight").unwrap_or(&t.name);
                let words = cols / per_word;
                let groups = cols / spec.group_size as u64;
                let sz = ft.size() as u64;
                plan.push((
                    t.name.clone(),
                    "U32".into(),
                    vec![rows, words],
                    rows * words * 4,
                ));
                for part in ["scales", "biases"] {
                    plan.push((
                        format!("{prefix}.{part}"),
                        ft.name().into(),
                        vec![rows, groups],
                        rows * groups * sz,
                    ));
                }
            }
            _ => plan.push((
                t.name.clone(),
                t.dtype.clone(),
                t.shape.clone(),
                t.end - t.begin,
            )),
        }
    }
    let mut meta = header.metadata.clone().unwrap_or_default();
    meta.entry("format")
        .or_insert_with(|| Value::String("mlx".into()));
    out.write_all(&encode_header(&plan, &meta))?;

    let mut f = File::open(src)?;
    let mut done = 0u64;
    let mut quantized = 0;
    for t in &header.tensors {
        let n = t.end - t.begin;
        f.seek(SeekFrom::Start(header.data_start + t.begin))?;
        match (should_quantize(t, spec), FloatType::parse(&t.dtype)) {
            (true, Some(ft)) => {
                let mut raw = vec![0u8; n as usize];
                f.read_exact(&mut raw)?;
                let values = ft.decode(&raw);
                drop(raw);
                let q = quantize(&values, t.shape[1] as usize, spec, ft);
                let mut buf = Vec::with_capacity(q.weight.len() * 4);
                for w in &q.weight {
                    buf.extend_from_slice(&w.to_le_bytes());
                }
                out.write_all(&buf)?;
                for part in [&q.scales, &q.biases] {
                    buf.clear();
                    for &v in part {
                        ft.encode(v, &mut buf);
                    }
                    out.write_all(&buf)?;
                }
                quantized += 1;
            }
            _ => {
                let copied = std::io::copy(&mut (&mut f).take(n), out)?;
                if copied != n {
                    return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into());
                }
            }
        }
        done += n;
        progress(done);
    }
    Ok(quantized)
}

/// `config.json` with MLX's `quantization` block (and `quantization_config`, as mlx-lm writes).
pub fn quantized_config(config: &Value, spec: QuantSpec) -> Value {
    let mut c = config.clone();
    if let Value::Object(m) = &mut c {
        let q = serde_json::json!({"group_size": spec.group_size, "bits": spec.bits});
        m.insert("quantization".into(), q.clone());
        m.insert("quantization_config".into(), q);
    }
    c
}

#[cfg(test)]
mod tests;
