//! Shared helpers for the conformance integration tests: locating the golden seed (skipping
//! loudly when it is absent) and loading every recording in it.

#![allow(dead_code)]

use std::path::PathBuf;

use ollmlx_conformance::formats::{read_dir, FileReport};
use ollmlx_conformance::Cassette;

/// Files in the seed that are not recordings (documentation in YAML form).
pub const NOT_RECORDINGS: &[&str] = &["ollama-docs/docs/openapi.yaml"];

/// `$OLLMLX_GOLDEN_SEED`, else `<repo>/../shared/golden-seed`; `None` after a loud SKIP line.
pub fn seed_dir(test: &str) -> Option<PathBuf> {
    let dir = std::env::var_os("OLLMLX_GOLDEN_SEED")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/golden-seed")
        });
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "\n!!!!!!!! SKIP {test}: golden-seed recordings not found at {} (set OLLMLX_GOLDEN_SEED) !!!!!!!!\n",
            dir.display()
        );
        None
    }
}

/// Every cassette of the seed. Panics (the test fails) on any unreadable recording other
/// than the known non-recordings.
pub fn seed_cassettes(test: &str) -> Option<Vec<Cassette>> {
    let dir = seed_dir(test)?;
    let reports: Vec<FileReport> = read_dir(&dir).expect("seed folder readable");
    let mut out = Vec::new();
    let mut bad = Vec::new();
    for r in reports {
        let rel = r
            .path
            .strip_prefix(&dir)
            .unwrap_or(&r.path)
            .display()
            .to_string();
        match r.result {
            Ok(cs) => out.extend(cs),
            Err(e) if NOT_RECORDINGS.contains(&rel.as_str()) => {
                eprintln!("not a recording (expected): {e}");
            }
            Err(e) => bad.push(e.to_string()),
        }
    }
    assert!(bad.is_empty(), "unreadable seed recordings: {bad:#?}");
    assert!(!out.is_empty(), "the golden seed holds no recordings");
    Some(out)
}
