//! Every seed recording of real Ollama traffic, replayed against ollmlx over a scripted
//! backend whose model mirrors the recording (same name, same events): the normalized answer
//! must match the recording, or differ only in documented ways (`known.rs`).

mod common;

use std::sync::Arc;
use std::time::Duration;

use ollmlx_conformance::http::Client;
use ollmlx_conformance::replay::{replay_case, ReplayOptions};
use ollmlx_conformance::report::{Outcome, Report};
use ollmlx_conformance::{mirror, serve};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_seed_recording_replays_against_ollmlx_with_a_pass_or_a_documented_difference() {
    let Some(cassettes) = common::seed_cassettes("seed replay") else {
        return;
    };
    let opts = ReplayOptions {
        timeout: Duration::from_secs(10),
        ..ReplayOptions::default()
    };
    let mut report = Report::default();
    for c in &cassettes {
        let server = serve::start(vec![Arc::new(mirror::backend(c))])
            .await
            .expect("start ollmlx");
        let client = Client::new(server.url(), opts.timeout).expect("client");
        report.cases.push(replay_case(&client, c, &opts).await);
    }
    println!("{}", report.table());
    let undocumented: Vec<&str> = report
        .cases
        .iter()
        .filter(|c| matches!(c.outcome, Outcome::Fail | Outcome::Error(_)))
        .map(|c| c.name.as_str())
        .collect();
    assert!(
        undocumented.is_empty(),
        "undocumented differences in {undocumented:?}\n{}",
        report.table()
    );
    let open: Vec<&str> = report
        .cases
        .iter()
        .filter(|c| matches!(c.outcome, Outcome::Open(_)))
        .map(|c| c.name.as_str())
        .collect();
    if !open.is_empty() {
        eprintln!(
            "\n!!!!!!!! {} seed recordings hit KNOWN OPEN incompatibilities (see docs/conformance.md): {open:?} !!!!!!!!\n",
            open.len()
        );
    }
}
