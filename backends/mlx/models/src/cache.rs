//! Per-layer key/value cache used by attention during prefill and decode.
//!
//! Sits between a model's attention layers (`nn::Attention::forward` calls [`KvCache::update`])
//! and the engine, which owns one cache per layer, snapshots caches into its prefix cache and
//! restores them for the next request.
//!
//! Keys and values are stored as `[batch, kv_heads, capacity, head_dim]` buffers grown in steps
//! of [`KvCache::STEP`] positions and written with `slice_update`, so a decode step does not copy
//! the whole history. With [`KvQuant`] the buffers hold MLX affine-quantized triples (packed
//! `uint32` values, per-group scales and biases) and `update` returns the dequantized history.
//!
//! Several sequences can share one cache as rows of the batch axis (continuous batching): rows
//! are right-aligned, a shorter row is left-padded, and [`KvCache::padding`] tells attention
//! which columns of each row to mask and where each row's positions start ([`KvCache::stack`],
//! [`KvCache::select`]).
//!
//! Cloning a cache is cheap (MLX arrays are reference counted) and gives an independent
//! snapshot: MLX updates are functional, and a buffer still referenced by a snapshot is copied
//! on the next write instead of being updated in place.

use mlx_rs::ops::indexing::{TryIndexMutOp, TryIndexOp};
use mlx_rs::ops::{concatenate, dequantize, quantize, zeros_dtype};
use mlx_rs::Array;

use crate::error::{ModelError, Result};

/// Quantization of the cached keys/values (MLX affine quantization along `head_dim`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KvQuant {
    /// Bits per value (4 or 8).
    pub bits: i32,
    /// Values per scale/bias group (must divide `head_dim`).
    pub group_size: i32,
}

impl KvQuant {
    /// Map Ollama's `OLLAMA_KV_CACHE_TYPE` value: `q8_0` → 8-bit, `q4_0` → 4-bit (groups of
    /// 32 like GGML's blocks); `""`, `f16`, `f32`, `bf16` → `Ok(None)` (unquantized).
    pub fn from_ollama_type(kind: &str) -> Result<Option<KvQuant>> {
        match kind.trim().to_ascii_lowercase().as_str() {
            "" | "f16" | "f32" | "bf16" => Ok(None),
            "q8_0" => Ok(Some(KvQuant {
                bits: 8,
                group_size: 32,
            })),
            "q4_0" => Ok(Some(KvQuant {
                bits: 4,
                group_size: 32,
            })),
            other => Err(ModelError::Invalid(format!(
                "unsupported kv cache type {other:?} (expected f16, q8_0 or q4_0)"
            ))),
        }
    }
}

#[derive(Clone)]
enum Store {
    Plain {
        k: Option<Array>,
        v: Option<Array>,
    },
    Quant {
        spec: KvQuant,
        k: [Option<Array>; 3],
        v: [Option<Array>; 3],
    },
}

impl Default for Store {
    fn default() -> Self {
        Store::Plain { k: None, v: None }
    }
}

/// The cache of one attention layer.
#[derive(Default, Clone)]
pub struct KvCache {
    store: Store,
    /// Columns in use (for a single sequence: its positions).
    offset: i32,
    /// Per-row left padding when rows of a batch hold different lengths; empty when no row is
    /// padded.
    left_pad: Vec<i32>,
}

impl KvCache {
    /// Growth granularity of the buffers, in positions.
    pub const STEP: i32 = 256;

    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty cache storing quantized keys/values (`None` = plain).
    pub fn with_quant(quant: Option<KvQuant>) -> Self {
        let mut c = Self::new();
        c.set_quant(quant);
        c
    }

    /// Switch an empty cache to quantized (or plain) storage; a cache holding positions is
    /// cleared first.
    pub fn set_quant(&mut self, quant: Option<KvQuant>) {
        self.offset = 0;
        self.left_pad.clear();
        self.store = match quant {
            Some(spec) => Store::Quant {
                spec,
                k: Default::default(),
                v: Default::default(),
            },
            None => Store::default(),
        };
    }

    /// The quantization in use, if any.
    pub fn quant(&self) -> Option<KvQuant> {
        match &self.store {
            Store::Plain { .. } => None,
            Store::Quant { spec, .. } => Some(*spec),
        }
    }

    /// Number of positions stored so far (the RoPE offset of the next token).
    pub fn offset(&self) -> i32 {
        self.offset
    }

    /// Forget everything (keeps the quantization setting).
    pub fn clear(&mut self) {
        let q = self.quant();
        self.set_quant(q);
    }

    /// Drop positions beyond `len` (for prompt-prefix reuse). For a padded batch `len` counts
    /// columns, padding included.
    pub fn truncate(&mut self, len: i32) {
        self.offset = self.offset.min(len.max(0));
    }

    /// Sequences held along the batch axis (1 for an empty cache).
    pub fn rows(&self) -> usize {
        let first = match &self.store {
            Store::Plain { k, .. } => k.as_ref(),
            Store::Quant { k, .. } => k[0].as_ref(),
        };
        // An empty cache set up for a grouped prefill ([`KvCache::group`]) knows its rows from
        // its padding.
        first.map_or(self.left_pad.len().max(1), |a| a.dim(0).max(1) as usize)
    }

    /// Left padding of each row, when the rows hold different lengths (`None`: every row starts
    /// at column 0, so one scalar offset and a plain causal mask describe them all).
    pub fn padding(&self) -> Option<&[i32]> {
        (!self.left_pad.is_empty()).then_some(self.left_pad.as_slice())
    }

    /// Positions held by row `r`.
    pub fn row_len(&self, r: usize) -> i32 {
        self.offset - self.left_pad.get(r).copied().unwrap_or(0)
    }

    /// Each row's position of the next token (`[rows]` int32): the RoPE offsets of a padded batch.
    pub fn row_offsets(&self) -> Array {
        let v: Vec<i32> = (0..self.rows()).map(|r| self.row_len(r)).collect();
        Array::from_slice(&v, &[v.len() as i32])
    }

    /// Attention mask for `l` new positions of a padded batch (boolean `[rows, 1, l, offset+l]`,
    /// true = visible): a row never sees its left padding, and new positions see only earlier
    /// ones. A padding position among the new ones (a grouped prefill's filler) sees itself
    /// only, so that no query row is masked whole: what a kernel makes of such a row is its own
    /// choice (MLX's CPU path gives finite values; a fused kernel may give NaN), and a NaN in a
    /// filler's keys or values would reach the real queries as `0 * NaN`.
    pub fn batch_mask(&self, l: i32) -> Array {
        let rows = self.rows();
        let cols = self.offset + l;
        let mut m = Vec::with_capacity(rows * (l * cols) as usize);
        for r in 0..rows {
            let pad = self.left_pad.get(r).copied().unwrap_or(0);
            for i in 0..l {
                let q = self.offset + i;
                m.extend((0..cols).map(|j| j == q || (j >= pad && j <= q)));
            }
        }
        Array::from_slice(&m, &[rows as i32, 1, l, cols])
    }

    /// One batch of the given caches (same layer, same quantization), rows in order, right-aligned:
    /// a shorter part is padded on the left. Every part must hold at least one position.
    pub fn stack(parts: &[&KvCache]) -> Result<KvCache> {
        let Some(first) = parts.first() else {
            return Err(ModelError::Invalid("no caches to stack".into()));
        };
        if parts.len() == 1 {
            return Ok((*first).clone());
        }
        let cols = parts.iter().map(|c| c.offset).max().unwrap_or(0);
        let quant = first.quant();
        if parts.iter().any(|c| c.offset == 0 || c.quant() != quant) {
            return Err(ModelError::Invalid(
                "stacking empty caches or caches of different types".into(),
            ));
        }
        let mut left_pad = Vec::new();
        let mut bufs: Vec<Vec<Array>> = Vec::new();
        for c in parts {
            let pad = cols - c.offset;
            left_pad.extend((0..c.rows()).map(|r| c.left_pad.get(r).copied().unwrap_or(0) + pad));
            for (i, a) in c.buffers().into_iter().enumerate() {
                let a = a.ok_or_else(|| ModelError::Invalid("kv cache buffer missing".into()))?;
                let used = a.try_index((.., .., ..c.offset, ..))?;
                let padded = if pad > 0 {
                    let z = zeros_dtype(&[a.dim(0), a.dim(1), pad, a.dim(3)], a.dtype())?;
                    concatenate(&[z, used], 2)?
                } else {
                    used
                };
                if bufs.len() <= i {
                    bufs.push(Vec::new());
                }
                bufs[i].push(padded);
            }
        }
        let joined = bufs
            .iter()
            .map(|b| concatenate(b, 0))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let mut out = KvCache::with_quant(quant);
        out.set_buffers(joined);
        out.offset = cols;
        out.left_pad = left_pad;
        out.normalize_padding();
        Ok(out)
    }

    /// One batch of single-sequence caches (same layer and quantization; empty ones allowed)
    /// for a grouped prefill whose chunk starts, in row `r`, with `fill[r]` filler tokens: rows
    /// are right-aligned like [`KvCache::stack`]'s, and each row's left padding covers both
    /// its missing columns and its fillers, so the chunk's real tokens follow the row's cached
    /// positions directly and every row's last token lands in the last column. Fillers only
    /// fit a row with nothing cached (they would sit between its cache and its chunk).
    pub fn group(parts: &[&KvCache], fill: &[i32]) -> Result<KvCache> {
        let Some(first) = parts.first() else {
            return Err(ModelError::Invalid("no caches to group".into()));
        };
        let quant = first.quant();
        let bad = parts.len() != fill.len()
            || parts.iter().zip(fill).any(|(c, &f)| {
                c.quant() != quant
                    || c.padding().is_some()
                    || (c.offset > 0 && c.rows() != 1)
                    || f < 0
                    || (f > 0 && c.offset > 0)
            });
        if bad {
            return Err(ModelError::Invalid(
                "grouping caches that are not single unpadded sequences of one type".into(),
            ));
        }
        let cols = parts.iter().map(|c| c.offset).max().unwrap_or(0);
        let mut out = KvCache::with_quant(quant);
        out.left_pad = parts
            .iter()
            .zip(fill)
            .map(|(c, f)| cols - c.offset + f)
            .collect();
        if cols > 0 {
            let template: Vec<Array> = parts
                .iter()
                .find(|c| c.offset > 0)
                .map(|c| c.buffers().into_iter().flatten().cloned().collect())
                .unwrap_or_default();
            let mut bufs: Vec<Vec<Array>> = vec![Vec::new(); template.len()];
            for c in parts {
                let pad = cols - c.offset;
                let own = c.buffers();
                for (i, t) in template.iter().enumerate() {
                    let zeros = |n: i32| zeros_dtype(&[1, t.dim(1), n, t.dim(3)], t.dtype());
                    let part = match own.get(i).copied().flatten() {
                        Some(a) if c.offset > 0 => {
                            let used = a.try_index((.., .., ..c.offset, ..))?;
                            if pad > 0 {
                                concatenate(&[zeros(pad)?, used], 2)?
                            } else {
                                used
                            }
                        }
                        _ => zeros(cols)?,
                    };
                    bufs[i].push(part);
                }
            }
            let joined = bufs
                .iter()
                .map(|b| concatenate(b, 0))
                .collect::<std::result::Result<Vec<_>, _>>()?;
            out.set_buffers(joined);
            out.offset = cols;
        }
        out.normalize_padding();
        Ok(out)
    }

    /// The batch reduced to `rows` (indices into this cache, in the order given); columns that
    /// are padding for every kept row are dropped.
    pub fn select(&self, rows: &[usize]) -> Result<KvCache> {
        if rows.is_empty() || rows.iter().any(|&r| r >= self.rows()) {
            return Err(ModelError::Invalid(format!(
                "selecting rows {rows:?} of a {}-row cache",
                self.rows()
            )));
        }
        let pads: Vec<i32> = rows
            .iter()
            .map(|&r| self.left_pad.get(r).copied().unwrap_or(0))
            .collect();
        let trim = pads.iter().copied().min().unwrap_or(0);
        let identity = rows.len() == self.rows() && rows.iter().enumerate().all(|(i, &r)| i == r);
        let mut out = self.clone();
        if !(identity && trim == 0) && self.offset > 0 {
            let idx: Vec<i32> = rows.iter().map(|&r| r as i32).collect();
            let idx = Array::from_slice(&idx, &[idx.len() as i32]);
            let bufs = self
                .buffers()
                .into_iter()
                .map(|a| {
                    let a =
                        a.ok_or_else(|| ModelError::Invalid("kv cache buffer missing".into()))?;
                    let a = if identity {
                        a.clone()
                    } else {
                        a.take_axis(&idx, 0)?
                    };
                    Ok(a.try_index((.., .., trim..self.offset, ..))?)
                })
                .collect::<Result<Vec<_>>>()?;
            out.set_buffers(bufs);
        }
        out.offset = self.offset - trim;
        out.left_pad = pads.iter().map(|p| p - trim).collect();
        out.normalize_padding();
        Ok(out)
    }

    fn normalize_padding(&mut self) {
        if self.left_pad.iter().all(|&p| p == 0) {
            self.left_pad.clear();
        }
    }

    /// The arrays holding the cached positions (to evaluate a copy eagerly).
    pub fn arrays(&self) -> Vec<&Array> {
        self.buffers().into_iter().flatten().collect()
    }

    fn buffers(&self) -> Vec<Option<&Array>> {
        match &self.store {
            Store::Plain { k, v } => vec![k.as_ref(), v.as_ref()],
            Store::Quant { k, v, .. } => k.iter().chain(v.iter()).map(Option::as_ref).collect(),
        }
    }

    fn set_buffers(&mut self, mut bufs: Vec<Array>) {
        match &mut self.store {
            Store::Plain { k, v } => {
                *v = bufs.pop();
                *k = bufs.pop();
            }
            Store::Quant { k, v, .. } => {
                for slot in v.iter_mut().rev().chain(k.iter_mut().rev()) {
                    *slot = bufs.pop();
                }
            }
        }
    }

    /// Bytes held by the buffers (their full capacity, not just `offset` positions).
    pub fn nbytes(&self) -> usize {
        let bufs: Vec<&Option<Array>> = match &self.store {
            Store::Plain { k, v } => vec![k, v],
            Store::Quant { k, v, .. } => k.iter().chain(v.iter()).collect(),
        };
        bufs.into_iter().flatten().map(Array::nbytes).sum()
    }

    /// Append `keys`/`values` (`[B, KVH, L, D]`) and return the full history `[B, KVH, offset, D]`
    /// (dequantized when the cache is quantized).
    pub fn update(&mut self, keys: &Array, values: &Array) -> Result<(Array, Array)> {
        let prev = self.offset;
        let needed = prev + keys.dim(2);
        let out = match &mut self.store {
            Store::Plain { k, v } => (
                write(k, keys, prev, needed)?,
                write(v, values, prev, needed)?,
            ),
            Store::Quant { spec, k, v } => {
                let spec = *spec;
                let kq = quantize(keys, spec.group_size, spec.bits)?;
                let vq = quantize(values, spec.group_size, spec.bits)?;
                let hist = |bufs: &mut [Option<Array>; 3], (w, s, b): (Array, Array, Array)| {
                    let w = write(&mut bufs[0], &w, prev, needed)?;
                    let s = write(&mut bufs[1], &s, prev, needed)?;
                    let b = write(&mut bufs[2], &b, prev, needed)?;
                    Ok::<_, ModelError>(dequantize(&w, &s, &b, spec.group_size, spec.bits)?)
                };
                (hist(k, kq)?, hist(v, vq)?)
            }
        };
        self.offset = needed;
        Ok(out)
    }
}

/// Write `new` (`[B, H, L, X]`) at positions `prev..needed` of `buf` (growing it in
/// [`KvCache::STEP`]s when full) and return positions `..needed`.
fn write(buf: &mut Option<Array>, new: &Array, prev: i32, needed: i32) -> Result<Array> {
    let capacity = buf.as_ref().map_or(0, |a| a.dim(2));
    if needed > capacity {
        // Room for at least `needed`, counted from `prev` (after a truncate the positions past
        // `prev` are garbage and are dropped here rather than copied).
        let grow = ((needed - prev + KvCache::STEP - 1) / KvCache::STEP) * KvCache::STEP;
        let shape = [new.dim(0), new.dim(1), grow, new.dim(3)];
        let fresh = zeros_dtype(&shape, new.dtype())?;
        *buf = Some(match buf.take() {
            Some(old) if prev > 0 => {
                concatenate(&[old.try_index((.., .., ..prev, ..))?, fresh], 2)?
            }
            _ => fresh,
        });
    }
    let b = buf
        .as_mut()
        .ok_or_else(|| ModelError::Invalid("kv cache buffer missing".into()))?;
    b.try_index_mut((.., .., prev..needed, ..), new)?;
    Ok(b.try_index((.., .., ..needed, ..))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seq(n: usize, start: f32) -> Vec<f32> {
        (0..n).map(|i| start + i as f32).collect()
    }

    #[test]
    fn update_appends_positions_and_returns_the_whole_history() {
        let mut c = KvCache::new();
        let a = Array::from_slice(&[1.0f32, 2.0, 3.0, 4.0], &[1, 1, 2, 2]);
        let (k, _) = c.update(&a, &a).unwrap();
        assert_eq!(k.shape(), &[1, 1, 2, 2]);
        let b = Array::from_slice(&[5.0f32, 6.0], &[1, 1, 1, 2]);
        let (k, v) = c.update(&b, &b).unwrap();
        assert_eq!(c.offset(), 3);
        assert_eq!(k.shape(), &[1, 1, 3, 2]);
        assert_eq!(v.as_slice::<f32>(), &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    }

    #[test]
    fn truncate_rewinds_the_offset() {
        let mut c = KvCache::new();
        let a = Array::from_slice(&[1.0f32, 2.0, 3.0, 4.0], &[1, 1, 2, 2]);
        c.update(&a, &a).unwrap();
        c.truncate(1);
        let b = Array::from_slice(&[9.0f32, 9.0], &[1, 1, 1, 2]);
        let (k, _) = c.update(&b, &b).unwrap();
        assert_eq!(k.as_slice::<f32>(), &[1.0, 2.0, 9.0, 9.0]);
    }

    #[test]
    fn buffers_grow_in_steps_and_hold_more_than_needed_after_a_truncate() {
        let mut c = KvCache::new();
        let n = 300usize;
        let a = Array::from_slice(&seq(n, 0.0), &[1, 1, n as i32, 1]);
        c.update(&a, &a).unwrap();
        assert_eq!(c.nbytes(), 2 * 512 * 4, "two buffers of 2 steps");
        c.truncate(100);
        // 100 kept + 300 new = 400 fits the 512-position capacity...
        let b = Array::from_slice(&seq(n, 1000.0), &[1, 1, n as i32, 1]);
        let (k, _) = c.update(&b, &b).unwrap();
        assert_eq!(k.dim(2), 400);
        // ...and a write beyond the capacity after a truncate still fits everything.
        c.truncate(10);
        let m = 700usize;
        let d = Array::from_slice(&seq(m, 5000.0), &[1, 1, m as i32, 1]);
        let (k, _) = c.update(&d, &d).unwrap();
        let got = k.as_slice::<f32>().to_vec();
        assert_eq!(got.len(), 710);
        assert_eq!(&got[..10], &seq(10, 0.0)[..]);
        assert_eq!(&got[10..], &seq(m, 5000.0)[..]);
    }

    #[test]
    fn a_clone_is_an_independent_snapshot() {
        let mut c = KvCache::new();
        let a = Array::from_slice(&[1.0f32, 2.0, 3.0, 4.0], &[1, 1, 2, 2]);
        c.update(&a, &a).unwrap();
        let snap = c.clone();
        // Overwrite position 1 in the live cache and append.
        c.truncate(1);
        let b = Array::from_slice(&[7.0f32, 7.0, 8.0, 8.0], &[1, 1, 2, 2]);
        c.update(&b, &b).unwrap();
        // The snapshot still sees its own positions.
        let mut s = snap.clone();
        let e = Array::from_slice(&[0.0f32, 0.0], &[1, 1, 1, 2]);
        let (k, _) = s.update(&e, &e).unwrap();
        assert_eq!(k.as_slice::<f32>(), &[1.0, 2.0, 3.0, 4.0, 0.0, 0.0]);
    }

    #[test]
    fn quantized_cache_round_trips_within_the_quantization_step() {
        let d = 64usize;
        let v: Vec<f32> = (0..3 * d)
            .map(|i| ((i * 37 % 23) as f32 - 11.0) / 7.0)
            .collect();
        let x = Array::from_slice(&v, &[1, 1, 3, d as i32]);
        for (bits, tol) in [(8, 0.02f32), (4, 0.25)] {
            let mut c = KvCache::with_quant(Some(KvQuant {
                bits,
                group_size: 32,
            }));
            let (k, _) = c.update(&x, &x).unwrap();
            assert_eq!(k.shape(), &[1, 1, 3, d as i32]);
            for (a, b) in k.as_slice::<f32>().iter().zip(&v) {
                assert!((a - b).abs() <= tol, "{bits}-bit: {a} vs {b}");
            }
            assert!(
                c.nbytes() < 2 * 256 * d * 4 / 2,
                "{bits}-bit smaller than f32"
            );
        }
    }

    #[test]
    fn quantized_cache_accepts_transposed_heads_like_attention_produces() {
        // Attention hands over `[B, L, H, D]` projections transposed to `[B, H, L, D]` views.
        let (l, h, d) = (5usize, 3usize, 64usize);
        let v: Vec<f32> = (0..l * h * d)
            .map(|i| ((i * 31 % 29) as f32 - 14.0) / 5.0)
            .collect();
        let x = Array::from_slice(&v, &[1, l as i32, h as i32, d as i32])
            .transpose_axes(&[0, 2, 1, 3])
            .unwrap();
        let want = x.contiguous().unwrap();
        let mut c = KvCache::with_quant(Some(KvQuant {
            bits: 8,
            group_size: 32,
        }));
        let (k, _) = c.update(&x, &x).unwrap();
        let (k, want) = (k.contiguous().unwrap(), want);
        for (a, b) in k.as_slice::<f32>().iter().zip(want.as_slice::<f32>()) {
            assert!((a - b).abs() <= 0.03, "{a} vs {b}");
        }
    }

    fn filled(vals: &[f32]) -> KvCache {
        let mut c = KvCache::new();
        let a = Array::from_slice(vals, &[1, 1, vals.len() as i32, 1]);
        c.update(&a, &a).unwrap();
        c
    }

    #[test]
    fn stacking_rows_of_different_lengths_pads_the_shorter_on_the_left() {
        let (a, b) = (filled(&[1.0, 2.0, 3.0]), filled(&[7.0]));
        let s = KvCache::stack(&[&a, &b]).unwrap();
        assert_eq!((s.rows(), s.offset()), (2, 3));
        assert_eq!(s.padding(), Some(&[0, 2][..]));
        assert_eq!((s.row_len(0), s.row_len(1)), (3, 1));
        assert_eq!(s.row_offsets().as_slice::<i32>(), &[3, 1]);
        // A new column for both rows lands after each row's own history.
        let mut s = s;
        let n = Array::from_slice(&[4.0f32, 8.0], &[2, 1, 1, 1]);
        let (k, _) = s.update(&n, &n).unwrap();
        assert_eq!(
            k.contiguous().unwrap().as_slice::<f32>(),
            &[1.0, 2.0, 3.0, 4.0, 0.0, 0.0, 7.0, 8.0]
        );
        let m = s.batch_mask(1);
        assert_eq!(m.shape(), &[2, 1, 1, 5]);
    }

    #[test]
    fn selecting_rows_trims_padding_no_kept_row_needs() {
        let (a, b, c) = (
            filled(&[1.0, 2.0, 3.0]),
            filled(&[7.0]),
            filled(&[5.0, 6.0]),
        );
        let s = KvCache::stack(&[&a, &b, &c]).unwrap();
        assert_eq!(s.padding(), Some(&[0, 2, 1][..]));
        // Dropping the longest row leaves one column of padding nobody needs.
        let t = s.select(&[2, 1]).unwrap();
        assert_eq!((t.rows(), t.offset()), (2, 2));
        assert_eq!(t.padding(), Some(&[0, 1][..]));
        // A single row comes back unpadded, positions intact.
        let mut one = s.select(&[1]).unwrap();
        assert_eq!((one.rows(), one.offset(), one.padding()), (1, 1, None));
        let e = Array::from_slice(&[9.0f32], &[1, 1, 1, 1]);
        let (k, _) = one.update(&e, &e).unwrap();
        assert_eq!(k.contiguous().unwrap().as_slice::<f32>(), &[7.0, 9.0]);
        // Out-of-range rows are an error, not a panic.
        assert!(s.select(&[3]).is_err());
    }

    #[test]
    fn grouping_right_aligns_rows_and_pads_fillers_of_empty_rows() {
        let (a, empty) = (filled(&[1.0, 2.0]), KvCache::new());
        let g = KvCache::group(&[&a, &empty], &[0, 3]).unwrap();
        assert_eq!((g.rows(), g.offset()), (2, 2));
        assert_eq!(g.padding(), Some(&[0, 5][..]));
        // The empty row's three fillers start before its first real position.
        assert_eq!(g.row_offsets().as_slice::<i32>(), &[2, -3]);
        let mut g = g;
        let n = Array::from_slice(&[3.0f32, 4.0, 5.0, 6.0, 0.0, 0.0, 0.0, 9.0], &[2, 1, 4, 1]);
        let (k, _) = g.update(&n, &n).unwrap();
        assert_eq!(
            k.contiguous().unwrap().as_slice::<f32>(),
            &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 0.0, 0.0, 0.0, 0.0, 0.0, 9.0]
        );
        // After the chunk: row 1 holds one position, in the last column.
        assert_eq!((g.row_len(0), g.row_len(1)), (6, 1));

        // All rows empty: nothing to copy; rows and offsets come from the padding alone.
        let e = KvCache::group(&[&empty, &empty, &empty], &[0, 2, 1]).unwrap();
        assert_eq!((e.rows(), e.offset()), (3, 0));
        assert_eq!(e.row_offsets().as_slice::<i32>(), &[0, -2, -1]);
        // A filler's query sees only itself; real queries never see a filler.
        let m = e.batch_mask(3);
        let m = m.as_slice::<bool>();
        assert_eq!(
            &m[9..18],
            &[true, false, false, false, true, false, false, false, true]
        );
        // Equal rows need no padding at all.
        let p = KvCache::group(&[&a, &filled(&[7.0, 8.0])], &[0, 0]).unwrap();
        assert_eq!((p.rows(), p.padding()), (2, None));
        // Fillers between a row's cache and its chunk cannot be expressed.
        assert!(KvCache::group(&[&a, &empty], &[1, 0]).is_err());
        assert!(KvCache::group(&[&a], &[0, 0]).is_err());
    }

    #[test]
    fn quantized_caches_stack_and_select_like_plain_ones() {
        let q = Some(KvQuant {
            bits: 8,
            group_size: 32,
        });
        let row = |n: usize, base: f32| {
            let mut c = KvCache::with_quant(q);
            let v: Vec<f32> = (0..n * 32).map(|i| base + (i % 7) as f32).collect();
            let a = Array::from_slice(&v, &[1, 1, n as i32, 32]);
            c.update(&a, &a).unwrap();
            c
        };
        let s = KvCache::stack(&[&row(3, 0.0), &row(1, 10.0)]).unwrap();
        assert_eq!((s.rows(), s.padding()), (2, Some(&[0, 2][..])));
        let mut back = s.select(&[1]).unwrap();
        let e = Array::from_slice(&[10.0f32; 32], &[1, 1, 1, 32]);
        let (k, _) = back.update(&e, &e).unwrap();
        assert_eq!(k.shape(), &[1, 1, 2, 32]);
        assert!((k.contiguous().unwrap().as_slice::<f32>()[0] - 10.0).abs() < 0.1);

        // Grouped with an empty quantized row: its columns are zero-filled in every packed
        // buffer and the chunk lands after each row's own positions.
        let mut g = KvCache::group(&[&row(2, 0.0), &KvCache::with_quant(q)], &[0, 1]).unwrap();
        assert_eq!(
            (g.rows(), g.offset(), g.padding()),
            (2, 2, Some(&[0, 3][..]))
        );
        let n = Array::from_slice(&[20.0f32; 2 * 2 * 32], &[2, 1, 2, 32]);
        let (k, _) = g.update(&n, &n).unwrap();
        assert_eq!(k.shape(), &[2, 1, 4, 32]);
        let k = k.contiguous().unwrap();
        let k = k.as_slice::<f32>();
        assert!(
            (k[2 * 32] - 20.0).abs() < 0.2,
            "row 0's chunk follows its 2 positions"
        );
        assert!(
            (k[4 * 32 + 3 * 32] - 20.0).abs() < 0.2,
            "row 1's real token ends it"
        );
        assert_eq!((g.row_len(0), g.row_len(1)), (4, 1));
    }

    #[test]
    fn ollama_kv_cache_types_map_to_bits() {
        assert_eq!(KvQuant::from_ollama_type("").unwrap(), None);
        assert_eq!(KvQuant::from_ollama_type("f16").unwrap(), None);
        assert_eq!(KvQuant::from_ollama_type("q8_0").unwrap().unwrap().bits, 8);
        assert_eq!(KvQuant::from_ollama_type("Q4_0").unwrap().unwrap().bits, 4);
        assert!(KvQuant::from_ollama_type("q5_1").is_err());
    }
}
