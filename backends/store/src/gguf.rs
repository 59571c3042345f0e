//! GGUF header reader: key/values and tensor infos, never the weights.
//!
//! Used by `/api/show` (`model_info`, `tensors`, details), `/api/tags` (context/embedding
//! length, capabilities) and create (family, parameter size, quantization for the config blob).
//! Follows upstream's `fs/ggml` decoder: versions 1-3, either byte order, the same size limits,
//! `general.parameter_count` patched in as the sum of tensor elements. [`write_gguf`] builds
//! small synthetic files for tests here and in other crates.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

use serde_json::{Map, Value};

pub mod rewrite;
mod write;
pub use write::{i32_array, string_array, write_gguf};

/// Longest string upstream accepts (16 MiB).
pub const MAX_STRING_LENGTH: u64 = 16 << 20;
/// Largest array upstream accepts (64 Mi elements).
pub const MAX_ARRAY_SIZE: u64 = 64 << 20;
/// Most tensor dimensions upstream accepts.
pub const MAX_TENSOR_DIMS: u32 = 4;

const MAGIC_LE: u32 = 0x4655_4747; // "GGUF" read little-endian
const MAGIC_BE: u32 = 0x4747_5546;

/// GGUF read failures.
#[derive(Debug, thiserror::Error)]
pub enum GgufError {
    /// I/O error or truncated file.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// Not a GGUF file.
    #[error("invalid file magic")]
    BadMagic,
    /// Structurally invalid content.
    #[error("{0}")]
    Invalid(String),
}

/// A GGUF value.
#[derive(Debug, Clone, PartialEq)]
pub enum GgufValue {
    /// uint8
    U8(u8),
    /// int8
    I8(i8),
    /// uint16
    U16(u16),
    /// int16
    I16(i16),
    /// uint32
    U32(u32),
    /// int32
    I32(i32),
    /// uint64
    U64(u64),
    /// int64
    I64(i64),
    /// float32
    F32(f32),
    /// float64
    F64(f64),
    /// bool
    Bool(bool),
    /// string
    String(String),
    /// array; `values` is `None` when it was longer than the reader's array limit
    Array {
        /// GGUF element type code.
        elem_type: u32,
        /// Element count.
        len: u64,
        /// The elements, when collected.
        values: Option<Vec<GgufValue>>,
    },
}

impl GgufValue {
    /// As an unsigned integer (any integer type, non-negative).
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            GgufValue::U8(v) => Some(v.into()),
            GgufValue::U16(v) => Some(v.into()),
            GgufValue::U32(v) => Some(v.into()),
            GgufValue::U64(v) => Some(v),
            GgufValue::I8(v) => u64::try_from(v).ok(),
            GgufValue::I16(v) => u64::try_from(v).ok(),
            GgufValue::I32(v) => u64::try_from(v).ok(),
            GgufValue::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    /// As a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            GgufValue::String(s) => Some(s),
            _ => None,
        }
    }

    /// As a bool.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            GgufValue::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// JSON the way upstream marshals it: numbers, strings, bools; collected arrays as arrays
    /// (`[]uint8` as base64, like Go), uncollected arrays as `null`.
    pub fn to_json(&self) -> Value {
        match self {
            GgufValue::U8(v) => (*v).into(),
            GgufValue::I8(v) => (*v).into(),
            GgufValue::U16(v) => (*v).into(),
            GgufValue::I16(v) => (*v).into(),
            GgufValue::U32(v) => (*v).into(),
            GgufValue::I32(v) => (*v).into(),
            GgufValue::U64(v) => (*v).into(),
            GgufValue::I64(v) => (*v).into(),
            // go through the shortest f32 decimal so 1e-5f32 stays 1e-05, not 9.99999974e-06
            GgufValue::F32(v) => f32_to_json(*v),
            GgufValue::F64(v) => {
                serde_json::Number::from_f64(*v).map_or(Value::Null, Value::Number)
            }
            GgufValue::Bool(b) => Value::Bool(*b),
            GgufValue::String(s) => Value::String(s.clone()),
            GgufValue::Array { values: None, .. } => Value::Null,
            GgufValue::Array {
                elem_type: TYPE_U8,
                values: Some(vs),
                ..
            } => {
                let bytes: Vec<u8> = vs
                    .iter()
                    .filter_map(|v| match v {
                        GgufValue::U8(b) => Some(*b),
                        _ => None,
                    })
                    .collect();
                Value::String(base64_std(&bytes))
            }
            GgufValue::Array {
                values: Some(vs), ..
            } => Value::Array(vs.iter().map(GgufValue::to_json).collect()),
        }
    }
}

/// A float32 as a JSON number with its shortest decimal form.
pub fn f32_to_json(v: f32) -> Value {
    format!("{v}")
        .parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
        .map_or(Value::Null, Value::Number)
}

/// A tensor's name, type and shape (no data).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    /// Tensor name.
    pub name: String,
    /// GGML tensor type code.
    pub kind: u32,
    /// Dimensions.
    pub shape: Vec<u64>,
    /// Offset of the data from the start of the tensor data section.
    pub offset: u64,
}

impl TensorInfo {
    /// Element count (saturating).
    pub fn elements(&self) -> u64 {
        self.shape.iter().fold(1u64, |a, &d| a.saturating_mul(d))
    }

    /// Type name as upstream prints it (`Q4_K`, `F16`, `unknown`).
    pub fn type_name(&self) -> &'static str {
        tensor_type_name(self.kind)
    }
}

/// A decoded GGUF header.
#[derive(Debug, Clone, Default)]
pub struct GgufFile {
    /// Format version.
    pub version: u32,
    /// Key/values in file order (plus `general.parameter_count` appended).
    pub kv: Vec<(String, GgufValue)>,
    /// Tensor infos in file order.
    pub tensors: Vec<TensorInfo>,
}

const TYPE_U8: u32 = 0;
const TYPE_I8: u32 = 1;
const TYPE_U16: u32 = 2;
const TYPE_I16: u32 = 3;
const TYPE_U32: u32 = 4;
const TYPE_I32: u32 = 5;
const TYPE_F32: u32 = 6;
const TYPE_BOOL: u32 = 7;
const TYPE_STRING: u32 = 8;
const TYPE_ARRAY: u32 = 9;
const TYPE_U64: u32 = 10;
const TYPE_I64: u32 = 11;
const TYPE_F64: u32 = 12;

struct Reader<R> {
    r: R,
    be: bool,
    version: u32,
    max_array: Option<u64>,
}

impl<R: Read> Reader<R> {
    fn bytes<const N: usize>(&mut self) -> io::Result<[u8; N]> {
        let mut b = [0u8; N];
        self.r.read_exact(&mut b)?;
        if self.be {
            b.reverse();
        }
        Ok(b)
    }
    fn u32(&mut self) -> io::Result<u32> {
        Ok(u32::from_le_bytes(self.bytes()?))
    }
    fn u64(&mut self) -> io::Result<u64> {
        Ok(u64::from_le_bytes(self.bytes()?))
    }
    fn len(&mut self, max: u64, what: &str) -> Result<u64, GgufError> {
        let n = self.u64()?;
        if n > max {
            return Err(GgufError::Invalid(format!(
                "GGUF {what} length {n} exceeds maximum {max}"
            )));
        }
        Ok(n)
    }
    fn string(&mut self) -> Result<String, GgufError> {
        let n = self.len(MAX_STRING_LENGTH, "string")?;
        let mut buf = vec![0u8; n as usize];
        self.r.read_exact(&mut buf)?;
        if self.version == 1 {
            // v1 strings carry a trailing NUL
            if buf.pop() != Some(0) {
                return Err(GgufError::Invalid(
                    "invalid GGUF v1 string terminator".into(),
                ));
            }
        }
        Ok(String::from_utf8_lossy(&buf).into_owned())
    }
    fn skip_string(&mut self) -> Result<(), GgufError> {
        let n = self.len(MAX_STRING_LENGTH, "string")?;
        let copied = io::copy(&mut (&mut self.r).take(n), &mut io::sink())?;
        if copied != n {
            return Err(io::Error::from(io::ErrorKind::UnexpectedEof).into());
        }
        Ok(())
    }
    fn value(&mut self, t: u32) -> Result<GgufValue, GgufError> {
        Ok(match t {
            TYPE_U8 => GgufValue::U8(self.bytes::<1>()?[0]),
            TYPE_I8 => GgufValue::I8(self.bytes::<1>()?[0] as i8),
            TYPE_U16 => GgufValue::U16(u16::from_le_bytes(self.bytes()?)),
            TYPE_I16 => GgufValue::I16(i16::from_le_bytes(self.bytes()?)),
            TYPE_U32 => GgufValue::U32(self.u32()?),
            TYPE_I32 => GgufValue::I32(i32::from_le_bytes(self.bytes()?)),
            TYPE_U64 => GgufValue::U64(self.u64()?),
            TYPE_I64 => GgufValue::I64(i64::from_le_bytes(self.bytes()?)),
            TYPE_F32 => GgufValue::F32(f32::from_le_bytes(self.bytes()?)),
            TYPE_F64 => GgufValue::F64(f64::from_le_bytes(self.bytes()?)),
            TYPE_BOOL => GgufValue::Bool(self.bytes::<1>()?[0] != 0),
            TYPE_STRING => GgufValue::String(self.string()?),
            TYPE_ARRAY => self.array()?,
            other => return Err(GgufError::Invalid(format!("invalid type: {other}"))),
        })
    }
    fn array(&mut self) -> Result<GgufValue, GgufError> {
        let elem_type = self.u32()?;
        if elem_type == TYPE_ARRAY || elem_type > TYPE_F64 {
            return Err(GgufError::Invalid(format!(
                "invalid array type: {elem_type}"
            )));
        }
        let len = self.len(MAX_ARRAY_SIZE, "array size")?;
        let collect = self.max_array.is_none_or_le(len);
        if collect {
            let mut vs = Vec::with_capacity(len.min(1 << 16) as usize);
            for _ in 0..len {
                vs.push(self.value(elem_type)?);
            }
            return Ok(GgufValue::Array {
                elem_type,
                len,
                values: Some(vs),
            });
        }
        if elem_type == TYPE_STRING {
            for _ in 0..len {
                self.skip_string()?;
            }
        } else {
            let size = match elem_type {
                TYPE_U8 | TYPE_I8 | TYPE_BOOL => 1,
                TYPE_U16 | TYPE_I16 => 2,
                TYPE_U32 | TYPE_I32 | TYPE_F32 => 4,
                _ => 8,
            };
            let n = len * size;
            let copied = io::copy(&mut (&mut self.r).take(n), &mut io::sink())?;
            if copied != n {
                return Err(io::Error::from(io::ErrorKind::UnexpectedEof).into());
            }
        }
        Ok(GgufValue::Array {
            elem_type,
            len,
            values: None,
        })
    }
}

trait LimitExt {
    fn is_none_or_le(&self, len: u64) -> bool;
}
impl LimitExt for Option<u64> {
    fn is_none_or_le(&self, len: u64) -> bool {
        match self {
            None => true,
            Some(max) => len <= *max,
        }
    }
}

impl GgufFile {
    /// Whether `prefix` (the first 4 bytes of a file) is a GGUF magic.
    pub fn is_gguf(prefix: &[u8]) -> bool {
        prefix.len() >= 4
            && matches!(
                u32::from_le_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]),
                MAGIC_LE | MAGIC_BE
            )
    }

    /// Read the header of the file at `path`. Arrays longer than `max_array` elements are
    /// skipped (kept as length only); `None` collects everything.
    pub fn open(path: &Path, max_array: Option<u64>) -> Result<Self, GgufError> {
        let f = File::open(path)?;
        Self::read(BufReader::with_capacity(64 << 10, f), max_array)
    }

    /// Read a header from any reader.
    pub fn read(mut r: impl Read, max_array: Option<u64>) -> Result<Self, GgufError> {
        let mut m = [0u8; 4];
        r.read_exact(&mut m)?;
        let be = match u32::from_le_bytes(m) {
            MAGIC_LE => false,
            MAGIC_BE => true,
            _ => return Err(GgufError::BadMagic),
        };
        let mut rd = Reader {
            r,
            be,
            version: 0,
            max_array,
        };
        rd.version = rd.u32()?;
        let (n_tensors, n_kv) = if rd.version == 1 {
            (u64::from(rd.u32()?), u64::from(rd.u32()?))
        } else {
            (rd.u64()?, rd.u64()?)
        };
        let mut out = GgufFile {
            version: rd.version,
            ..Default::default()
        };
        for _ in 0..n_kv {
            let k = rd.string()?;
            let t = rd.u32()?;
            let v = rd.value(t)?;
            out.kv.push((k, v));
        }
        let mut params: u64 = 0;
        for _ in 0..n_tensors {
            let name = rd.string()?;
            let dims = rd.u32()?;
            if dims > MAX_TENSOR_DIMS {
                return Err(GgufError::Invalid(format!(
                    "tensor {name:?} dimensions {dims} exceeds maximum {MAX_TENSOR_DIMS}"
                )));
            }
            let mut shape = Vec::with_capacity(dims as usize);
            for _ in 0..dims {
                shape.push(rd.u64()?);
            }
            let kind = rd.u32()?;
            let offset = rd.u64()?;
            let t = TensorInfo {
                name,
                kind,
                shape,
                offset,
            };
            params = params
                .checked_add(t.elements())
                .ok_or_else(|| GgufError::Invalid("parameter count overflow".into()))?;
            out.tensors.push(t);
        }
        out.kv.retain(|(k, _)| k != "general.parameter_count");
        out.kv
            .push(("general.parameter_count".into(), GgufValue::U64(params)));
        Ok(out)
    }

    /// The raw value of `key`.
    pub fn get(&self, key: &str) -> Option<&GgufValue> {
        self.kv.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Upstream's `KV` lookup: keys not starting with `general.` or `tokenizer.` are prefixed
    /// with the architecture (`context_length` -> `llama.context_length`).
    pub fn arch_get(&self, key: &str) -> Option<&GgufValue> {
        if key.starts_with("general.") || key.starts_with("tokenizer.") {
            return self.get(key);
        }
        self.get(&format!("{}.{key}", self.architecture()))
    }

    /// `general.architecture`, or `unknown`.
    pub fn architecture(&self) -> &str {
        self.get("general.architecture")
            .and_then(GgufValue::as_str)
            .unwrap_or("unknown")
    }

    /// `general.type`, or `unknown`.
    pub fn kind(&self) -> &str {
        self.get("general.type")
            .and_then(GgufValue::as_str)
            .unwrap_or("unknown")
    }

    /// Sum of tensor elements.
    pub fn parameter_count(&self) -> u64 {
        self.get("general.parameter_count")
            .and_then(GgufValue::as_u64)
            .unwrap_or(0)
    }

    /// Quantization name from `general.file_type` (`unknown` when absent or 0, like upstream).
    pub fn file_type(&self) -> &'static str {
        match self.get("general.file_type").and_then(GgufValue::as_u64) {
            Some(t) if t > 0 => file_type_name(t),
            _ => "unknown",
        }
    }

    /// `<arch>.context_length` (0 when absent).
    pub fn context_length(&self) -> u64 {
        self.arch_get("context_length")
            .and_then(GgufValue::as_u64)
            .unwrap_or(0)
    }

    /// `<arch>.embedding_length` (0 when absent).
    pub fn embedding_length(&self) -> u64 {
        self.arch_get("embedding_length")
            .and_then(GgufValue::as_u64)
            .unwrap_or(0)
    }

    /// `tokenizer.chat_template` (empty when absent).
    pub fn chat_template(&self) -> &str {
        self.get("tokenizer.chat_template")
            .and_then(GgufValue::as_str)
            .unwrap_or("")
    }

    /// `model_info` for `/api/show`: every KV except `general.name` and
    /// `tokenizer.chat_template`, keys sorted. Arrays the reader did not collect are `null`.
    pub fn model_info(&self) -> Map<String, Value> {
        let mut keys: Vec<&(String, GgufValue)> = self
            .kv
            .iter()
            .filter(|(k, _)| k != "general.name" && k != "tokenizer.chat_template")
            .collect();
        keys.sort_by(|a, b| a.0.cmp(&b.0));
        keys.into_iter()
            .map(|(k, v)| (k.clone(), v.to_json()))
            .collect()
    }

    /// Whether this GGUF is a vision/audio projector (upstream's `isProjectorGGUF`).
    pub fn is_projector(&self) -> bool {
        if matches!(self.kind(), "projector" | "mmproj") {
            return true;
        }
        let block_count = self
            .arch_get("block_count")
            .and_then(GgufValue::as_u64)
            .unwrap_or(0);
        let vision_blocks = self
            .arch_get("vision.block_count")
            .and_then(GgufValue::as_u64)
            .unwrap_or(0);
        if block_count == 0 && vision_blocks > 0 {
            return true;
        }
        let flag = |k: &str| {
            self.arch_get(k)
                .and_then(GgufValue::as_bool)
                .unwrap_or(false)
        };
        self.architecture() == "clip"
            && block_count == 0
            && (flag("has_vision_encoder") || flag("has_audio_encoder"))
    }
}

/// Upstream's `format.HumanNumber`: `135M`, `7.6B`, `1.24M`, `12K`, `999`.
pub fn human_number(n: u64) -> String {
    const K: u64 = 1_000;
    const M: u64 = 1_000_000;
    const B: u64 = 1_000_000_000;
    let whole = |x: f64| x == x.floor();
    if n >= B {
        let x = n as f64 / B as f64;
        if whole(x) {
            format!("{x:.0}B")
        } else {
            format!("{x:.1}B")
        }
    } else if n >= M {
        let x = n as f64 / M as f64;
        if whole(x) {
            format!("{x:.0}M")
        } else {
            format!("{x:.2}M")
        }
    } else if n >= K {
        format!("{:.0}K", n as f64 / K as f64)
    } else {
        n.to_string()
    }
}

/// llama.cpp file type (`general.file_type`) as upstream names it.
pub fn file_type_name(t: u64) -> &'static str {
    const NAMES: [&str; 41] = [
        "F32",
        "F16",
        "Q4_0",
        "Q4_1",
        "",
        "",
        "",
        "Q8_0",
        "Q5_0",
        "Q5_1",
        "Q2_K",
        "Q3_K_S",
        "Q3_K_M",
        "Q3_K_L",
        "Q4_K_S",
        "Q4_K_M",
        "Q5_K_S",
        "Q5_K_M",
        "Q6_K",
        "IQ2_XXS",
        "IQ2_XS",
        "Q2_K_S",
        "IQ3_XS",
        "IQ3_XXS",
        "IQ1_S",
        "IQ4_NL",
        "IQ3_S",
        "IQ3_M",
        "IQ2_S",
        "IQ2_M",
        "IQ4_XS",
        "IQ1_M",
        "BF16",
        "",
        "",
        "",
        "TQ1_0",
        "TQ2_0",
        "MXFP4_MOE",
        "NVFP4",
        "Q1_0",
    ];
    match NAMES.get(t as usize) {
        Some(s) if !s.is_empty() => s,
        _ => "unknown",
    }
}

/// GGML tensor type as upstream names it.
pub fn tensor_type_name(t: u32) -> &'static str {
    const NAMES: [&str; 42] = [
        "F32", "F16", "Q4_0", "Q4_1", "", "", "Q5_0", "Q5_1", "Q8_0", "Q8_1", "Q2_K", "Q3_K",
        "Q4_K", "Q5_K", "Q6_K", "Q8_K", "IQ2_XXS", "IQ2_XS", "IQ3_XXS", "IQ1_S", "IQ4_NL", "IQ3_S",
        "IQ2_S", "IQ4_XS", "I8", "I16", "I32", "I64", "F64", "IQ1_M", "BF16", "", "", "", "TQ1_0",
        "TQ2_0", "", "", "", "MXFP4", "NVFP4", "Q1_0",
    ];
    match NAMES.get(t as usize) {
        Some(s) if !s.is_empty() => s,
        _ => "unknown",
    }
}

fn base64_std(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for c in data.chunks(3) {
        let b = [c[0], *c.get(1).unwrap_or(&0), *c.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        out.push(T[(n >> 18) as usize & 63] as char);
        out.push(T[(n >> 12) as usize & 63] as char);
        out.push(if c.len() > 1 {
            T[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        out.push(if c.len() > 2 {
            T[n as usize & 63] as char
        } else {
            '='
        });
    }
    out
}

#[cfg(test)]
mod tests;
