//! `ollmlx bench` end to end: the real binary against an in-process ollmlx server over the
//! scripted mock backend, with tiny workloads; the JSON report and the plots are checked.

use std::process::Command;
use std::sync::Arc;

use serde_json::Value;

async fn mock_server() -> ollmlx_conformance::serve::Running {
    ollmlx_conformance::serve::start(vec![Arc::new(ollmlx_conformance::scripted::backend())])
        .await
        .unwrap()
}

async fn bench(url: &str, args: &[&str]) -> std::process::Output {
    let url = url.to_string();
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_ollmlx"))
            .arg("bench")
            .args(&args)
            .env("OLLAMA_HOST", url)
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

fn row<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("no row {name} in {report:#}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_writes_a_json_report_with_every_workload() {
    let server = mock_server().await;
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("out.json");
    let out = bench(
        server.url(),
        &[
            "mock",
            "--prefill-tokens",
            "8,16",
            "--decode-tokens",
            "6",
            "--concurrency",
            "1,3",
            "--stream-tokens",
            "5",
            "--turns",
            "2",
            "--turn-tokens",
            "4",
            "--long-tokens",
            "64",
            "--runs",
            "2",
            "--label",
            "mock-engine",
            "--json",
            json.to_str().unwrap(),
        ],
    )
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.starts_with("WORKLOAD"), "{stdout}");
    assert!(stdout.contains("concurrency-3"), "{stdout}");
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["schema"], 1);
    assert_eq!(report["label"], "mock-engine");
    assert_eq!(report["model"], "mock");
    // The mock reports load_duration = 1000 ns on its load answer and each generation.
    assert!(report["cold_load_ms"].as_f64().is_some());
    let names: Vec<&str> = report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "prefill-8",
            "prefill-16",
            "decode-6",
            "concurrency-1",
            "concurrency-3",
            "chat-turn-1",
            "chat-turn-2",
            "long-64"
        ]
    );
    // The echo model evaluates one prompt token per word: the prompt has the asked length.
    let p16 = row(&report, "prefill-16");
    assert_eq!(p16["runs"], 2);
    assert_eq!(p16["prompt_tokens"], 15.0);
    assert_eq!(p16["output_tokens"], 1.0);
    assert!(p16["prefill_tps"].as_f64().unwrap() > 0.0);
    assert!(p16["ttft_p50_ms"].as_f64().unwrap() >= 0.0);
    // Decode: num_predict 6 caps the echo at 6 tokens, so 5 inter-chunk gaps were timed.
    let d = row(&report, "decode-6");
    assert_eq!(d["output_tokens"], 6.0);
    assert!(d["decode_tps"].as_f64().unwrap() > 0.0);
    assert!(d["itl_p50_ms"].as_f64().unwrap() >= 0.0);
    assert!(d["itl_p95_ms"].as_f64().unwrap() >= d["itl_p50_ms"].as_f64().unwrap());
    // Concurrency: 3 streams of 5 tokens each, aggregate = 15 tokens over the wall time.
    let c3 = row(&report, "concurrency-3");
    assert_eq!(c3["runs"], 3);
    assert_eq!(c3["x"], 3);
    let agg = c3["aggregate_tps"].as_f64().unwrap();
    let wall = c3["wall_ms"].as_f64().unwrap();
    assert!((agg - 15.0 / (wall / 1e3)).abs() < 1e-6 * agg.max(1.0));
    // Chat: one request per turn; the echo answers with the user's words (capped at 4).
    let t2 = row(&report, "chat-turn-2");
    assert_eq!(t2["runs"], 1);
    assert_eq!(t2["output_tokens"], 4.0);
    let long = row(&report, "long-64");
    assert_eq!(long["prompt_tokens"], 63.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_draws_png_plots() {
    let server = mock_server().await;
    let dir = tempfile::tempdir().unwrap();
    let plots = dir.path().join("plots");
    let out = bench(
        server.url(),
        &[
            "mock",
            "--workloads",
            "prefill,concurrency,chat",
            "--prefill-tokens",
            "8",
            "--concurrency",
            "1,2",
            "--stream-tokens",
            "3",
            "--turns",
            "2",
            "--runs",
            "1",
            "--plot",
            plots.to_str().unwrap(),
        ],
    )
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if stderr.contains("no TTF font found") {
        eprintln!("SKIPPED: no system font for plot labels");
        return;
    }
    assert!(out.status.success(), "{stderr}");
    for f in [
        "concurrency.png",
        "concurrency_ttft.png",
        "prefill.png",
        "chat_ttft.png",
    ] {
        let bytes = std::fs::read(plots.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{f} is not a PNG");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_workloads_and_missing_models_are_errors() {
    let server = mock_server().await;
    let out = bench(server.url(), &["mock", "--workloads", "decode,warp"]).await;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("unknown workload \"warp\""), "{stderr}");
    let out = bench(
        server.url(),
        &["nosuch", "--workloads", "decode", "--runs", "1"],
    )
    .await;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not found"), "{stderr}");
}
