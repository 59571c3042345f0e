//! Push to an Ollama-protocol registry, against a local fake registry that accepts uploads.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use common::*;
use futures::StreamExt;
use ollmlx_store::manifest::{Layer, Manifest, MEDIA_TYPE_CONFIG, MEDIA_TYPE_MODEL};
use ollmlx_store::{Name, Store};
use ollmlx_wire::ollama::PushRequest;

#[derive(Default)]
struct Reg {
    blobs: HashMap<String, usize>,
    manifests: HashMap<String, String>,
}

#[tokio::test]
async fn push_uploads_missing_blobs_then_the_manifest_with_upstreams_statuses() {
    let st: Arc<Mutex<Reg>> = Arc::default();
    let st2 = st.clone();
    let reg = serve(Arc::new(move |s: &Seen| {
        let mut r = st2.lock().unwrap();
        if s.method == "HEAD" {
            let d = s.uri.rsplit('/').next().unwrap();
            return if r.blobs.contains_key(d) {
                Reply::ok(vec![])
            } else {
                Reply::status(404, "")
            };
        }
        if s.method == "POST" && s.uri.ends_with("/blobs/uploads/") {
            return Reply::status(202, "").with_header("location", "/upload/1");
        }
        if s.method == "PATCH" {
            return Reply::status(202, "").with_header("location", "/upload/1?state=x");
        }
        if s.method == "PUT" && s.uri.starts_with("/upload/1?state=x&digest=") {
            let d = s.uri.rsplit("digest=").next().unwrap().to_string();
            r.blobs.insert(d, 1);
            return Reply::status(201, "");
        }
        if s.method == "PUT" && s.uri.contains("/manifests/") {
            r.manifests.insert(s.uri.clone(), String::new());
            return Reply::status(201, "");
        }
        Reply::status(400, "unexpected")
    }))
    .await;

    let dir = tempfile::tempdir().unwrap();
    let store = Store::new(dir.path());
    let (wd, _) = store.blobs().put_bytes(&data(5000, 1)).unwrap();
    let (cd, _) = store.blobs().put_bytes(b"{}").unwrap();
    st.lock().unwrap().blobs.insert(cd.clone(), 1); // already on the registry
    let m = Manifest::new(
        Layer {
            media_type: MEDIA_TYPE_CONFIG.into(),
            digest: cd.clone(),
            size: 2,
            ..Default::default()
        },
        vec![Layer {
            media_type: MEDIA_TYPE_MODEL.into(),
            digest: wd.clone(),
            size: 5000,
            ..Default::default()
        }],
    );
    let model = format!("{}/me/m:v1", reg.host());
    store.write_manifest(&Name::parse(&model), &m).unwrap();

    let req = PushRequest {
        model: model.clone(),
        insecure: true,
        ..Default::default()
    };
    let mut s = ollmlx_store::push::start(store.clone(), req, cfg())
        .await
        .unwrap();
    let mut progress = Vec::new();
    while let Some(p) = s.next().await {
        progress.push(p.expect("push succeeds"));
    }
    let out = Outcome {
        progress,
        error: None,
    };
    assert_eq!(
        out.statuses(),
        vec![
            "retrieving manifest".to_string(),
            format!("pushing {}", &wd[7..19]),
            format!("pushing {}", &cd[7..19]),
            "pushing manifest".into(),
            "success".into(),
        ]
    );
    assert_eq!(
        out.of(&format!("pushing {}", &cd[7..19])).len(),
        1,
        "present blob skipped"
    );
    assert!(st.lock().unwrap().blobs.contains_key(&wd));
    assert!(st
        .lock()
        .unwrap()
        .manifests
        .contains_key("/v2/me/m/manifests/v1"));
    assert_eq!(reg.count("PATCH", "/upload/1"), 1);
    assert_eq!(reg.count("POST", "/blobs/uploads/"), 1);

    let missing = PushRequest {
        model: String::new(),
        ..Default::default()
    };
    let e = ollmlx_store::push::start(store, missing, cfg())
        .await
        .err()
        .unwrap();
    assert_eq!(e.to_string(), "model is required");
}
