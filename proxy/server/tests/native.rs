//! In-process tests of the native (`/api/*`) routes over the full stack and the mock backend.

mod common;

use std::sync::Arc;

use common::*;
use serde_json::Value;

#[tokio::test]
async fn root_answers_ollama_is_running_for_get_and_head() {
    let r = send(state(Arc::new(mock())), req("GET", "/", "")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(content_type(&r), "text/plain; charset=utf-8");
    assert_eq!(body_string(r).await, "Ollama is running");
    let r = send(state(Arc::new(mock())), req("HEAD", "/", "")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(body_string(r).await, "");
}

#[tokio::test]
async fn version_is_numeric_and_at_least_the_matched_api() {
    let r = send(state(Arc::new(mock())), req("GET", "/api/version", "")).await;
    assert_eq!(content_type(&r), "application/json; charset=utf-8");
    let v: Value = serde_json::from_str(&body_string(r).await).unwrap();
    let parts: Vec<u32> = v["version"]
        .as_str()
        .unwrap()
        .split('.')
        .map(|p| p.parse().unwrap())
        .collect();
    assert!(parts >= vec![0, 33, 0], "{parts:?}");
}

#[tokio::test]
async fn unknown_path_is_gin_404_and_wrong_method_is_405() {
    let r = send(state(Arc::new(mock())), req("GET", "/api/nope", "")).await;
    assert_eq!(r.status(), 404);
    assert_eq!(body_string(r).await, "404 page not found");
    let r = send(state(Arc::new(mock())), req("GET", "/api/show", "")).await;
    assert_eq!(r.status(), 405);
    assert_eq!(body_string(r).await, "405 method not allowed");
}

#[tokio::test]
async fn empty_and_malformed_bodies_get_upstream_errors() {
    let cases = [
        ("/api/chat", "", 400, "missing request body"),
        ("/api/chat", "{bad", 400, "invalid character 'b' looking for beginning of object key string"),
        ("/api/generate", "xyz", 400, "invalid character 'x' looking for beginning of value"),
        ("/api/generate", r#"{"model":"mock","prompt":5}"#, 400, "json: cannot unmarshal number into Go struct field GenerateRequest.prompt of type string"),
        ("/api/chat", "null", 400, "model is required"),
        ("/api/generate", r#"{"prompt":"x"}"#, 404, "model '' not found"),
        ("/api/chat", r#"{"model":"nope","messages":[{"role":"user","content":"x"}]}"#, 404, "model 'nope' not found"),
        ("/api/embed", r#"{"model":"nope","input":"x"}"#, 404, "model \"nope\" not found, try pulling it first"),
        ("/api/show", r#"{"model":"nope"}"#, 404, "model 'nope:latest' not found"),
        ("/api/show", r#"{}"#, 400, "model is required"),
        ("/api/chat", r#"{"model":"mock","top_logprobs":21}"#, 400, "top_logprobs must be between 0 and 20"),
        ("/api/chat", r#"{"model":"mock","messages":[{"role":"user","content":"x","images":["%%%"]}]}"#, 400, "illegal base64 data at input byte 0"),
        ("/api/generate", r#"{"model":"mock","prompt":"x","options":{"temperature":"hot"}}"#, 500, "option \"temperature\" must be of type float32"),
        ("/api/pull", r#"{"model":"../../etc/passwd"}"#, 400, "invalid model name"),
    ];
    for (path, body, status, msg) in cases {
        let r = send(state(Arc::new(mock())), req("POST", path, body)).await;
        assert_eq!(r.status(), status, "{path} {body}");
        assert_eq!(
            content_type(&r),
            "application/json; charset=utf-8",
            "{path} {body}"
        );
        let v: Value = serde_json::from_str(&body_string(r).await).unwrap();
        assert_eq!(v["error"], msg, "{path} {body}");
    }
}

#[tokio::test]
async fn chat_streams_ndjson_and_ends_with_done() {
    let body = r#"{"model":"mock","messages":[{"role":"user","content":"hello big world"}]}"#;
    let r = send(state(Arc::new(mock())), req("POST", "/api/chat", body)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(content_type(&r), "application/x-ndjson");
    let text = body_string(r).await;
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4);
    let content: String = lines
        .iter()
        .map(|l| l["message"]["content"].as_str().unwrap())
        .collect();
    assert_eq!(content, "hello big world");
    assert!(lines[..3]
        .iter()
        .all(|l| l["done"] == false && l.get("eval_count").is_none()));
    let last = lines.last().unwrap();
    assert_eq!(last["done"], true);
    assert_eq!(last["done_reason"], "stop");
    assert_eq!(last["eval_count"], 3);
}

#[tokio::test]
async fn chat_non_stream_is_one_json_object() {
    let body = r#"{"model":"mock","stream":false,"messages":[{"role":"user","content":"a b"}]}"#;
    let r = send(state(Arc::new(mock())), req("POST", "/api/chat", body)).await;
    assert_eq!(content_type(&r), "application/json; charset=utf-8");
    let v: Value = serde_json::from_str(&body_string(r).await).unwrap();
    assert_eq!(v["message"]["content"], "a b");
    assert_eq!(v["done"], true);
}

#[tokio::test]
async fn generate_with_empty_prompt_loads_and_keep_alive_zero_unloads() {
    let r = send(
        state(Arc::new(mock())),
        req("POST", "/api/generate", r#"{"model":"mock"}"#),
    )
    .await;
    assert_eq!(content_type(&r), "application/json; charset=utf-8");
    let v: Value = serde_json::from_str(&body_string(r).await).unwrap();
    assert_eq!(v["done_reason"], "load");
    assert_eq!(v["response"], "");
    let r = send(
        state(Arc::new(mock())),
        req(
            "POST",
            "/api/generate",
            r#"{"model":"mock","keep_alive":0}"#,
        ),
    )
    .await;
    let v: Value = serde_json::from_str(&body_string(r).await).unwrap();
    assert_eq!(v["done_reason"], "unload");
}

#[tokio::test]
async fn error_after_stream_started_is_a_trailing_error_line() {
    use ollmlx_infer::{BackendError, Event};
    use ollmlx_mock::{MockBackend, MockModel, Script};
    let mut m = MockModel::echo("bad:latest");
    m.script = Script::FailAfter(
        vec![Event::content("partial")],
        BackendError::Internal("runner crashed".into()),
    );
    let r = send(
        state(Arc::new(MockBackend::new(vec![m]))),
        req("POST", "/api/generate", r#"{"model":"bad","prompt":"x"}"#),
    )
    .await;
    assert_eq!(r.status(), 200);
    let text = body_string(r).await;
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[1], r#"{"error":"runner crashed"}"#);
}

#[tokio::test]
async fn error_before_stream_started_keeps_its_status() {
    use ollmlx_infer::BackendError;
    use ollmlx_mock::{MockBackend, MockModel, Script};
    let mut m = MockModel::echo("busy:latest");
    m.script = Script::FailBefore(BackendError::Upstream {
        status: 429,
        message: "rate limit exceeded".into(),
    });
    let r = send(
        state(Arc::new(MockBackend::new(vec![m]))),
        req(
            "POST",
            "/api/chat",
            r#"{"model":"busy","messages":[{"role":"user","content":"x"}]}"#,
        ),
    )
    .await;
    assert_eq!(r.status(), 429);
    assert_eq!(body_string(r).await, r#"{"error":"rate limit exceeded"}"#);
}

#[tokio::test]
async fn tags_lists_models_and_embed_normalizes() {
    let r = send(state(Arc::new(mock())), req("GET", "/api/tags", "")).await;
    let v: Value = serde_json::from_str(&body_string(r).await).unwrap();
    let names: Vec<&str> = v["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 2);
    assert!(names.contains(&"mock:latest"));
    let r = send(
        state(Arc::new(mock())),
        req(
            "POST",
            "/api/embed",
            r#"{"model":"mock","input":["abc","de"]}"#,
        ),
    )
    .await;
    let v: Value = serde_json::from_str(&body_string(r).await).unwrap();
    for e in v["embeddings"].as_array().unwrap() {
        let n: f64 = e
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap().powi(2))
            .sum();
        assert!((n - 1.0).abs() < 1e-5);
    }
}

#[tokio::test]
async fn cors_rejects_foreign_origins_and_allows_local_ones() {
    let mut r = req("POST", "/api/tags", "");
    r.headers_mut()
        .insert("origin", "https://evil.example".parse().unwrap());
    *r.method_mut() = http::Method::GET;
    let resp = send(state(Arc::new(mock())), r).await;
    assert_eq!(resp.status(), 403);
    assert_eq!(body_string(resp).await, "");

    let mut r = req("OPTIONS", "/api/chat", "");
    r.headers_mut()
        .insert("origin", "http://localhost:3000".parse().unwrap());
    let resp = send(state(Arc::new(mock())), r).await;
    assert_eq!(resp.status(), 204);
    assert_eq!(
        resp.headers()["access-control-allow-origin"],
        "http://localhost:3000"
    );
}

#[tokio::test]
async fn host_check_rejects_rebinding_names_on_loopback() {
    let mut r = req("GET", "/api/tags", "");
    r.headers_mut()
        .insert("host", "attacker.example:11434".parse().unwrap());
    let resp = send(state(Arc::new(mock())), r).await;
    assert_eq!(resp.status(), 403);
}

#[tokio::test]
async fn client_disconnect_cancels_the_generation() {
    use http_body_util::BodyExt;
    let backend = mock().with_delay(std::time::Duration::from_millis(30));
    let counters = backend.counters.clone();
    let body = r#"{"model":"mock","messages":[{"role":"user","content":"a b c d e f g h i j"}]}"#;
    let r = send(state(Arc::new(backend)), req("POST", "/api/chat", body)).await;
    let mut b = r.into_body();
    let first = b.frame().await.unwrap().unwrap();
    assert!(first.is_data());
    drop(b);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(
        counters.cancelled.load(std::sync::atomic::Ordering::SeqCst),
        1
    );
    assert_eq!(
        counters.completed.load(std::sync::atomic::Ordering::SeqCst),
        0
    );
}

#[tokio::test]
async fn oversized_bodies_are_refused_with_413() {
    let mut st =
        ollmlx_server::AppState::new(ollmlx_server::BackendRouter::new(vec![Arc::new(mock())]));
    st.body_limit = 1024;
    let big = format!(r#"{{"model":"mock","prompt":"{}"}}"#, "x".repeat(4096));
    let r = send(Arc::new(st), req("POST", "/api/generate", &big)).await;
    assert_eq!(r.status(), 413);
    let v: Value = serde_json::from_str(&body_string(r).await).unwrap();
    assert_eq!(v["error"], "request body too large");
}

#[tokio::test]
async fn allowed_origins_get_the_allow_origin_header_and_same_host_is_not_cors() {
    let mut r = req("GET", "/api/tags", "");
    r.headers_mut()
        .insert("origin", "vscode-webview://abc".parse().unwrap());
    let resp = send(state(Arc::new(mock())), r).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["access-control-allow-origin"],
        "vscode-webview://abc"
    );

    // A page served by this very host is not a cross-origin request, whatever OLLAMA_ORIGINS says.
    let mut r = req("GET", "/api/tags", "");
    r.headers_mut()
        .insert("origin", "http://localhost:11434".parse().unwrap());
    let resp = send(state(Arc::new(mock())), r).await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().get("access-control-allow-origin").is_none());
}
