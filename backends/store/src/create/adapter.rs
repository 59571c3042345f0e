//! `ADAPTER` / `adapters` of `POST /api/create` in mlx-lm's LoRA format: `adapters.safetensors`
//! (+ optional `adapter_config.json`). Called by [`super::create`]; the MLX runner later
//! assembles these layers into `<model dir>/adapters/` and `ollmlx-models` merges them at load.
//!
//! Both files become `application/vnd.ollama.image.adapter` layers named after their file (the
//! runner tells them apart by content: JSON vs safetensors). GGUF adapters keep going through
//! `layers_from_files`.

use std::collections::BTreeMap;

use ollmlx_wire::ollama::ProgressResponse;

use super::{bad, existing_layer, NewLayer};
use crate::error::Result;
use crate::manifest::MEDIA_TYPE_ADAPTER;
use crate::store::Store;

/// Name of the adapter's config in an mlx-lm adapter directory.
pub const CONFIG_NAME: &str = "adapter_config.json";

/// Whether `files` (request name → digest) is an mlx-lm safetensors adapter.
pub(super) fn is_mlx_adapter(files: &BTreeMap<String, String>) -> bool {
    files.keys().any(|f| f.ends_with(".safetensors"))
}

/// Layers for an mlx-lm adapter: exactly one `*.safetensors` plus, when present,
/// `adapter_config.json` (checked to be a JSON object whose `fine_tune_type`, if any, is
/// `lora`). Other files of the directory (README, training logs) are skipped.
pub(super) fn layers(
    store: &Store,
    files: &BTreeMap<String, String>,
    progress: &mut dyn FnMut(ProgressResponse),
) -> Result<Vec<NewLayer>> {
    let tensors: Vec<_> = files
        .iter()
        .filter(|(f, _)| f.ends_with(".safetensors"))
        .collect();
    if tensors.len() > 1 {
        return Err(bad("only one adapter is currently supported"));
    }
    progress(ProgressResponse::status("parsing adapter"));
    let mut out = Vec::new();
    for (file, digest) in files {
        let base = file.rsplit(['/', '\\']).next().unwrap_or(file);
        if base == CONFIG_NAME {
            let text = store.blobs().read(digest)?;
            let v: serde_json::Value = serde_json::from_slice(&text)
                .map_err(|e| bad(format!("invalid {CONFIG_NAME}: {e}")))?;
            if !v.is_object() {
                return Err(bad(format!("invalid {CONFIG_NAME}: not a JSON object")));
            }
            if let Some(t) = v.get("fine_tune_type") {
                if t.as_str() != Some("lora") {
                    return Err(bad(format!(
                        "unsupported adapter fine_tune_type {t} (only \"lora\")"
                    )));
                }
            }
        } else if !base.ends_with(".safetensors") {
            continue;
        }
        let mut l = existing_layer(store, digest, MEDIA_TYPE_ADAPTER, "")?;
        l.layer.name = base.to_string();
        out.push(l);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::info::ModelRecord;
    use crate::manifest::MEDIA_TYPE_ADAPTER;
    use crate::testutil::Fixture;
    use crate::Name;

    // A minimal safetensors file: 8-byte header length + JSON header, no tensors.
    fn safetensors_bytes() -> Vec<u8> {
        let header = br#"{"__metadata__":{"format":"mlx"}}"#;
        let mut v = (header.len() as u64).to_le_bytes().to_vec();
        v.extend_from_slice(header);
        v
    }

    #[tokio::test]
    async fn mlx_adapter_dir_is_stored_as_two_named_adapter_layers() {
        let f = Fixture::new();
        let st = f.blob(&safetensors_bytes());
        let cfg = f.blob(br#"{"fine_tune_type":"lora","lora_parameters":{"scale":2.0}}"#);
        let readme = f.blob(b"# trained on cats");
        f.create_tiny(
            "tuned",
            json!({"adapters": {"adapters.safetensors": st, "adapter_config.json": cfg,
                                "README.md": readme}}),
        )
        .await;
        let m = f
            .store
            .read_manifest(&Name::parse("tuned"))
            .unwrap()
            .unwrap();
        let mut named: Vec<_> = m
            .manifest
            .layers
            .iter()
            .filter(|l| l.media_type == MEDIA_TYPE_ADAPTER)
            .map(|l| (l.name.clone(), l.digest.clone()))
            .collect();
        named.sort();
        assert_eq!(
            named,
            [
                ("adapter_config.json".to_string(), cfg),
                ("adapters.safetensors".to_string(), st)
            ]
        );
        let rec = ModelRecord::load(&f.store, m).unwrap();
        assert_eq!(rec.adapter_paths.len(), 2);
    }

    #[tokio::test]
    async fn dora_adapter_config_and_two_tensor_files_are_refused() {
        let f = Fixture::new();
        let st = f.blob(&safetensors_bytes());
        let dora = f.blob(br#"{"fine_tune_type":"dora","lora_parameters":{"scale":2.0}}"#);
        let d = f.blob(&crate::testutil::tiny_gguf("{{ .Prompt }}"));
        let e = f
            .create(json!({"model": "x", "files": {"tiny.gguf": d},
                           "adapters": {"adapters.safetensors": st, "adapter_config.json": dora}}))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("unsupported adapter fine_tune_type \"dora\""),
            "{e}"
        );
        let st2 = f.blob(b"\x02\0\0\0\0\0\0\0{}");
        let e = f
            .create(json!({"model": "x", "files": {"tiny.gguf": d},
                           "adapters": {"a.safetensors": st, "b.safetensors": st2}}))
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("only one adapter is currently supported"), "{e}");
    }
}
