//! Golden tests over the scripted backend: `insta` snapshots of ollmlx's normalized answer to
//! every scenario (under `golden/snapshots`, reviewed like code), and replay of our own
//! cassettes (`golden/cassettes`, regenerate with `OLLMLX_REGEN_GOLDEN=1`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ollmlx_conformance::http::Client;
use ollmlx_conformance::normalize::Normalizer;
use ollmlx_conformance::replay::{replay_dir, ReplayOptions};
use ollmlx_conformance::scenarios::{suite, ModelSet};
use ollmlx_conformance::{live, scripted, serve};

fn golden() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../golden")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenario_suite_snapshots_over_the_scripted_backend() {
    let server = serve::start(vec![Arc::new(scripted::backend())])
        .await
        .unwrap();
    let client = Client::new(server.url(), Duration::from_secs(10)).unwrap();
    let norm = Normalizer::default();
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(golden().join("snapshots"));
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    for s in suite(&ModelSet::scripted()) {
        let resp = client.send(&s.request).await.unwrap();
        let doc = norm.response(&resp);
        settings.set_description(format!(
            "{} {} {}",
            s.request.method, s.request.path, s.request.body
        ));
        settings.bind(|| insta::assert_json_snapshot!(s.name, doc));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn golden_cassettes_replay_against_the_scripted_backend() {
    let server = serve::start(vec![Arc::new(scripted::backend())])
        .await
        .unwrap();
    let dir = golden().join("cassettes");
    if std::env::var_os("OLLMLX_REGEN_GOLDEN").is_some() {
        let _ = std::fs::remove_dir_all(&dir);
        let written = live::record(
            server.url(),
            &dir,
            &ModelSet::scripted(),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
        eprintln!("wrote {} cassettes to {}", written.len(), dir.display());
    }
    let report = replay_dir(&dir, server.url(), &ReplayOptions::default())
        .await
        .unwrap();
    assert!(report.cases.len() >= 50, "{}", report.table());
    assert_eq!(report.failed(), 0, "\n{}", report.table());
}
