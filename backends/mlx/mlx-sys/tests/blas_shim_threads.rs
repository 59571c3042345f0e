//! The BLAS shim this crate's build script puts under MLX on Linux CPU (`build/blas_shim.c`),
//! called directly: its small kernel splits wide 1-8 row products between helper threads that
//! one caller at a time may use (callers that find them busy compute alone). These tests pin
//! that the split never changes a result: every element is the same sum in the same order
//! whichever thread computes it and however many threads share the product.

use std::ffi::{c_char, c_int, c_void, CString};

type Sgemm = unsafe extern "C" fn(
    c_int,
    c_int,
    c_int,
    c_int,
    c_int,
    c_int,
    f32,
    *const f32,
    c_int,
    *const f32,
    c_int,
    f32,
    *mut f32,
    c_int,
);

extern "C" {
    fn dlopen(path: *const c_char, flags: c_int) -> *mut c_void;
    fn dlsym(handle: *mut c_void, name: *const c_char) -> *mut c_void;
}

/// The shim's `cblas_sgemm`, or `None` (said on stderr: the test skips) where this build has
/// no shim (macOS, CUDA, no OpenBLAS or no C compiler at build time).
fn shim_sgemm() -> Option<Sgemm> {
    let Some(path) = option_env!("OLLMLX_BLAS_SHIM") else {
        eprintln!(
            "SKIP: this build has no BLAS shim (not Linux CPU with OpenBLAS and a C compiler)"
        );
        return None;
    };
    let path = CString::new(path).ok()?;
    const RTLD_NOW: c_int = 2;
    // SAFETY: dlopen/dlsym with NUL-terminated names; the symbol is the shim's CBLAS
    // `cblas_sgemm`, whose C signature `Sgemm` spells out.
    unsafe {
        let handle = dlopen(path.as_ptr(), RTLD_NOW);
        assert!(!handle.is_null(), "cannot load the BLAS shim at {path:?}");
        let sym = dlsym(handle, c"cblas_sgemm".as_ptr());
        assert!(
            !sym.is_null(),
            "the BLAS shim at {path:?} has no cblas_sgemm"
        );
        Some(std::mem::transmute::<*mut c_void, Sgemm>(sym))
    }
}

fn ramp(n: usize, k: usize) -> Vec<f32> {
    (0..n).map(|i| ((i * k % 29) as f32 - 14.0) / 9.0).collect()
}

/// Row-major `m x k` (the first m rows of `x`) times `k x n` `w`, into a buffer of NaNs.
fn product(sgemm: Sgemm, x: &[f32], w: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
    const ROW_MAJOR: c_int = 101;
    const NO_TRANS: c_int = 111;
    assert!(x.len() >= m * k && w.len() >= k * n);
    let mut c = vec![f32::NAN; m * n];
    let (mi, ni, ki) = (m as c_int, n as c_int, k as c_int);
    // SAFETY: every buffer holds the rows and columns the dimensions and leading dimensions
    // (k, n, n) make the shim read or write.
    unsafe {
        sgemm(
            ROW_MAJOR,
            NO_TRANS,
            NO_TRANS,
            mi,
            ni,
            ki,
            1.0,
            x.as_ptr(),
            ki,
            w.as_ptr(),
            ni,
            0.0,
            c.as_mut_ptr(),
            ni,
        )
    };
    c
}

fn same_bits(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(p, q)| p.to_bits() == q.to_bits())
}

#[test]
fn products_from_several_threads_at_once_give_the_bits_each_gets_alone() {
    let Some(sgemm) = shim_sgemm() else { return };
    let (k, n) = (576, 1000);
    let (x, w) = (ramp(8 * k, 11), ramp(k * n, 19));
    let alone: Vec<Vec<f32>> = (1..=8).map(|m| product(sgemm, &x, &w, m, k, n)).collect();
    std::thread::scope(|s| {
        for t in 0..4usize {
            let (x, w, alone) = (&x, &w, &alone);
            s.spawn(move || {
                for i in 0..200usize {
                    let m = 1 + (t + i) % 8;
                    let got = product(sgemm, x, w, m, k, n);
                    assert!(
                        same_bits(&got, &alone[m - 1]),
                        "thread {t}, call {i}: the {m}-row product differs from the same \
                         product computed alone"
                    );
                }
            });
        }
    });
}

#[test]
fn every_column_count_around_the_thread_split_gives_the_float64_sum() {
    let Some(sgemm) = shim_sgemm() else { return };
    // Widths that split into uneven 16-column shares, leave a helper without columns, or stay
    // on one thread (too small to split); k large enough that the split is used.
    let k = 512;
    for n in [17, 31, 33, 510, 511, 512, 513, 527, 1001, 2049, 4111] {
        let (x, w) = (ramp(3 * k, 7), ramp(k * n, 5));
        for m in [1, 3] {
            let got = product(sgemm, &x, &w, m, k, n);
            for r in 0..m {
                for j in 0..n {
                    let want: f64 = (0..k)
                        .map(|i| x[r * k + i] as f64 * w[i * n + j] as f64)
                        .sum();
                    let g = got[r * n + j];
                    assert!(
                        (g as f64 - want).abs() <= 1e-3 * (1.0 + want.abs()),
                        "n {n}, m {m}, row {r}, column {j}: {g} vs {want}"
                    );
                }
            }
        }
    }
}
