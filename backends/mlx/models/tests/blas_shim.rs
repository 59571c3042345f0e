//! The BLAS under MLX on the Linux CPU device is ollmlx's shim (mlx-sys `build/blas.rs`,
//! `build/blas_shim.c`): one-row float32 products go to OpenBLAS's `sgemv` instead of `sgemm`,
//! and 2-8 row products against a row-major matrix to the shim's own small kernel. These tests
//! pin that the shim is in place and that every product it answers equals the same rows
//! computed by `sgemm` (as rows of a larger product) or a float64 reference, for each operand
//! layout MLX passes to BLAS, with a bias (BLAS `beta` = 1), and into recycled buffers.

use mlx_rs::ops::indexing::IndexOp;
use mlx_rs::{Array, Device, DeviceType};

fn ramp(n: usize, k: usize) -> Vec<f32> {
    (0..n).map(|i| ((i * k % 29) as f32 - 14.0) / 9.0).collect()
}

fn on_cpu() -> bool {
    Device::try_default()
        .and_then(|d| d.get_type())
        .is_ok_and(|t| matches!(t, DeviceType::Cpu))
}

fn rows(a: &Array) -> Vec<f32> {
    a.contiguous().unwrap().as_slice::<f32>().to_vec()
}

fn assert_close(one: &[f32], many_row0: &[f32], what: &str) {
    assert_eq!(one.len(), many_row0.len(), "{what}");
    for (i, (p, q)) in one.iter().zip(many_row0).enumerate() {
        assert!(p.is_finite(), "{what}: element {i} is {p}");
        assert!(
            (p - q).abs() <= 1e-4 * (1.0 + q.abs()),
            "{what}: element {i}: one-row {p} vs sgemm {q}"
        );
    }
}

#[cfg(target_os = "linux")]
#[test]
fn the_linux_cpu_build_routes_one_row_products_through_the_shim() {
    if !on_cpu() {
        eprintln!("SKIP: MLX's default device is not the CPU (no CPU BLAS shim to check)");
        return;
    }
    // Make sure libmlx (and with it the BLAS it loads) is in the process.
    Array::from_slice(&[1.0f32], &[1])
        .sum(None)
        .unwrap()
        .eval()
        .unwrap();
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    let blas: Vec<&str> = maps
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .filter(|p| p.contains("mlx_cpu.libs/libblas-") || p.contains("openblas"))
        .collect();
    let shim = blas
        .iter()
        .find(|p| p.contains("mlx_cpu.libs/libblas-"))
        .unwrap_or_else(|| {
            panic!(
                "MLX's BLAS is not ollmlx's shim (mapped BLAS files: {blas:?}): one-row products \
                 go to sgemm (see the mlx-sys build warnings)"
            )
        });
    let bytes = std::fs::read(shim).unwrap();
    assert!(
        bytes
            .windows(b"ollmlx_blas_shim_gemv".len())
            .any(|w| w == b"ollmlx_blas_shim_gemv"),
        "{shim} is not ollmlx's shim"
    );
}

#[test]
fn one_row_products_equal_the_same_row_of_a_multi_row_product_in_every_layout() {
    let (k, n) = (96, 200);
    let x = Array::from_slice(&ramp(3 * k, 7), &[3, k as i32]);
    let w = Array::from_slice(&ramp(n * k, 5), &[n as i32, k as i32]); // [out, in]
    let wt = w.t().contiguous().unwrap(); // [in, out], row-major
    let x1 = x.index(..1);
    // x · wᵀ with w row-major (BLAS: b transposed) and with wᵀ stored (b not transposed).
    for (name, b) in [
        ("x·wᵀ (b transposed)", w.t()),
        ("x·wt (b row-major)", wt.clone()),
    ] {
        let one = rows(&x1.matmul(&b).unwrap());
        let many = rows(&x.matmul(&b).unwrap());
        assert_close(&one, &many[..n], name);
    }
    // The one row taken from a transposed matrix (MLX copies it or passes it transposed).
    let xt = x.t().contiguous().unwrap(); // [k, 3]
    let one = rows(&xt.index((.., ..1)).t().matmul(&wt).unwrap());
    let many = rows(&x.matmul(&wt).unwrap());
    assert_close(&one, &many[..n], "a transposed");
    // With a bias: addmm is `beta = 1` in BLAS.
    let bias = Array::from_slice(&ramp(n, 3), &[n as i32]);
    let one = rows(&mlx_rs::ops::addmm(&bias, &x1, &wt, None, None).unwrap());
    let many = rows(&mlx_rs::ops::addmm(&bias, &x, &wt, None, None).unwrap());
    assert_close(&one, &many[..n], "addmm");
}

#[test]
fn a_one_row_product_into_a_recycled_buffer_holding_nans_is_clean() {
    let (k, n) = (64, 128);
    // Fill buffers of the output's size with NaN and free them: MLX recycles freed buffers.
    for _ in 0..4 {
        let nan = Array::from_slice(&vec![f32::NAN; n], &[1, n as i32]);
        nan.add(&nan).unwrap().sum(None).unwrap().eval().unwrap();
    }
    let x = Array::from_slice(&ramp(k, 3), &[1, k as i32]);
    let wt = Array::from_slice(&ramp(k * n, 11), &[k as i32, n as i32]);
    let y = rows(&x.matmul(&wt).unwrap());
    let want: Vec<f32> = (0..n)
        .map(|j| {
            let xs = ramp(k, 3);
            let ws = ramp(k * n, 11);
            (0..k).map(|i| xs[i] * ws[i * n + j]).sum()
        })
        .collect();
    assert_close(&y, &want, "recycled buffer");
}

#[test]
fn products_of_two_to_nine_rows_match_a_float64_reference() {
    // Column counts around the kernel's 16-column shares and its split between threads; 9
    // rows is past the small kernel (sgemm).
    for (k, n) in [(64, 100), (96, 257), (576, 1000)] {
        let xs = ramp(9 * k, 7);
        let ws = ramp(k * n, 5);
        let wt = Array::from_slice(&ws, &[k as i32, n as i32]);
        let bias = Array::from_slice(&ramp(n, 3), &[n as i32]);
        for m in 2..=9usize {
            let x = Array::from_slice(&xs[..m * k], &[m as i32, k as i32]);
            let got = rows(&x.matmul(&wt).unwrap());
            let with_bias = rows(&mlx_rs::ops::addmm(&bias, &x, &wt, None, None).unwrap());
            let b = ramp(n, 3);
            for r in 0..m {
                let want: Vec<f32> = (0..n)
                    .map(|j| {
                        (0..k)
                            .map(|i| xs[r * k + i] as f64 * ws[i * n + j] as f64)
                            .sum::<f64>() as f32
                    })
                    .collect();
                let what = format!("{m} rows, k {k}, n {n}, row {r}");
                assert_close(&got[r * n..(r + 1) * n], &want, &what);
                let want_b: Vec<f32> = want.iter().zip(&b).map(|(w, b)| w + b).collect();
                assert_close(
                    &with_bias[r * n..(r + 1) * n],
                    &want_b,
                    &format!("{what}, bias"),
                );
            }
        }
    }
}

#[test]
fn a_row_gets_the_same_bits_alone_and_in_a_product_of_up_to_eight_rows() {
    if !on_cpu() {
        eprintln!("SKIP: MLX's default device is not the CPU (no CPU BLAS shim to check)");
        return;
    }
    // What makes a batched decode step give each row exactly what it gets alone: one kernel
    // for 1-8 rows against a row-major matrix, with the same summation order for every row.
    let (k, n) = (576, 960);
    let xs = ramp(8 * k, 13);
    let wt = Array::from_slice(&ramp(k * n, 17), &[k as i32, n as i32]);
    let alone: Vec<Vec<f32>> = (0..8)
        .map(|r| {
            let x = Array::from_slice(&xs[r * k..(r + 1) * k], &[1, k as i32]);
            rows(&x.matmul(&wt).unwrap())
        })
        .collect();
    for m in 2..=8usize {
        let x = Array::from_slice(&xs[..m * k], &[m as i32, k as i32]);
        let together = rows(&x.matmul(&wt).unwrap());
        for (r, want) in alone.iter().enumerate().take(m) {
            let got = &together[r * n..(r + 1) * n];
            let same = got
                .iter()
                .zip(want)
                .all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(same, "row {r} of {m} differs from the row computed alone");
        }
    }
}
