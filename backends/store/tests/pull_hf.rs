//! Pull from the Hugging Face Hub (and library names resolved to it), against a local fake Hub
//! and CDN.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use common::*;
use ollmlx_infer::Backend;
use ollmlx_store::pull::{plan, PullConfig, PullPlan, PullSource};
use ollmlx_store::{Name, Store, StoreBackend};
use serde_json::{json, Value};

/// A file of a fake repo.
#[derive(Clone)]
struct File {
    name: String,
    data: Vec<u8>,
    lfs: bool,
}

#[derive(Default)]
struct Hub {
    repos: HashMap<String, Vec<File>>,
    /// What the CDN serves for an LFS sha (defaults to the real data).
    cdn_override: HashMap<String, Vec<u8>>,
    cdn: String,
}

fn hex(d: &[u8]) -> String {
    sha(d)[7..].to_string()
}

fn hub_handler(st: Arc<Mutex<Hub>>) -> Handler {
    Arc::new(move |s: &Seen| {
        let st = st.lock().unwrap();
        if let Some(rest) = s.uri.strip_prefix("/api/models/") {
            let repo = rest.split("/revision/").next().unwrap_or("");
            if repo == "u/gated" {
                return Reply::status(401, r#"{"error":"Access to model u/gated is restricted."}"#);
            }
            if repo == "u/garbage" {
                return Reply::ok("<html>not json");
            }
            let Some(files) = st.repos.get(repo) else {
                return Reply::status(404, r#"{"error":"Repository not found"}"#);
            };
            let siblings: Vec<Value> = files
                .iter()
                .map(|f| {
                    let mut v = json!({"rfilename": f.name, "size": f.data.len()});
                    if f.lfs {
                        v["lfs"] = json!({"sha256": hex(&f.data), "size": f.data.len()});
                    }
                    v
                })
                .collect();
            return Reply::ok(
                json!({"id": repo, "sha": "0123abcd", "siblings": siblings}).to_string(),
            );
        }
        if let Some(rest) = s.uri.strip_prefix("/api/resolve-cache/") {
            let (repo, file) = rest.rsplit_once('/').unwrap();
            let f = st.repos[repo].iter().find(|f| f.name == file).unwrap();
            return Reply::ok(f.data.clone());
        }
        if let Some((repo, file)) = s.uri[1..].split_once("/resolve/0123abcd/") {
            let Some(f) = st
                .repos
                .get(repo)
                .and_then(|fs| fs.iter().find(|f| f.name == file))
            else {
                return Reply::status(404, "");
            };
            if f.lfs {
                return Reply::redirect(
                    302,
                    &format!("{}/lfs/{}?X-Amz-Signature=s", st.cdn, hex(&f.data)),
                );
            }
            if f.name == "tokenizer.json" {
                // the Hub answers some small files with a relative redirect
                return Reply::redirect(307, &format!("/api/resolve-cache/{repo}/{file}"));
            }
            return Reply::ok(f.data.clone());
        }
        Reply::status(404, "")
    })
}

fn cdn_handler(st: Arc<Mutex<Hub>>) -> Handler {
    Arc::new(move |s: &Seen| {
        let st = st.lock().unwrap();
        let sha_hex = s
            .uri
            .trim_start_matches("/lfs/")
            .split('?')
            .next()
            .unwrap_or("");
        if let Some(d) = st.cdn_override.get(sha_hex) {
            return ranged(s, d);
        }
        for files in st.repos.values() {
            if let Some(f) = files.iter().find(|f| f.lfs && hex(&f.data) == sha_hex) {
                return ranged(s, &f.data);
            }
        }
        Reply::status(404, "")
    })
}

/// A safetensors file with an MLX-style 4-bit quantized weight (U32 packed + scales/biases).
fn safetensors() -> Vec<u8> {
    let header = json!({
        "__metadata__": {"format": "mlx"},
        "model.embed_tokens.weight": {"dtype": "U32", "shape": [64, 8], "data_offsets": [0, 2048]},
        "model.embed_tokens.scales": {"dtype": "F16", "shape": [64, 1], "data_offsets": [2048, 2176]},
        "model.embed_tokens.biases": {"dtype": "F16", "shape": [64, 1], "data_offsets": [2176, 2304]},
        "model.norm.weight": {"dtype": "F16", "shape": [64], "data_offsets": [2304, 2432]}
    })
    .to_string()
    .into_bytes();
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&header);
    out.extend(data(2432, 5));
    out
}

fn mlx_repo() -> Vec<File> {
    let f = |name: &str, data: Vec<u8>, lfs: bool| File {
        name: name.into(),
        data,
        lfs,
    };
    vec![
        f(
            ".gitattributes",
            b"*.safetensors filter=lfs".to_vec(),
            false,
        ),
        f("README.md", b"# model".to_vec(), false),
        f(
            "config.json",
            json!({"architectures": ["LlamaForCausalLM"], "model_type": "llama",
                "hidden_size": 64, "num_hidden_layers": 1, "max_position_embeddings": 2048,
                "quantization": {"group_size": 64, "bits": 4}})
            .to_string()
            .into_bytes(),
            false,
        ),
        f("model.safetensors", safetensors(), true),
        f(
            "tokenizer.json",
            br#"{"model":{"type":"BPE"}}"#.to_vec(),
            false,
        ),
        f(
            "tokenizer_config.json",
            json!({"chat_template": "{% if tools %}{{ tools }}{% endif %}{{ messages }}"})
                .to_string()
                .into_bytes(),
            false,
        ),
    ]
}

/// Minimal GGUF v3: no tensors, `general.architecture` and `general.file_type`.
fn gguf(file_type: u32) -> Vec<u8> {
    let mut b = b"GGUF".to_vec();
    b.extend(3u32.to_le_bytes());
    b.extend(0u64.to_le_bytes());
    b.extend(2u64.to_le_bytes());
    let key = |b: &mut Vec<u8>, k: &str| {
        b.extend((k.len() as u64).to_le_bytes());
        b.extend(k.as_bytes());
    };
    key(&mut b, "general.architecture");
    b.extend(8u32.to_le_bytes());
    b.extend(5u64.to_le_bytes());
    b.extend(b"llama");
    key(&mut b, "general.file_type");
    b.extend(4u32.to_le_bytes());
    b.extend(file_type.to_le_bytes());
    b
}

struct World {
    hub: Fake,
    cdn: Fake,
    st: Arc<Mutex<Hub>>,
    dir: tempfile::TempDir,
    store: Store,
}

impl World {
    async fn new() -> World {
        let st: Arc<Mutex<Hub>> = Arc::default();
        let hub = serve(hub_handler(st.clone())).await;
        let cdn = serve(cdn_handler(st.clone())).await;
        {
            let mut h = st.lock().unwrap();
            h.cdn = cdn.url();
            h.repos.insert("u/mlx".into(), mlx_repo());
            h.repos
                .insert("mlx-community/Qwen3-0.6B-4bit".into(), mlx_repo());
            let f = |name: &str, data: Vec<u8>| File {
                name: name.into(),
                data,
                lfs: true,
            };
            h.repos.insert(
                "u/gguf".into(),
                vec![
                    f("m-Q8_0.gguf", gguf(7)),
                    f("m-Q4_K_M.gguf", gguf(15)),
                    f("mmproj-m-f16.gguf", data(300, 2)),
                ],
            );
        }
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        World {
            hub,
            cdn,
            st,
            dir,
            store,
        }
    }

    fn cfg(&self) -> PullConfig {
        PullConfig {
            hf_endpoint: self.hub.url(),
            hf_token: Some("hf_secret".into()),
            ..cfg()
        }
    }

    async fn pull(&self, model: &str) -> Outcome {
        pull(&self.store, model, false, self.cfg()).await
    }

    fn manifest(&self, rel: &str) -> Value {
        let p = self.dir.path().join("manifests").join(rel);
        serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
    }
}

#[tokio::test]
async fn hf_mlx_pull_stores_tensor_and_json_layers_and_lists_like_any_model() {
    let w = World::new().await;
    let out = w.pull("hf.co/u/mlx").await;
    assert!(out.error.is_none(), "{:?}", out.error);
    let files = mlx_repo();
    let by = |n: &str| files.iter().find(|f| f.name == n).unwrap().data.clone();
    let st = |n: &str| format!("pulling {}", &hex(&by(n))[..12]);
    assert_eq!(
        out.statuses(),
        vec![
            "pulling manifest".to_string(),
            st("model.safetensors"),
            st("config.json"),
            st("tokenizer.json"),
            st("tokenizer_config.json"),
            "verifying sha256 digest".into(),
            "writing manifest".into(),
            "success".into(),
        ]
    );
    let last = out.of(&st("model.safetensors")).into_iter().last().unwrap();
    assert_eq!(last.digest, sha(&by("model.safetensors")));
    assert_eq!(last.completed, last.total);

    let m = w.manifest("hf.co/u/mlx/latest");
    let layers: Vec<(String, String, String)> = m["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["mediaType"].as_str().unwrap().to_string(),
                l["name"].as_str().unwrap().to_string(),
                l["digest"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        layers,
        vec![
            (
                "application/vnd.ollama.image.tensor".into(),
                "model.safetensors".into(),
                sha(&by("model.safetensors"))
            ),
            (
                "application/vnd.ollama.image.json".into(),
                "config.json".into(),
                sha(&by("config.json"))
            ),
            (
                "application/vnd.ollama.image.json".into(),
                "tokenizer.json".into(),
                sha(&by("tokenizer.json"))
            ),
            (
                "application/vnd.ollama.image.json".into(),
                "tokenizer_config.json".into(),
                sha(&by("tokenizer_config.json"))
            ),
        ]
    );

    let backend = StoreBackend::new(w.store.clone());
    let list = backend.list_models().await.unwrap();
    assert_eq!(list[0].name, "hf.co/u/mlx:latest");
    assert_eq!(list[0].details.format, "safetensors");
    assert_eq!(list[0].details.family, "llama");
    assert_eq!(list[0].details.quantization_level, "int4");
    // 64x8 U32 at 4 bits = 4096 weights, + 64 norm
    assert_eq!(list[0].details.parameter_size, "4K");
    assert_eq!(list[0].capabilities, ["completion", "tools"]);
    let r = backend.resolve("hf.co/u/mlx").await.unwrap().unwrap();
    assert_eq!(r.format, "safetensors");
    assert_eq!(r.tensor_files[0].0, "model.safetensors");
    assert!(r
        .config_files
        .iter()
        .any(|(n, _)| n == "tokenizer_config.json"));

    // the listing is pinned, the token goes to the Hub only
    let hub_seen = w.hub.seen();
    assert!(hub_seen[0]
        .uri
        .starts_with("/api/models/u/mlx/revision/main?blobs=true"));
    assert!(hub_seen
        .iter()
        .all(|s| s.auth.as_deref() == Some("Bearer hf_secret")));
    assert!(hub_seen
        .iter()
        .filter(|s| s.uri.contains("/resolve/"))
        .all(|s| s.uri.contains("/resolve/0123abcd/")));
    assert!(!w.cdn.seen().is_empty());
    assert!(
        w.cdn.seen().iter().all(|s| s.auth.is_none()),
        "no token to the CDN"
    );
    assert!(w.cdn.seen().iter().all(|s| s.range.is_some()));
}

#[tokio::test]
async fn hf_gated_missing_and_garbage_repos_fail_with_clear_errors() {
    let w = World::new().await;
    let e = w.pull("hf.co/u/gated").await.error.unwrap();
    assert!(
        e.starts_with(
            "pull model manifest: 401: {\"error\":\"Access to model u/gated is restricted.\"}"
        ),
        "{e}"
    );
    assert!(e.contains("HF_TOKEN"), "{e}");
    assert_eq!(
        w.pull("huggingface.co/u/none").await.error.as_deref(),
        Some("pull model manifest: file does not exist")
    );
    let e = w.pull("hf.co/u/garbage").await.error.unwrap();
    assert!(
        e.starts_with("pull model manifest: invalid repository listing"),
        "{e}"
    );
    assert_nothing_visible(w.dir.path());
}

#[tokio::test]
async fn hf_lfs_digest_mismatch_is_rejected_and_nothing_is_written() {
    let w = World::new().await;
    let real = safetensors();
    let bad = data(real.len(), 77);
    w.st.lock()
        .unwrap()
        .cdn_override
        .insert(hex(&real), bad.clone());
    let out = w.pull("hf.co/u/mlx").await;
    assert_eq!(
        out.error.as_deref(),
        Some(
            format!(
                "digest mismatch, file must be downloaded again: want {}, got {}",
                sha(&real),
                sha(&bad)
            )
            .as_str()
        )
    );
    assert_nothing_visible(w.dir.path());
    assert!(blob_files(w.dir.path())
        .iter()
        .all(|f| !f.contains(&hex(&real))));
}

#[tokio::test]
async fn hf_gguf_quant_tag_picks_the_matching_file_and_writes_a_gguf_manifest() {
    let w = World::new().await;
    let out = w.pull("hf.co/u/gguf:Q4_K_M").await;
    assert!(out.error.is_none(), "{:?}", out.error);
    let m = w.manifest("hf.co/u/gguf/Q4_K_M");
    let layers = m["layers"].as_array().unwrap();
    assert_eq!(layers[0]["mediaType"], "application/vnd.ollama.image.model");
    assert_eq!(layers[0]["digest"], sha(&gguf(15)).as_str());
    assert_eq!(
        layers[1]["mediaType"],
        "application/vnd.ollama.image.projector"
    );
    let list = StoreBackend::new(w.store.clone())
        .list_models()
        .await
        .unwrap();
    assert_eq!(list[0].details.format, "gguf");
    assert_eq!(list[0].details.family, "llama");
    assert_eq!(list[0].details.quantization_level, "Q4_K_M");
    assert!(
        w.cdn.seen().iter().all(|s| !s.uri.contains(&hex(&gguf(7)))),
        "Q8_0 not fetched"
    );
    let e = w.pull("hf.co/u/gguf:Q2_K").await.error.unwrap();
    assert_eq!(
        e,
        "pull model manifest: no GGUF file for quantization \"Q2_K\" in hf.co/u/gguf"
    );
}

#[tokio::test]
async fn library_names_resolve_to_hf_and_are_stored_under_the_typed_name() {
    let w = World::new().await;
    let out = w.pull("qwen3:0.6b").await;
    assert!(out.error.is_none(), "{:?}", out.error);
    assert_eq!(
        out.statuses()[..2],
        [
            "resolving qwen3:0.6b to hf.co/mlx-community/Qwen3-0.6B-4bit".to_string(),
            "pulling manifest".to_string()
        ]
    );
    let m = w.manifest("registry.ollama.ai/library/qwen3/0.6b");
    assert_eq!(
        m["layers"][0]["mediaType"],
        "application/vnd.ollama.image.tensor"
    );
    let list = StoreBackend::new(w.store.clone())
        .list_models()
        .await
        .unwrap();
    assert_eq!(list[0].name, "qwen3:0.6b");
}

#[test]
fn pull_plan_follows_host_table_and_source_policy() {
    let c = PullConfig::default();
    let p = plan(&Name::parse("llama3.2"), &c);
    assert_eq!(
        p,
        PullPlan::HuggingFace {
            repo: "mlx-community/Llama-3.2-3B-Instruct-4bit".into(),
            reference: "latest".into(),
            resolved_from: Some(
                "resolving llama3.2 to hf.co/mlx-community/Llama-3.2-3B-Instruct-4bit".into()
            ),
        }
    );
    let reg = PullConfig {
        source: PullSource::Registry,
        ..PullConfig::default()
    };
    assert!(matches!(
        plan(&Name::parse("llama3.2"), &reg),
        PullPlan::Registry(_)
    ));
    assert!(matches!(
        plan(&Name::parse("not-in-table:7b"), &c),
        PullPlan::Registry(_)
    ));
    assert!(matches!(
        plan(&Name::parse("someone/llama3.2"), &c),
        PullPlan::Registry(_)
    ));
    assert!(matches!(
        plan(&Name::parse("localhost:5000/library/llama3.2"), &c),
        PullPlan::Registry(_)
    ));
    assert_eq!(
        plan(&Name::parse("hf.co/bartowski/Model-GGUF:Q4_K_M"), &c),
        PullPlan::HuggingFace {
            repo: "bartowski/Model-GGUF".into(),
            reference: "Q4_K_M".into(),
            resolved_from: None
        }
    );
}
