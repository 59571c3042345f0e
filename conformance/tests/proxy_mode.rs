//! Proxy mode: a fake upstream serves each recording, and `ollmlx serve --upstream` (the server
//! stack with `OllamaUpstream` as its only backend, as `cli/src/cmd/serve.rs` builds it) must
//! hand the client the recorded answer byte for byte: status, content type, every body byte.

mod common;

use std::sync::Arc;
use std::time::Duration;

use ollmlx_conformance::http::Client;
use ollmlx_conformance::{serve, Cassette};
use ollmlx_upstream::test_util::{FakeUpstream, Reply, Step};
use ollmlx_upstream::{OllamaUpstream, OllamaUpstreamConfig};

fn reply(c: &Cassette) -> Reply {
    let body: Vec<Step> = match (&c.response.frames, &c.response.body) {
        (Some(f), _) => f.iter().map(|x| Step::Chunk(x.clone().into())).collect(),
        (None, Some(b)) => vec![Step::Chunk(b.clone().into())],
        (None, None) => Vec::new(),
    };
    Reply {
        head_delay: Duration::ZERO,
        status: c.response.status,
        headers: c.response.headers.clone(),
        body,
    }
}

/// Replay `c` through the transparent proxy; `Err` describes the first mismatch.
async fn through_proxy(c: &Cassette) -> Result<(), String> {
    let recorded = reply(c);
    let upstream = FakeUpstream::start(move |_| recorded.clone()).await;
    let backend = OllamaUpstream::new(&OllamaUpstreamConfig::new(upstream.url()))
        .map_err(|e| e.to_string())?
        .with_name("upstream");
    let server = serve::start(vec![Arc::new(backend)])
        .await
        .map_err(|e| e.to_string())?;
    let client = Client::new(server.url(), Duration::from_secs(10)).map_err(|e| e.to_string())?;
    let (status, ct, body) = client
        .send_raw(&c.request)
        .await
        .map_err(|e| e.to_string())?;
    let want_ct = c.response.header("content-type").unwrap_or_default();
    if status != c.response.status {
        return Err(format!("status {status}, recorded {}", c.response.status));
    }
    if ct != want_ct {
        return Err(format!("content-type {ct:?}, recorded {want_ct:?}"));
    }
    if body != c.response.body_text().as_bytes() {
        return Err(format!(
            "body differs ({} bytes, recorded {})",
            body.len(),
            c.response.body_text().len()
        ));
    }
    let seen = upstream.observed().requests();
    match seen.first() {
        Some(r) if r.body == c.request.body.as_bytes() && r.path == c.request.path => Ok(()),
        Some(r) => Err(format!(
            "upstream saw {} {} with a different body",
            r.method, r.path
        )),
        None => Err("the request never reached the upstream".into()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_mode_reproduces_every_seed_recording_byte_for_byte() {
    let Some(cassettes) = common::seed_cassettes("proxy mode") else {
        return;
    };
    let mut failures = Vec::new();
    for c in &cassettes {
        if let Err(e) = through_proxy(c).await {
            failures.push(format!("{}: {e}", c.name));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} recordings differ through the proxy:\n{}",
        failures.len(),
        cassettes.len(),
        failures.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_mode_reproduces_our_golden_cassettes_byte_for_byte() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../golden/cassettes");
    let reports = ollmlx_conformance::formats::read_dir(&dir).expect("golden/cassettes exists");
    let mut n = 0;
    for r in reports {
        for c in r.result.expect("our cassettes parse") {
            n += 1;
            if let Err(e) = through_proxy(&c).await {
                panic!("{}: {e}", c.name);
            }
        }
    }
    assert!(n > 40, "only {n} golden cassettes");
}
