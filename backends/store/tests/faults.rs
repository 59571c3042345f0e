//! Local faults during a pull (issue #4): a full disk, a read-only models directory and a
//! registry whose blob endpoint keeps failing. Each is reported as an error in the progress
//! stream and never leaves a manifest behind. The disk tests mount a small tmpfs (root on
//! Linux); without that privilege they use `chmod` where it is enforced, else print `SKIPPED`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use common::*;
use ollmlx_store::Store;

/// A registry serving `library/m:latest` (one weights layer + config) straight from its blob
/// endpoint, blob GETs redirected to `/cdn/<digest>` on the same server; `blob_status` makes
/// every CDN GET fail with that status.
struct Registry {
    fake: Fake,
    blob_status: Arc<Mutex<Option<u16>>>,
    weights: Vec<u8>,
}

async fn registry(n: usize) -> Registry {
    let weights = data(n, 3);
    let config = br#"{"model_format":"gguf","model_family":"llama","file_type":"Q4_0"}"#.to_vec();
    let layer = |mt: &str, d: &[u8]| {
        format!(
            r#"{{"mediaType":"{mt}","digest":"{}","size":{}}}"#,
            sha(d),
            d.len()
        )
    };
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{},"layers":[{}]}}"#,
        layer("application/vnd.docker.container.image.v1+json", &config),
        layer("application/vnd.ollama.image.model", &weights)
    );
    let blob_status: Arc<Mutex<Option<u16>>> = Arc::default();
    let me: Arc<Mutex<String>> = Arc::default();
    let (w, c, st, me2) = (
        weights.clone(),
        config.clone(),
        blob_status.clone(),
        me.clone(),
    );
    let fake = serve(Arc::new(move |s: &Seen| {
        if s.uri.ends_with("/manifests/latest") {
            return Reply::ok(manifest.clone());
        }
        // Blob GETs redirect to a "CDN" path on the same server, like registry.ollama.ai.
        if let Some((_, digest)) = s.uri.split_once("/blobs/") {
            if s.method == "GET" {
                let to = format!("{}/cdn/{digest}", me2.lock().unwrap());
                return Reply::redirect(307, &to);
            }
        }
        if s.uri.starts_with("/cdn/") {
            if let Some(code) = *st.lock().unwrap() {
                return Reply::status(code, "upstream trouble");
            }
        }
        if s.uri.ends_with(&sha(&w)) {
            return ranged(s, &w);
        }
        if s.uri.ends_with(&sha(&c)) {
            return ranged(s, &c);
        }
        Reply::status(404, "")
    }))
    .await;
    *me.lock().unwrap() = fake.url();
    Registry {
        fake,
        blob_status,
        weights,
    }
}

impl Registry {
    fn model(&self) -> String {
        format!("{}/library/m:latest", self.fake.host())
    }
}

/// A tmpfs mounted for the test's lifetime (unmounted on drop).
struct Mount(PathBuf);

impl Mount {
    fn tmpfs(at: &Path, opts: &str) -> Option<Mount> {
        std::fs::create_dir_all(at).ok()?;
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", opts, "tmpfs"])
            .arg(at)
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Mount(at.to_path_buf()))
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[tokio::test]
async fn disk_full_is_reported_and_leaves_no_manifest() {
    let reg = registry(3 << 20).await;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("models");
    let Some(_m) = Mount::tmpfs(&root, "size=1m") else {
        eprintln!("SKIPPED: cannot mount a tmpfs here (needs root)");
        return;
    };
    let store = Store::new(&root);
    let out = pull(&store, &reg.model(), true, cfg()).await;
    let e = out.error.expect("a full disk must fail the pull");
    assert!(
        e.contains("No space left on device") || e.contains("os error 28"),
        "{e}"
    );
    assert!(!has_manifests(&root), "no manifest after ENOSPC");
    assert!(
        !blob_files(&root).contains(&format!("sha256-{}", &sha(&reg.weights)[7..])),
        "the weights never became visible"
    );
}

#[tokio::test]
async fn read_only_models_dir_is_reported_and_leaves_no_manifest() {
    let reg = registry(64 << 10).await;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("models");
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    let _mount = if is_root {
        let Some(m) = Mount::tmpfs(&root, "size=1m,ro") else {
            eprintln!("SKIPPED: root without mount privileges; chmod is not enforced for root");
            return;
        };
        Some(m)
    } else {
        std::fs::create_dir_all(&root).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o555)).unwrap();
        None
    };
    let store = Store::new(&root);
    let out = pull(&store, &reg.model(), true, cfg()).await;
    let e = out.error.expect("a read-only store must fail the pull");
    assert!(
        e.contains("Read-only file system") || e.contains("Permission denied"),
        "{e}"
    );
    assert!(!has_manifests(&root));
    assert!(blob_files(&root).is_empty());
}

#[tokio::test]
async fn blob_server_errors_are_retried_a_bounded_number_of_times_then_reported() {
    let reg = registry(10_000).await;
    *reg.blob_status.lock().unwrap() = Some(500);
    let dir = tempfile::tempdir().unwrap();
    let store = Store::new(dir.path());
    let mut c = cfg();
    c.max_retries = 2;
    let out = pull(&store, &reg.model(), true, c).await;
    assert_eq!(out.error.as_deref(), Some("500: upstream trouble"));
    let hex = &sha(&reg.weights)[7..];
    let tries = reg.fake.count("GET", &format!("/cdn/sha256:{hex}"));
    assert_eq!(tries, 3, "one try plus two retries, then give up");
    assert_nothing_visible(dir.path());

    // A 404 is not retried.
    *reg.blob_status.lock().unwrap() = Some(404);
    let count = || reg.fake.count("GET", &format!("/cdn/sha256:{hex}"));
    let before = count();
    let mut c = cfg();
    c.max_retries = 2;
    let out = pull(&store, &reg.model(), true, c).await;
    assert_eq!(out.error.as_deref(), Some("404: upstream trouble"));
    assert_eq!(count() - before, 1, "a 404 is not retried");
    assert_nothing_visible(dir.path());
}
