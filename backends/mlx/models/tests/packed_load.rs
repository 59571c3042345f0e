//! Loading a quantized checkpoint on the CPU registers its layers' packed twins with the BLAS
//! shim as part of `load` (`ollmlx_models::packed`, one warm-up token), and dropping the model
//! unregisters every one of them. Its own test binary: the shim's registry is process-wide.

mod common;

use ollmlx_models::{load, packed, LoadOptions};

#[test]
fn a_q4_checkpoint_registers_its_twins_at_load_and_drops_them_with_the_model() {
    if !packed::available() {
        eprintln!("SKIP: this build's BLAS has no packed route (no shim)");
        return;
    }
    assert_eq!(packed::registered(), 0);
    let dir = common::fixture_dir("llama-q4");
    let loaded = load(&dir, LoadOptions::for_device(true)).expect("load the q4 fixture");
    let twins = packed::registered();
    // Every transposed layer: fused q/k/v, o, fused gate/up and down per block, and the head.
    assert!(twins >= 4, "{twins} twins registered at load");
    drop(loaded);
    assert_eq!(
        packed::registered(),
        0,
        "twins left after the model was dropped"
    );
}
