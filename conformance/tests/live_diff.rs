//! `diff` between two live servers (two in-process ollmlx; a fake upstream serving our golden
//! cassettes), and the failure modes of live runs: unreachable servers, hung answers.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ollmlx_conformance::cassette::Cassette;
use ollmlx_conformance::formats::read_dir;
use ollmlx_conformance::replay::{replay_dir, ReplayOptions};
use ollmlx_conformance::report::Outcome;
use ollmlx_conformance::scenarios::ModelSet;
use ollmlx_conformance::{live, scripted, serve, Error};
use ollmlx_upstream::test_util::{FakeUpstream, Reply, Step};

const T: Duration = Duration::from_secs(10);

fn golden_cassettes() -> Vec<Cassette> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../golden/cassettes");
    read_dir(&dir)
        .unwrap()
        .into_iter()
        .flat_map(|r| r.result.unwrap())
        .collect()
}

/// A fake "reference Ollama" answering each recorded request with its recording.
async fn fake_reference(cassettes: Vec<Cassette>) -> FakeUpstream {
    FakeUpstream::start(move |req| {
        let hit = cassettes.iter().find(|c| {
            c.request.method == req.method
                && c.request.path == req.path
                && c.request.body.as_bytes() == req.body
        });
        match hit {
            Some(c) => Reply {
                head_delay: Duration::ZERO,
                status: c.response.status,
                headers: c.response.headers.clone(),
                body: vec![Step::Chunk(c.response.body_text().into())],
            },
            None => Reply::new(599, "text/plain", "not recorded"),
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_in_process_ollmlx_instances_diff_clean_and_render_html() {
    let a = serve::start(vec![Arc::new(scripted::backend())])
        .await
        .unwrap();
    let b = serve::start(vec![Arc::new(scripted::backend())])
        .await
        .unwrap();
    let report = live::diff(a.url(), b.url(), &ModelSet::scripted(), &[], T)
        .await
        .unwrap();
    assert!(report.cases.len() >= 50);
    assert_eq!(report.failed(), 0, "\n{}", report.table());
    let html = report.html("diff", a.url(), b.url());
    assert!(html.contains(&report.summary()));
    assert!(report.table().ends_with(&format!("{}\n", report.summary())));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diff_against_a_fake_upstream_flags_exactly_the_incompatible_case() {
    let mut cassettes = golden_cassettes();
    let target = serve::start(vec![Arc::new(scripted::backend())])
        .await
        .unwrap();
    let same = fake_reference(cassettes.clone()).await;
    let report = live::diff(&same.url(), target.url(), &ModelSet::scripted(), &[], T)
        .await
        .unwrap();
    assert_eq!(report.failed(), 0, "\n{}", report.table());

    // The reference now words one error differently: only that case may fail.
    for c in &mut cassettes {
        if c.name == "chat_missing_model" {
            c.response.body = Some("{\"error\":\"model is missing\"}".into());
        }
    }
    let other = fake_reference(cassettes).await;
    let report = live::diff(&other.url(), target.url(), &ModelSet::scripted(), &[], T)
        .await
        .unwrap();
    let failed: Vec<&str> = report
        .cases
        .iter()
        .filter(|c| !c.passed())
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(failed, vec!["chat_missing_model"], "\n{}", report.table());
    assert!(
        report.table().ends_with("55 passed, 1 failed\n"),
        "{}",
        report.table()
    );
}

#[tokio::test]
async fn an_unreachable_reference_or_target_is_a_clear_error() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}", l.local_addr().unwrap());
    drop(l);
    let err = live::diff(&dead, &dead, &ModelSet::scripted(), &[], T)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Unreachable { .. }), "{err}");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../golden/cassettes");
    let err = replay_dir(&dir, &dead, &ReplayOptions::default())
        .await
        .unwrap_err();
    assert!(err.to_string().starts_with("cannot reach"), "{err}");
}

#[tokio::test]
async fn a_hung_answer_is_bounded_by_the_replay_timeout() {
    let hung = FakeUpstream::start(|_| Reply {
        head_delay: Duration::ZERO,
        status: 200,
        headers: vec![("Content-Type".into(), "application/x-ndjson".into())],
        body: vec![Step::Chunk("{\"done\":false}\n".into()), Step::Hang],
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    golden_cassettes()
        .into_iter()
        .find(|c| c.name == "chat_stream")
        .unwrap()
        .save(dir.path())
        .unwrap();
    let opts = ReplayOptions {
        timeout: Duration::from_millis(500),
        ..ReplayOptions::default()
    };
    let started = std::time::Instant::now();
    let report = replay_dir(dir.path(), &hung.url(), &opts).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        matches!(&report.cases[0].outcome, Outcome::Error(e) if e.contains("no complete answer")),
        "{:?}",
        report.cases[0].outcome
    );
    assert_eq!(report.summary(), "0 passed, 1 failed");
}

#[tokio::test]
async fn unreadable_cassettes_are_listed_and_counted_as_failures() {
    let target = serve::start(vec![Arc::new(scripted::backend())])
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    golden_cassettes()
        .into_iter()
        .find(|c| c.name == "version")
        .unwrap()
        .save(dir.path())
        .unwrap();
    std::fs::write(
        dir.path().join("broken.json"),
        "{\"format\":\"ollmlx-cassette/1\",",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("future.json"),
        "{\"format\":\"ollmlx-cassette/9\"}",
    )
    .unwrap();
    let report = replay_dir(dir.path(), target.url(), &ReplayOptions::default())
        .await
        .unwrap();
    assert_eq!(report.load_errors.len(), 2, "{:?}", report.load_errors);
    assert_eq!(report.summary(), "1 passed, 2 failed");
}
