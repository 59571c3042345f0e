//! Protocol-layer benchmark: what the server itself costs, against an instant backend.
//!
//! `cargo bench -p ollmlx-server --bench http` prints three measurements (see
//! docs/performance.md for the numbers and how to read them):
//! 1. NDJSON streaming throughput on one connection (chunks/s);
//! 2. added latency of a non-streaming `/api/chat` over HTTP versus calling the backend directly;
//! 3. proxy mode's added p50/p99 latency versus talking to the upstream directly, at 1 and 64
//!    concurrent streams.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use ollmlx_dialect::Codec;
use ollmlx_infer::{Backend, ChatInput, DoneReason, Event, Input, Message, Request, Stats};
use ollmlx_mock::{MockBackend, MockModel};
use ollmlx_server::{serve, AppState, BackendRouter, HostPolicy, Origins, StackConfig};
use ollmlx_upstream::{OllamaUpstream, OllamaUpstreamConfig};

type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

fn client() -> HttpClient {
    Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(256)
        .build_http()
}

async fn start(backend: Arc<dyn Backend>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let state = Arc::new(AppState::new(BackendRouter::new(vec![backend])));
    let cfg = StackConfig {
        origins: Origins::new(Vec::new()),
        hosts: HostPolicy::for_bind(addr, String::new(), vec![]),
    };
    tokio::spawn(serve(listener, state, cfg, std::future::pending()));
    format!("http://{addr}")
}

fn post(url: &str, body: &str) -> http::Request<Full<Bytes>> {
    http::Request::post(url)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

fn pct(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn us(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

async fn streaming_throughput() {
    const N: usize = 200_000;
    let mut events: Vec<Event> = (0..N).map(|_| Event::content("x")).collect();
    events.push(Event::Done {
        reason: DoneReason::Stop,
        stats: Stats::default(),
        context: None,
    });
    let base = start(Arc::new(MockBackend::new(vec![MockModel::scripted(
        "fast:latest",
        events,
    )])))
    .await;
    let c = client();
    let body = r#"{"model":"fast","messages":[{"role":"user","content":"go"}]}"#;
    let mut best = 0f64;
    for _ in 0..3 {
        let t = Instant::now();
        let resp = c
            .request(post(&format!("{base}/api/chat"), body))
            .await
            .unwrap();
        let mut b = resp.into_body();
        let mut lines = 0usize;
        while let Some(f) = b.frame().await {
            if let Ok(d) = f.unwrap().into_data() {
                lines += d.iter().filter(|&&c| c == b'\n').count();
            }
        }
        assert_eq!(lines, N + 1);
        best = best.max(lines as f64 / t.elapsed().as_secs_f64());
    }
    println!(
        "| NDJSON streaming, one connection, {N} chunks (best of 3) | {:.0} chunks/s |",
        best
    );
}

async fn added_latency_non_stream() {
    const N: usize = 2000;
    let backend = Arc::new(MockBackend::new(vec![MockModel::echo("mock:latest")]));
    let base = start(backend.clone()).await;
    let c = client();
    let body =
        r#"{"model":"mock","stream":false,"messages":[{"role":"user","content":"hello world"}]}"#;
    let req = Request {
        model: "mock".into(),
        input: Input::Chat(ChatInput {
            messages: vec![Message {
                role: "user".into(),
                content: "hello world".into(),
                ..Default::default()
            }],
            tools: vec![],
        }),
        stream: false,
        ..Default::default()
    };
    let mut direct = Vec::with_capacity(N);
    let mut http = Vec::with_capacity(N);
    for i in 0..N * 2 {
        // Interleave the two paths so drift affects both equally.
        if i % 2 == 0 {
            let t = Instant::now();
            let mut codec = ollmlx_dialect::ollama::ChatCodec::new(&req);
            let mut s = backend.generate(req.clone()).await.unwrap();
            while let Some(ev) = s.next().await {
                codec.collect(&ev.unwrap());
            }
            let _ = codec.body();
            direct.push(t.elapsed());
        } else {
            let t = Instant::now();
            let resp = c
                .request(post(&format!("{base}/api/chat"), body))
                .await
                .unwrap();
            let _ = resp.into_body().collect().await.unwrap();
            http.push(t.elapsed());
        }
    }
    let (d50, d99) = (pct(&mut direct, 0.5), pct(&mut direct, 0.99));
    let (h50, h99) = (pct(&mut http, 0.5), pct(&mut http, 0.99));
    println!(
        "| non-stream /api/chat, backend called directly (p50 / p99) | {} / {} |",
        us(d50),
        us(d99)
    );
    println!(
        "| non-stream /api/chat over HTTP through the full stack (p50 / p99) | {} / {} |",
        us(h50),
        us(h99)
    );
    println!(
        "| added by the server (p50 / p99) | {} / {} |",
        us(h50.saturating_sub(d50)),
        us(h99.saturating_sub(d99))
    );
}

async fn proxy_latency(concurrency: usize) {
    let upstream = start(Arc::new(MockBackend::new(vec![MockModel::echo(
        "mock:latest",
    )])))
    .await;
    let proxy_backend = OllamaUpstream::new(&OllamaUpstreamConfig::new(upstream.clone())).unwrap();
    let proxy = start(Arc::new(proxy_backend)).await;
    let body = r#"{"model":"mock","messages":[{"role":"user","content":"one two three four five six seven eight"}]}"#;
    let per_task = (4000 / concurrency).max(20);
    let mut direct = Vec::new();
    let mut proxied = Vec::new();
    for round in 0..2 {
        for (target, out) in [(&upstream, &mut direct), (&proxy, &mut proxied)] {
            let c = client();
            let mut tasks = Vec::new();
            for _ in 0..concurrency {
                let c = c.clone();
                let url = format!("{target}/api/chat");
                tasks.push(tokio::spawn(async move {
                    let mut v = Vec::with_capacity(per_task);
                    for _ in 0..per_task {
                        let t = Instant::now();
                        let resp = c.request(post(&url, body)).await.unwrap();
                        let _ = resp.into_body().collect().await.unwrap();
                        v.push(t.elapsed());
                    }
                    v
                }));
            }
            for t in tasks {
                let v = t.await.unwrap();
                if round == 1 {
                    out.extend(v); // round 0 warms pools and caches
                }
            }
        }
    }
    let (d50, d99) = (pct(&mut direct, 0.5), pct(&mut direct, 0.99));
    let (p50, p99) = (pct(&mut proxied, 0.5), pct(&mut proxied, 0.99));
    println!(
        "| proxy mode, {concurrency} concurrent streams: direct p50/p99 {} / {}, through ollmlx {} / {} | added {} / {} |",
        us(d50),
        us(d99),
        us(p50),
        us(p99),
        us(p50.saturating_sub(d50)),
        us(p99.saturating_sub(d99))
    );
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        println!("| measurement | result |");
        println!("|---|---|");
        streaming_throughput().await;
        added_latency_non_stream().await;
        proxy_latency(1).await;
        proxy_latency(64).await;
    });
}
