//! Create from uploaded safetensors/MLX files: one `application/vnd.ollama.image.tensor` layer
//! per safetensors file and one `application/vnd.ollama.image.json` layer per config/tokenizer
//! file (both with `name` set to the file name), a `model_format: safetensors` config, and
//! optional quantization ([`crate::quantize`]) of F16/BF16/F32 weights to MLX affine 4/8-bit.
//!
//! Checked at create time, so a bad import fails here instead of at first load: `config.json`
//! must be present and name an architecture the MLX engine runs, and every safetensors header
//! must be well formed with all tensor data inside the file.

use std::collections::BTreeMap;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

use ollmlx_wire::ollama::ProgressResponse;
use serde_json::Value;

use super::{bad, bytes_layer, existing_layer, NewLayer};
use crate::blobs::{temp_path, TempGuard};
use crate::error::{Result, StoreError};
use crate::manifest::{ConfigV2, MEDIA_TYPE_JSON, MEDIA_TYPE_TENSOR};
use crate::pull::hf_meta::{chat_template, count_params, mlx_config, quant_bits};
use crate::quantize::{quantize_file, quantized_config, FloatType, QuantSpec};
use crate::safetensors::{parse_header, Header};
use crate::store::Store;

/// Architectures (Hugging Face `model_type`) the MLX engine's registry runs.
pub const SUPPORTED_ARCHITECTURES: &[&str] = &[
    "llama",
    "mistral",
    "qwen2",
    "qwen3",
    "qwen3_moe",
    "gemma3",
    "phi3",
    "bert",
];

fn base_name(file: &str) -> &str {
    file.rsplit('/').next().unwrap_or(file)
}

/// Whether an uploaded file is a weights file.
fn is_tensor_file(file: &str) -> bool {
    base_name(file)
        .to_ascii_lowercase()
        .ends_with(".safetensors")
}

/// Whether an uploaded file is a config/tokenizer file the MLX loader reads.
fn is_side_file(file: &str) -> bool {
    let b = base_name(file).to_ascii_lowercase();
    b.ends_with(".json")
        || b.ends_with(".jinja")
        || b.ends_with(".tiktoken")
        || matches!(
            b.as_str(),
            "tokenizer.model" | "vocab.txt" | "merges.txt" | "spiece.model"
        )
}

fn normalize(arch: &str) -> String {
    let lower = arch.to_ascii_lowercase();
    let mut s = lower.as_str();
    for suffix in [
        "forcausallm",
        "forconditionalgeneration",
        "formaskedlm",
        "model",
        "_text",
    ] {
        s = s.strip_suffix(suffix).unwrap_or(s);
    }
    s.replace('_', "")
}

/// Fail unless `config.json`'s `model_type` or `architectures` names an architecture in
/// [`SUPPORTED_ARCHITECTURES`].
pub fn check_architecture(cfg: &Value) -> Result<()> {
    let model_type = cfg.get("model_type").and_then(Value::as_str).unwrap_or("");
    let archs: Vec<&str> = cfg
        .get("architectures")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let supported = |a: &str| {
        let n = normalize(a);
        !n.is_empty() && SUPPORTED_ARCHITECTURES.iter().any(|s| normalize(s) == n)
    };
    if supported(model_type) || archs.iter().any(|a| supported(a)) {
        return Ok(());
    }
    let named = match (archs.first(), model_type) {
        (Some(a), "") => format!("{a:?}"),
        (Some(a), m) => format!("{a:?} (model_type {m:?})"),
        (None, "") => "(none: config.json has no model_type or architectures)".into(),
        (None, m) => format!("{m:?}"),
    };
    Err(bad(format!(
        "unsupported architecture {named}: the MLX engine runs {}",
        SUPPORTED_ARCHITECTURES.join(", ")
    )))
}

/// The dtype an unquantized model's linear weights are stored in (`None` when the weights are
/// already quantized or not floating point).
fn source_float_type(headers: &[(String, PathBuf, Header)], cfg: &Value) -> Option<FloatType> {
    if quant_bits(cfg) > 0 {
        return None;
    }
    let mut found = None;
    for (_, _, h) in headers {
        for t in &h.tensors {
            if t.dtype == "U32" || t.name.ends_with(".scales") {
                return None;
            }
            if found.is_none() && t.shape.len() == 2 && t.name.ends_with(".weight") {
                found = FloatType::parse(&t.dtype);
            }
        }
    }
    found
}

/// Layers and config for a safetensors import (upstream's `convertFromSafetensors`, kept as
/// MLX safetensors instead of converted to GGUF). `quantize` is the upper-cased request type.
pub(super) fn layers_from_safetensors(
    store: &Store,
    files: &BTreeMap<String, String>,
    quantize: &str,
    progress: &mut dyn FnMut(ProgressResponse),
) -> Result<(Vec<NewLayer>, ConfigV2)> {
    let blobs = store.blobs();
    let config_digest = files
        .iter()
        .find(|(f, _)| f.as_str() == "config.json")
        .map(|(_, d)| d.clone())
        .ok_or_else(|| bad("config.json is required to import a safetensors model"))?;
    let cfg: Value = serde_json::from_slice(&blobs.read(&config_digest)?)
        .map_err(|e| bad(format!("config.json is not valid JSON: {e}")))?;
    if !cfg.is_object() {
        return Err(bad("config.json is not a JSON object"));
    }
    check_architecture(&cfg)?;

    let mut headers = Vec::new();
    for (file, digest) in files.iter().filter(|(f, _)| is_tensor_file(f)) {
        let path = blobs.path(digest)?;
        if !path.is_file() {
            return Err(StoreError::BlobNotFound(digest.clone()));
        }
        let h = parse_header(&path)
            .map_err(|e| bad(format!("invalid safetensors file {file:?}: {e}")))?;
        headers.push((file.clone(), path, h));
    }
    if headers.is_empty() {
        return Err(bad("no files provided to convert"));
    }
    progress(ProgressResponse::status("converting model"));

    let paths: Vec<&std::path::Path> = headers.iter().map(|(_, p, _)| p.as_path()).collect();
    let params = count_params(&paths, quant_bits(&cfg));
    let mut layers = Vec::new();
    let mut final_cfg = cfg.clone();
    if quantize.is_empty() {
        for (file, _, _) in &headers {
            let mut l = existing_layer(store, &files[file], MEDIA_TYPE_TENSOR, "")?;
            l.layer.name = file.clone();
            layers.push(l);
        }
    } else {
        let spec = QuantSpec::for_type(quantize).ok_or_else(|| {
            StoreError::Internal(format!(
                "unsupported quantization type {quantize} - supported types are Q4_0, Q4_K_S, Q4_K_M, Q8_0, INT4, INT8"
            ))
        })?;
        let ft = source_float_type(&headers, &cfg).ok_or_else(|| {
            StoreError::Internal(
                "quantization is only supported for F16, BF16 and F32 models".into(),
            )
        })?;
        let status = format!("quantizing {} model to {quantize}", ft.name());
        let total: u64 = headers.iter().map(|(_, _, h)| data_len(h)).sum();
        let mut base = 0u64;
        for (file, path, h) in &headers {
            let report = &mut |done: u64| {
                progress(ProgressResponse {
                    status: status.clone(),
                    digest: "0000000000000000000".into(),
                    total: total as i64,
                    completed: (base + done) as i64,
                })
            };
            let mut l = quantized_layer(store, path, h, spec, report)
                .map_err(|e| StoreError::Internal(format!("quantizing {file}: {e}")))?;
            l.layer.name = file.clone();
            layers.push(l);
            base += data_len(h);
        }
        final_cfg = quantized_config(&cfg, spec);
    }

    let read_side = |name: &str| files.get(name).and_then(|d| blobs.read(d).ok());
    let template = chat_template(
        read_side("tokenizer_config.json").as_deref(),
        read_side("chat_template.jinja").as_deref(),
    );
    for (file, digest) in files.iter().filter(|(f, _)| is_side_file(f)) {
        let mut l = if file == "config.json" && !quantize.is_empty() {
            let bytes = serde_json::to_vec_pretty(&final_cfg)
                .map_err(|e| StoreError::json("config.json", e))?;
            bytes_layer(store, &bytes, MEDIA_TYPE_JSON)?
        } else {
            existing_layer(store, digest, MEDIA_TYPE_JSON, "")?
        };
        l.layer.name = file.clone();
        layers.push(l);
    }
    Ok((layers, mlx_config(&final_cfg, params, &template)))
}

fn data_len(h: &Header) -> u64 {
    h.tensors.iter().map(|t| t.end - t.begin).sum()
}

/// Quantize one safetensors file into a new blob.
fn quantized_layer(
    store: &Store,
    src: &std::path::Path,
    header: &Header,
    spec: QuantSpec,
    progress: &mut dyn FnMut(u64),
) -> Result<NewLayer> {
    let dir = store.blobs().dir().to_path_buf();
    std::fs::create_dir_all(&dir)
        .map_err(|e| StoreError::io(format!("mkdir {}", dir.display()), e))?;
    let guard = TempGuard::new(temp_path(&dir));
    let ctx = || format!("write {}", guard.path().display());
    let f = std::fs::File::create(guard.path()).map_err(|e| StoreError::io(ctx(), e))?;
    let mut w = BufWriter::new(f);
    quantize_file(src, header, spec, &mut w, progress)
        .map_err(|e| StoreError::Internal(e.to_string()))?;
    w.flush().map_err(|e| StoreError::io(ctx(), e))?;
    drop(w);
    let mut r = std::fs::File::open(guard.path()).map_err(|e| StoreError::io(ctx(), e))?;
    let (digest, size, created) = store.blobs().put_reader(&mut r, None)?;
    let verb = if created {
        "creating new layer"
    } else {
        "using existing layer"
    };
    Ok(NewLayer {
        status: format!("{verb} {digest}"),
        layer: crate::manifest::Layer {
            media_type: MEDIA_TYPE_TENSOR.into(),
            digest,
            size: size as i64,
            ..Default::default()
        },
        gguf: None,
    })
}

#[cfg(test)]
mod tests;
