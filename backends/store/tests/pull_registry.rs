//! Pull from an Ollama-protocol registry, against local fake registry + CDN servers.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use futures::StreamExt;
use ollmlx_infer::{Backend, ManageRequest};
use ollmlx_store::{Store, StoreBackend};
use ollmlx_wire::ollama::PullRequest;

#[derive(Default)]
struct Reg {
    manifests: HashMap<String, Vec<u8>>,
    /// Override for every manifest GET.
    manifest_reply: Option<(u16, Vec<u8>)>,
    manifest_hang: bool,
    blobs: HashMap<String, Vec<u8>>,
    cdn: Option<String>,
    token: Option<String>,
    realm: Option<String>,
}

#[derive(Default)]
struct Cdn {
    blobs: HashMap<String, Vec<u8>>,
    /// Cut the next GETs after this many bytes (popped front first).
    cuts: Vec<usize>,
    slow: Option<(usize, Duration)>,
    hang: bool,
}

fn registry_handler(st: Arc<Mutex<Reg>>, self_url: Arc<Mutex<String>>) -> Handler {
    Arc::new(move |s: &Seen| {
        let st = st.lock().unwrap();
        let me = self_url.lock().unwrap().clone();
        if s.uri.starts_with("/token") {
            return Reply::ok(r#"{"token":"tok"}"#);
        }
        if let Some(t) = &st.token {
            if s.auth.as_deref() != Some(&format!("Bearer {t}")) {
                let realm = st.realm.clone().unwrap_or(format!("{me}/token"));
                return Reply::status(401, "unauthorized").with_header(
                    "www-authenticate",
                    &format!(
                        r#"Bearer realm="{realm}",service="fake-registry",scope="repository:library/m:pull""#
                    ),
                );
            }
        }
        if s.uri.contains("/manifests/") {
            if st.manifest_hang {
                return Reply::Hang;
            }
            if let Some((code, body)) = &st.manifest_reply {
                return Reply::status(*code, body.clone());
            }
            return match st.manifests.get(&s.uri) {
                Some(m) => Reply::ok(m.clone()),
                None => Reply::status(404, r#"{"errors":[{"code":"MANIFEST_UNKNOWN"}]}"#),
            };
        }
        if let Some((_, digest)) = s.uri.split_once("/blobs/") {
            let Some(b) = st.blobs.get(digest) else {
                return Reply::status(404, "");
            };
            if s.method == "HEAD" {
                return Reply::ok(b.clone());
            }
            if let Some(cdn) = &st.cdn {
                return Reply::redirect(307, &format!("{cdn}/cdn/{digest}?sig=x"));
            }
            return ranged(s, b);
        }
        Reply::status(404, "")
    })
}

fn cdn_handler(st: Arc<Mutex<Cdn>>) -> Handler {
    Arc::new(move |s: &Seen| {
        let mut st = st.lock().unwrap();
        if st.hang {
            return Reply::Hang;
        }
        let digest = s
            .uri
            .trim_start_matches("/cdn/")
            .split('?')
            .next()
            .unwrap_or("");
        let Some(b) = st.blobs.get(digest).cloned() else {
            return Reply::status(404, "");
        };
        let r = ranged(s, &b);
        let Reply::Full {
            status,
            headers,
            body,
        } = r
        else {
            return r;
        };
        if !st.cuts.is_empty() {
            let cut_at = st.cuts.remove(0);
            return Reply::Cut {
                status,
                headers,
                body,
                cut_at,
            };
        }
        if let Some((chunk, delay)) = st.slow {
            return Reply::Slow {
                status,
                headers,
                body,
                chunk,
                delay,
            };
        }
        Reply::Full {
            status,
            headers,
            body,
        }
    })
}

/// A manifest with odd (but valid) formatting, to prove it is stored byte-for-byte.
fn manifest_bytes(config: &[u8], layers: &[(&str, &[u8])]) -> Vec<u8> {
    let layer = |mt: &str, d: &[u8]| {
        format!(
            "{{ \"mediaType\": \"{mt}\", \"digest\": \"{}\", \"size\": {} }}",
            sha(d),
            d.len()
        )
    };
    let ls: Vec<String> = layers.iter().map(|(mt, d)| layer(mt, d)).collect();
    format!(
        "{{\n  \"schemaVersion\": 2,\n  \"mediaType\": \"application/vnd.docker.distribution.manifest.v2+json\",\n  \"config\": {},\n  \"layers\": [{}]\n}}",
        layer("application/vnd.docker.container.image.v1+json", config),
        ls.join(", ")
    )
    .into_bytes()
}

struct World {
    reg: Fake,
    cdn: Fake,
    rs: Arc<Mutex<Reg>>,
    cs: Arc<Mutex<Cdn>>,
    dir: tempfile::TempDir,
    store: Store,
    model: String,
    weights: Vec<u8>,
    template: Vec<u8>,
    config: Vec<u8>,
    manifest: Vec<u8>,
}

impl World {
    /// Registry + CDN serving `library/m:latest` (weights of `n` bytes, a template, a config).
    async fn new(n: usize) -> World {
        let rs: Arc<Mutex<Reg>> = Arc::default();
        let cs: Arc<Mutex<Cdn>> = Arc::default();
        let me = Arc::new(Mutex::new(String::new()));
        let reg = serve(registry_handler(rs.clone(), me.clone())).await;
        *me.lock().unwrap() = reg.url();
        let cdn = serve(cdn_handler(cs.clone())).await;
        let weights = data(n, 7);
        let template = b"{{ .Prompt }}".to_vec();
        let config = br#"{"model_format":"gguf","model_family":"llama","model_families":["llama"],"model_type":"1B","file_type":"Q4_0","architecture":"amd64","os":"linux"}"#.to_vec();
        let manifest = manifest_bytes(
            &config,
            &[
                ("application/vnd.ollama.image.model", &weights),
                ("application/vnd.ollama.image.template", &template),
            ],
        );
        {
            let mut r = rs.lock().unwrap();
            r.manifests
                .insert("/v2/library/m/manifests/latest".into(), manifest.clone());
            for b in [&weights, &template, &config] {
                r.blobs.insert(sha(b), b.clone());
                cs.lock().unwrap().blobs.insert(sha(b), b.clone());
            }
            r.cdn = Some(cdn.url());
        }
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        let model = format!("{}/library/m:latest", reg.host());
        World {
            reg,
            cdn,
            rs,
            cs,
            dir,
            store,
            model,
            weights,
            template,
            config,
            manifest,
        }
    }

    async fn pull(&self, cfg: ollmlx_store::pull::PullConfig) -> Outcome {
        pull(&self.store, &self.model, true, cfg).await
    }
}

fn short(d: &[u8]) -> String {
    format!("pulling {}", &sha(d)[7..19])
}

#[tokio::test]
async fn small_pull_emits_upstreams_exact_progress_sequence_through_the_backend() {
    let w = World::new(5000).await;
    let backend = StoreBackend::new(w.store.clone());
    let req = PullRequest {
        model: w.model.clone(),
        insecure: true,
        ..Default::default()
    };
    let mut s = backend.manage(ManageRequest::Pull(req)).await.unwrap();
    let mut progress = Vec::new();
    while let Some(p) = s.next().await {
        progress.push(p.expect("no error"));
    }
    let out = Outcome {
        progress,
        error: None,
    };
    assert_eq!(
        out.statuses(),
        vec![
            "pulling manifest".to_string(),
            short(&w.weights),
            short(&w.template),
            short(&w.config),
            "verifying sha256 digest".into(),
            "writing manifest".into(),
            "success".into(),
        ]
    );
    for (d, n) in [
        (&w.weights, 5000),
        (&w.template, 13),
        (&w.config, w.config.len()),
    ] {
        let objs = out.of(&short(d));
        let last = objs.last().unwrap();
        assert_eq!(last.digest, sha(d));
        assert_eq!((last.total, last.completed), (n as i64, n as i64));
    }
    for p in &out.progress {
        if !p.status.starts_with("pulling ") || p.status == "pulling manifest" {
            assert!(p.digest.is_empty() && p.total == 0, "{p:?}");
        }
    }
    let stored = std::fs::read(
        w.dir
            .path()
            .join(format!("manifests/{}/library/m/latest", w.reg.host())),
    )
    .unwrap();
    assert_eq!(stored, w.manifest, "manifest stored byte-for-byte");
    let list = backend.list_models().await.unwrap();
    assert_eq!(list[0].name, w.model);
    assert_eq!(list[0].size, (5000 + 13 + w.config.len()) as u64);
    // protocol details
    let seen = w.reg.seen();
    let mget = seen.iter().find(|s| s.uri.contains("/manifests/")).unwrap();
    assert_eq!(
        mget.accept.as_deref(),
        Some("application/vnd.docker.distribution.manifest.v2+json")
    );
    assert!(mget.user_agent.as_deref().unwrap().starts_with("ollama/"));
    assert_eq!(w.reg.count("HEAD", "/blobs/"), 3);
    assert!(w.cdn.seen().iter().all(|s| s.auth.is_none()));
}

#[tokio::test]
async fn second_pull_reports_present_blobs_once_and_downloads_nothing() {
    let w = World::new(3000).await;
    assert!(w.pull(cfg()).await.error.is_none());
    let cdn_before = w.cdn.seen().len();
    let out = w.pull(cfg()).await;
    assert!(out.error.is_none());
    for d in [&w.weights, &w.template, &w.config] {
        let objs = out.of(&short(d));
        assert_eq!(objs.len(), 1, "exactly one object for a present blob");
        assert_eq!(objs[0].completed, objs[0].total);
    }
    assert_eq!(w.cdn.seen().len(), cdn_before);
    assert!(!out
        .statuses()
        .contains(&"removing unused layers".to_string()));
}

#[tokio::test]
async fn auth_challenge_fetches_a_token_and_retries_with_bearer() {
    let w = World::new(2000).await;
    w.rs.lock().unwrap().token = Some("tok".into());
    let out = w.pull(cfg()).await;
    assert!(out.error.is_none(), "{:?}", out.error);
    let seen = w.reg.seen();
    let token_req = seen.iter().find(|s| s.uri.starts_with("/token")).unwrap();
    assert!(token_req.uri.contains("service=fake-registry"));
    assert!(token_req
        .uri
        .contains("scope=repository%3Alibrary%2Fm%3Apull"));
    assert!(token_req.uri.contains("ts=") && token_req.uri.contains("nonce="));
    assert!(token_req.auth.is_none(), "token request is unsigned");
    assert_eq!(
        seen.iter().filter(|s| s.uri.starts_with("/token")).count(),
        1
    );
    assert!(seen
        .iter()
        .filter(|s| s.uri.contains("/blobs/"))
        .all(|s| s.auth.as_deref() == Some("Bearer tok")));
}

#[tokio::test]
async fn token_realm_on_another_host_is_refused() {
    let w = World::new(100).await;
    {
        let mut r = w.rs.lock().unwrap();
        r.token = Some("tok".into());
        r.realm = Some(format!("http://localhost:{}/token", w.reg.addr.port()));
    }
    let out = w.pull(cfg()).await;
    assert_eq!(
        out.error.unwrap(),
        format!(
            "pull model manifest: realm host \"localhost:{p}\" does not match original host \"127.0.0.1:{p}\"",
            p = w.reg.addr.port()
        )
    );
    assert_nothing_visible(w.dir.path());
}

#[tokio::test]
async fn manifest_errors_use_upstreams_texts() {
    let w = World::new(100).await;
    let missing = pull(
        &w.store,
        &format!("{}/library/nope:1", w.reg.host()),
        true,
        cfg(),
    )
    .await;
    assert_eq!(missing.statuses(), vec!["pulling manifest"]);
    assert_eq!(
        missing.error.as_deref(),
        Some("pull model manifest: file does not exist")
    );

    w.rs.lock().unwrap().manifest_reply = Some((500, b"boom\n".to_vec()));
    let e = w.pull(cfg()).await.error.unwrap();
    assert_eq!(e, "pull model manifest: 500: boom");

    w.rs.lock().unwrap().manifest_reply = Some((200, b"{not json".to_vec()));
    let e = w.pull(cfg()).await.error.unwrap();
    assert!(
        e.starts_with("pull model manifest: invalid manifest JSON"),
        "{e}"
    );
    assert_nothing_visible(w.dir.path());
}

#[tokio::test]
async fn http_names_need_insecure_and_bad_names_are_rejected_up_front() {
    let d = tempfile::tempdir().unwrap();
    let store = Store::new(d.path());
    let out = pull(&store, "http://127.0.0.1:9/library/m:latest", false, cfg()).await;
    assert!(out.progress.is_empty());
    assert_eq!(out.error.as_deref(), Some("insecure protocol http"));
    let out = pull(&store, "../../etc", false, cfg()).await;
    assert_eq!(out.error.as_deref(), Some("invalid model name"));
    let out = pull(&store, "", false, cfg()).await;
    assert_eq!(out.error.as_deref(), Some("invalid model name"));
}

#[tokio::test]
async fn cut_body_leaves_only_partials_and_a_resumed_pull_fetches_only_missing_bytes() {
    let w = World::new(10_000).await;
    w.cs.lock().unwrap().cuts = vec![3000];
    let first = w.pull(cfg()).await;
    let err = first.error.expect("the cut fails the pull without retries");
    assert!(
        err.contains("reading response body") || err.contains("end of body"),
        "{err}"
    );
    assert_only_partials(w.dir.path());
    let files = blob_files(w.dir.path());
    let wd = &sha(&w.weights)[7..];
    assert!(files.contains(&format!("sha256-{wd}-partial")));
    assert!(files.contains(&format!("sha256-{wd}-partial-0")));

    let second = w.pull(cfg()).await;
    assert!(second.error.is_none(), "{:?}", second.error);
    assert_eq!(
        w.cdn.ranges(wd),
        vec!["bytes=0-9999".to_string(), "bytes=3000-9999".to_string()]
    );
    let stored = std::fs::read(w.dir.path().join(format!("blobs/sha256-{wd}"))).unwrap();
    assert_eq!(stored, w.weights);
    assert!(blob_files(w.dir.path())
        .iter()
        .all(|f| !f.contains("partial")));
}

#[tokio::test]
async fn a_cut_is_retried_within_the_pull_from_where_it_stopped() {
    let w = World::new(10_000).await;
    w.cs.lock().unwrap().cuts = vec![4096];
    let mut c = cfg();
    c.max_retries = 2;
    let out = w.pull(c).await;
    assert!(out.error.is_none(), "{:?}", out.error);
    let wd = &sha(&w.weights)[7..];
    assert_eq!(w.cdn.ranges(wd), vec!["bytes=0-9999", "bytes=4096-9999"]);
}

#[tokio::test]
async fn large_blobs_download_as_parallel_ranged_parts() {
    let w = World::new(10_000).await;
    let mut c = cfg();
    c.min_part_size = 1000;
    c.max_parts = 4;
    let out = w.pull(c).await;
    assert!(out.error.is_none(), "{:?}", out.error);
    let mut ranges = w.cdn.ranges(&sha(&w.weights)[7..]);
    ranges.sort();
    assert_eq!(
        ranges,
        vec![
            "bytes=0-2499",
            "bytes=2500-4999",
            "bytes=5000-7499",
            "bytes=7500-9999"
        ]
    );
}

#[tokio::test]
async fn wrong_digest_blob_is_rejected_removed_and_reported() {
    let w = World::new(4000).await;
    let wrong = data(4000, 99);
    w.cs.lock()
        .unwrap()
        .blobs
        .insert(sha(&w.weights), wrong.clone());
    let out = w.pull(cfg()).await;
    assert_eq!(
        out.error.clone().unwrap(),
        format!(
            "digest mismatch, file must be downloaded again: want {}, got {}",
            sha(&w.weights),
            sha(&wrong)
        )
    );
    assert_eq!(out.statuses().last().unwrap(), "verifying sha256 digest");
    assert_nothing_visible(w.dir.path());
    assert!(
        blob_files(w.dir.path())
            .iter()
            .all(|f| !f.contains(&sha(&w.weights)[7..])),
        "mismatched data removed"
    );
}

#[tokio::test]
async fn hanging_servers_are_bounded_by_timeouts() {
    let w = World::new(1000).await;
    w.cs.lock().unwrap().hang = true;
    let mut c = cfg();
    c.header_timeout = Duration::from_millis(300);
    c.max_retries = 1;
    let t = Instant::now();
    let out = w.pull(c.clone()).await;
    assert!(t.elapsed() < Duration::from_secs(5));
    let e = out.error.unwrap();
    assert!(e.starts_with("timed out waiting for GET http://"), "{e}");
    assert!(!e.contains("sig=x"), "signed query is not echoed: {e}");
    assert_eq!(w.cdn.count("GET", "/cdn/"), 2, "one try plus one retry");

    w.rs.lock().unwrap().manifest_hang = true;
    let t = Instant::now();
    let e = w.pull(c).await.error.unwrap();
    assert!(t.elapsed() < Duration::from_secs(3));
    assert!(
        e.starts_with("pull model manifest: timed out waiting for GET"),
        "{e}"
    );
    assert_nothing_visible(w.dir.path());
}

#[tokio::test]
async fn a_stalled_body_is_abandoned() {
    let w = World::new(1000).await;
    w.cs.lock().unwrap().slow = Some((100, Duration::from_secs(3)));
    let mut c = cfg();
    c.stall_timeout = Duration::from_millis(200);
    let t = Instant::now();
    let e = w.pull(c).await.error.unwrap();
    assert!(t.elapsed() < Duration::from_secs(3));
    assert!(e.starts_with("download stalled"), "{e}");
}

#[tokio::test]
async fn concurrent_pulls_of_the_same_model_share_one_download() {
    let w = World::new(20_000).await;
    w.cs.lock().unwrap().slow = Some((2000, Duration::from_millis(30)));
    let (a, b) = tokio::join!(w.pull(cfg()), w.pull(cfg()));
    assert!(
        a.error.is_none() && b.error.is_none(),
        "{:?} {:?}",
        a.error,
        b.error
    );
    assert_eq!(w.cdn.ranges(&sha(&w.weights)[7..]).len(), 1, "one download");
    assert_eq!(b.statuses().last().unwrap(), "success");
}

#[tokio::test]
async fn client_disconnect_cancels_but_keeps_partials_for_resume() {
    let w = World::new(20_000).await;
    w.cs.lock().unwrap().slow = Some((1000, Duration::from_millis(20)));
    let req = PullRequest {
        model: w.model.clone(),
        insecure: true,
        ..Default::default()
    };
    let mut s = ollmlx_store::pull::start(w.store.clone(), req, cfg())
        .await
        .unwrap();
    let wd = sha(&w.weights);
    while let Some(p) = s.next().await {
        let p = p.unwrap();
        if p.digest == wd && p.completed >= 10_000 {
            break;
        }
    }
    drop(s);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_only_partials(w.dir.path());
    let files = blob_files(w.dir.path());
    assert!(files.iter().any(|f| f.ends_with("-partial-0")), "{files:?}");
    let gets_before = w.cdn.ranges(&wd[7..]).len();

    w.cs.lock().unwrap().slow = None;
    let out = w.pull(cfg()).await;
    assert!(out.error.is_none(), "{:?}", out.error);
    let ranges = w.cdn.ranges(&wd[7..]);
    assert_eq!(ranges.len(), gets_before + 1);
    let (start, _) = parse_range(ranges.last().unwrap()).unwrap();
    assert!(start >= 1000, "resumed from saved progress: {ranges:?}");
}

#[tokio::test]
async fn re_pulling_a_changed_tag_removes_unused_layers() {
    let w = World::new(1000).await;
    assert!(w.pull(cfg()).await.error.is_none());
    let new_weights = data(1200, 3);
    {
        let mut r = w.rs.lock().unwrap();
        r.blobs.insert(sha(&new_weights), new_weights.clone());
        w.cs.lock()
            .unwrap()
            .blobs
            .insert(sha(&new_weights), new_weights.clone());
        r.manifests.insert(
            "/v2/library/m/manifests/latest".into(),
            manifest_bytes(
                &w.config,
                &[
                    ("application/vnd.ollama.image.model", &new_weights),
                    ("application/vnd.ollama.image.template", &w.template),
                ],
            ),
        );
    }
    let out = w.pull(cfg()).await;
    assert!(out.error.is_none());
    let st = out.statuses();
    assert_eq!(
        &st[st.len() - 3..],
        ["writing manifest", "removing unused layers", "success"]
    );
    let files = blob_files(w.dir.path());
    assert!(!files.contains(&format!("sha256-{}", &sha(&w.weights)[7..])));
    assert!(files.contains(&format!("sha256-{}", &sha(&w.template)[7..])));
}

#[tokio::test]
async fn tensor_manifests_report_aggregate_pulling_model() {
    let w = World::new(100).await;
    let t1 = data(3000, 1);
    let j1 = br#"{"model_type":"llama"}"#.to_vec();
    {
        let mut r = w.rs.lock().unwrap();
        for b in [&t1, &j1] {
            r.blobs.insert(sha(b), b.clone());
            w.cs.lock().unwrap().blobs.insert(sha(b), b.clone());
        }
        r.manifests.insert(
            "/v2/library/m/manifests/latest".into(),
            manifest_bytes(
                &w.config,
                &[
                    ("application/vnd.ollama.image.tensor", &t1),
                    ("application/vnd.ollama.image.json", &j1),
                ],
            ),
        );
    }
    let out = w.pull(cfg()).await;
    assert!(out.error.is_none(), "{:?}", out.error);
    assert_eq!(
        out.statuses(),
        [
            "pulling manifest",
            "pulling model",
            "writing manifest",
            "success"
        ]
    );
    let last = out.of("pulling model").into_iter().last().unwrap();
    assert_eq!(last.digest, "sha256:model");
    let total = (t1.len() + j1.len() + w.config.len()) as i64;
    assert_eq!((last.total, last.completed), (total, total));
}
