//! Put the MLX library directory (published by `mlx-sys` as `DEP_MLX_RPATH`) in the rpath of the
//! `ollmlx` binary and the CLI's test binaries, so nothing needs `LD_LIBRARY_PATH`.
fn main() {
    println!("cargo:rerun-if-env-changed=DEP_MLX_RPATH");
    if let Some(rpath) = std::env::var_os("DEP_MLX_RPATH") {
        for dir in std::env::split_paths(&rpath) {
            println!("cargo:rustc-link-arg=-Wl,-rpath,{}", dir.display());
        }
    }
}
