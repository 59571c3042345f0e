//! What every decoder family does around its blocks, in one place: one KV cache per layer, the
//! cache-count check at the top of [`crate::Model::forward`], and the output head (keep the last
//! position when only it is wanted, final norm, `lm_head` or the tied embedding matrix).

use mlx_rs::Array;

use crate::cache::KvCache;
use crate::error::{ModelError, Result};
use crate::nn::{Embedding, Linear, RmsNorm};
use crate::LogitsMode;

/// Fresh, empty caches for `layers` blocks.
pub(crate) fn layer_caches(layers: usize) -> Vec<KvCache> {
    (0..layers).map(|_| KvCache::new()).collect()
}

/// `forward` was given one cache per block.
pub(crate) fn check_caches(caches: &[KvCache], layers: usize) -> Result<()> {
    if caches.len() == layers {
        Ok(())
    } else {
        Err(ModelError::Invalid(format!(
            "{} caches for {layers} layers",
            caches.len()
        )))
    }
}

/// Logits from the last hidden states `h` (`[B, L, hidden]`).
pub(crate) fn logits(
    mut h: Array,
    mode: LogitsMode,
    norm: &RmsNorm,
    lm_head: Option<&Linear>,
    embed: &Embedding,
) -> Result<Array> {
    if mode == LogitsMode::Last && h.dim(1) > 1 {
        let last = Array::from_int(h.dim(1) - 1);
        h = h.take_axis(&last, 1)?.expand_dims(1)?;
    }
    let h = norm.forward(&h)?;
    match lm_head {
        Some(head) => head.forward(&h),
        None => embed.as_linear(&h),
    }
}
