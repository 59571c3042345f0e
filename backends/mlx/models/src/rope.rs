//! Rotary position embeddings (plain, linear and llama3 scaling, explicit GGUF frequency
//! factors) and where a step's new positions sit in a possibly padded batch.
//!
//! Where it sits: every decoder's attention (`nn::Attention` and the families with their own)
//! rotates queries and keys through [`StepPositions::rope`] before `sdpa::attention`.

use mlx_rs::fast::{self, ScaledDotProductAttentionMask};
use mlx_rs::Array;

use crate::cache::KvCache;
use crate::error::Result;

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

    /// The base MLX's kernel takes: none when explicit frequencies replace it.
    fn fast_base(&self) -> Option<f32> {
        self.freqs.is_none().then_some(self.base)
    }

    /// Rotate `x` (`[B, H, L, D]`) where row `b` starts at position `offsets[b]` (`[B]` int32):
    /// the rows of a padded batch.
    pub fn forward_rows(&self, x: &Array, offsets: &Array) -> Result<Array> {
        Ok(fast::rope_dynamic(
            x,
            self.dims,
            self.traditional,
            self.fast_base(),
            self.scale,
            offsets,
            self.freqs.as_ref(),
        )?)
    }

    /// Rotate `x` (`[B, H, L, D]`) for positions `offset..offset+L`.
    pub fn forward(&self, x: &Array, offset: i32) -> Result<Array> {
        Ok(fast::rope(
            x,
            self.dims,
            self.traditional,
            self.fast_base(),
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
    ///
    /// Every layer of a step asks with the same padding, offset and rows, so a padded batch's
    /// offsets and mask are built once per step and shared by the layers (on a GPU each is an
    /// upload), not once per layer: the arrays are a function of that key alone.
    pub fn of(cache: &KvCache, l: i32) -> Self {
        type Key = (Vec<i32>, i32, usize, i32);
        thread_local! {
            static LAST: std::cell::RefCell<Option<(Key, Array, Array)>> =
                const { std::cell::RefCell::new(None) };
        }
        let Some(pad) = cache.padding() else {
            return StepPositions::Scalar(cache.offset());
        };
        LAST.with(|last| {
            let mut last = last.borrow_mut();
            let fresh = match last.as_ref() {
                Some(((p, o, r, n), _, _)) => {
                    p.as_slice() != pad || *o != cache.offset() || *r != cache.rows() || *n != l
                }
                None => true,
            };
            if fresh {
                let key = (pad.to_vec(), cache.offset(), cache.rows(), l);
                *last = Some((key, cache.row_offsets(), cache.batch_mask(l)));
            }
            let (_, offsets, mask) = last.as_ref().expect("just set");
            StepPositions::Rows {
                offsets: offsets.clone(),
                mask: mask.clone(),
            }
        })
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

#[cfg(test)]
mod tests {
    use super::*;

    fn padded(rows: &[i32]) -> KvCache {
        let parts: Vec<KvCache> = rows
            .iter()
            .map(|&n| {
                let mut c = KvCache::default();
                let kv = Array::from_slice(&vec![0.5f32; (2 * n * 4) as usize], &[1, 2, n, 4]);
                c.update(&kv, &kv).unwrap();
                c
            })
            .collect();
        KvCache::stack(&parts.iter().collect::<Vec<_>>()).unwrap()
    }

    fn parts(p: &StepPositions) -> (Vec<i32>, Vec<bool>, usize) {
        match p {
            StepPositions::Rows { offsets, mask } => (
                offsets.as_slice::<i32>().to_vec(),
                mask.as_slice::<bool>().to_vec(),
                // Where the values live: one buffer when the arrays are shared.
                offsets.as_slice::<i32>().as_ptr() as usize,
            ),
            StepPositions::Scalar(_) => panic!("a padded cache gives per-row positions"),
        }
    }

    #[test]
    fn layers_of_one_step_share_one_set_of_positions_and_another_step_gets_its_own() {
        // Two layers' caches of the same padded batch: the second asks for the same arrays.
        let (a, b) = (padded(&[3, 5]), padded(&[3, 5]));
        let (oa, ma, ha) = parts(&StepPositions::of(&a, 1));
        let (ob, mb, hb) = parts(&StepPositions::of(&b, 1));
        assert_eq!((oa.clone(), ma.clone()), (ob, mb));
        assert_eq!(ha, hb, "the same array, not a second copy");
        assert_eq!(oa, vec![3, 5]);
        assert_eq!(ma, (a.batch_mask(1).as_slice::<bool>()).to_vec());
        // A different batch (other padding) gets its own, correct, arrays.
        let c = padded(&[5, 2]);
        let (oc, mc, _) = parts(&StepPositions::of(&c, 1));
        assert_eq!(oc, vec![5, 2]);
        assert_eq!(mc, c.batch_mask(1).as_slice::<bool>().to_vec());
        // And so does a second new position count on the first batch.
        let (_, m2, _) = parts(&StepPositions::of(&a, 2));
        assert_eq!(m2, a.batch_mask(2).as_slice::<bool>().to_vec());
    }

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
}
