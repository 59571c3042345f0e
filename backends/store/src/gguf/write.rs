//! Writing small GGUF v3 files (synthetic models for tests here and in other crates).

use super::*;

/// Build a little-endian GGUF v3 file from key/values and `(name, type, shape)` tensors.
/// Tensor data is zero-filled with a nominal size; meant for tests.
pub fn write_gguf(kv: &[(&str, GgufValue)], tensors: &[(&str, u32, Vec<u64>)]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(b"GGUF");
    out.extend_from_slice(&3u32.to_le_bytes());
    out.extend_from_slice(&(tensors.len() as u64).to_le_bytes());
    out.extend_from_slice(&(kv.len() as u64).to_le_bytes());
    for (k, v) in kv {
        out.extend_from_slice(&super::rewrite::encode_kv(k, v));
    }
    let mut offset = 0u64;
    for (name, kind, shape) in tensors {
        out.extend_from_slice(&(name.len() as u64).to_le_bytes());
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(&(shape.len() as u32).to_le_bytes());
        for d in shape {
            out.extend_from_slice(&d.to_le_bytes());
        }
        out.extend_from_slice(&kind.to_le_bytes());
        out.extend_from_slice(&offset.to_le_bytes());
        offset += 32;
    }
    while out.len() % 32 != 0 {
        out.push(0);
    }
    out.resize(out.len() + offset as usize, 0);
    out
}

/// Convenience: a string-array GGUF value.
pub fn string_array(items: &[&str]) -> GgufValue {
    GgufValue::Array {
        elem_type: TYPE_STRING,
        len: items.len() as u64,
        values: Some(
            items
                .iter()
                .map(|s| GgufValue::String(s.to_string()))
                .collect(),
        ),
    }
}

/// Convenience: an int32-array GGUF value.
pub fn i32_array(items: &[i32]) -> GgufValue {
    GgufValue::Array {
        elem_type: TYPE_I32,
        len: items.len() as u64,
        values: Some(items.iter().map(|v| GgufValue::I32(*v)).collect()),
    }
}
