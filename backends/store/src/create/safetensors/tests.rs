//! Safetensors/MLX create: manifest shape, statuses, quantization, rejected inputs.

use ollmlx_infer::Backend;
use ollmlx_wire::ollama as wire;
use serde_json::{json, Value};

use crate::manifest::*;
use crate::quantize::FloatType;
use crate::safetensors::{encode_header, parse_header};
use crate::testutil::Fixture;
use crate::Name;

fn f16(v: &[f32]) -> Vec<u8> {
    let mut out = Vec::new();
    for &x in v {
        FloatType::F16.encode(x, &mut out);
    }
    out
}

fn safetensors(tensors: &[(&str, &str, Vec<u64>, Vec<u8>)]) -> Vec<u8> {
    let plan: Vec<_> = tensors
        .iter()
        .map(|(n, d, s, b)| (n.to_string(), d.to_string(), s.clone(), b.len() as u64))
        .collect();
    let mut out = encode_header(&plan, &serde_json::Map::new());
    for t in tensors {
        out.extend_from_slice(&t.3);
    }
    out
}

/// A tiny F16 llama: one attention projection, a norm and an embedding table.
fn tiny_weights() -> Vec<u8> {
    let w: Vec<f32> = (0..4 * 64)
        .map(|i| ((i * 37 % 101) as f32 - 50.0) / 50.0)
        .collect();
    safetensors(&[
        (
            "model.layers.0.self_attn.q_proj.weight",
            "F16",
            vec![4, 64],
            f16(&w),
        ),
        ("model.norm.weight", "F16", vec![64], f16(&[1.0; 64])),
        (
            "model.embed_tokens.weight",
            "F16",
            vec![8, 64],
            f16(&[0.5; 8 * 64]),
        ),
    ])
}

fn llama_config() -> Value {
    json!({"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 64,
           "num_hidden_layers": 1, "num_attention_heads": 4, "vocab_size": 8,
           "max_position_embeddings": 2048, "torch_dtype": "float16"})
}

fn upload(f: &Fixture, config: &Value, weights: &[u8]) -> Value {
    json!({
        "config.json": f.blob(config.to_string().as_bytes()),
        "model.safetensors": f.blob(weights),
        "tokenizer.json": f.blob(br#"{"model":{}}"#),
        "tokenizer_config.json": f.blob(br#"{"chat_template":"{% if tools %}x{% endif %}"}"#),
        "README.md": f.blob(b"ignored"),
    })
}

fn show_req(m: &str) -> wire::ShowRequest {
    serde_json::from_value(json!({"model": m})).unwrap()
}

#[tokio::test]
async fn create_from_safetensors_writes_an_mlx_manifest() {
    let f = Fixture::new();
    let files = upload(&f, &llama_config(), &tiny_weights());
    let ps = f
        .create(json!({"model": "tiny-mlx", "files": files}))
        .await
        .unwrap();
    let s: Vec<_> = ps.iter().map(|p| p.status.as_str()).collect();
    assert_eq!(s[0], "converting model");
    assert!(
        s[1..5]
            .iter()
            .all(|x| x.starts_with("using existing layer sha256:")),
        "{s:?}"
    );
    assert_eq!(&s[5..], ["writing manifest", "success"]);

    let m = f
        .store
        .read_manifest(&Name::parse("tiny-mlx"))
        .unwrap()
        .unwrap();
    let layers: Vec<_> = m
        .manifest
        .layers
        .iter()
        .map(|l| (l.media_type.as_str(), l.name.as_str()))
        .collect();
    assert_eq!(
        layers,
        [
            (MEDIA_TYPE_TENSOR, "model.safetensors"),
            (MEDIA_TYPE_JSON, "config.json"),
            (MEDIA_TYPE_JSON, "tokenizer.json"),
            (MEDIA_TYPE_JSON, "tokenizer_config.json"),
        ]
    );
    let cfg = f.store.read_config(&m.manifest).unwrap();
    assert_eq!(cfg.model_format, "safetensors");
    assert_eq!(cfg.model_family, "llama");
    assert_eq!(cfg.file_type, "F16");
    assert_eq!(cfg.requires, "0.19.0");
    assert_eq!(cfg.capabilities, ["completion", "tools"]);

    let r = f.backend.show(show_req("tiny-mlx")).await.unwrap();
    assert_eq!(r.details.format, "safetensors");
    assert_eq!(r.details.quantization_level, "F16");
    assert_eq!(
        r.model_info["general.parameter_count"],
        json!(4 * 64 + 64 + 8 * 64)
    );
}

#[tokio::test]
async fn quantize_q4_k_m_packs_linear_weights_and_show_reports_int4() {
    let f = Fixture::new();
    let files = upload(&f, &llama_config(), &tiny_weights());
    let ps = f
        .create(json!({"model": "tiny-q4", "files": files, "quantize": "q4_K_M"}))
        .await
        .unwrap();
    let q: Vec<_> = ps
        .iter()
        .filter(|p| p.status == "quantizing F16 model to Q4_K_M")
        .collect();
    assert!(!q.is_empty(), "{ps:?}");
    let last = q.last().unwrap();
    assert_eq!(last.digest, "0000000000000000000");
    assert_eq!(last.completed, last.total);
    assert!(ps
        .iter()
        .any(|p| p.status.starts_with("creating new layer")));

    let m = f
        .store
        .read_manifest(&Name::parse("tiny-q4"))
        .unwrap()
        .unwrap();
    let tensor = m
        .manifest
        .layers
        .iter()
        .find(|l| l.media_type == MEDIA_TYPE_TENSOR)
        .unwrap();
    assert_eq!(tensor.name, "model.safetensors");
    let h = parse_header(&f.store.blobs().path(&tensor.digest).unwrap()).unwrap();
    let find = |n: &str| h.tensors.iter().find(|t| t.name == n).unwrap();
    let w = find("model.layers.0.self_attn.q_proj.weight");
    assert_eq!((w.dtype.as_str(), w.shape.clone()), ("U32", vec![4, 8]));
    assert_eq!(find("model.layers.0.self_attn.q_proj.scales").shape, [4, 1]);
    assert_eq!(find("model.embed_tokens.weight").dtype, "F16");

    let cfg_layer = m
        .manifest
        .layers
        .iter()
        .find(|l| l.name == "config.json")
        .unwrap();
    let c: Value =
        serde_json::from_slice(&f.store.blobs().read(&cfg_layer.digest).unwrap()).unwrap();
    assert_eq!(c["quantization"], json!({"group_size": 64, "bits": 4}));

    let r = f.backend.show(show_req("tiny-q4")).await.unwrap();
    assert_eq!(r.details.quantization_level, "int4");
    assert_eq!(r.details.format, "safetensors");
}

#[tokio::test]
async fn quantizing_an_already_quantized_model_is_refused() {
    let f = Fixture::new();
    let mut cfg = llama_config();
    cfg["quantization"] = json!({"group_size": 64, "bits": 4});
    let w = safetensors(&[("a.weight", "U32", vec![4, 8], vec![0; 128])]);
    let e = f
        .create(json!({"model": "x", "files": upload(&f, &cfg, &w), "quantize": "q8_0"}))
        .await
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "quantization is only supported for F16, BF16 and F32 models"
    );
}

#[tokio::test]
async fn unsupported_architecture_is_named_at_create() {
    let f = Fixture::new();
    let cfg = json!({"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2"});
    let e = f
        .create(json!({"model": "x", "files": upload(&f, &cfg, &tiny_weights())}))
        .await
        .unwrap_err();
    assert_eq!(e.status(), 400);
    assert!(
        e.to_string().starts_with(
            "unsupported architecture \"GPT2LMHeadModel\" (model_type \"gpt2\"): the MLX engine runs llama, mistral"
        ),
        "{e}"
    );
    // model_type alone is enough; qwen3_moe matches Qwen3MoeForCausalLM
    for ok in [
        json!({"model_type": "qwen3"}),
        json!({"architectures": ["Qwen3MoeForCausalLM"]}),
    ] {
        assert!(super::check_architecture(&ok).is_ok(), "{ok}");
    }
}

#[tokio::test]
async fn corrupt_safetensors_are_rejected_at_create() {
    let f = Fixture::new();
    let good = tiny_weights();
    let mut too_long = good.clone();
    too_long[..8].copy_from_slice(&(1u64 << 40).to_le_bytes());
    let truncated = good[..good.len() - 10].to_vec();
    let mut bad_json = 6u64.to_le_bytes().to_vec();
    bad_json.extend_from_slice(b"{nope}");
    let cases: [(&[u8], &str); 4] = [
        (
            &too_long,
            "header length 1099511627776 exceeds the file size",
        ),
        (&truncated, "extend beyond the file"),
        (&bad_json, "header is not a JSON object"),
        (b"abc", "too short for a header"),
    ];
    for (bytes, want) in cases {
        let e = f
            .create(json!({"model": "x", "files": upload(&f, &llama_config(), bytes)}))
            .await
            .unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.starts_with("invalid safetensors file \"model.safetensors\": "),
            "{msg}"
        );
        assert!(msg.contains(want), "{msg} / {want}");
        assert_eq!(e.status(), 400);
    }
    assert!(f.store.read_manifest(&Name::parse("x")).unwrap().is_none());
}

#[tokio::test]
async fn missing_config_json_is_a_clear_error() {
    let f = Fixture::new();
    let e = f
        .create(json!({"model": "x", "files": {"model.safetensors": f.blob(&tiny_weights())}}))
        .await
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "config.json is required to import a safetensors model"
    );
}
