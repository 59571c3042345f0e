//! Resume and verification of the streaming download engine (blobs hashed while they arrive):
//! a pull cut inside a part resumes from that part's contiguous on-disk prefix, and the resumed
//! pull still verifies every byte of the blob, including the ones a previous run wrote.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use common::*;
use ollmlx_store::Store;

/// A 3,000,000-byte blob is one upstream part (parts are at least 100 MB) requested as three
/// 1 MiB-bounded chunks.
const N: usize = 3_000_000;
const MIB: u64 = 1 << 20;

struct World {
    fake: Fake,
    weights: Vec<u8>,
    /// GETs starting at this offset are cut after 1000 bytes (`u64::MAX`: none).
    cut_from: Arc<AtomicU64>,
    dir: tempfile::TempDir,
    store: Store,
}

impl World {
    async fn new() -> World {
        let weights = data(N, 11);
        let config = br#"{"model_format":"gguf","model_family":"llama"}"#.to_vec();
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
        let cut_from = Arc::new(AtomicU64::new(u64::MAX));
        let (w, c, cut) = (weights.clone(), config.clone(), cut_from.clone());
        let (wsha, csha) = (sha(&weights), sha(&config));
        let fake = serve(Arc::new(move |s: &Seen| {
            if s.uri.contains("/manifests/") {
                return Reply::ok(manifest.clone());
            }
            if s.uri.ends_with(&csha) {
                return ranged(s, &c);
            }
            if !s.uri.ends_with(&wsha) {
                return Reply::status(404, "");
            }
            let r = ranged(s, &w);
            let start = s.range.as_deref().and_then(parse_range).map(|r| r.0);
            match r {
                Reply::Full {
                    status,
                    headers,
                    body,
                } if s.method == "GET" && start == Some(cut.load(Ordering::SeqCst)) => Reply::Cut {
                    status,
                    headers,
                    body,
                    cut_at: 1000,
                },
                r => r,
            }
        }))
        .await;
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        World {
            fake,
            weights,
            cut_from,
            dir,
            store,
        }
    }

    async fn pull(&self) -> Outcome {
        let model = format!("{}/library/m:latest", self.fake.host());
        pull(&self.store, &model, true, cfg()).await
    }

    fn blob(&self, suffix: &str) -> std::path::PathBuf {
        self.dir
            .path()
            .join(format!("blobs/sha256-{}{suffix}", &sha(&self.weights)[7..]))
    }

    /// `Completed` of the saved part 0.
    fn completed(&self) -> u64 {
        let v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(self.blob("-partial-0")).unwrap()).unwrap();
        assert_eq!(v["Size"], N as u64, "one part: {v}");
        v["Completed"].as_u64().unwrap()
    }

    fn weight_ranges(&self) -> Vec<(u64, u64)> {
        let mut r: Vec<(u64, u64)> = self
            .fake
            .ranges(&sha(&self.weights)[7..])
            .iter()
            .filter_map(|r| parse_range(r))
            .collect();
        r.sort();
        r
    }
}

#[tokio::test]
async fn a_part_is_fetched_as_file_order_chunks_and_verified_while_streaming() {
    let w = World::new().await;
    let out = w.pull().await;
    assert!(out.error.is_none(), "{:?}", out.error);
    assert_eq!(
        w.weight_ranges(),
        vec![(0, MIB - 1), (MIB, 2 * MIB - 1), (2 * MIB, N as u64 - 1)]
    );
    assert_eq!(std::fs::read(w.blob("")).unwrap(), w.weights);
    assert!(blob_files(w.dir.path())
        .iter()
        .all(|f| !f.contains("partial")));
}

#[tokio::test]
async fn a_cut_inside_a_part_resumes_from_its_contiguous_prefix_and_fetches_each_byte_once() {
    let w = World::new().await;
    w.cut_from.store(MIB, Ordering::SeqCst);
    let first = w.pull().await;
    assert!(
        first.error.is_some(),
        "the cut fails the pull without retries"
    );
    assert_only_partials(w.dir.path());
    // the prefix saved is contiguous: at most the first chunk plus the 1000 bytes of the cut one
    let done = w.completed();
    assert!(done <= MIB + 1000, "{done}");
    let before = w.fake.ranges(&sha(&w.weights)[7..]).len();

    w.cut_from.store(u64::MAX, Ordering::SeqCst);
    let second = w.pull().await;
    assert!(second.error.is_none(), "{:?}", second.error);
    let all = w.fake.ranges(&sha(&w.weights)[7..]);
    let mut resumed: Vec<(u64, u64)> = all[before..]
        .iter()
        .filter_map(|r| parse_range(r))
        .collect();
    resumed.sort();
    assert_eq!(
        resumed[0].0, done,
        "resumed at the saved prefix: {resumed:?}"
    );
    for pair in resumed.windows(2) {
        assert_eq!(pair[0].1 + 1, pair[1].0, "no gap, no overlap: {resumed:?}");
    }
    assert_eq!(resumed.last().unwrap().1, N as u64 - 1);
    assert_eq!(std::fs::read(w.blob("")).unwrap(), w.weights);
}

#[tokio::test]
async fn a_corrupted_prefix_from_an_earlier_run_is_detected_on_resume_and_removed() {
    let w = World::new().await;
    w.cut_from.store(MIB, Ordering::SeqCst);
    assert!(w.pull().await.error.is_some());
    let done = w.completed();
    assert!(done > 0, "something was saved");
    // flip a byte the part file says is already downloaded
    let partial = w.blob("-partial");
    let mut bytes = std::fs::read(&partial).unwrap();
    bytes[done as usize / 2] ^= 0xff;
    std::fs::write(&partial, &bytes).unwrap();

    w.cut_from.store(u64::MAX, Ordering::SeqCst);
    let out = w.pull().await;
    let err = out
        .error
        .expect("the corrupted prefix must fail verification");
    assert!(
        err.starts_with(&format!(
            "digest mismatch, file must be downloaded again: want {}, got sha256:",
            sha(&w.weights)
        )),
        "{err}"
    );
    assert_nothing_visible(w.dir.path());
    assert!(
        blob_files(w.dir.path())
            .iter()
            .all(|f| !f.contains(&sha(&w.weights)[7..])),
        "the bad data and its part files are gone"
    );
    // and the next pull downloads it cleanly
    let out = w.pull().await;
    assert!(out.error.is_none(), "{:?}", out.error);
    assert_eq!(std::fs::read(w.blob("")).unwrap(), w.weights);
}
