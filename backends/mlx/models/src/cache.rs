//! Per-layer key/value cache used by attention during prefill and decode.
//!
//! Keys and values are stored as `[batch, kv_heads, capacity, head_dim]` buffers grown in steps
//! of [`KvCache::STEP`] positions and written with `slice_update`, so a decode step does not copy
//! the whole history.

use mlx_rs::ops::indexing::{TryIndexMutOp, TryIndexOp};
use mlx_rs::ops::{concatenate, zeros_dtype};
use mlx_rs::Array;

use crate::error::Result;

/// The cache of one attention layer.
#[derive(Default)]
pub struct KvCache {
    keys: Option<Array>,
    values: Option<Array>,
    offset: i32,
}

impl KvCache {
    /// Growth granularity of the buffers, in positions.
    pub const STEP: i32 = 256;

    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of positions stored so far (the RoPE offset of the next token).
    pub fn offset(&self) -> i32 {
        self.offset
    }

    /// Forget everything.
    pub fn clear(&mut self) {
        *self = Self::default();
    }

    /// Drop positions beyond `len` (for prompt-prefix reuse).
    pub fn truncate(&mut self, len: i32) {
        self.offset = self.offset.min(len.max(0));
    }

    /// Append `keys`/`values` (`[B, KVH, L, D]`) and return the full history `[B, KVH, offset, D]`.
    pub fn update(&mut self, keys: &Array, values: &Array) -> Result<(Array, Array)> {
        let n = keys.dim(2);
        let prev = self.offset;
        let needed = prev + n;
        let capacity = self.keys.as_ref().map_or(0, |k| k.dim(2));
        if needed > capacity {
            let grow = ((needed - capacity + Self::STEP - 1) / Self::STEP) * Self::STEP;
            let (b, h, kd) = (keys.dim(0), keys.dim(1), keys.dim(3));
            let vd = values.dim(3);
            let new_k = zeros_dtype(&[b, h, grow, kd], keys.dtype())?;
            let new_v = zeros_dtype(&[b, h, grow, vd], values.dtype())?;
            self.keys = Some(match self.keys.take() {
                Some(old) => concatenate(&[old.try_index((.., .., ..prev, ..))?, new_k], 2)?,
                None => new_k,
            });
            self.values = Some(match self.values.take() {
                Some(old) => concatenate(&[old.try_index((.., .., ..prev, ..))?, new_v], 2)?,
                None => new_v,
            });
        }
        let (Some(k), Some(v)) = (self.keys.as_mut(), self.values.as_mut()) else {
            return Err(crate::ModelError::Invalid(
                "kv cache buffers missing".into(),
            ));
        };
        k.try_index_mut((.., .., prev..needed, ..), keys)?;
        v.try_index_mut((.., .., prev..needed, ..), values)?;
        self.offset = needed;
        Ok((
            k.try_index((.., .., ..needed, ..))?,
            v.try_index((.., .., ..needed, ..))?,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
