//! GGUF reader tests over synthetic files.

use super::*;
use serde_json::json;

fn sample() -> Vec<u8> {
    write_gguf(
        &[
            ("general.architecture", GgufValue::String("llama".into())),
            ("general.name", GgufValue::String("Tiny".into())),
            ("general.file_type", GgufValue::U32(15)),
            ("llama.context_length", GgufValue::U32(8192)),
            ("llama.embedding_length", GgufValue::U32(576)),
            (
                "llama.attention.layer_norm_rms_epsilon",
                GgufValue::F32(1e-5),
            ),
            (
                "tokenizer.ggml.tokens",
                string_array(&["a", "b", "c", "d", "e", "f"]),
            ),
            ("tokenizer.ggml.token_type", i32_array(&[1, 2])),
            (
                "tokenizer.chat_template",
                GgufValue::String("{{ tools }}".into()),
            ),
        ],
        &[
            ("token_embd.weight", 12, vec![576, 49152]),
            ("output_norm.weight", 0, vec![576]),
        ],
    )
}

#[test]
fn reads_kvs_tensors_and_patches_parameter_count() {
    let f = GgufFile::read(&sample()[..], None).unwrap();
    assert_eq!(f.version, 3);
    assert_eq!(f.architecture(), "llama");
    assert_eq!(f.file_type(), "Q4_K_M");
    assert_eq!(f.context_length(), 8192);
    assert_eq!(f.embedding_length(), 576);
    assert_eq!(f.parameter_count(), 576 * 49152 + 576);
    assert_eq!(f.tensors[0].type_name(), "Q4_K");
    assert_eq!(f.tensors[1].shape, vec![576]);
    assert_eq!(human_number(f.parameter_count()), "28.31M");
}

#[test]
fn model_info_is_sorted_and_drops_name_and_template() {
    let f = GgufFile::read(&sample()[..], Some(0)).unwrap();
    let mi = f.model_info();
    let keys: Vec<_> = mi.keys().cloned().collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
    assert!(!mi.contains_key("general.name"));
    assert!(!mi.contains_key("tokenizer.chat_template"));
    assert_eq!(mi["llama.attention.layer_norm_rms_epsilon"], json!(0.00001));
    // upstream decodes non-verbose show with maxArraySize 0: non-empty arrays marshal as null
    assert_eq!(mi["tokenizer.ggml.tokens"], Value::Null);
    assert_eq!(mi["tokenizer.ggml.token_type"], Value::Null);
    let verbose = GgufFile::read(&sample()[..], None).unwrap().model_info();
    assert_eq!(
        verbose["tokenizer.ggml.tokens"],
        json!(["a", "b", "c", "d", "e", "f"])
    );
    assert_eq!(verbose["general.parameter_count"], json!(576 * 49152 + 576));
}

#[test]
fn big_endian_and_v2_files_are_read() {
    // v2 big-endian: one u32 KV, no tensors
    let mut b = Vec::new();
    b.extend_from_slice(b"GGUF"); // magic as bytes; read LE it is MAGIC_LE, so flip manually
    let mut be = Vec::new();
    be.extend_from_slice(&MAGIC_BE.to_le_bytes());
    be.extend_from_slice(&2u32.to_be_bytes());
    be.extend_from_slice(&0u64.to_be_bytes());
    be.extend_from_slice(&1u64.to_be_bytes());
    be.extend_from_slice(&1u64.to_be_bytes());
    be.extend_from_slice(b"k");
    be.extend_from_slice(&TYPE_U32.to_be_bytes());
    be.extend_from_slice(&7u32.to_be_bytes());
    let f = GgufFile::read(&be[..], None).unwrap();
    assert_eq!(f.get("k"), Some(&GgufValue::U32(7)));
    assert!(GgufFile::is_gguf(&b));
}

#[test]
fn rejects_garbage_and_truncation() {
    assert!(matches!(
        GgufFile::read(&b"NOPE...."[..], None),
        Err(GgufError::BadMagic)
    ));
    let s = sample();
    assert!(GgufFile::read(&s[..40], None).is_err());
    let mut huge = Vec::new();
    huge.extend_from_slice(b"GGUF");
    huge.extend_from_slice(&3u32.to_le_bytes());
    huge.extend_from_slice(&0u64.to_le_bytes());
    huge.extend_from_slice(&1u64.to_le_bytes());
    huge.extend_from_slice(&(MAX_STRING_LENGTH + 1).to_le_bytes());
    let e = GgufFile::read(&huge[..], None).unwrap_err();
    assert!(e.to_string().contains("exceeds maximum"), "{e}");
}

#[test]
fn human_number_matches_upstream_format() {
    for (n, want) in [
        (0, "0"),
        (999, "999"),
        (1_000, "1K"),
        (134_515_008, "134.52M"),
        (135_000_000, "135M"),
        (7_615_616_512, "7.6B"),
        (8_000_000_000, "8B"),
    ] {
        assert_eq!(human_number(n), want, "{n}");
    }
}

#[test]
fn type_names_match_upstream_tables() {
    assert_eq!(file_type_name(0), "F32");
    assert_eq!(file_type_name(3), "Q4_1");
    assert_eq!(file_type_name(4), "unknown");
    assert_eq!(file_type_name(32), "BF16");
    assert_eq!(tensor_type_name(30), "BF16");
    assert_eq!(tensor_type_name(39), "MXFP4");
    assert_eq!(tensor_type_name(999), "unknown");
}

#[test]
fn u8_arrays_marshal_as_base64_like_go() {
    let v = GgufValue::Array {
        elem_type: TYPE_U8,
        len: 3,
        values: Some(vec![GgufValue::U8(1), GgufValue::U8(2), GgufValue::U8(3)]),
    };
    assert_eq!(v.to_json(), json!("AQID"));
}
