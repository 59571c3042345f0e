//! Unit tests of the memory budget: estimates from synthetic headers and the eviction decision.

use super::*;
use std::io::Write;
use std::time::Duration;

const CPU: LoadOptions = LoadOptions {
    compute_dtype: Dtype::Float32,
    dequantize: true,
    transpose_dense: false,
};
const GPU: LoadOptions = LoadOptions {
    compute_dtype: Dtype::Bfloat16,
    dequantize: false,
    transpose_dense: false,
};

#[test]
fn human_bytes2_matches_ollamas_binary_units_with_one_decimal() {
    assert_eq!(human_bytes2(512), "512 B");
    assert_eq!(human_bytes2(1536), "1.5 KiB");
    assert_eq!(human_bytes2(100 << 20), "100.0 MiB");
    assert_eq!(human_bytes2(3 * (1 << 30) + (1 << 29)), "3.5 GiB");
}

#[test]
fn too_large_error_uses_ollamas_wording() {
    let e = plan(3 << 30, 1 << 30, 4, &[]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "model requires more system memory (3.0 GiB) than is available (1.0 GiB)"
    );
}

#[test]
fn parse_bytes_accepts_plain_decimal_and_binary_units() {
    assert_eq!(parse_bytes("1234"), Some(1234));
    assert_eq!(parse_bytes("8GiB"), Some(8 << 30));
    assert_eq!(parse_bytes("512 MiB"), Some(512 << 20));
    assert_eq!(parse_bytes("2gb"), Some(2_000_000_000));
    assert_eq!(parse_bytes("1.5G"), Some(1_500_000_000));
    assert_eq!(parse_bytes("lots"), None);
    assert_eq!(parse_bytes("5 parsecs"), None);
}

#[test]
fn meminfo_total_is_read_in_bytes() {
    let s = "MemTotal:        8000000 kB\nMemFree:  100 kB\n";
    assert_eq!(parse_meminfo(s), Some(8_000_000 * 1024));
    assert_eq!(parse_meminfo("nothing"), None);
}

#[test]
fn cpu_policy_counts_dequantized_float32_and_gpu_keeps_packed_weights() {
    let t = [
        TensorSize {
            elements: 1024 * 1024,
            storage: Storage::GgufQuant { bits: 4 },
        },
        TensorSize {
            elements: 1000,
            storage: Storage::Float,
        },
    ];
    // CPU: everything becomes float32.
    assert_eq!(weight_bytes(&t, CPU, 32), (1024 * 1024 + 1000) * 4);
    // GPU: 4 bits per value + bf16 scale and bias per group of 32, floats in bf16.
    let packed = 1024 * 1024 / 2 + 2 * (1024 * 1024 / 32) * 2;
    assert_eq!(weight_bytes(&t, GPU, 32), packed + 1000 * 2);
    // CPU with the transposed layout: the same MLX weights, plus the packed twin the BLAS
    // shim keeps outside MLX (half a byte per 4-bit value, float32 scale and bias per group
    // of 32).
    let cpu_t = LoadOptions {
        transpose_dense: true,
        ..CPU
    };
    assert_eq!(weight_bytes(&t, cpu_t, 32), (1024 * 1024 + 1000) * 4);
    let twin = 1024 * 1024 / 2 + 2 * (1024 * 1024 / 32) * 4;
    assert_eq!(twin_bytes(&t, cpu_t, 32), twin);
    assert_eq!(twin_bytes(&t, CPU, 32), 0);
    assert_eq!(twin_bytes(&t, GPU, 32), 0);
}

#[test]
fn safetensors_packed_weights_unpack_to_scales_times_group() {
    let mut h = HashMap::new();
    // 8-bit, group 64: a [256, 512] weight is [256, 128] u32, scales/biases [256, 8].
    h.insert("l.weight".to_string(), ("U32".to_string(), 256 * 128));
    h.insert("l.scales".to_string(), ("BF16".to_string(), 256 * 8));
    h.insert("l.biases".to_string(), ("BF16".to_string(), 256 * 8));
    h.insert("norm.weight".to_string(), ("BF16".to_string(), 512));
    let sizes = safetensors_sizes(&h, 64);
    assert_eq!(weight_bytes(&sizes, CPU, 64), (256 * 512 + 512) * 4);
    assert_eq!(
        weight_bytes(&sizes, GPU, 64),
        256 * 128 * 4 + 2 * 256 * 8 * 2 + 512 * 2
    );
}

#[test]
fn kv_cache_is_layers_heads_dim_two_dtype_ctx_parallel() {
    // SmolLM2-135M: 30 layers, 3 KV heads of 64.
    let s = KvShape {
        layers: 30,
        kv_heads: 3,
        head_dim: 64,
    };
    assert_eq!(
        kv_bytes(s, 4096, 1, Dtype::Float32),
        30 * 3 * 64 * 2 * 4 * 4096
    );
    assert_eq!(
        kv_bytes(s, 4096, 4, Dtype::Float32),
        4 * kv_bytes(s, 4096, 1, Dtype::Float32)
    );
    assert_eq!(
        kv_bytes(s, 2048, 0, Dtype::Bfloat16),
        30 * 3 * 64 * 2 * 2 * 2048
    );
}

fn cand(name: &str, gib: u64, age_s: u64, busy: bool) -> Candidate {
    Candidate {
        name: name.into(),
        bytes: gib << 30,
        last_used: Instant::now() - Duration::from_secs(age_s),
        busy,
    }
}

#[test]
fn fitting_model_evicts_nothing() {
    let r = [cand("a", 2, 10, false)];
    assert_eq!(plan(2 << 30, 8 << 30, 3, &r).unwrap(), Vec::<String>::new());
}

#[test]
fn idle_models_are_evicted_least_recently_used_first_until_it_fits() {
    let r = [
        cand("new", 2, 1, false),
        cand("old", 2, 100, false),
        cand("mid", 2, 50, false),
    ];
    // 6 GiB used of 8; 4 GiB needed → evict one (the oldest).
    assert_eq!(plan(4 << 30, 8 << 30, 9, &r).unwrap(), vec!["old"]);
    // 6 GiB needed → two go, oldest first.
    assert_eq!(plan(6 << 30, 8 << 30, 9, &r).unwrap(), vec!["old", "mid"]);
}

#[test]
fn max_loaded_caps_the_count_even_when_memory_fits() {
    let r = [cand("a", 1, 5, false), cand("b", 1, 9, false)];
    assert_eq!(plan(1 << 30, 100 << 30, 2, &r).unwrap(), vec!["b"]);
    assert_eq!(plan(1 << 30, 100 << 30, 1, &r).unwrap(), vec!["b", "a"]);
}

#[test]
fn too_large_refuses_without_evicting_and_busy_models_are_kept() {
    let r = [cand("a", 1, 5, false)];
    assert!(matches!(
        plan(9 << 30, 8 << 30, 4, &r),
        Err(BudgetError::TooLarge { .. })
    ));
    let r = [cand("busy", 6, 500, true), cand("idle", 1, 1, false)];
    let e = plan(4 << 30, 8 << 30, 4, &r).unwrap_err();
    assert_eq!(
        e,
        BudgetError::Busy {
            required: 4 << 30,
            free: 2 << 30
        }
    );
}

/// Write a GGUF v3 header with the given integer keys and tensors (no tensor data needed).
fn write_gguf(path: &Path, arch: &str, ints: &[(&str, u32)], tensors: &[(&str, &[u64], u32)]) {
    let mut b: Vec<u8> = b"GGUF".to_vec();
    let s = |b: &mut Vec<u8>, x: &str| {
        b.extend((x.len() as u64).to_le_bytes());
        b.extend(x.as_bytes());
    };
    b.extend(3u32.to_le_bytes());
    b.extend((tensors.len() as u64).to_le_bytes());
    b.extend((ints.len() as u64 + 2).to_le_bytes());
    s(&mut b, "general.architecture");
    b.extend(8u32.to_le_bytes());
    s(&mut b, arch);
    // A string array (like the vocabulary) that must be skipped.
    s(&mut b, "tokenizer.ggml.tokens");
    b.extend(9u32.to_le_bytes());
    b.extend(8u32.to_le_bytes());
    b.extend(3u64.to_le_bytes());
    for t in ["a", "bb", "<s>"] {
        s(&mut b, t);
    }
    for (k, v) in ints {
        s(&mut b, &format!("{arch}.{k}"));
        b.extend(4u32.to_le_bytes());
        b.extend(v.to_le_bytes());
    }
    for (name, dims, ty) in tensors {
        s(&mut b, name);
        b.extend((dims.len() as u32).to_le_bytes());
        for d in *dims {
            b.extend(d.to_le_bytes());
        }
        b.extend(ty.to_le_bytes());
        b.extend(0u64.to_le_bytes());
    }
    std::fs::write(path, b).unwrap();
}

#[test]
fn gguf_headers_give_weights_and_kv_shape_without_reading_data() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("m.gguf");
    write_gguf(
        &p,
        "llama",
        &[
            ("block_count", 2),
            ("attention.head_count", 8),
            ("attention.head_count_kv", 2),
            ("embedding_length", 256),
        ],
        &[
            ("token_embd.weight", &[256, 1000], 3), // Q4_1
            ("blk.0.attn_norm.weight", &[256], 0),  // F32
        ],
    );
    let f = estimate(&p, CPU, 1024, 2).unwrap();
    assert_eq!(f.weights, (256 * 1000 + 256) * 4);
    // 2 layers × 2 kv heads × head_dim 32 × 2 × f32 × 1024 ctx × 2 parallel.
    assert_eq!(f.kv, 2 * 2 * 32 * 2 * 4 * 1024 * 2);
    assert_eq!(f.overhead, overhead(f.weights));
    assert_eq!(f.total(), f.weights + f.packed + f.kv + f.overhead);

    let g = estimate(&p, GPU, 1024, 1).unwrap();
    assert_eq!(
        g.weights,
        256 * 1000 / 2 + 2 * (256 * 1000 / 32) * 2 + 256 * 2
    );
}

#[test]
fn unreadable_or_foreign_files_are_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x.gguf");
    std::fs::write(&p, b"not a gguf at all").unwrap();
    let e = estimate(&p, CPU, 10, 1).unwrap_err();
    assert!(e.to_string().contains("not a GGUF file"), "{e}");
    let e = estimate(&dir.path().join("missing.gguf"), CPU, 10, 1).unwrap_err();
    assert!(matches!(e, BudgetError::Read { .. }));
    // Truncated header.
    std::fs::write(&p, b"GGUF\x03\x00\x00\x00\x05").unwrap();
    assert!(estimate(&p, CPU, 10, 1).is_err());
}

#[test]
fn safetensors_directory_uses_config_for_kv_and_encoders_have_none() {
    let dir = tempfile::tempdir().unwrap();
    let header = serde_json::json!({
        "__metadata__": {"format": "pt"},
        "embed.weight": {"dtype": "BF16", "shape": [100, 64], "data_offsets": [0, 12800]},
    })
    .to_string();
    let mut f = std::fs::File::create(dir.path().join("model.safetensors")).unwrap();
    f.write_all(&(header.len() as u64).to_le_bytes()).unwrap();
    f.write_all(header.as_bytes()).unwrap();
    std::fs::write(
        dir.path().join("config.json"),
        r#"{"model_type":"llama","num_hidden_layers":4,"num_attention_heads":4,"hidden_size":64}"#,
    )
    .unwrap();
    let e = estimate(dir.path(), CPU, 100, 1).unwrap();
    assert_eq!(e.weights, 100 * 64 * 4);
    assert_eq!(e.kv, 4 * 4 * 16 * 2 * 4 * 100);
    std::fs::write(
        dir.path().join("config.json"),
        r#"{"architectures":["BertModel"],"num_hidden_layers":6,"num_attention_heads":12,"hidden_size":384}"#,
    )
    .unwrap();
    assert_eq!(estimate(dir.path(), CPU, 100, 1).unwrap().kv, 0);
}
