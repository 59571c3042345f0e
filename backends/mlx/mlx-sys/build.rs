//! Build script of ollmlx's `mlx-sys`: mlx-c 0.7.0 compiled against the official MLX 0.32.2
//! binaries, plus bindgen bindings identical in shape to crates.io's `mlx-sys 0.7.0`.
//!
//! Steps (the recipe is documented in `docs/engine.md`):
//! 1. mlx-c sources: from the published `mlx-sys 0.7.0` crate, fetched by cargo at build time and
//!    checksum-checked (`MLX_C_SRC` overrides with a local mlx-c checkout).
//! 2. MLX: `MLX_DIR` (a directory holding `MLXConfig.cmake`), else the official wheel installed
//!    with `pip install --target` into a project cache (`OLLMLX_MLX_CACHE`, default
//!    `~/.cache/ollmlx`). On Linux CPU the wheel's reference BLAS is replaced by ollmlx's shim
//!    over OpenBLAS (`build/blas.rs`).
//! 3. CMake builds `libmlxc.a` (clang >= 15 + libstdc++ on x86_64 Linux) with a force-included
//!    prelude header; bindgen parses the same headers with the same prelude.
//! 4. Link `static=mlxc`, `dylib=mlx` and the C++ runtime; publish `lib_dir` (→ `DEP_MLX_LIB_DIR`)
//!    so dependents can set an rpath.

#[path = "build/blas.rs"]
mod blas;
#[path = "build/fetch.rs"]
mod fetch;
#[path = "build/install.rs"]
mod install;
#[path = "build/toolchain.rs"]
mod toolchain;

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The MLX release mlx-c 0.7.0 was written against (other versions do not compile).
pub const MLX_VERSION: &str = "0.32.2";

fn main() {
    for var in [
        "MLX_DIR",
        "MLX_C_SRC",
        "OLLMLX_MLX_CACHE",
        "OLLMLX_MLX_VARIANT",
        "OLLMLX_ALLOW_REFERENCE_BLAS",
        "OLLMLX_OPENBLAS",
        "MLX_SYS_CXX",
        "MLX_SYS_CC",
        "PYTHON",
        "LIBCLANG_PATH",
    ] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    println!("cargo:rerun-if-changed=build");
    if let Err(msg) = run() {
        eprintln!("\nerror: mlx-sys build failed:\n{msg}\n");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let out = PathBuf::from(env::var("OUT_DIR").map_err(|e| e.to_string())?);
    let target_os = env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let target_arch = env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();

    let mlx_c = fetch::mlx_c_sources(&out)?;
    let mlx = install::locate_mlx(&target_os, &target_arch)?;
    let tc = toolchain::detect(&target_os, &target_arch)?;
    if let Some(libs) = &mlx.cpu_libs {
        blas::use_openblas(libs, &tc.cc)?;
    }
    let prelude = toolchain::write_prelude(&out)?;

    build_mlx_c(&out, &mlx_c, &mlx, &tc, &prelude)?;
    generate_bindings(&out, &mlx_c, &tc, &prelude)?;

    println!("cargo:rustc-link-lib=dylib=mlx");
    println!("cargo:rustc-link-search=native={}", mlx.lib_dir.display());
    if target_os == "macos" {
        println!("cargo:rustc-link-lib=dylib=c++");
    } else {
        println!("cargo:rustc-link-lib=dylib=stdc++");
    }
    // This crate's own tests and examples; dependents use DEP_MLX_LIB_DIR / DEP_MLX_RPATH.
    for dir in &mlx.rpath {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{}", dir.display());
    }
    println!("cargo:lib_dir={}", mlx.lib_dir.display());
    let rpath = env::join_paths(&mlx.rpath).map_err(|e| e.to_string())?;
    println!("cargo:rpath={}", rpath.to_string_lossy());
    println!("cargo:include={}", mlx_c.display());
    println!("cargo:variant={}", mlx.variant);
    println!("cargo:version={MLX_VERSION}");
    Ok(())
}

/// Configure and compile mlx-c into `OUT_DIR/mlxc-build/libmlxc.a`.
fn build_mlx_c(
    out: &Path,
    mlx_c: &Path,
    mlx: &install::Mlx,
    tc: &toolchain::Toolchain,
    prelude: &Path,
) -> Result<(), String> {
    let cmake = toolchain::require_tool(
        "cmake",
        "apt-get install -y cmake   (macOS: brew install cmake)",
    )?;
    let build = out.join("mlxc-build");
    let mut cxx_flags = format!("-include {}", prelude.display());
    for inc in &tc.extra_includes {
        cxx_flags.push_str(&format!(" -I{}", inc.display()));
    }
    let mut cfg = Command::new(&cmake);
    cfg.arg("-S")
        .arg(mlx_c)
        .arg("-B")
        .arg(&build)
        .arg("-DCMAKE_BUILD_TYPE=Release")
        .arg("-DMLX_C_USE_SYSTEM_MLX=ON")
        .arg("-DMLX_C_BUILD_EXAMPLES=OFF")
        .arg("-DBUILD_SHARED_LIBS=OFF")
        .arg("-DCMAKE_POSITION_INDEPENDENT_CODE=ON")
        .arg(format!("-DMLX_DIR={}", mlx.cmake_dir.display()))
        .arg(format!("-DCMAKE_C_COMPILER={}", tc.cc.display()))
        .arg(format!("-DCMAKE_CXX_COMPILER={}", tc.cxx.display()))
        .arg(format!("-DCMAKE_CXX_FLAGS={cxx_flags}"));
    for var in ["CFLAGS", "CXXFLAGS", "CC", "CXX", "MAKEFLAGS", "MFLAGS"] {
        cfg.env_remove(var);
    }
    toolchain::run(&mut cfg, "configuring mlx-c with cmake")?;
    let jobs = env::var("NUM_JOBS").unwrap_or_else(|_| "2".into());
    let mut b = Command::new(&cmake);
    b.arg("--build")
        .arg(&build)
        .arg("--config")
        .arg("Release")
        .arg("--parallel")
        .arg(jobs);
    b.env_remove("MAKEFLAGS").env_remove("MFLAGS");
    toolchain::run(&mut b, "compiling mlx-c")?;
    let lib = ["libmlxc.a", "Release/mlxc.lib", "mlxc.lib"]
        .iter()
        .map(|p| build.join(p))
        .find(|p| p.exists())
        .ok_or_else(|| format!("cmake finished but no libmlxc.a in {}", build.display()))?;
    println!(
        "cargo:rustc-link-search=native={}",
        lib.parent().unwrap_or(&build).display()
    );
    println!("cargo:rustc-link-lib=static=mlxc");
    Ok(())
}

/// Run bindgen over every `mlx/c/*.h`, like the published crate, into `OUT_DIR/bindings.rs`.
fn generate_bindings(
    out: &Path,
    mlx_c: &Path,
    tc: &toolchain::Toolchain,
    prelude: &Path,
) -> Result<(), String> {
    if env::var_os("LIBCLANG_PATH").is_none() {
        if let Some(dir) = &tc.libclang_dir {
            // SAFETY-free in edition 2021: build scripts are single-threaded here.
            env::set_var("LIBCLANG_PATH", dir);
        }
    }
    let header_dir = mlx_c.join("mlx/c");
    let mut headers: Vec<PathBuf> = std::fs::read_dir(&header_dir)
        .map_err(|e| format!("reading {}: {e}", header_dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "h"))
        .collect();
    headers.sort();
    let mut builder = bindgen::Builder::default()
        .rust_target("1.73.0".parse().map_err(|e| format!("{e:?}"))?)
        .clang_arg(format!("-I{}", mlx_c.display()))
        .clang_arg("-include")
        .clang_arg(prelude.display().to_string())
        .blocklist_function("malloc")
        .blocklist_function("realloc")
        // mlx-rs expects `bfloat16_t` to be a plain `u16` (as bindgen emits for `__bf16` on Apple
        // targets); declare it ourselves so every libclang agrees.
        .blocklist_type("bfloat16_t")
        .raw_line("/// Raw bits of a bfloat16 value.")
        .raw_line("pub type bfloat16_t = u16;");
    for header in &headers {
        builder = builder.header(header.to_string_lossy());
    }
    let bindings = builder.generate().map_err(|e| {
        format!(
            "bindgen failed on the mlx-c headers: {e}. {}",
            toolchain::LIBCLANG_HINT
        )
    })?;
    bindings
        .write_to_file(out.join("bindings.rs"))
        .map_err(|e| format!("writing bindings.rs: {e}"))
}
