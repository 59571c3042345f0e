//! The GGUF branch of `POST /api/create`: decides whether a model layer's GGUF must be rewritten
//! before the MLX engine can load it, and does the rewrite into a new blob.
//!
//! Runs inside [`super::create`] for every `application/vnd.ollama.image.model` GGUF layer
//! (uploaded or inherited with `FROM`), after the layers are collected and before the config is
//! derived from them. Two reasons to rewrite:
//!
//! * **Import**: MLX's GGUF loader keeps F32/F16/BF16/Q4_0/Q4_1/Q8_0 and nothing else. Tensors in
//!   other types this crate can decode (K-quants Q2_K..Q8_K, Q5_0, Q5_1) are dequantized and
//!   stored as Q8_0 (2-D weights whose rows are whole 32-blocks), F32 (1-D: norms, biases) or F16
//!   (anything else). Types this crate cannot decode (IQ*, TQ*, MXFP4…) fail the create, naming
//!   the tensor and type.
//! * **`quantize`**: F32/F16/BF16 GGUFs are quantized to Q8_0, Q4_0 or Q4_1 (`Q4_K_M`/`Q4_K` map
//!   to Q4_1 and `Q4_K_S` to Q4_0, since MLX has no K-quant kernels). Only 2-D+ `*.weight`
//!   tensors with whole 32-blocks per row are quantized; the output projection (or the token
//!   embedding when it doubles as the output) is kept at Q8_0 for 4-bit targets, as llama.cpp
//!   keeps it at a higher precision. Already-quantized sources are refused like upstream
//!   ("quantization is only supported for F16, BF16 and F32 models"): requantizing quantized
//!   weights to fewer bits measurably breaks small models.
//!
//! Progress follows upstream: `quantizing <source file type> model to <TYPE>` objects with digest
//! `0000000000000000000` and byte totals, then `verifying conversion`.

use std::fs::File;
use std::io::{self, BufWriter, Write};

use ollmlx_wire::ollama::ProgressResponse;
use sha2::{Digest, Sha256};

use crate::blobs::{hex, sync_dir, temp_path, touch, TempGuard};
use crate::error::{Result, StoreError};
use crate::gguf::rewrite::{rewrite, Source};
use crate::gguf::{tensor_type_name, GgufFile, GgufValue, TensorInfo};
use crate::quantize::ggml::{self, kind};

/// Types MLX's GGUF loader keeps as they are.
pub fn mlx_loadable(t: u32) -> bool {
    matches!(
        t,
        kind::F32 | kind::F16 | kind::BF16 | kind::Q4_0 | kind::Q4_1 | kind::Q8_0
    )
}

/// `general.file_type` codes (llama.cpp's `LLAMA_FTYPE_*`) for what a rewrite stores.
fn file_type_code(t: u32) -> u32 {
    match t {
        kind::F32 => 0,
        kind::F16 => 1,
        kind::Q4_0 => 2,
        kind::Q4_1 => 3,
        kind::BF16 => 32,
        _ => 7, // Q8_0
    }
}

/// What a `quantize` request turns into: the GGML type for quantized weights.
pub fn quantize_target(want: &str) -> Result<u32> {
    Ok(match want {
        "Q8_0" => kind::Q8_0,
        "Q4_0" | "Q4_K_S" => kind::Q4_0,
        "Q4_1" | "Q4_K_M" | "Q4_K" => kind::Q4_1,
        "F16" => kind::F16,
        "BF16" => kind::BF16,
        "F32" => kind::F32,
        _ => {
            return Err(StoreError::Internal(format!(
                "unsupported quantization type {want} - supported types are F32, F16, Q4_K_S, Q4_K_M, Q8_0, Q4_0, Q4_1"
            )))
        }
    })
}

/// A decided rewrite: one target type per tensor and the status line to report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Target type of each tensor, in file order.
    pub targets: Vec<u32>,
    /// `general.file_type` to store.
    pub file_type: u32,
    /// `quantizing <from> model to <to>`.
    pub status: String,
}

fn is_quantizable_weight(t: &TensorInfo) -> bool {
    t.name.ends_with("weight")
        && t.shape.len() >= 2
        && t.shape[0].is_multiple_of(32)
        && matches!(t.kind, kind::F32 | kind::F16 | kind::BF16)
}

/// The type an undecodable-by-MLX tensor is imported as.
fn import_target(t: &TensorInfo) -> u32 {
    if t.shape.len() >= 2 && t.shape[0].is_multiple_of(32) {
        kind::Q8_0
    } else if t.shape.len() <= 1 {
        kind::F32
    } else {
        kind::F16
    }
}

/// Decide what to do with a model GGUF for a create with `quantize` (upper-cased, may be
/// empty). `None`: store the layer as it is.
pub fn plan(g: &GgufFile, quantize: &str) -> Result<Option<Plan>> {
    for t in &g.tensors {
        if !mlx_loadable(t.kind) && ggml::block_layout(t.kind).is_none() {
            return Err(StoreError::BadRequest(format!(
                "tensor {:?} has type {}, which ollmlx cannot import (MLX loads F32, F16, BF16, Q4_0, Q4_1 and Q8_0; K-quants Q2_K..Q6_K, Q5_0 and Q5_1 are converted to Q8_0)",
                t.name,
                tensor_type_name(t.kind)
            )));
        }
    }
    let have = g.file_type();
    let needs_import = g.tensors.iter().any(|t| !mlx_loadable(t.kind));
    if quantize.is_empty() || (needs_import && quantize == "Q8_0") {
        if !needs_import {
            return Ok(None);
        }
        let targets = g
            .tensors
            .iter()
            .map(|t| {
                if mlx_loadable(t.kind) {
                    t.kind
                } else {
                    import_target(t)
                }
            })
            .collect();
        return Ok(Some(Plan {
            targets,
            file_type: file_type_code(kind::Q8_0),
            status: format!("quantizing {have} model to Q8_0"),
        }));
    }
    let want = quantize_target(quantize)?;
    if !matches!(have, "F16" | "BF16" | "F32") {
        return Err(StoreError::Internal(
            "quantization is only supported for F16, BF16 and F32 models".into(),
        ));
    }
    if have == quantize || (quantize == "Q4_K" && have == "Q4_K_M") {
        return Ok(None);
    }
    let four_bit = matches!(want, kind::Q4_0 | kind::Q4_1);
    let has_output = g.tensors.iter().any(|t| t.name == "output.weight");
    let targets = g
        .tensors
        .iter()
        .map(|t| {
            if !is_quantizable_weight(t) {
                return t.kind;
            }
            let is_output =
                t.name == "output.weight" || (!has_output && t.name == "token_embd.weight");
            if four_bit && is_output {
                kind::Q8_0
            } else {
                want
            }
        })
        .collect();
    Ok(Some(Plan {
        targets,
        file_type: file_type_code(want),
        status: format!("quantizing {have} model to {quantize}"),
    }))
}

struct Hashing<W> {
    w: W,
    h: Sha256,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.w.write(buf)?;
        self.h.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.w.flush()
    }
}

/// Rewrite the GGUF blob `digest` per `plan` into a new blob (temp file in `blobs/`, hashed while
/// written, renamed into place). Returns `(digest, size, created)`.
pub fn rewrite_blob(
    blobs: &crate::blobs::Blobs,
    digest: &str,
    plan: &Plan,
    progress: &mut dyn FnMut(ProgressResponse),
) -> Result<(String, u64, bool)> {
    let path = blobs.path(digest)?;
    let ctx = |what: &str| format!("{what} {}", path.display());
    let src = Source::scan(&path).map_err(|e| StoreError::BadRequest(e.to_string()))?;
    let total = std::fs::metadata(&path)
        .map_err(|e| StoreError::io(ctx("stat"), e))?
        .len();
    let mut input = File::open(&path).map_err(|e| StoreError::io(ctx("open"), e))?;
    let guard = TempGuard::new(temp_path(blobs.dir()));
    let out = File::create(guard.path()).map_err(|e| StoreError::io(ctx("create temp for"), e))?;
    let mut w = Hashing {
        w: BufWriter::with_capacity(1 << 20, out),
        h: Sha256::new(),
    };
    let data_total = total.saturating_sub(src.data_start).max(1);
    let mut last = 0u64;
    let mut report = |done: u64| {
        // about 100 updates over the whole file
        if done < data_total && done.saturating_sub(last) < data_total / 100 {
            return;
        }
        last = done;
        let mut p = ProgressResponse::status(plan.status.clone());
        p.digest = "0000000000000000000".into();
        p.total = total as i64;
        p.completed = (done as f64 / data_total as f64 * total as f64) as i64;
        progress(p);
    };
    let size = rewrite(
        &mut input,
        &src,
        &plan.targets,
        &[("general.file_type", GgufValue::U32(plan.file_type))],
        &mut w,
        &mut report,
    )
    .map_err(|e| match e {
        crate::gguf::GgufError::Io(e) => StoreError::io(ctx("rewrite"), e),
        other => StoreError::BadRequest(other.to_string()),
    })?;
    let Hashing { w, h } = w;
    let f = w
        .into_inner()
        .map_err(|e| StoreError::io(ctx("flush rewrite of"), e.into_error()))?;
    f.sync_all()
        .map_err(|e| StoreError::io(ctx("sync rewrite of"), e))?;
    drop(f);
    progress(ProgressResponse::status("verifying conversion"));
    let new_digest = format!("sha256:{}", hex(&h.finalize()));
    GgufFile::open(guard.path(), Some(0))
        .map_err(|e| StoreError::Internal(format!("rewritten GGUF does not read back: {e}")))?;
    let final_path = blobs.path(&new_digest)?;
    if final_path.is_file() {
        touch(&final_path);
        return Ok((new_digest, size, false));
    }
    std::fs::rename(guard.path(), &final_path)
        .map_err(|e| StoreError::io(format!("rename to {}", final_path.display()), e))?;
    guard.keep();
    sync_dir(blobs.dir());
    Ok((new_digest, size, true))
}

/// Apply [`plan`] to a model layer: when a rewrite is needed, report it, write the new blob and
/// point the layer (and its decoded header) at it.
pub(super) fn convert_model_layer(
    store: &crate::store::Store,
    l: &mut super::NewLayer,
    quantize: &str,
    progress: &mut dyn FnMut(ProgressResponse),
) -> Result<()> {
    let Some(g) = &l.gguf else { return Ok(()) };
    let Some(plan) = plan(g, quantize)? else {
        return Ok(());
    };
    let (digest, size, created) = rewrite_blob(store.blobs(), &l.layer.digest, &plan, progress)?;
    let verb = if created {
        "creating new layer"
    } else {
        "using existing layer"
    };
    l.status = format!("{verb} {digest}");
    l.gguf = Some(GgufFile::open(&store.blobs().path(&digest)?, Some(0))?);
    l.layer.digest = digest;
    l.layer.size = size as i64;
    l.layer.from = String::new();
    Ok(())
}

#[cfg(test)]
#[path = "gguf_tests.rs"]
mod tests;
