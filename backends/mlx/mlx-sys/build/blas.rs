//! The BLAS that MLX's Linux CPU wheel loads (`mlx_cpu.libs/libblas-<hash>.so.*`, found by
//! `libmlx.so` through its `$ORIGIN` rpath): the bundled reference BLAS is replaced, because
//!
//! * OpenBLAS makes matmul ~17x faster on x86_64 (measured), and
//! * MLX sends every float32 product to `cblas_sgemm`, including the one-row products of a
//!   decode step, for which OpenBLAS's `sgemm` packs the whole weight matrix on every call;
//!   `sgemv` streams it once (2-4x faster per projection, measured: docs/engine.md).
//!
//! So the file becomes `blas_shim.c` compiled as a shared library that links OpenBLAS and
//! answers one-row `cblas_sgemm` calls with `cblas_sgemv` and 2-8 row calls against a
//! row-major matrix (batched decode) with a small kernel that reads the matrix once
//! (everything else goes to OpenBLAS).
//! Without a C compiler that can build it, the file becomes a symlink to OpenBLAS (the previous
//! arrangement). The original is kept as `*.reference`; `OLLMLX_ALLOW_REFERENCE_BLAS=1` builds
//! without OpenBLAS. At run time `OLLMLX_BLAS_GEMV=0` turns the one-row routing off.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const OPENBLAS_CANDIDATES: &[&str] = &[
    "/usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3",
    "/usr/lib/aarch64-linux-gnu/openblas-pthread/libblas.so.3",
    "/usr/lib64/libopenblasp.so.0",
    "/usr/lib64/libopenblas.so.0",
    "/usr/lib/libopenblas.so.0",
];

/// Replace the BLAS bundled in `libs` (the wheel's `mlx_cpu.libs`) by the shim over OpenBLAS,
/// built with `cc` (idempotent: rebuilt whenever the build script runs).
pub fn use_openblas(libs: &Path, cc: &Path) -> Result<(), String> {
    let Ok(entries) = fs::read_dir(libs) else {
        return Ok(());
    };
    let Some(bundled) = entries.filter_map(|e| e.ok()).map(|e| e.path()).find(|p| {
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        name.starts_with("libblas-") && !name.ends_with(".reference") && !name.ends_with(".tmp")
    }) else {
        return Ok(());
    };
    let reference = PathBuf::from(format!("{}.reference", bundled.display()));
    let openblas = env::var_os("OLLMLX_OPENBLAS")
        .map(PathBuf::from)
        .or_else(|| {
            OPENBLAS_CANDIDATES
                .iter()
                .map(PathBuf::from)
                .find(|p| p.exists())
        });
    let allow_reference = env::var("OLLMLX_ALLOW_REFERENCE_BLAS").is_ok_and(|v| v == "1");
    let meta = fs::symlink_metadata(&bundled).map_err(|e| e.to_string())?;
    // The wheel's own file is a regular file that is neither our shim nor a link: keep it.
    let original = !meta.file_type().is_symlink() && !reference.exists();
    match openblas {
        Some(target) => {
            if original {
                fs::rename(&bundled, &reference).map_err(|e| e.to_string())?;
            }
            let tmp = PathBuf::from(format!("{}.tmp", bundled.display()));
            match build_shim(cc, &target, &bundled, &tmp) {
                Ok(()) => {
                    fs::rename(&tmp, &bundled).map_err(|e| e.to_string())?;
                    // For this crate's own tests of the shim (tests/blas_shim_threads.rs).
                    println!("cargo:rustc-env=OLLMLX_BLAS_SHIM={}", bundled.display());
                    println!(
                        "cargo:warning=mlx-sys: MLX's BLAS is ollmlx's shim over OpenBLAS ({}): \
                         1-8 row products use its own kernel, other one-row products sgemv",
                        target.display()
                    );
                }
                Err(e) => {
                    let _ = fs::remove_file(&tmp);
                    replace_with_symlink(&target, &bundled)?;
                    println!(
                        "cargo:warning=mlx-sys: MLX's BLAS resolves to OpenBLAS ({}); the \
                         one-row shim was not built: {e}",
                        target.display()
                    );
                }
            }
            Ok(())
        }
        None if allow_reference => {
            if !original && reference.exists() {
                fs::remove_file(&bundled).map_err(|e| e.to_string())?;
                fs::rename(&reference, &bundled).map_err(|e| e.to_string())?;
            }
            println!(
                "cargo:warning=mlx-sys: OpenBLAS not found; MLX uses the wheel's reference BLAS \
                 (~17x slower matmul)"
            );
            Ok(())
        }
        None => Err(
            "OpenBLAS was not found. MLX's CPU wheel bundles a reference BLAS that is ~17x slower; \
             the build points it at OpenBLAS.\nInstall it (Debian/Ubuntu: apt-get install -y \
             libopenblas0-pthread), or set OLLMLX_OPENBLAS=/path/to/libblas.so.3, or set \
             OLLMLX_ALLOW_REFERENCE_BLAS=1 to build with the slow reference BLAS."
                .into(),
        ),
    }
}

/// Compile `blas_shim.c` into `tmp`, a shared library named like `bundled` that links
/// `openblas` (found again at run time through its own runpath).
fn build_shim(cc: &Path, openblas: &Path, bundled: &Path, tmp: &Path) -> Result<(), String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("build/blas_shim.c");
    let soname = bundled
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let dir = openblas.parent().unwrap_or(Path::new("/"));
    let out = Command::new(cc)
        .args(["-O3", "-fPIC", "-shared", "-o"])
        .arg(tmp)
        .arg(&src)
        .arg(openblas)
        .arg(format!("-Wl,-soname,{soname}"))
        .arg(format!("-Wl,-rpath,{}", dir.display()))
        .args(["-ldl", "-lpthread"])
        .output()
        .map_err(|e| format!("running {}: {e}", cc.display()))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{} failed: {}",
            cc.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn replace_with_symlink(target: &Path, link: &Path) -> Result<(), String> {
    if fs::read_link(link).is_ok_and(|t| t == target) {
        return Ok(());
    }
    let _ = fs::remove_file(link);
    symlink(target, link)
}

#[cfg(unix)]
fn symlink(target: &Path, link: &Path) -> Result<(), String> {
    std::os::unix::fs::symlink(target, link)
        .map_err(|e| format!("symlinking {} -> {}: {e}", link.display(), target.display()))
}

#[cfg(not(unix))]
fn symlink(target: &Path, link: &Path) -> Result<(), String> {
    fs::copy(target, link)
        .map(|_| ())
        .map_err(|e| e.to_string())
}
