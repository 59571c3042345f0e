//! Packed twins of dequantized weights for decode steps on the CPU: a transposed dense layer
//! ([`crate::nn::Linear::DenseT`]) whose float32 weights were dequantized at load from affine
//! 2-, 4- or 8-bit values keeps those values ([`PackedSource`]) until its first product of at
//! most [`MAX_ROWS`] rows, then hands them to the BLAS shim (`mlx_sys::packed`) as one byte per
//! value plus per-group scales and biases (the shim keeps 4-bit values as nibbles). From then
//! on the shim's small kernel, which computes every decode-step product, reads a third to a
//! fifth of the bytes it read from the floats and
//! rebuilds exactly the same float values (the shim compares every rebuilt value with the
//! float matrix before it accepts a twin), so results do not change by a bit. Decode on the
//! CPU is bound by how fast the weights stream from memory, which is what this saves.
//!
//! Nothing happens on Metal/CUDA (weights stay quantized there), without the shim, for
//! weights that were never quantized, or with `OLLMLX_BLAS_PACKED=0`.

use std::cell::RefCell;

use mlx_rs::Array;

use crate::error::Result;
use crate::nn::QuantSpec;

/// Rows up to which a product goes to the shim's small kernel (its `SMALL_M`).
pub const MAX_ROWS: usize = 8;

/// The affine-quantized arrays a dense layer was dequantized from, in the loaded `[out, in]`
/// orientation.
#[derive(Clone)]
pub struct PackedSource {
    /// Packed `uint32` `[out, in * bits / 32]`.
    pub weight: Array,
    /// `[out, in / group]`, in the dtype the floats were dequantized with.
    pub scales: Array,
    /// Same shape and dtype as `scales`.
    pub biases: Array,
    /// Group size and bits.
    pub spec: QuantSpec,
}

impl PackedSource {
    /// Several layers' sources stacked along `out` (for fused projections); `None` unless all
    /// have the same spec.
    pub fn concat(parts: &[PackedSource]) -> Result<Option<PackedSource>> {
        let Some(first) = parts.first() else {
            return Ok(None);
        };
        if parts.iter().any(|p| p.spec != first.spec) {
            return Ok(None);
        }
        let cat = |f: fn(&PackedSource) -> &Array| -> Result<Array> {
            let arrays: Vec<&Array> = parts.iter().map(f).collect();
            Ok(mlx_rs::ops::concatenate(&arrays, 0)?)
        };
        Ok(Some(PackedSource {
            weight: cat(|p| &p.weight)?,
            scales: cat(|p| &p.scales)?,
            biases: cat(|p| &p.biases)?,
            spec: first.spec,
        }))
    }
}

enum State {
    Pending(PackedSource),
    /// Registered for the float matrix at this address.
    Registered(usize),
    Off,
}

/// A transposed dense layer's twin: pending, registered with the shim, or off. Dropping it
/// unregisters the twin; it must be dropped before the float matrix it belongs to (declare it
/// before the weights in the owning struct), so that the shim never sees a freed address.
pub struct Packed(RefCell<State>);

impl Packed {
    /// A twin waiting for its first decode-sized product.
    pub fn new(source: PackedSource) -> Self {
        Packed(RefCell::new(State::Pending(source)))
    }

    /// The source, if still pending (the twin is off afterwards).
    pub fn take_source(&self) -> Option<PackedSource> {
        match self.0.replace(State::Off) {
            State::Pending(s) => Some(s),
            other => {
                self.0.replace(other);
                None
            }
        }
    }

    /// Whether the shim has taken this twin.
    pub fn is_registered(&self) -> bool {
        matches!(*self.0.borrow(), State::Registered(_))
    }

    /// Before a product of `x` with `weight_t` (`[in, out]`): on the first one of at most
    /// [`MAX_ROWS`] rows, register the twin (or turn it off when the shim cannot take it).
    pub fn prepare(&self, weight_t: &Array, x: &Array) {
        let rows = x.size() / (x.dim(-1).max(1) as usize);
        if rows > MAX_ROWS || !matches!(*self.0.borrow(), State::Pending(_)) {
            return;
        }
        let State::Pending(src) = self.0.replace(State::Off) else {
            return;
        };
        if let Some(addr) = register(weight_t, &src) {
            self.0.replace(State::Registered(addr));
        }
    }
}

impl Drop for Packed {
    fn drop(&mut self) {
        if let State::Registered(addr) = *self.0.borrow() {
            mlx_sys::packed::unregister(addr as *const f32);
        }
    }
}

/// Twins the shim holds now (all models of the process).
pub fn registered() -> usize {
    mlx_sys::packed::count()
}

/// Whether this process's BLAS takes packed twins (the shim is under MLX).
pub fn available() -> bool {
    mlx_sys::packed::available()
}

/// Unpack `src` to one byte per value (`[out, in]`) and register it with its scales and
/// biases for `weight_t`; the address registered, or `None`.
fn register(weight_t: &Array, src: &PackedSource) -> Option<usize> {
    if !available() {
        return None;
    }
    let (k, n) = (weight_t.dim(0) as usize, weight_t.dim(1) as usize);
    let bits = src.spec.bits as usize;
    let group = src.spec.group_size as usize;
    if !matches!(bits, 2 | 4 | 8) || group == 0 || k % group != 0 {
        return None;
    }
    let per_word = 32 / bits;
    let b = weight_t.try_as_slice::<f32>().ok()?;
    let words = src.weight.try_as_slice::<u32>().ok()?;
    let scales = src.scales.try_as_slice::<f32>().ok()?;
    let biases = src.biases.try_as_slice::<f32>().ok()?;
    let groups = k / group;
    if k % per_word != 0
        || words.len() != n * (k / per_word)
        || scales.len() != n * groups
        || biases.len() != n * groups
    {
        return None;
    }
    let mask = (1u32 << bits) - 1;
    // One byte per value, in the quantized orientation (row `col` = column `col` of b).
    let mut q = Vec::with_capacity(k * n);
    for &word in words {
        for i in 0..per_word {
            q.push(((word >> (i * bits)) & mask) as u8);
        }
    }
    match mlx_sys::packed::register(b, k, n, group, &q, scales, biases) {
        mlx_sys::packed::Registered::Yes => Some(b.as_ptr() as usize),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::Linear;
    use mlx_rs::ops::{dequantize, quantize};

    /// A `[out, in]` layer quantized with MLX (group 32) and its float32 dequantized copy.
    fn layer(out: i32, inp: i32, bits: i32, seed: u32) -> (Array, PackedSource) {
        let vals: Vec<f32> = (0..out * inp)
            .map(|i| (((i as u32).wrapping_mul(2_654_435_761) ^ seed) % 2001) as f32 / 1000.0 - 1.0)
            .collect();
        let w = Array::from_slice(&vals, &[out, inp]);
        let (q, s, b) = quantize(&w, 32, bits).unwrap();
        let d = dequantize(&q, &s, &b, 32, bits).unwrap();
        let spec = QuantSpec {
            group_size: 32,
            bits,
        };
        let src = PackedSource {
            weight: q,
            scales: s,
            biases: b,
            spec,
        };
        (d, src)
    }

    /// Whether the shim is there; says SKIP when not.
    fn shim() -> bool {
        let on = available();
        if !on {
            eprintln!("SKIP: this build's BLAS has no packed route (no shim)");
        }
        on
    }

    fn bits_of(a: &Array) -> Vec<u32> {
        a.as_slice::<f32>().iter().map(|v| v.to_bits()).collect()
    }

    #[test]
    fn a_registered_twin_gives_the_float_products_bit_for_bit() {
        if !shim() {
            return;
        }
        for (bits, biased) in [(4, false), (8, false), (2, false), (4, true)] {
            let (d, src) = layer(200, 96, bits, bits as u32 * 77);
            // A bias makes the product an `addmm` (BLAS with beta = 1 over the bias).
            let bias = biased.then(|| {
                let v: Vec<f32> = (0..200).map(|i| (i as f32 * 0.37).sin()).collect();
                Array::from_slice(&v, &[200])
            });
            let plain = Linear::Dense {
                weight: d.clone(),
                bias: bias.clone(),
            }
            .transposed()
            .unwrap();
            let twin = Linear::Dense { weight: d, bias }
                .transposed_packed(Some(src))
                .unwrap();
            for rows in [1, 3, 8] {
                let x: Vec<f32> = (0..rows * 96)
                    .map(|i| ((i * 37 % 101) as f32) / 50.0 - 1.0)
                    .collect();
                let x = Array::from_slice(&x, &[1, rows, 96]);
                let want = plain.forward(&x).unwrap();
                let got = twin.forward(&x).unwrap();
                assert_eq!(
                    bits_of(&got),
                    bits_of(&want),
                    "{bits}-bit, bias {biased}, {rows} rows"
                );
            }
            let Linear::DenseT {
                packed: Some(p), ..
            } = &twin
            else {
                panic!("a transposed layer with a twin");
            };
            assert!(p.is_registered(), "{bits}-bit twin not taken by the shim");
        }
    }

    #[test]
    fn a_twin_that_does_not_rebuild_the_floats_is_refused() {
        if !shim() {
            return;
        }
        let (d, src) = layer(64, 64, 4, 5);
        // Floats that differ from the quantized values in one element.
        let mut v = d.as_slice::<f32>().to_vec();
        v[100] += 0.25;
        let changed = Array::from_slice(&v, &[64, 64]);
        let l = Linear::Dense {
            weight: changed,
            bias: None,
        }
        .transposed_packed(Some(src))
        .unwrap();
        let x = Array::from_slice(&[0.5f32; 64], &[1, 1, 64]);
        let y = l.forward(&x).unwrap();
        y.eval().unwrap();
        let Linear::DenseT {
            packed: Some(p), ..
        } = &l
        else {
            panic!("a transposed layer with a twin");
        };
        assert!(!p.is_registered());
    }

    #[test]
    fn prefill_sized_products_leave_the_twin_pending_and_dropping_unregisters() {
        if !shim() {
            return;
        }
        let (d, src) = layer(64, 64, 4, 9);
        let l = Linear::Dense {
            weight: d,
            bias: None,
        }
        .transposed_packed(Some(src))
        .unwrap();
        let Linear::DenseT {
            packed: Some(p), ..
        } = &l
        else {
            panic!("a transposed layer with a twin");
        };
        let long = Array::from_slice(&vec![0.5f32; 16 * 64], &[1, 16, 64]);
        l.forward(&long).unwrap().eval().unwrap();
        assert!(!p.is_registered(), "16 rows must not register");
        let one = Array::from_slice(&[0.5f32; 64], &[1, 1, 64]);
        l.forward(&one).unwrap().eval().unwrap();
        assert!(p.is_registered());
        assert!(registered() >= 1);
        drop(l);
    }
}
