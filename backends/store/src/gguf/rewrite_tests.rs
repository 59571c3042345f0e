//! Rewriter tests: a GGUF written with real tensor data reads back identically, a rewrite with
//! unchanged types is a byte-for-byte copy, and converted tensors hold the requantized values.

use super::*;
use crate::quantize::ggml::{self, kind};
use crate::quantize::FloatType;

/// A GGUF with real data: `(name, type, shape, bytes)` tensors.
fn build(kv: &[(&str, GgufValue)], tensors: &[(&str, u32, Vec<u64>, Vec<u8>)]) -> Vec<u8> {
    let kvs: Vec<Vec<u8>> = kv.iter().map(|(k, v)| encode_kv(k, v)).collect();
    let out: Vec<OutTensor> = tensors
        .iter()
        .map(|(n, k, s, _)| OutTensor {
            name: n.to_string(),
            kind: *k,
            shape: s.clone(),
        })
        .collect();
    let mut buf = Vec::new();
    let (_, sizes) = write_header(&mut buf, &kvs, &out, 32).unwrap();
    for (i, (_, _, _, data)) in tensors.iter().enumerate() {
        assert_eq!(sizes[i], data.len() as u64);
        buf.extend_from_slice(data);
        if i + 1 < tensors.len() {
            buf.resize(buf.len().div_ceil(32) * 32, 0);
        }
    }
    buf
}

fn pseudo(n: usize, seed: u32) -> Vec<f32> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            ((s >> 8) as f32 / (1u32 << 24) as f32 - 0.5) * 0.2
        })
        .collect()
}

fn q4k_blocks(n: usize) -> Vec<u8> {
    // structurally valid Q4_K blocks: small positive d/dmin, arbitrary scales and nibbles
    let mut out = Vec::new();
    for b in 0..n {
        FloatType::F16.encode(0.01 + b as f32 * 0.001, &mut out);
        FloatType::F16.encode(0.005, &mut out);
        out.extend((0..140).map(|i| ((i * 31 + b * 7) % 256) as u8));
    }
    out
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn sample() -> Vec<u8> {
    build(
        &[
            ("general.architecture", GgufValue::String("llama".into())),
            ("general.file_type", GgufValue::U32(15)),
            ("general.name", GgufValue::String("Tiny ünïcode".into())),
            ("llama.rope.freq_base", GgufValue::F32(10000.0)),
            ("llama.attention.head_count", GgufValue::U64(4)),
            ("tokenizer.ggml.add_bos_token", GgufValue::Bool(true)),
            ("tokenizer.ggml.tokens", string_array(&["<s>", "a", "▁b"])),
            ("tokenizer.ggml.scores", f32_array(&[0.0, -1.5, -2.25])),
            ("tokenizer.ggml.token_type", i32_array(&[3, 1, 1])),
        ],
        &[
            (
                "output_norm.weight",
                kind::F32,
                vec![256],
                f32_bytes(&pseudo(256, 1)),
            ),
            (
                "blk.0.attn_q.weight",
                kind::Q4_K,
                vec![256, 3],
                q4k_blocks(3),
            ),
            ("token_embd.weight", kind::Q4_K, vec![512, 2], q4k_blocks(4)),
        ],
    )
}

fn f32_array(v: &[f32]) -> GgufValue {
    GgufValue::Array {
        elem_type: TYPE_F32,
        len: v.len() as u64,
        values: Some(v.iter().map(|x| GgufValue::F32(*x)).collect()),
    }
}

fn to_file(bytes: &[u8]) -> (tempfile::TempDir, std::path::PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("m.gguf");
    std::fs::write(&p, bytes).unwrap();
    (d, p)
}

fn tensor_bytes<'a>(file: &'a [u8], src: &Source, name: &str) -> &'a [u8] {
    let t = src.header.tensors.iter().find(|t| t.name == name).unwrap();
    let size = ggml::byte_size(t.kind, t.elements()).unwrap() as usize;
    let at = (src.data_start + t.offset) as usize;
    &file[at..at + size]
}

#[test]
fn written_gguf_reads_back_with_identical_metadata_tensors_and_aligned_offsets() {
    let bytes = sample();
    let (_d, p) = to_file(&bytes);
    let g = GgufFile::read(&bytes[..], None).unwrap();
    assert_eq!(g.version, 3);
    assert_eq!(g.architecture(), "llama");
    assert_eq!(g.file_type(), "Q4_K_M");
    assert_eq!(
        g.get("general.name").unwrap().as_str(),
        Some("Tiny ünïcode")
    );
    assert_eq!(
        g.get("tokenizer.ggml.scores"),
        Some(&f32_array(&[0.0, -1.5, -2.25]))
    );
    assert_eq!(g.tensors.len(), 3);
    assert_eq!(g.tensors[1].shape, vec![256, 3]);
    let src = Source::scan(&p).unwrap();
    assert_eq!(src.alignment, 32);
    assert_eq!(src.data_start % 32, 0);
    for t in &src.header.tensors {
        assert_eq!(t.offset % 32, 0, "{} offset", t.name);
    }
    assert_eq!(
        tensor_bytes(&bytes, &src, "output_norm.weight"),
        &f32_bytes(&pseudo(256, 1))[..]
    );
    assert_eq!(
        tensor_bytes(&bytes, &src, "token_embd.weight"),
        &q4k_blocks(4)[..]
    );
    // every key/value span is exactly one record
    let spans: Vec<&str> = src.kv_spans.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(spans[0], "general.architecture");
    assert_eq!(spans.len(), 9);
}

#[test]
fn rewrite_with_unchanged_types_is_a_byte_for_byte_copy() {
    let bytes = sample();
    let (_d, p) = to_file(&bytes);
    let src = Source::scan(&p).unwrap();
    let targets: Vec<u32> = src.header.tensors.iter().map(|t| t.kind).collect();
    let mut out = Vec::new();
    let mut f = File::open(&p).unwrap();
    let n = rewrite(&mut f, &src, &targets, &[], &mut out, &mut |_| {}).unwrap();
    assert_eq!(n, out.len() as u64);
    assert_eq!(out, bytes);
}

#[test]
fn rewrite_converts_k_quants_to_q8_0_and_replaces_file_type_in_place() {
    let bytes = sample();
    let (_d, p) = to_file(&bytes);
    let src = Source::scan(&p).unwrap();
    let targets = [kind::F32, kind::Q8_0, kind::F16];
    let mut out = Vec::new();
    let mut seen = Vec::new();
    let mut f = File::open(&p).unwrap();
    rewrite(
        &mut f,
        &src,
        &targets,
        &[("general.file_type", GgufValue::U32(7))],
        &mut out,
        &mut |n| seen.push(n),
    )
    .unwrap();
    assert_eq!(seen.last().copied(), Some(1024 + 3 * 144 + 4 * 144));
    let (_d2, p2) = to_file(&out);
    let dst = Source::scan(&p2).unwrap();
    // metadata: same keys in the same order, only file_type changed
    let keys = |s: &Source| {
        s.header
            .kv
            .iter()
            .map(|(k, _)| k.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(keys(&src), keys(&dst));
    for ((k, a), (_, b)) in src.header.kv.iter().zip(&dst.header.kv) {
        if k == "general.file_type" {
            assert_eq!(b, &GgufValue::U32(7));
        } else {
            assert_eq!(a, b, "{k}");
        }
    }
    assert_eq!(dst.header.file_type(), "Q8_0");
    let kinds: Vec<u32> = dst.header.tensors.iter().map(|t| t.kind).collect();
    assert_eq!(kinds, targets);
    assert_eq!(
        tensor_bytes(&out, &dst, "output_norm.weight"),
        tensor_bytes(&bytes, &src, "output_norm.weight")
    );
    for name in ["blk.0.attn_q.weight", "token_embd.weight"] {
        let t = dst.header.tensors.iter().find(|t| t.name == name).unwrap();
        let mut want = Vec::new();
        let srck = src
            .header
            .tensors
            .iter()
            .find(|t| t.name == name)
            .unwrap()
            .kind;
        assert!(ggml::dequantize(
            srck,
            tensor_bytes(&bytes, &src, name),
            &mut want
        ));
        let mut got = Vec::new();
        assert!(ggml::dequantize(
            t.kind,
            tensor_bytes(&out, &dst, name),
            &mut got
        ));
        assert_eq!(got.len(), want.len());
        let amax = want.iter().fold(0f32, |a, v| a.max(v.abs()));
        let tol = if t.kind == kind::Q8_0 {
            amax / 127.0
        } else {
            amax * 1e-3
        };
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() <= tol, "{name}: {g} vs {w}");
        }
    }
}

#[test]
fn missing_keys_are_appended_and_unknown_types_are_named() {
    let bytes = build(
        &[("general.architecture", GgufValue::String("llama".into()))],
        &[("blk.0.ffn_up.weight", kind::Q8_0, vec![32], vec![0; 34])],
    );
    let (_d, p) = to_file(&bytes);
    let src = Source::scan(&p).unwrap();
    let mut out = Vec::new();
    let mut f = File::open(&p).unwrap();
    rewrite(
        &mut f,
        &src,
        &[kind::Q8_0],
        &[("general.file_type", GgufValue::U32(7))],
        &mut out,
        &mut |_| {},
    )
    .unwrap();
    let g = GgufFile::read(&out[..], None).unwrap();
    assert_eq!(g.file_type(), "Q8_0");
    // IQ2_XXS (16) is not something this crate can read
    let iq = build(&[], &[("x", kind::Q8_0, vec![32], vec![0; 34])]);
    let (_d3, p3) = to_file(&iq);
    let mut src = Source::scan(&p3).unwrap();
    src.header.tensors[0].kind = 16;
    let mut f = File::open(&p3).unwrap();
    let err = rewrite(
        &mut f,
        &src,
        &[kind::Q8_0],
        &[],
        &mut Vec::new(),
        &mut |_| {},
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("\"x\"") && err.contains("IQ2_XXS"), "{err}");
}
