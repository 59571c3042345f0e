//! Streaming GGUF rewriter: copies a GGUF file's metadata byte for byte and its tensors one at a
//! time, converting the tensors whose type changes (dequantize → requantize through
//! [`crate::quantize::ggml`]) chunk by chunk, so no more than a few MiB of weights are in memory.
//!
//! Used by `POST /api/create` (`crate::create::gguf`) to turn GGUFs the MLX engine cannot load
//! (K-quants) into ones it can, and to quantize F16/BF16/F32 GGUFs. Output is GGUF v3,
//! little-endian, with the source's `general.alignment` (default 32) for the data section and
//! every tensor's offset.

use std::io::{Seek, SeekFrom, Write};
use std::ops::Range;

use super::*;
use crate::quantize::ggml;

/// Default `general.alignment`.
pub const DEFAULT_ALIGNMENT: u64 = 32;

/// A GGUF source scanned for rewriting: its header, the raw byte range of every key/value, and
/// where tensor data starts.
#[derive(Debug, Clone)]
pub struct Source {
    /// The decoded header (all arrays collected).
    pub header: GgufFile,
    /// `(key, byte range in the file)` of every key/value record, in file order.
    pub kv_spans: Vec<(String, Range<u64>)>,
    /// File offset of the tensor data section.
    pub data_start: u64,
    /// `general.alignment` (or 32).
    pub alignment: u64,
}

struct Counting<R> {
    r: R,
    pos: u64,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.r.read(buf)?;
        self.pos += n as u64;
        Ok(n)
    }
}

fn align(n: u64, a: u64) -> u64 {
    n.div_ceil(a) * a
}

impl Source {
    /// Scan the GGUF at `path` (v2/v3, little-endian only).
    pub fn scan(path: &Path) -> Result<Self, GgufError> {
        let f = File::open(path)?;
        let mut c = Counting {
            r: BufReader::with_capacity(64 << 10, f),
            pos: 0,
        };
        let mut m = [0u8; 4];
        c.read_exact(&mut m)?;
        match u32::from_le_bytes(m) {
            MAGIC_LE => {}
            MAGIC_BE => {
                return Err(GgufError::Invalid(
                    "big-endian GGUF files cannot be rewritten".into(),
                ))
            }
            _ => return Err(GgufError::BadMagic),
        }
        let mut rd = Reader {
            r: &mut c,
            be: false,
            version: 0,
            max_array: None,
        };
        rd.version = rd.u32()?;
        if !matches!(rd.version, 2 | 3) {
            return Err(GgufError::Invalid(format!(
                "GGUF version {} cannot be rewritten (only 2 and 3)",
                rd.version
            )));
        }
        let n_tensors = rd.u64()?;
        let n_kv = rd.u64()?;
        let mut header = GgufFile {
            version: rd.version,
            ..Default::default()
        };
        let mut kv_spans = Vec::new();
        for _ in 0..n_kv {
            let start = rd.r.pos;
            let k = rd.string()?;
            let t = rd.u32()?;
            let v = rd.value(t)?;
            kv_spans.push((k.clone(), start..rd.r.pos));
            header.kv.push((k, v));
        }
        for _ in 0..n_tensors {
            let name = rd.string()?;
            let dims = rd.u32()?;
            if dims > MAX_TENSOR_DIMS {
                return Err(GgufError::Invalid(format!(
                    "tensor {name:?} dimensions {dims} exceeds maximum {MAX_TENSOR_DIMS}"
                )));
            }
            let shape = (0..dims)
                .map(|_| rd.u64())
                .collect::<io::Result<Vec<_>>>()?;
            let kind = rd.u32()?;
            let offset = rd.u64()?;
            header.tensors.push(TensorInfo {
                name,
                kind,
                shape,
                offset,
            });
        }
        let alignment = header
            .get("general.alignment")
            .and_then(GgufValue::as_u64)
            .filter(|a| *a > 0)
            .unwrap_or(DEFAULT_ALIGNMENT);
        let data_start = align(c.pos, alignment);
        Ok(Source {
            header,
            kv_spans,
            data_start,
            alignment,
        })
    }
}

/// Encode one key/value record (key, type code, value) as GGUF v3 little-endian.
pub fn encode_kv(key: &str, v: &GgufValue) -> Vec<u8> {
    let mut out = Vec::new();
    put_str(&mut out, key);
    out.extend_from_slice(&value_type(v).to_le_bytes());
    put_value(&mut out, v);
    out
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn value_type(v: &GgufValue) -> u32 {
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

fn put_value(out: &mut Vec<u8>, v: &GgufValue) {
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
                put_value(out, v);
            }
        }
    }
}

/// A tensor as it will be written: name, GGML type, shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutTensor {
    /// Tensor name.
    pub name: String,
    /// GGML type code.
    pub kind: u32,
    /// Dimensions (`shape[0]` is the innermost, contiguous one).
    pub shape: Vec<u64>,
}

impl OutTensor {
    fn bytes(&self) -> Result<u64, GgufError> {
        let n = self.shape.iter().product::<u64>();
        ggml::byte_size(self.kind, n).ok_or_else(|| {
            GgufError::Invalid(format!(
                "tensor {:?}: type {} cannot hold shape {:?}",
                self.name,
                tensor_type_name(self.kind),
                self.shape
            ))
        })
    }
}

/// Write a GGUF v3 header: `kvs` are pre-encoded records ([`encode_kv`] or raw source spans),
/// tensor offsets are laid out back to back at `alignment`. Returns the bytes written (header
/// plus padding up to the data section) and each tensor's data size.
pub fn write_header(
    w: &mut impl Write,
    kvs: &[Vec<u8>],
    tensors: &[OutTensor],
    alignment: u64,
) -> Result<(u64, Vec<u64>), GgufError> {
    let mut h = Vec::new();
    h.extend_from_slice(b"GGUF");
    h.extend_from_slice(&3u32.to_le_bytes());
    h.extend_from_slice(&(tensors.len() as u64).to_le_bytes());
    h.extend_from_slice(&(kvs.len() as u64).to_le_bytes());
    for kv in kvs {
        h.extend_from_slice(kv);
    }
    let mut offset = 0u64;
    let mut sizes = Vec::with_capacity(tensors.len());
    for t in tensors {
        put_str(&mut h, &t.name);
        h.extend_from_slice(&(t.shape.len() as u32).to_le_bytes());
        for d in &t.shape {
            h.extend_from_slice(&d.to_le_bytes());
        }
        h.extend_from_slice(&t.kind.to_le_bytes());
        h.extend_from_slice(&offset.to_le_bytes());
        let size = t.bytes()?;
        sizes.push(size);
        offset = align(offset + size, alignment);
    }
    h.resize(align(h.len() as u64, alignment) as usize, 0);
    w.write_all(&h)?;
    Ok((h.len() as u64, sizes))
}

/// Rewrite `src` (opened at `file`) into `w`: metadata records copied byte for byte except the
/// keys in `set` (replaced in place, or appended when absent), tensor `i` converted to
/// `targets[i]` (same type: copied byte for byte). `progress` gets the source bytes consumed
/// after each chunk. Returns the bytes written.
pub fn rewrite(
    file: &mut File,
    src: &Source,
    targets: &[u32],
    set: &[(&str, GgufValue)],
    w: &mut impl Write,
    progress: &mut dyn FnMut(u64),
) -> Result<u64, GgufError> {
    if targets.len() != src.header.tensors.len() {
        return Err(GgufError::Invalid("one target type per tensor".into()));
    }
    let mut kvs = Vec::with_capacity(src.kv_spans.len() + set.len());
    let mut replaced = vec![false; set.len()];
    for (key, span) in &src.kv_spans {
        if let Some(i) = set.iter().position(|(k, _)| k == key) {
            kvs.push(encode_kv(key, &set[i].1));
            replaced[i] = true;
            continue;
        }
        let mut raw = vec![0u8; (span.end - span.start) as usize];
        file.seek(SeekFrom::Start(span.start))?;
        file.read_exact(&mut raw)?;
        kvs.push(raw);
    }
    for ((k, v), done) in set.iter().zip(&replaced) {
        if !done {
            kvs.push(encode_kv(k, v));
        }
    }
    let out: Vec<OutTensor> = src
        .header
        .tensors
        .iter()
        .zip(targets)
        .map(|(t, &kind)| OutTensor {
            name: t.name.clone(),
            kind,
            shape: t.shape.clone(),
        })
        .collect();
    let (mut written, sizes) = write_header(w, &kvs, &out, src.alignment)?;
    let mut consumed = 0u64;
    for (i, (t, o)) in src.header.tensors.iter().zip(&out).enumerate() {
        let n = t.elements();
        let src_size = ggml::byte_size(t.kind, n).ok_or_else(|| {
            GgufError::Invalid(format!(
                "tensor {:?} has type {}, which cannot be converted",
                t.name,
                t.type_name()
            ))
        })?;
        file.seek(SeekFrom::Start(src.data_start + t.offset))?;
        if t.kind == o.kind {
            let copied = io::copy(&mut (&mut *file).take(src_size), w)?;
            if copied != src_size {
                return Err(io::Error::from(io::ErrorKind::UnexpectedEof).into());
            }
            consumed += src_size;
            progress(consumed);
        } else {
            let row = t.shape.first().copied().unwrap_or(1).max(1);
            let row_bytes = ggml::byte_size(t.kind, row).ok_or_else(|| {
                GgufError::Invalid(format!("tensor {:?}: partial block rows", t.name))
            })?;
            let rows_per_chunk = ((1u64 << 20) / row).max(1);
            let mut left = n / row;
            let mut raw = Vec::new();
            let mut vals = Vec::new();
            let mut enc = Vec::new();
            while left > 0 {
                let rows = left.min(rows_per_chunk);
                raw.resize((rows * row_bytes) as usize, 0);
                file.read_exact(&mut raw)?;
                vals.clear();
                enc.clear();
                if !ggml::dequantize(t.kind, &raw, &mut vals)
                    || !ggml::quantize(o.kind, &vals, &mut enc)
                {
                    return Err(GgufError::Invalid(format!(
                        "tensor {:?}: cannot convert {} to {}",
                        t.name,
                        t.type_name(),
                        tensor_type_name(o.kind)
                    )));
                }
                w.write_all(&enc)?;
                left -= rows;
                consumed += raw.len() as u64;
                progress(consumed);
            }
        }
        written += sizes[i];
        if i + 1 < out.len() {
            let pad = align(written, src.alignment) - written;
            w.write_all(&vec![0u8; pad as usize])?;
            written += pad;
        }
    }
    Ok(written)
}

#[cfg(test)]
#[path = "rewrite_tests.rs"]
mod tests;
