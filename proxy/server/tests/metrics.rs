//! `GET /metrics`: scrape after scripted requests through the whole stack (mock backend) and
//! check that counters, gauges and histogram buckets moved as they should.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use ollmlx_infer::{
    Backend, BackendFuture, BackendMetric, EmbedRequest, EmbedResponse, Event, EventStream, Request,
};
use ollmlx_mock::MockBackend;
use ollmlx_wire::ollama as wire;

/// The value of the sample whose line starts with `prefix` (name plus labels).
fn sample(text: &str, prefix: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(prefix) && l[prefix.len()..].starts_with(' '))
        .unwrap_or_else(|| panic!("no sample {prefix} in:\n{text}"))
        .rsplit(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

async fn scrape(state: Arc<ollmlx_server::AppState>) -> String {
    let r = send(state, req("GET", "/metrics", "")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(content_type(&r), "text/plain; version=0.0.4; charset=utf-8");
    body_string(r).await
}

#[tokio::test]
async fn requests_are_counted_by_route_and_status() {
    let st = state(Arc::new(mock()));
    let chat = r#"{"model":"mock","messages":[{"role":"user","content":"one two three"}]}"#;
    assert_eq!(
        send(st.clone(), req("POST", "/api/chat", chat))
            .await
            .status(),
        200
    );
    let _ = body_string(send(st.clone(), req("POST", "/api/chat", chat)).await).await;
    assert_eq!(
        send(st.clone(), req("POST", "/api/chat", "{"))
            .await
            .status(),
        400
    );
    assert_eq!(
        send(st.clone(), req("GET", "/api/nope", "")).await.status(),
        404
    );
    assert_eq!(
        send(st.clone(), req("GET", "/api/tags", "")).await.status(),
        200
    );
    let text = scrape(st.clone()).await;
    let chat_ok = r#"ollmlx_http_requests_total{route="/api/chat",status="200"}"#;
    assert_eq!(sample(&text, chat_ok), 2.0);
    assert_eq!(
        sample(
            &text,
            r#"ollmlx_http_requests_total{route="/api/chat",status="400"}"#
        ),
        1.0
    );
    assert_eq!(
        sample(
            &text,
            r#"ollmlx_http_requests_total{route="unmatched",status="404"}"#
        ),
        1.0
    );
    assert_eq!(
        sample(
            &text,
            r#"ollmlx_http_requests_total{route="/api/tags",status="200"}"#
        ),
        1.0
    );
    // The scrape itself is counted once its response is ready: the second scrape sees the first.
    let text = scrape(st).await;
    assert_eq!(
        sample(
            &text,
            r#"ollmlx_http_requests_total{route="/metrics",status="200"}"#
        ),
        1.0
    );
}

#[tokio::test]
async fn tokens_ttft_and_inter_token_histograms_move_with_generations() {
    let st = state(Arc::new(mock()));
    // Echo streams one delta per word: 4 deltas → 1 TTFT + 3 inter-token observations.
    let chat = r#"{"model":"mock","messages":[{"role":"user","content":"a b c d"}]}"#;
    let _ = body_string(send(st.clone(), req("POST", "/api/chat", chat)).await).await;
    let gen = r#"{"model":"mock","prompt":"x y","stream":false}"#;
    let _ = body_string(send(st.clone(), req("POST", "/api/generate", gen)).await).await;
    let oa = r#"{"model":"mock","messages":[{"role":"user","content":"p q r"}],"stream":true}"#;
    let _ = body_string(send(st.clone(), req("POST", "/v1/chat/completions", oa)).await).await;
    let text = scrape(st).await;
    assert_eq!(sample(&text, "ollmlx_generations_total"), 3.0);
    // The mock reports prompt_eval_count = words, eval_count = words.
    assert_eq!(sample(&text, "ollmlx_prompt_tokens_total"), 9.0);
    assert_eq!(sample(&text, "ollmlx_generated_tokens_total"), 9.0);
    // eval_duration 3000 ns per generation.
    assert_eq!(sample(&text, "ollmlx_eval_seconds_total"), 9e-6);
    assert_eq!(
        sample(&text, "ollmlx_time_to_first_token_seconds_count"),
        3.0
    );
    assert_eq!(
        sample(
            &text,
            r#"ollmlx_time_to_first_token_seconds_bucket{le="+Inf"}"#
        ),
        3.0
    );
    // A mock without delay answers well within 5 s.
    assert_eq!(
        sample(
            &text,
            r#"ollmlx_time_to_first_token_seconds_bucket{le="5"}"#
        ),
        3.0
    );
    assert_eq!(
        sample(&text, "ollmlx_inter_token_latency_seconds_count"),
        6.0
    );
    assert_eq!(
        sample(&text, "ollmlx_generation_duration_seconds_count"),
        3.0
    );
    assert_eq!(sample(&text, "ollmlx_generations_in_flight"), 0.0);
    assert_eq!(sample(&text, "ollmlx_generations_waiting"), 0.0);
    assert!(text.contains("# TYPE ollmlx_time_to_first_token_seconds histogram\n"));
}

#[tokio::test]
async fn slow_deltas_land_in_the_right_inter_token_buckets() {
    let st = state(Arc::new(mock().with_delay(Duration::from_millis(30))));
    let chat = r#"{"model":"mock","messages":[{"role":"user","content":"a b c"}]}"#;
    let _ = body_string(send(st.clone(), req("POST", "/api/chat", chat)).await).await;
    let text = scrape(st).await;
    // Two gaps of ~30 ms: above the 25 ms bound, within 1 s.
    assert_eq!(
        sample(&text, "ollmlx_inter_token_latency_seconds_count"),
        2.0
    );
    assert_eq!(
        sample(
            &text,
            r#"ollmlx_inter_token_latency_seconds_bucket{le="0.025"}"#
        ),
        0.0
    );
    assert_eq!(
        sample(
            &text,
            r#"ollmlx_inter_token_latency_seconds_bucket{le="1"}"#
        ),
        2.0
    );
    assert!(sample(&text, "ollmlx_time_to_first_token_seconds_sum") >= 0.03);
}

#[tokio::test]
async fn an_open_stream_is_in_flight_and_a_disconnect_releases_it() {
    use http_body_util::BodyExt;
    let st = state(Arc::new(mock().with_delay(Duration::from_millis(50))));
    let chat = r#"{"model":"mock","messages":[{"role":"user","content":"a b c d e f g h"}]}"#;
    let r = send(st.clone(), req("POST", "/api/chat", chat)).await;
    let mut b = r.into_body();
    let _first = b.frame().await.unwrap().unwrap();
    let text = scrape(st.clone()).await;
    assert_eq!(sample(&text, "ollmlx_generations_in_flight"), 1.0);
    assert_eq!(sample(&text, "ollmlx_generations_waiting"), 0.0);
    drop(b);
    let text = scrape(st).await;
    assert_eq!(sample(&text, "ollmlx_generations_in_flight"), 0.0);
    assert_eq!(
        sample(&text, "ollmlx_generation_duration_seconds_count"),
        1.0
    );
    // Cancelled before Done: no tokens are claimed.
    assert_eq!(sample(&text, "ollmlx_generated_tokens_total"), 0.0);
}

#[tokio::test]
async fn errors_before_and_during_the_stream_are_counted() {
    use ollmlx_infer::BackendError;
    use ollmlx_mock::{MockModel, Script};
    let fail_after = MockModel {
        script: Script::FailAfter(
            vec![Event::content("x")],
            BackendError::Internal("boom".into()),
        ),
        ..MockModel::echo("late:latest")
    };
    let st = state(Arc::new(MockBackend::new(vec![fail_after])));
    let r = send(
        st.clone(),
        req("POST", "/api/generate", r#"{"model":"late","prompt":"hi"}"#),
    )
    .await;
    let body = body_string(r).await;
    assert!(body.contains("boom"), "{body}");
    let r = send(
        st.clone(),
        req(
            "POST",
            "/api/generate",
            r#"{"model":"missing","prompt":"hi"}"#,
        ),
    )
    .await;
    assert_eq!(r.status(), 404);
    let text = scrape(st).await;
    assert_eq!(sample(&text, "ollmlx_generation_errors_total"), 1.0);
    assert_eq!(sample(&text, "ollmlx_generations_in_flight"), 0.0);
    assert_eq!(sample(&text, "ollmlx_generations_waiting"), 0.0);
}

/// The mock, plus one loaded model and engine samples from the `Backend::metrics` hook.
struct WithEngineMetrics(MockBackend);

impl Backend for WithEngineMetrics {
    fn name(&self) -> &str {
        "mlx"
    }
    fn has_model(&self, model: &str) -> BackendFuture<bool> {
        self.0.has_model(model)
    }
    fn generate(&self, req: Request) -> BackendFuture<EventStream> {
        self.0.generate(req)
    }
    fn embed(&self, req: EmbedRequest) -> BackendFuture<EmbedResponse> {
        self.0.embed(req)
    }
    fn list_models(&self) -> BackendFuture<Vec<wire::ListModel>> {
        self.0.list_models()
    }
    fn loaded(&self) -> BackendFuture<Vec<wire::ProcessModel>> {
        Box::pin(async {
            Ok(vec![wire::ProcessModel {
                name: "smollm2:135m".into(),
                model: "smollm2:135m".into(),
                size: 565_000_000,
                digest: String::new(),
                details: Default::default(),
                expires_at: ollmlx_wire::time::Timestamp::zero(),
                size_vram: 0,
                context_length: 4096,
            }])
        })
    }
    fn show(&self, req: wire::ShowRequest) -> BackendFuture<wire::ShowResponse> {
        self.0.show(req)
    }
    fn metrics(&self) -> Vec<BackendMetric> {
        vec![
            BackendMetric::counter("prefix_cache_hits_total", "Prompt-prefix cache hits.", 7.0),
            BackendMetric::gauge("batch_size", "Sequences in the decode batch.", 2.0)
                .with_label("model", "smollm2:135m"),
        ]
    }
}

#[tokio::test]
async fn loaded_models_and_backend_samples_are_exposed() {
    let st = state(Arc::new(WithEngineMetrics(mock())));
    let text = scrape(st).await;
    let labels = r#"{backend="mlx",model="smollm2:135m"}"#;
    assert_eq!(sample(&text, &format!("ollmlx_model_loaded{labels}")), 1.0);
    assert_eq!(
        sample(&text, &format!("ollmlx_model_memory_bytes{labels}")),
        565_000_000.0
    );
    assert_eq!(
        sample(&text, &format!("ollmlx_model_vram_bytes{labels}")),
        0.0
    );
    assert!(text.contains("# TYPE ollmlx_backend_prefix_cache_hits_total counter\n"));
    assert_eq!(
        sample(
            &text,
            r#"ollmlx_backend_prefix_cache_hits_total{backend="mlx"}"#
        ),
        7.0
    );
    assert!(text.contains("# TYPE ollmlx_backend_batch_size gauge\n"));
    assert_eq!(
        sample(
            &text,
            r#"ollmlx_backend_batch_size{backend="mlx",model="smollm2:135m"}"#
        ),
        2.0
    );
}

#[tokio::test]
async fn every_family_has_help_and_type_once() {
    let st = state(Arc::new(WithEngineMetrics(mock())));
    let text = scrape(st).await;
    let mut seen = std::collections::HashSet::new();
    for l in text.lines().filter(|l| l.starts_with("# TYPE ")) {
        let name = l.split(' ').nth(2).unwrap();
        assert!(seen.insert(name.to_string()), "duplicate TYPE for {name}");
        assert!(
            text.contains(&format!("# HELP {name} ")),
            "no HELP for {name}"
        );
    }
    // Every sample line belongs to a declared family.
    for l in text.lines().filter(|l| !l.starts_with('#')) {
        let name = l.split(['{', ' ']).next().unwrap();
        let base = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s).filter(|b| seen.contains(*b)))
            .unwrap_or(name);
        assert!(seen.contains(base), "sample {l} has no TYPE line");
    }
}

#[tokio::test]
async fn ollama_routes_are_unchanged_and_post_metrics_is_405() {
    let st = state(Arc::new(mock()));
    let r = send(st.clone(), req("POST", "/metrics", "")).await;
    assert_eq!(r.status(), 405);
    let r = send(st, req("GET", "/", "")).await;
    assert_eq!(body_string(r).await, "Ollama is running");
}
