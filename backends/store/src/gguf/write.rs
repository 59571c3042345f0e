//! Writing small GGUF v3 files (synthetic models for tests here and in other crates).

use super::*;

/// Build a little-endian GGUF v3 file from key/values and `(name, type, shape)` tensors.
/// Tensor data is zero-filled with a nominal size; meant for tests.
pub fn write_gguf(kv: &[(&str, GgufValue)], tensors: &[(&str, u32, Vec<u64>)]) -> Vec<u8> {
    fn put_str(out: &mut Vec<u8>, s: &str) {
        out.extend_from_slice(&(s.len() as u64).to_le_bytes());
        out.extend_from_slice(s.as_bytes());
    }
    fn type_of(v: &GgufValue) -> u32 {
        match v {
            GgufValue::U8(_) => TYPE_U8,
            GgufValue::I8(_) => TYPE_I8,
            GgufValue::U16(_) => TYPE_U16,
            GgufValue::I16(_) => TYPE_I16,
            GgufValue::U32(_) => TYPE_U32,
            GgufValue::I32(_) => TYPE_I32,
            GgufValue::U64(_) => TYPE_U64,
            GgufValue::I64(_) => TYPE_I64,
            GgufValue::F32(_) => TYPE_F32,
            GgufValue::F64(_) => TYPE_F64,
            GgufValue::Bool(_) => TYPE_BOOL,
            GgufValue::String(_) => TYPE_STRING,
            GgufValue::Array { .. } => TYPE_ARRAY,
        }
    }
    fn put_val(out: &mut Vec<u8>, v: &GgufValue) {
        match v {
            GgufValue::U8(x) => out.push(*x),
            GgufValue::I8(x) => out.push(*x as u8),
            GgufValue::U16(x) => out.extend_from_slice(&x.to_le_bytes()),
            GgufValue::I16(x) => out.extend_from_slice(&x.to_le_bytes()),
            GgufValue::U32(x) => out.extend_from_slice(&x.to_le_bytes()),
            GgufValue::I32(x) => out.extend_from_slice(&x.to_le_bytes()),
            GgufValue::U64(x) => out.extend_from_slice(&x.to_le_bytes()),
            GgufValue::I64(x) => out.extend_from_slice(&x.to_le_bytes()),
            GgufValue::F32(x) => out.extend_from_slice(&x.to_le_bytes()),
            GgufValue::F64(x) => out.extend_from_slice(&x.to_le_bytes()),
            GgufValue::Bool(x) => out.push(u8::from(*x)),
            GgufValue::String(s) => put_str(out, s),
            GgufValue::Array {
                elem_type, values, ..
            } => {
                let vs = values.as_deref().unwrap_or(&[]);
                out.extend_from_slice(&elem_type.to_le_bytes());
                out.extend_from_slice(&(vs.len() as u64).to_le_bytes());
                for v in vs {
                    put_val(out, v);
                }
            }
        }
    }
    let mut out = Vec::new();
    out.extend_from_slice(b"GGUF");
    out.extend_from_slice(&3u32.to_le_bytes());
    out.extend_from_slice(&(tensors.len() as u64).to_le_bytes());
    out.extend_from_slice(&(kv.len() as u64).to_le_bytes());
    for (k, v) in kv {
        put_str(&mut out, k);
        out.extend_from_slice(&type_of(v).to_le_bytes());
        put_val(&mut out, v);
    }
    let mut offset = 0u64;
    for (name, kind, shape) in tensors {
        put_str(&mut out, name);
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
