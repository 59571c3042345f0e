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

/// Packed twins of dense weight matrices for the BLAS shim's small kernel (Linux CPU): see
/// `build/blas_shim.c` (`ollmlx_qmat_register`). The model loader registers a float32 weight
/// matrix together with the one-byte quantized values, scales and biases it was dequantized
/// from; decode-step products (1-8 rows) then read those instead of the floats and rebuild the
/// exact same values. Resolved at run time in the process's BLAS (the shim), so a build without
/// the shim (macOS, CUDA, no C compiler) simply has none.
pub mod packed {
    use std::ffi::{c_char, c_int, c_void};
    use std::sync::OnceLock;

    type Register = unsafe extern "C" fn(
        *const f32,
        c_int,
        c_int,
        c_int,
        *const u8,
        *const f32,
        *const f32,
    ) -> c_int;
    type Unregister = unsafe extern "C" fn(*const f32);
    type Count = unsafe extern "C" fn() -> c_int;

    extern "C" {
        fn dlsym(handle: *mut c_void, name: *const c_char) -> *mut c_void;
    }

    struct Api {
        register: Register,
        unregister: Unregister,
        count: Count,
    }

    fn api() -> Option<&'static Api> {
        static API: OnceLock<Option<Api>> = OnceLock::new();
        API.get_or_init(|| {
            // RTLD_DEFAULT (a null handle on glibc): every library already loaded, which
            // includes the BLAS libmlx was linked against.
            let find = |name: &[u8]| unsafe { dlsym(std::ptr::null_mut(), name.as_ptr().cast()) };
            let (r, u, c) = (
                find(b"ollmlx_qmat_register\0"),
                find(b"ollmlx_qmat_unregister\0"),
                find(b"ollmlx_qmat_count\0"),
            );
            if r.is_null() || u.is_null() || c.is_null() {
                return None;
            }
            // SAFETY: the symbols are the shim's functions with exactly these signatures.
            unsafe {
                Some(Api {
                    register: std::mem::transmute::<*mut c_void, Register>(r),
                    unregister: std::mem::transmute::<*mut c_void, Unregister>(u),
                    count: std::mem::transmute::<*mut c_void, Count>(c),
                })
            }
        })
        .as_ref()
    }

    /// Whether this process's BLAS takes packed twins.
    pub fn available() -> bool {
        api().is_some()
    }

    /// What [`register`] did.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Registered {
        /// The twin is registered: products with `b` read it.
        Yes,
        /// Some rebuilt value differs from `b`'s: nothing registered.
        Mismatch,
        /// No shim, bad shapes, or no memory: nothing registered.
        Unavailable,
    }

    /// Register `b` (`k x n`, row-major; identified by its address) with its packed form in
    /// the orientation it was quantized in: `q` (`n x k` bytes) and `s`/`z` (`n x k / group`)
    /// such that every `b[kk][j]` is exactly `s[j][kk / group] * q[j][kk] + z[j][kk / group]`
    /// (the shim checks every value and copies the twin). The caller must call [`unregister`]
    /// before `b`'s memory is freed or reused.
    pub fn register(
        b: &[f32],
        k: usize,
        n: usize,
        group: usize,
        q: &[u8],
        s: &[f32],
        z: &[f32],
    ) -> Registered {
        let Some(api) = api() else {
            return Registered::Unavailable;
        };
        let groups = if group == 0 { 0 } else { k / group };
        let fits = |v: usize| c_int::try_from(v).is_ok();
        if group == 0
            || k % group != 0
            || b.len() != k * n
            || q.len() != k * n
            || s.len() != groups * n
            || z.len() != groups * n
            || !fits(k)
            || !fits(n)
            || !fits(group)
        {
            return Registered::Unavailable;
        }
        // SAFETY: every slice has the length the shim reads (checked above); the shim copies
        // q, s and z and keeps only b's address.
        let rc = unsafe {
            (api.register)(
                b.as_ptr(),
                k as c_int,
                n as c_int,
                group as c_int,
                q.as_ptr(),
                s.as_ptr(),
                z.as_ptr(),
            )
        };
        match rc {
            1 => Registered::Yes,
            0 => Registered::Mismatch,
            _ => Registered::Unavailable,
        }
    }

    /// Forget the twin registered for the matrix at address `b` (no-op when none); returns once
    /// no product reads it any more.
    pub fn unregister(b: *const f32) {
        if let Some(api) = api() {
            // SAFETY: the shim only compares the address.
            unsafe { (api.unregister)(b) }
        }
    }

    /// Twins registered now (0 without the shim).
    pub fn count() -> usize {
        // SAFETY: no arguments.
        api().map_or(0, |api| unsafe { (api.count)() }.max(0) as usize)
    }
}

/// Graph inspection for the engine's tools (the `decode_graph` example): the graph that
/// evaluating `outputs` would run, as Graphviz text, one `label` per node.
pub mod graph {
    use std::ffi::CString;
    use std::path::Path;

    /// Write `outputs`' graph to `path` with `mlx_export_to_dot`. The arrays stay owned by
    /// the caller.
    pub fn export_dot(outputs: &[super::mlx_array], path: &Path) -> Result<(), String> {
        let c_path =
            CString::new(path.as_os_str().as_encoded_bytes()).map_err(|e| e.to_string())?;
        // SAFETY: C stdio and mlx-c calls on handles created and released here; the vector
        // takes its own references to the caller's arrays.
        unsafe {
            let f = super::fopen(c_path.as_ptr(), c"w".as_ptr());
            if f.is_null() {
                return Err(format!("cannot open {}", path.display()));
            }
            let vec = super::mlx_vector_array_new_data(outputs.as_ptr(), outputs.len());
            let namer = super::mlx_node_namer_new();
            let rc = super::mlx_export_to_dot(f, namer, vec);
            super::mlx_node_namer_free(namer);
            super::mlx_vector_array_free(vec);
            super::fclose(f);
            if rc != 0 {
                return Err("mlx_export_to_dot failed".into());
            }
        }
        Ok(())
    }
}
