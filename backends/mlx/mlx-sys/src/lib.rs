//! Raw FFI bindings to the MLX C API (mlx-c 0.7.0), the lowest layer of the ollmlx engine.
//!
//! Request path: HTTP server → `ollmlx-mlx` backend → `ollmlx-engine` thread → `ollmlx-models`
//! → `mlx-rs` → **this crate** → `libmlx` (from the official MLX 0.32.2 wheel). This crate
//! replaces crates.io's `mlx-sys 0.7.0` through `[patch.crates-io]` so that `mlx-rs 0.33` builds
//! on Linux (MLX CPU or CUDA) as well as macOS. `build.rs` fetches the pinned upstream crate for the
//! mlx-c sources, installs (or finds) MLX, compiles mlx-c with CMake and runs bindgen; see
//! `docs/engine.md`. Dependents find the directory holding `libmlx` in `DEP_MLX_LIB_DIR` and must
//! put it in their binaries' rpath.
#![allow(non_upper_case_globals)]
#![allow(non_camel_case_types)]
#![allow(non_snake_case)]
#![allow(missing_docs)]
#![allow(clippy::all)]

include!(concat!(env!("OUT_DIR"), "/bindings.rs"));

/// macOS's `mach_approximate_time`, which `mlx-rs` calls (through `mach-sys`) to seed its default
/// random state. Elsewhere this fallback returns a monotonic clock in nanoseconds.
#[cfg(not(target_vendor = "apple"))]
#[no_mangle]
pub extern "C" fn mach_approximate_time() -> u64 {
    use std::sync::OnceLock;
    use std::time::{Instant, SystemTime, UNIX_EPOCH};
    // Wall-clock nanoseconds at the first call plus a monotonic offset: monotonic within a process
    // and different between runs, which is all mlx-rs needs from it.
    static BASE: OnceLock<(Instant, u64)> = OnceLock::new();
    let (start, wall) = *BASE.get_or_init(|| {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64);
        (Instant::now(), wall)
    });
    wall.wrapping_add(start.elapsed().as_nanos() as u64)
}
