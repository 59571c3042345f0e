//! Readers for every recording format we replay, and per-file loading that never panics:
//! a file that is truncated, malformed or of an unknown format becomes a [`FileReport`] with
//! an error, and the other files still load.
//!
//! Formats: our own cassettes (`*.json` with `"format": "ollmlx-cassette/1"`), Go httprr traces
//! (`*.httprr`), VCR/vcrpy YAML (`*.yaml`, `*.yml`), body-only JSON/NDJSON fixtures (`*.json`,
//! `*.sse`, `*.ndjson`) and Ollama's extracted docs examples (`api_md_examples.json`).

pub mod docs;
pub mod fixture;
pub mod httprr;
pub mod vcr;

use std::path::{Path, PathBuf};

use crate::cassette::{Cassette, FORMAT};
use crate::error::Error;

/// Extensions that may hold recordings; other files in a folder are not looked at.
pub const EXTENSIONS: &[&str] = &["json", "httprr", "yaml", "yml", "sse", "ndjson"];

/// What loading one file produced.
#[derive(Debug)]
pub struct FileReport {
    /// The file.
    pub path: PathBuf,
    /// Its cassettes, or why it could not be read.
    pub result: Result<Vec<Cassette>, Error>,
    /// Parts of the file that were skipped (with why) while the rest loaded.
    pub skipped: Vec<String>,
}

/// Read one file in whatever format it is. `root` (if any) makes `meta.source` relative.
pub fn read_file(path: &Path, root: Option<&Path>) -> FileReport {
    let mut skipped = Vec::new();
    let result = read_inner(path, root, &mut skipped);
    FileReport {
        path: path.to_path_buf(),
        result,
        skipped,
    }
}

fn read_inner(
    path: &Path,
    root: Option<&Path>,
    skipped: &mut Vec<String>,
) -> Result<Vec<Cassette>, Error> {
    let data = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let source = root
        .and_then(|r| path.strip_prefix(r).ok())
        .unwrap_or(path)
        .display()
        .to_string();
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let ext = path
        .extension()
        .map(|s| s.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    let bad = |m: String| Error::format(path, m);
    if data.starts_with(httprr::MAGIC) {
        return httprr::parse(&data, &stem, &source).map_err(bad);
    }
    if ext == "httprr" {
        return Err(bad("missing `httprr trace v1` header".into()));
    }
    let text = String::from_utf8(data).map_err(|_| bad("not UTF-8 text".into()))?;
    match ext.as_str() {
        "yaml" | "yml" => {
            if !vcr::looks_like(&text) {
                return Err(bad(
                    "unknown format: YAML without a top-level `interactions` list (not a VCR cassette)"
                        .into(),
                ));
            }
            vcr::parse(&text, &stem, &source).map_err(bad)
        }
        "sse" | "ndjson" => Ok(vec![
            fixture::parse(&text, true, &stem, &source).map_err(bad)?
        ]),
        "json" => {
            let v: serde_json::Value =
                serde_json::from_str(&text).map_err(|e| bad(format!("malformed JSON: {e}")))?;
            if v.get("format").and_then(|f| f.as_str()) == Some(FORMAT) {
                let c: Cassette = serde_json::from_value(v)
                    .map_err(|e| bad(format!("malformed cassette: {e}")))?;
                return Ok(vec![c]);
            }
            if let Some(f) = v.get("format").and_then(|f| f.as_str()) {
                if f.starts_with("ollmlx-cassette/") {
                    return Err(bad(format!("unsupported cassette version {f:?}")));
                }
            }
            if docs::looks_like(&v) {
                let (cs, problems) = docs::parse(&text, &source).map_err(bad)?;
                skipped.extend(problems);
                return Ok(cs);
            }
            Ok(vec![
                fixture::parse(&text, false, &stem, &source).map_err(bad)?
            ])
        }
        _ => Err(bad(format!("unknown format (extension {ext:?})"))),
    }
}

/// Every recording under `dir` (recursively, sorted by path), one report per file.
pub fn read_dir(dir: &Path) -> Result<Vec<FileReport>, Error> {
    if !dir.is_dir() {
        return Err(Error::io(
            dir,
            std::io::Error::new(std::io::ErrorKind::NotFound, "not a directory"),
        ));
    }
    let mut files = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        let rd = std::fs::read_dir(&d).map_err(|e| Error::io(&d, e))?;
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else if p
                .extension()
                .is_some_and(|x| EXTENSIONS.iter().any(|e| x.eq_ignore_ascii_case(e)))
            {
                files.push(p);
            }
        }
    }
    files.sort();
    Ok(files.iter().map(|f| read_file(f, Some(dir))).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_files_are_reported_per_file_and_good_ones_still_load() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        std::fs::write(p.join("a.httprr"), b"httprr trace v1\n10 10\nshort").unwrap();
        std::fs::write(p.join("b.json"), b"{\"model\":").unwrap();
        std::fs::write(p.join("c.yaml"), b"openapi: 3.1.0\n").unwrap();
        std::fs::write(p.join("d.json"), br#"{"embedding":[0.5]}"#).unwrap();
        std::fs::write(p.join("e.txt"), b"ignored").unwrap();
        let reports = read_dir(p).unwrap();
        assert_eq!(reports.len(), 4);
        let errs: Vec<String> = reports
            .iter()
            .filter_map(|r| r.result.as_ref().err().map(|e| e.to_string()))
            .collect();
        assert_eq!(errs.len(), 3, "{errs:?}");
        assert!(errs[0].contains("truncated"), "{errs:?}");
        assert!(errs[1].contains("malformed JSON"), "{errs:?}");
        assert!(errs[2].contains("unknown format"), "{errs:?}");
        let ok = reports[3].result.as_ref().unwrap();
        assert_eq!(ok[0].request.path, "/api/embeddings");
    }
}
