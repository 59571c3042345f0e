//! Create: statuses, layers, parameter merging, validation errors.

use serde_json::json;

use crate::manifest::*;
use crate::testutil::Fixture;
use crate::Name;

fn statuses(ps: &[ollmlx_wire::ollama::ProgressResponse]) -> Vec<String> {
    ps.iter().map(|p| p.status.clone()).collect()
}

#[tokio::test]
async fn create_from_gguf_file_streams_upstream_statuses() {
    let f = Fixture::new();
    let ps = f
        .create_tiny(
            "tiny",
            json!({"template": "{{ .Prompt }}", "system": "be brief"}),
        )
        .await;
    let s = statuses(&ps);
    assert_eq!(s[0], "parsing GGUF");
    assert!(s[1].starts_with("using existing layer sha256:"), "{s:?}");
    assert!(s[2].starts_with("creating new layer sha256:"), "{s:?}");
    assert!(s[3].starts_with("creating new layer sha256:"), "{s:?}");
    assert_eq!(&s[4..], ["writing manifest", "success"]);

    let m = f
        .store
        .read_manifest(&Name::parse("tiny"))
        .unwrap()
        .unwrap();
    let types: Vec<_> = m
        .manifest
        .layers
        .iter()
        .map(|l| l.media_type.as_str())
        .collect();
    assert_eq!(
        types,
        [MEDIA_TYPE_MODEL, MEDIA_TYPE_TEMPLATE, MEDIA_TYPE_SYSTEM]
    );
    assert_eq!(m.manifest.layers[0].from, "tiny.gguf");
    let cfg = f.store.read_config(&m.manifest).unwrap();
    assert_eq!(cfg.model_format, "gguf");
    assert_eq!(cfg.model_family, "llama");
    assert_eq!(cfg.model_families, Some(vec!["llama".to_string()]));
    assert_eq!(cfg.model_type, "64K");
    assert_eq!(cfg.file_type, "Q4_1");
}

#[tokio::test]
async fn create_from_model_inherits_layers_and_merges_parameters() {
    let f = Fixture::new();
    f.create_tiny(
        "base",
        json!({"parameters": {"temperature": 0.5, "stop": ["a"]}, "system": "base sys"}),
    )
    .await;
    let ps = f
        .create(json!({"model": "child", "from": "base", "parameters": {"temperature": 0.9, "top_k": 10}}))
        .await
        .unwrap();
    let s = statuses(&ps);
    assert!(s.iter().all(|x| x != "parsing GGUF"));
    assert_eq!(s.last().unwrap(), "success");

    let m = f
        .store
        .read_manifest(&Name::parse("child"))
        .unwrap()
        .unwrap();
    assert!(m
        .manifest
        .layers
        .iter()
        .filter(|l| l.media_type != MEDIA_TYPE_PARAMS)
        .all(|l| l.from == "base:latest"));
    let params = m.manifest.layers_of(MEDIA_TYPE_PARAMS).next().unwrap();
    let bytes = f.store.blobs().read(&params.digest).unwrap();
    assert_eq!(
        String::from_utf8(bytes).unwrap(),
        "{\"stop\":[\"a\"],\"temperature\":0.9,\"top_k\":10}\n"
    );
    let rec = crate::info::ModelRecord::load(&f.store, m).unwrap();
    assert_eq!(rec.system, "base sys");
}

#[tokio::test]
async fn recreating_a_tag_garbage_collects_replaced_layers() {
    let f = Fixture::new();
    f.create_tiny("t", json!({"system": "one"})).await;
    let old = f.store.read_manifest(&Name::parse("t")).unwrap().unwrap();
    let old_sys = old
        .manifest
        .layers_of(MEDIA_TYPE_SYSTEM)
        .next()
        .unwrap()
        .digest
        .clone();
    f.create_tiny("t", json!({"system": "two"})).await;
    assert!(!f.store.blobs().exists(&old_sys).unwrap());
}

#[tokio::test]
async fn create_errors_match_upstream() {
    let f = Fixture::new();
    let cases = [
        (
            json!({"model": "x"}),
            "neither 'from' or 'files' was specified",
        ),
        (
            json!({"model": "x", "files": {"../a.gguf": "sha256:00"}}),
            "file path must be relative",
        ),
        (
            json!({"model": "x", "files": {"a.gguf": ""}}),
            "invalid digest format",
        ),
        (
            json!({"model": "bad name!", "from": "y"}),
            "invalid model name",
        ),
        (
            json!({"model": "x", "draft_quantize": "q8_0"}),
            "--draft-quantize requires a DRAFT model",
        ),
        (
            json!({"model": "x", "from": "missing"}),
            "model 'missing:latest' not found",
        ),
    ];
    for (req, want) in cases {
        let e = f.create(req.clone()).await.unwrap_err();
        assert_eq!(e.to_string(), want, "{req}");
    }
    let not_gguf = f.blob(b"definitely not a gguf file");
    let e = f
        .create(json!({"model": "x", "files": {"w.gguf": not_gguf}}))
        .await
        .unwrap_err();
    assert_eq!(e.to_string(), "supplied file was not in GGUF format");
    assert_eq!(e.status(), 400);
    let e = f
        .create(json!({"model": "x", "files": {"w.bin": not_gguf}}))
        .await
        .unwrap_err();
    assert_eq!(e.to_string(), "unknown type");
    let e = f.create(json!({"model": "x", "from": "base", "remote_host": "h", "info": {"context_length": -1}})).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "info field \"context_length\" must be a non-negative integer"
    );
}

#[tokio::test]
async fn messages_and_licenses_become_layers() {
    let f = Fixture::new();
    f.create_tiny(
        "m",
        json!({"license": ["MIT", "Apache"], "messages": [{"role": "user", "content": "<hi>"}]}),
    )
    .await;
    let m = f.store.read_manifest(&Name::parse("m")).unwrap().unwrap();
    assert_eq!(m.manifest.layers_of(MEDIA_TYPE_LICENSE).count(), 2);
    let msgs = m.manifest.layers_of(MEDIA_TYPE_MESSAGES).next().unwrap();
    assert_eq!(
        f.store.blobs().read(&msgs.digest).unwrap(),
        b"[{\"role\":\"user\",\"content\":\"\\u003chi\\u003e\"}]\n"
    );
}

#[test]
fn valid_fs_path_matches_go() {
    for ok in ["a", "a/b.gguf", ".", "x/y/z"] {
        assert!(super::valid_fs_path(ok), "{ok}");
    }
    for bad in ["", "/a", "a/", "a//b", "../a", "a/./b", "a/.."] {
        assert!(!super::valid_fs_path(bad), "{bad}");
    }
}
