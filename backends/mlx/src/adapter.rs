//! Assembling a model's `ADAPTER` layers into the `adapters/` directory `ollmlx_models::load`
//! merges at load. Request path: [`crate::runner::MlxRunner`] (per generate/embed, before the
//! engine loads the model) → **here** → the engine → `ollmlx_models::lora`.
//!
//! The store keeps an mlx-lm adapter as one or two adapter layers (`adapters.safetensors`, and
//! `adapter_config.json` when the Modelfile's ADAPTER pointed at the directory). The layer paths
//! are all the runner gets, so each blob is identified by content: JSON object → config,
//! safetensors header → tensors, `GGUF` magic → a llama.cpp adapter (refused: the MLX engine
//! applies mlx-lm adapters only). A lone `adapters.safetensors` gets [`DEFAULT_CONFIG`].

use std::io::Read;
use std::path::{Path, PathBuf};

use ollmlx_models::lora::{CONFIG_FILE, TENSORS_FILE};

/// Written when an adapter came without `adapter_config.json`: LoRA with mlx-lm's training
/// default `scale` (20.0, `mlx_lm.lora`'s `lora_parameters` default); the rank comes from the
/// tensors' shapes.
pub const DEFAULT_CONFIG: &str =
    r#"{"fine_tune_type": "lora", "lora_parameters": {"scale": 20.0, "dropout": 0.0}}"#;

/// Why an adapter could not be assembled.
#[derive(Debug, thiserror::Error)]
pub enum AdapterFilesError {
    /// Reading a blob or writing the links failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// A llama.cpp GGUF adapter.
    #[error("GGUF LoRA adapters are not supported by the MLX engine; use an mlx-lm adapter (adapters.safetensors + adapter_config.json)")]
    Gguf,
    /// A blob that is neither JSON nor safetensors.
    #[error("adapter layer {0} is neither adapter_config.json nor a safetensors file")]
    Unknown(String),
    /// More than one file of a kind.
    #[error("only one adapter is currently supported")]
    TooMany,
}

/// What kind of adapter file a blob holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdapterFile {
    /// `adapter_config.json`.
    Config,
    /// `adapters.safetensors`.
    Tensors,
    /// A GGUF adapter.
    Gguf,
}

/// Identify a blob by its first bytes.
pub fn sniff(path: &Path) -> std::io::Result<Option<AdapterFile>> {
    let mut head = [0u8; 16];
    let mut f = std::fs::File::open(path)?;
    let n = f.read(&mut head)?;
    let head = &head[..n];
    if head.starts_with(b"GGUF") {
        return Ok(Some(AdapterFile::Gguf));
    }
    if head.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') {
        return Ok(Some(AdapterFile::Config));
    }
    // safetensors: u64 little-endian header length, then a JSON header.
    if n >= 9 && head[8] == b'{' {
        return Ok(Some(AdapterFile::Tensors));
    }
    Ok(None)
}

/// Make `dir` hold `adapters.safetensors` and `adapter_config.json` (symlinks to the blobs; the
/// config written from [`DEFAULT_CONFIG`] when there is none). Idempotent.
pub fn assemble_adapter(dir: &Path, blobs: &[PathBuf]) -> Result<(), AdapterFilesError> {
    let (mut config, mut tensors) = (None, None);
    for b in blobs {
        let slot = match sniff(b)? {
            Some(AdapterFile::Config) => &mut config,
            Some(AdapterFile::Tensors) => &mut tensors,
            Some(AdapterFile::Gguf) => return Err(AdapterFilesError::Gguf),
            None => return Err(AdapterFilesError::Unknown(b.display().to_string())),
        };
        if slot.replace(b.clone()).is_some() {
            return Err(AdapterFilesError::TooMany);
        }
    }
    let Some(tensors) = tensors else {
        return Err(AdapterFilesError::Unknown(
            "set (no adapters.safetensors)".into(),
        ));
    };
    std::fs::create_dir_all(dir)?;
    let mut links = vec![(TENSORS_FILE.to_string(), tensors)];
    match config {
        Some(c) => links.push((CONFIG_FILE.to_string(), c)),
        None => {
            let p = dir.join(CONFIG_FILE);
            if std::fs::read_link(&p).is_ok() {
                std::fs::remove_file(&p)?;
            }
            std::fs::write(p, DEFAULT_CONFIG)?;
        }
    }
    crate::runner::assemble(dir, links.iter())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blobs_are_told_apart_by_content_and_linked_under_mlx_lm_names() {
        let t = tempfile::tempdir().unwrap();
        let cfg = t.path().join("sha256-c");
        std::fs::write(
            &cfg,
            br#"{"fine_tune_type":"lora","lora_parameters":{"scale":1}}"#,
        )
        .unwrap();
        let st = t.path().join("sha256-t");
        let mut bytes = 2u64.to_le_bytes().to_vec();
        bytes.extend_from_slice(b"{}");
        std::fs::write(&st, &bytes).unwrap();
        let out = t.path().join("m/adapters");
        assemble_adapter(&out, &[st.clone(), cfg.clone()]).unwrap();
        assert_eq!(std::fs::read_link(out.join(TENSORS_FILE)).unwrap(), st);
        assert_eq!(std::fs::read_link(out.join(CONFIG_FILE)).unwrap(), cfg);

        let lone = t.path().join("lone");
        assemble_adapter(&lone, std::slice::from_ref(&st)).unwrap();
        let written = std::fs::read_to_string(lone.join(CONFIG_FILE)).unwrap();
        assert_eq!(written, DEFAULT_CONFIG);

        let gguf = t.path().join("sha256-g");
        std::fs::write(&gguf, b"GGUF\x03\0\0\0").unwrap();
        let e = assemble_adapter(&t.path().join("g"), &[gguf]).unwrap_err();
        assert!(e
            .to_string()
            .contains("GGUF LoRA adapters are not supported"));
        let e = assemble_adapter(&t.path().join("two"), &[st.clone(), st]).unwrap_err();
        assert!(e.to_string().contains("only one adapter"));
    }
}
