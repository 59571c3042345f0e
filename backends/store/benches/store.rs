//! Store benchmarks (numbers in docs/performance.md, "Store"): pull throughput from a local fake
//! Ollama registry versus the same server's raw serving rate measured in the same run, resume
//! overhead after a cut, and `list`/`show` latency with 200 models through `StoreBackend`.
//! Run: `cargo bench -p ollmlx-store --bench store` (`STORE_BENCH_MB`, default 1024).

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use ollmlx_infer::Backend;
use ollmlx_store::{Store, StoreBackend};
use ollmlx_wire::ollama as wire;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A GGUF header with an architecture and no tensors (enough for `show`).
fn tiny_gguf() -> Vec<u8> {
    let mut b = b"GGUF".to_vec();
    b.extend(3u32.to_le_bytes());
    b.extend(0u64.to_le_bytes());
    b.extend(1u64.to_le_bytes());
    let key = "general.architecture";
    b.extend((key.len() as u64).to_le_bytes());
    b.extend(key.as_bytes());
    b.extend(8u32.to_le_bytes());
    b.extend(5u64.to_le_bytes());
    b.extend(b"llama");
    b
}

struct Reg {
    fake: Fake,
    weights: Arc<Vec<u8>>,
    cut: Arc<AtomicBool>,
}

/// Registry serving `library/m:<any tag>` with `weights` as the model layer; while `cut` is
/// set every ranged GET breaks after half its bytes.
async fn registry(weights: Vec<u8>) -> Reg {
    let weights = Arc::new(weights);
    let config = br#"{"model_format":"gguf","model_family":"llama","file_type":"F16"}"#.to_vec();
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
    let (wsha, csha) = (sha(&weights), sha(&config));
    let cut = Arc::new(AtomicBool::new(false));
    let (w, c2) = (weights.clone(), cut.clone());
    let fake = serve(Arc::new(move |s: &Seen| {
        if s.uri.contains("/manifests/") {
            return Reply::ok(manifest.clone());
        }
        if s.uri.ends_with(&wsha) {
            let r = ranged(s, &w);
            if c2.load(Ordering::SeqCst) && s.method == "GET" {
                if let Reply::Full {
                    status,
                    headers,
                    body,
                } = r
                {
                    let cut_at = body.len() / 2;
                    return Reply::Cut {
                        status,
                        headers,
                        body,
                        cut_at,
                    };
                }
            }
            return r;
        }
        if s.uri.ends_with(&csha) {
            return ranged(s, &config);
        }
        Reply::status(404, "")
    }))
    .await;
    Reg { fake, weights, cut }
}

/// Raw rate: one plain HTTP/1.1 GET of the whole blob, bytes counted and dropped.
async fn raw_get(reg: &Reg) -> (u64, Duration) {
    let t = Instant::now();
    let mut sock = tokio::net::TcpStream::connect(reg.fake.host())
        .await
        .unwrap();
    let req = format!(
        "GET /v2/library/m/blobs/{} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        sha(&reg.weights)
    );
    sock.write_all(req.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    loop {
        let k = sock.read(&mut buf).await.unwrap();
        if k == 0 {
            break;
        }
        n += k as u64;
    }
    (n, t.elapsed())
}

fn mbps(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / 1e6 / d.as_secs_f64()
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() - 1) as f64 * p).round() as usize]
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let mb: usize = std::env::var("STORE_BENCH_MB")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1024);
    let n = mb * 1_000_000;
    println!("generating {mb} MB of weights...");
    let reg = registry(data(n, 5)).await;
    let model = format!("{}/library/m:latest", reg.fake.host());

    // Raw serving rate, twice (take the better).
    let (b1, d1) = raw_get(&reg).await;
    let (b2, d2) = raw_get(&reg).await;
    assert!(b1 as usize > n && b2 as usize > n, "whole blob received");
    let raw = mbps(n as u64, d1).max(mbps(n as u64, d2));
    println!("raw serving rate: {raw:.0} MB/s ({d1:?}, {d2:?})");

    // Full pull into an empty store (parallel ranged parts + sha256 verify + rename).
    let dir = tempfile::tempdir().unwrap();
    let store = Store::new(dir.path());
    let t = Instant::now();
    let out = pull(&store, &model, true, cfg()).await;
    let full = t.elapsed();
    assert!(out.error.is_none(), "{:?}", out.error);
    let rate = mbps(n as u64, full);
    println!(
        "pull {mb} MB: {full:?} = {rate:.0} MB/s = {:.0}% of raw",
        100.0 * rate / raw
    );

    // Resume: every part is cut at half; then a second pull fetches only the rest.
    let dir2 = tempfile::tempdir().unwrap();
    let store2 = Store::new(dir2.path());
    reg.cut.store(true, Ordering::SeqCst);
    let out = pull(&store2, &model, true, cfg()).await;
    assert!(out.error.is_some(), "the cut pull must fail");
    reg.cut.store(false, Ordering::SeqCst);
    let seen_before = reg.fake.seen().len();
    let t = Instant::now();
    let out = pull(&store2, &model, true, cfg()).await;
    let resumed = t.elapsed();
    assert!(out.error.is_none(), "{:?}", out.error);
    let fetched: u64 = reg.fake.seen()[seen_before..]
        .iter()
        .filter_map(|s| s.range.as_deref().and_then(parse_range))
        .map(|(a, b)| b - a + 1)
        .sum();
    let ideal = full.as_secs_f64() * fetched as f64 / n as f64;
    println!(
        "resume: fetched {:.1}% of the blob again in {resumed:?} (a fresh pull of that much: {:.2}s; overhead {:+.0}%)",
        100.0 * fetched as f64 / n as f64,
        ideal,
        100.0 * (resumed.as_secs_f64() / ideal - 1.0)
    );
    drop(dir);
    drop(dir2);

    // list/show with 200 models (tiny GGUF weights) through StoreBackend.
    let small = registry(tiny_gguf()).await;
    let dir3 = tempfile::tempdir().unwrap();
    let store3 = Store::new(dir3.path());
    for i in 0..200 {
        let m = format!("{}/library/m:t{i}", small.fake.host());
        let out = pull(&store3, &m, true, cfg()).await;
        assert!(out.error.is_none(), "{:?}", out.error);
    }
    let backend = StoreBackend::new(store3);
    let mut list_ms = Vec::new();
    for _ in 0..30 {
        let t = Instant::now();
        let l = backend.list_models().await.unwrap();
        list_ms.push(t.elapsed().as_secs_f64() * 1e3);
        assert_eq!(l.len(), 200);
    }
    let mut show_ms = Vec::new();
    for i in 0..100 {
        let req: wire::ShowRequest = serde_json::from_value(serde_json::json!({
            "model": format!("{}/library/m:t{}", small.fake.host(), i % 200)
        }))
        .unwrap();
        let t = Instant::now();
        backend.show(req).await.unwrap();
        show_ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    println!(
        "list (200 models): p50 {:.2} ms, p95 {:.2} ms; show: p50 {:.3} ms, p95 {:.3} ms",
        pct(&mut list_ms, 0.5),
        pct(&mut list_ms, 0.95),
        pct(&mut show_ms, 0.5),
        pct(&mut show_ms, 0.95)
    );
}
