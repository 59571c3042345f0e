//! Metadata of MLX/safetensors models (`model_format: safetensors`, `.tensor` + `.json`
//! layers), as upstream's `x/server/show.go` derives it for `/api/show`.
//!
//! `model_info` comes from the `config.json` layer (Hugging Face config), the parameter count
//! and tensor list from the safetensors headers of the `.tensor` blobs (no weights are read).

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use ollmlx_wire::ollama as wire;
use serde_json::{Map, Value};

/// `model_info` from a Hugging Face `config.json` (upstream `buildModelInfo`).
/// `total_tensor_bytes`/`tensor_count` give the byte-based parameter estimate upstream uses
/// when no exact count is available; `exact_params` (from tensor shapes) wins when non-zero.
pub fn model_info_from_config(
    config: &Value,
    total_tensor_bytes: i64,
    tensor_count: i64,
    exact_params: u64,
) -> Map<String, Value> {
    let int = |v: &Value, k: &str| v.get(k).and_then(Value::as_i64).unwrap_or(0);
    let mut arch = config
        .get("model_type")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if arch.is_empty() {
        if let Some(a) = config
            .get("architectures")
            .and_then(Value::as_array)
            .and_then(|a| a.first())
            .and_then(Value::as_str)
        {
            let lower = a.to_lowercase();
            let lower = lower.strip_suffix("forcausallm").unwrap_or(&lower);
            arch = lower
                .strip_suffix("forconditionalgeneration")
                .unwrap_or(lower)
                .to_string();
        }
    }
    let mut hidden = int(config, "hidden_size");
    let mut ctx = int(config, "max_position_embeddings");
    let mut layers = int(config, "num_hidden_layers");
    if let Some(tc) = config.get("text_config").filter(|v| v.is_object()) {
        if int(tc, "hidden_size") > 0 {
            hidden = int(tc, "hidden_size");
        }
        if int(tc, "max_position_embeddings") > 0 {
            ctx = int(tc, "max_position_embeddings");
        }
        if int(tc, "num_hidden_layers") > 0 {
            layers = int(tc, "num_hidden_layers");
        }
    }
    let bytes_per_param = match config
        .get("torch_dtype")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_lowercase()
        .as_str()
    {
        "float32" => 4,
        "int8" | "uint8" => 1,
        _ => 2,
    };
    let estimate = (total_tensor_bytes - tensor_count * 150) / bytes_per_param;

    let mut info = Map::new();
    info.insert("general.architecture".into(), arch.clone().into());
    let mut put = |k: &str, v: i64| {
        if v > 0 {
            info.insert(format!("{arch}.{k}"), v.into());
        }
    };
    put("context_length", ctx);
    put("embedding_length", hidden);
    put("block_count", layers);
    put("attention.head_count", int(config, "num_attention_heads"));
    put(
        "attention.head_count_kv",
        int(config, "num_key_value_heads"),
    );
    put("feed_forward_length", int(config, "intermediate_size"));
    put("vocab_size", int(config, "vocab_size"));
    if exact_params > 0 {
        info.insert("general.parameter_count".into(), exact_params.into());
    } else if estimate > 0 {
        info.insert("general.parameter_count".into(), estimate.into());
    }
    sort_map(info)
}

/// Keys sorted, as Go marshals maps.
pub fn sort_map(m: Map<String, Value>) -> Map<String, Value> {
    let mut v: Vec<(String, Value)> = m.into_iter().collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v.into_iter().collect()
}

fn is_companion(name: &str) -> bool {
    name == "__metadata__"
        || name.ends_with(".scale")
        || name.ends_with(".bias")
        || name.ends_with(".global_scale")
}

fn pack_factor(quant: &str) -> u64 {
    match quant.to_ascii_lowercase().as_str() {
        "int4" | "q4" | "mxfp4" | "nvfp4" => 8,
        "int8" | "q8" | "mxfp8" => 4,
        _ => 0,
    }
}

/// The main tensors in one safetensors file (header only), as `/api/show` lists them: quantized
/// tensors report their unpacked shape and lower-case quant type. `layer_name` names the tensor
/// when the blob holds exactly one.
pub fn read_tensor_headers(path: &Path, layer_name: &str) -> Option<Vec<wire::Tensor>> {
    let mut r = BufReader::new(File::open(path).ok()?);
    let mut len = [0u8; 8];
    r.read_exact(&mut len).ok()?;
    let n = u64::from_le_bytes(len);
    if n > 100 * 1024 * 1024 {
        return None;
    }
    let mut buf = vec![0u8; n as usize];
    r.read_exact(&mut buf).ok()?;
    let header: Map<String, Value> = serde_json::from_slice(&buf).ok()?;
    let meta = header.get("__metadata__");
    let global_quant = meta
        .and_then(|m| m.get("quant_type"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let mut names: Vec<&String> = header.keys().filter(|k| !is_companion(k)).collect();
    names.sort();
    let packed = names.len() > 1;
    let shape_of = |v: &Value| -> Vec<u64> {
        v.get("shape")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_u64).collect())
            .unwrap_or_default()
    };
    let mut out = Vec::new();
    for name in names {
        let entry = &header[name.as_str()];
        let mut shape = shape_of(entry);
        let mut quant = global_quant.clone();
        if quant.is_empty() {
            if let Some(scale) = header.get(&format!("{name}.scale")) {
                let sc = shape_of(scale);
                if let (Some(&m), Some(&s)) = (shape.last(), sc.last()) {
                    quant = match (shape.len() >= 2 && s > 0).then(|| m / s) {
                        Some(4) => "int4".into(),
                        Some(16) => "int8".into(),
                        _ => String::new(),
                    };
                }
            }
        }
        let kind = if quant.is_empty() {
            entry
                .get("dtype")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        } else {
            let pf = pack_factor(&quant);
            if pf > 0 && shape.len() >= 2 {
                if let Some(last) = shape.last_mut() {
                    *last *= pf;
                }
            }
            quant.trim().to_lowercase()
        };
        out.push(wire::Tensor {
            name: if packed {
                name.clone()
            } else {
                layer_name.to_string()
            },
            kind,
            shape,
        });
    }
    (!out.is_empty()).then_some(out)
}

/// One tensor of a safetensors file, as its header describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorEntry {
    /// Tensor name.
    pub name: String,
    /// Safetensors dtype (`F16`, `BF16`, `F32`, `U32`, ...).
    pub dtype: String,
    /// Shape.
    pub shape: Vec<u64>,
    /// Byte range inside the data section (after the header).
    pub begin: u64,
    /// End of the byte range (exclusive).
    pub end: u64,
}

/// A validated safetensors header.
#[derive(Debug, Clone, Default)]
pub struct Header {
    /// Tensors, sorted by name.
    pub tensors: Vec<TensorEntry>,
    /// `__metadata__`, if present.
    pub metadata: Option<Map<String, Value>>,
    /// File offset of the data section (`8 + header length`).
    pub data_start: u64,
}

/// Bytes per element of a safetensors dtype (`None` for dtypes we do not size-check).
pub fn dtype_size(dtype: &str) -> Option<u64> {
    Some(match dtype {
        "F64" | "I64" | "U64" => 8,
        "F32" | "I32" | "U32" => 4,
        "F16" | "BF16" | "I16" | "U16" => 2,
        "I8" | "U8" | "BOOL" | "F8_E4M3" | "F8_E5M2" => 1,
        _ => return None,
    })
}

/// Why a safetensors file was rejected.
#[derive(Debug, thiserror::Error)]
pub enum HeaderError {
    /// The file could not be read.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The file is not a well-formed safetensors file.
    #[error("{0}")]
    Invalid(String),
}

/// Read and validate the header of a safetensors file: the 8-byte length fits the file, the
/// JSON is an object of `{dtype, shape, data_offsets}` entries, every byte range lies inside
/// the data section and matches its shape. No tensor data is read.
pub fn parse_header(path: &Path) -> Result<Header, HeaderError> {
    let bad = |m: String| HeaderError::Invalid(m);
    let file_len = std::fs::metadata(path)?.len();
    let mut r = BufReader::new(File::open(path)?);
    if file_len < 8 {
        return Err(bad(format!(
            "file is {file_len} bytes, too short for a header"
        )));
    }
    let mut len = [0u8; 8];
    r.read_exact(&mut len)?;
    let n = u64::from_le_bytes(len);
    if n > file_len - 8 {
        return Err(bad(format!(
            "header length {n} exceeds the file size ({file_len} bytes)"
        )));
    }
    if n > 100 * 1024 * 1024 {
        return Err(bad(format!("header length {n} is too large")));
    }
    let mut buf = vec![0u8; n as usize];
    r.read_exact(&mut buf)?;
    let header: Map<String, Value> = serde_json::from_slice(&buf)
        .map_err(|e| bad(format!("header is not a JSON object: {e}")))?;
    let data_len = file_len - 8 - n;
    let mut out = Header {
        data_start: 8 + n,
        ..Default::default()
    };
    for (name, v) in header {
        if name == "__metadata__" {
            out.metadata = v.as_object().cloned();
            continue;
        }
        let dtype = v.get("dtype").and_then(Value::as_str).unwrap_or("");
        let shape: Option<Vec<u64>> = v
            .get("shape")
            .and_then(Value::as_array)
            .and_then(|a| a.iter().map(Value::as_u64).collect());
        let offs: Option<Vec<u64>> = v
            .get("data_offsets")
            .and_then(Value::as_array)
            .and_then(|a| a.iter().map(Value::as_u64).collect());
        let (Some(shape), Some(offs)) = (shape, offs) else {
            return Err(bad(format!(
                "tensor {name:?} lacks a valid shape or data_offsets"
            )));
        };
        if dtype.is_empty() || offs.len() != 2 || offs[0] > offs[1] {
            return Err(bad(format!(
                "tensor {name:?} has an invalid dtype or data_offsets"
            )));
        }
        if offs[1] > data_len {
            return Err(bad(format!(
                "tensor {name:?} data offsets [{}, {}] extend beyond the file ({data_len} data bytes)",
                offs[0], offs[1]
            )));
        }
        if let Some(size) = dtype_size(dtype) {
            let want = shape
                .iter()
                .try_fold(size, |acc, &d| acc.checked_mul(d))
                .unwrap_or(u64::MAX);
            if want != offs[1] - offs[0] {
                return Err(bad(format!(
                    "tensor {name:?} has {} bytes but its {dtype} shape {shape:?} needs {want}",
                    offs[1] - offs[0]
                )));
            }
        }
        out.tensors.push(TensorEntry {
            name,
            dtype: dtype.to_string(),
            shape,
            begin: offs[0],
            end: offs[1],
        });
    }
    out.tensors.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Serialize a safetensors file header (8-byte length + JSON padded with spaces to a multiple
/// of 8) for `tensors` laid out back to back in the given order.
pub fn encode_header(
    tensors: &[(String, String, Vec<u64>, u64)],
    metadata: &Map<String, Value>,
) -> Vec<u8> {
    let mut h = Map::new();
    if !metadata.is_empty() {
        h.insert("__metadata__".into(), Value::Object(metadata.clone()));
    }
    let mut off = 0u64;
    for (name, dtype, shape, nbytes) in tensors {
        h.insert(
            name.clone(),
            serde_json::json!({"dtype": dtype, "shape": shape, "data_offsets": [off, off + nbytes]}),
        );
        off += nbytes;
    }
    let mut json = serde_json::to_vec(&h).unwrap_or_default();
    while !json.len().is_multiple_of(8) {
        json.push(b' ');
    }
    let mut out = (json.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&json);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn model_info_from_hf_config() {
        let cfg = json!({
            "architectures": ["Qwen3ForCausalLM"],
            "hidden_size": 1024, "num_hidden_layers": 28, "max_position_embeddings": 40960,
            "intermediate_size": 3072, "num_attention_heads": 16, "num_key_value_heads": 8,
            "vocab_size": 151936, "torch_dtype": "bfloat16"
        });
        let mi = model_info_from_config(&cfg, 0, 0, 596_049_920);
        assert_eq!(
            Value::Object(mi),
            json!({
                "general.architecture": "qwen3",
                "general.parameter_count": 596049920u64,
                "qwen3.attention.head_count": 16,
                "qwen3.attention.head_count_kv": 8,
                "qwen3.block_count": 28,
                "qwen3.context_length": 40960,
                "qwen3.embedding_length": 1024,
                "qwen3.feed_forward_length": 3072,
                "qwen3.vocab_size": 151936
            })
        );
    }

    #[test]
    fn text_config_wins_and_model_type_is_preferred() {
        let cfg = json!({"model_type": "gemma3", "architectures": ["X"], "hidden_size": 1,
                          "text_config": {"hidden_size": 2560, "max_position_embeddings": 131072}});
        let mi = model_info_from_config(&cfg, 1150, 1, 0);
        assert_eq!(mi["general.architecture"], json!("gemma3"));
        assert_eq!(mi["gemma3.embedding_length"], json!(2560));
        assert_eq!(mi["gemma3.context_length"], json!(131072));
        assert_eq!(mi["general.parameter_count"], json!(500), "(1150-150)/2");
    }

    #[test]
    fn tensor_headers_unpack_quantized_shapes() {
        let d = tempfile::tempdir().unwrap();
        let header = json!({
            "__metadata__": {"quant_type": "int4", "group_size": "32"},
            "w": {"dtype": "U32", "shape": [64, 16], "data_offsets": [0, 0]},
            "w.scale": {"dtype": "BF16", "shape": [64, 4], "data_offsets": [0, 0]}
        })
        .to_string();
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(header.as_bytes());
        let p = d.path().join("t");
        std::fs::write(&p, bytes).unwrap();
        let t = read_tensor_headers(&p, "model.w").unwrap();
        assert_eq!(
            t,
            vec![wire::Tensor {
                name: "model.w".into(),
                kind: "int4".into(),
                shape: vec![64, 128]
            }]
        );
    }
}
