//! Test support shared by the engine's real-model tests (not part of the request path): where
//! the SmolLM2-135M-Instruct GGUF is.
#![allow(dead_code)]

use std::path::PathBuf;

/// The SmolLM2-135M-Instruct Q4_1 GGUF (`OLLMLX_TEST_GGUF`, or `scripts/fetch-models.sh`'s
/// cache); `None`, with a loud SKIPPED line, when it is absent.
pub fn model_path() -> Option<PathBuf> {
    let p = std::env::var_os("OLLMLX_TEST_GGUF")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../../.ollmlx-cache/models/SmolLM2-135M-Instruct.Q4_1.gguf")
        });
    if p.exists() {
        Some(p)
    } else {
        eprintln!(
            "SKIPPED: {} not found; run scripts/fetch-models.sh",
            p.display()
        );
        None
    }
}
