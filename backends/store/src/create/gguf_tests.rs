//! GGUF create conversions: import of K-quant GGUFs as Q8_0, `quantize` of float GGUFs, the
//! refusals, and the statuses/metadata a create through `StoreBackend` reports.

use ollmlx_infer::Backend;
use ollmlx_wire::ollama::ShowRequest;
use serde_json::json;

use super::*;
use crate::gguf::rewrite::{encode_kv, write_header, OutTensor};
use crate::gguf::{string_array, GgufFile};
use crate::quantize::FloatType;
use crate::testutil::Fixture;

/// A GGUF with real tensor data.
fn build(file_type: u32, tensors: &[(&str, u32, Vec<u64>, Vec<u8>)]) -> Vec<u8> {
    let kv = [
        ("general.architecture", GgufValue::String("llama".into())),
        ("general.file_type", GgufValue::U32(file_type)),
        ("llama.context_length", GgufValue::U32(512)),
        ("llama.embedding_length", GgufValue::U32(256)),
        ("tokenizer.ggml.model", GgufValue::String("gpt2".into())),
        ("tokenizer.ggml.tokens", string_array(&["a", "b"])),
    ];
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
    write_header(&mut buf, &kvs, &out, 32).unwrap();
    for (i, (_, _, _, d)) in tensors.iter().enumerate() {
        buf.extend_from_slice(d);
        if i + 1 < tensors.len() {
            buf.resize(buf.len().div_ceil(32) * 32, 0);
        }
    }
    buf
}

fn q6k_blocks(n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for b in 0..n {
        out.extend((0..208).map(|i| ((i * 13 + b) % 256) as u8));
        FloatType::F16.encode(0.002, &mut out);
    }
    out
}

fn f16_data(n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..n {
        FloatType::F16.encode(((i * 7919 % 1000) as f32 - 500.0) / 5000.0, &mut out);
    }
    out
}

/// Q4_K_M-style file: K-quant matrices, an F32 norm, a Q8_0 matrix MLX keeps.
fn kquant_gguf() -> Vec<u8> {
    build(
        15,
        &[
            ("token_embd.weight", kind::Q6_K, vec![256, 4], q6k_blocks(4)),
            (
                "blk.0.attn_q.weight",
                kind::Q6_K,
                vec![256, 2],
                q6k_blocks(2),
            ),
            (
                "blk.0.attn_norm.weight",
                kind::F32,
                vec![256],
                vec![0; 1024],
            ),
            ("blk.0.ffn_up.weight", kind::Q8_0, vec![32, 1], vec![1; 34]),
        ],
    )
}

/// F16 file with a separate output projection and a 1-D norm.
fn f16_gguf() -> Vec<u8> {
    build(
        1,
        &[
            ("token_embd.weight", kind::F16, vec![64, 8], f16_data(512)),
            ("blk.0.attn_q.weight", kind::F16, vec![64, 4], f16_data(256)),
            ("blk.0.attn_norm.weight", kind::F16, vec![64], f16_data(64)),
            ("blk.0.odd.weight", kind::F16, vec![48, 2], f16_data(96)),
            ("output.weight", kind::F16, vec![64, 8], f16_data(512)),
        ],
    )
}

fn header(bytes: &[u8]) -> GgufFile {
    GgufFile::read(bytes, Some(0)).unwrap()
}

#[test]
fn k_quant_import_plans_q8_0_for_matrices_and_keeps_loadable_tensors() {
    let p = plan(&header(&kquant_gguf()), "").unwrap().unwrap();
    assert_eq!(p.targets, [kind::Q8_0, kind::Q8_0, kind::F32, kind::Q8_0]);
    assert_eq!(p.file_type, 7);
    assert_eq!(p.status, "quantizing Q4_K_M model to Q8_0");
    // -q q8_0 on a K-quant source is the same import
    assert_eq!(plan(&header(&kquant_gguf()), "Q8_0").unwrap().unwrap(), p);
    // a loadable file is stored as is
    assert_eq!(plan(&header(&f16_gguf()), "").unwrap(), None);
}

#[test]
fn unimportable_tensor_types_fail_naming_tensor_and_type() {
    // the planner only reads the header, so a nominal-data file will do
    let g = header(&crate::gguf::write_gguf(
        &[("general.file_type", GgufValue::U32(19))],
        &[("blk.3.ffn_down.weight", 16, vec![256, 1])],
    ));
    let err = plan(&g, "").unwrap_err().to_string();
    assert!(
        err.contains("tensor \"blk.3.ffn_down.weight\" has type IQ2_XXS"),
        "{err}"
    );
}

#[test]
fn quantize_q4_k_m_maps_to_q4_1_keeping_output_at_q8_0_and_norms_unquantized() {
    let p = plan(&header(&f16_gguf()), "Q4_K_M").unwrap().unwrap();
    assert_eq!(
        p.targets,
        [kind::Q4_1, kind::Q4_1, kind::F16, kind::F16, kind::Q8_0]
    );
    assert_eq!(p.file_type, 3);
    assert_eq!(p.status, "quantizing F16 model to Q4_K_M");
    let p = plan(&header(&f16_gguf()), "Q4_K_S").unwrap().unwrap();
    assert_eq!(p.targets[1], kind::Q4_0);
    let p = plan(&header(&f16_gguf()), "Q8_0").unwrap().unwrap();
    assert_eq!(p.targets[4], kind::Q8_0);
    assert_eq!(p.targets[0], kind::Q8_0);
    // same type: nothing to do (upstream skips too)
    assert_eq!(plan(&header(&f16_gguf()), "F16").unwrap(), None);
}

#[test]
fn quantize_ties_token_embedding_to_output_precision_when_there_is_no_output_weight() {
    let g = header(&build(
        1,
        &[("token_embd.weight", kind::F16, vec![64, 8], f16_data(512))],
    ));
    let p = plan(&g, "Q4_0").unwrap().unwrap();
    assert_eq!(p.targets, [kind::Q8_0]);
}

#[test]
fn quantize_refuses_quantized_sources_and_unknown_types() {
    let err = plan(&header(&kquant_gguf()), "Q4_0")
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "quantization is only supported for F16, BF16 and F32 models"
    );
    let err = plan(&header(&f16_gguf()), "Q3_K_L")
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("unsupported quantization type Q3_K_L - supported types are F32, F16, Q4_K_S, Q4_K_M, Q8_0"),
        "{err}"
    );
}

#[tokio::test]
async fn create_from_k_quant_gguf_stores_a_q8_0_blob_and_reports_it() {
    let f = Fixture::new();
    let src = kquant_gguf();
    let d = f.blob(&src);
    let out = f
        .create(json!({"model": "kq", "files": {"m.gguf": d}}))
        .await
        .unwrap();
    let statuses: Vec<&str> = out.iter().map(|p| p.status.as_str()).collect();
    assert_eq!(statuses[0], "parsing GGUF");
    assert!(
        statuses.contains(&"quantizing Q4_K_M model to Q8_0"),
        "{statuses:?}"
    );
    let q = out
        .iter()
        .find(|p| p.status.starts_with("quantizing"))
        .unwrap();
    assert_eq!(q.digest, "0000000000000000000");
    assert_eq!(q.total, src.len() as i64);
    let v = statuses
        .iter()
        .position(|s| *s == "verifying conversion")
        .unwrap();
    assert!(statuses[v + 1].starts_with("creating new layer sha256:"));
    assert_eq!(statuses.last(), Some(&"success"));

    let m = f
        .store
        .read_manifest(&crate::name::Name::parse("kq"))
        .unwrap()
        .unwrap();
    let model = &m.manifest.layers[0];
    assert_ne!(model.digest, d);
    assert_eq!(model.from, "");
    let g = GgufFile::open(&f.store.blobs().path(&model.digest).unwrap(), Some(0)).unwrap();
    assert_eq!(g.file_type(), "Q8_0");
    let kinds: Vec<u32> = g.tensors.iter().map(|t| t.kind).collect();
    assert_eq!(kinds, [kind::Q8_0, kind::Q8_0, kind::F32, kind::Q8_0]);
    let show = f
        .backend
        .show(ShowRequest {
            model: "kq".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(show.details.quantization_level, "Q8_0");
    assert_eq!(show.model_info["general.file_type"], json!(7));
    // the source blob is left alone (it is not referenced, like any upload)
    assert!(f.store.blobs().exists(&d).unwrap());
}

#[tokio::test]
async fn create_with_quantize_q4_k_m_on_f16_gguf_stores_q4_1() {
    let f = Fixture::new();
    let d = f.blob(&f16_gguf());
    let out = f
        .create(json!({"model": "q", "files": {"m.gguf": d}, "quantize": "q4_K_M"}))
        .await
        .unwrap();
    assert!(out
        .iter()
        .any(|p| p.status == "quantizing F16 model to Q4_K_M"));
    let list = f.backend.list_models().await.unwrap();
    assert_eq!(list[0].details.quantization_level, "Q4_1");
    // refused for a quantized source, mid-stream
    let d = f.blob(&kquant_gguf());
    let err = f
        .create(json!({"model": "r", "files": {"m.gguf": d}, "quantize": "q4_0"}))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("quantization is only supported for F16, BF16 and F32 models"),
        "{err}"
    );
}
