//! In-process tests of the OpenAI and Anthropic routes: framing, envelopes and error shapes.

mod common;

use std::sync::Arc;

use common::*;
use serde_json::Value;

#[tokio::test]
async fn openai_stream_is_sse_with_done_terminator() {
    let body = r#"{"model":"mock","stream":true,"messages":[{"role":"user","content":"a b"}]}"#;
    let r = send(
        state(Arc::new(mock())),
        req("POST", "/v1/chat/completions", body),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(content_type(&r), "text/event-stream");
    let text = body_string(r).await;
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    let frames: Vec<&str> = text.split("\n\n").filter(|f| !f.is_empty()).collect();
    assert!(frames.iter().all(|f| f.starts_with("data: ")));
    let first: Value = serde_json::from_str(&frames[0]["data: ".len()..]).unwrap();
    assert_eq!(first["object"], "chat.completion.chunk");
    assert_eq!(first["choices"][0]["delta"]["role"], "assistant");
}

#[tokio::test]
async fn openai_non_stream_body_ends_with_newline_like_go_encoder() {
    let body = r#"{"model":"mock","messages":[{"role":"user","content":"x"}]}"#;
    let r = send(
        state(Arc::new(mock())),
        req("POST", "/v1/chat/completions", body),
    )
    .await;
    assert_eq!(content_type(&r), "application/json");
    let text = body_string(r).await;
    assert!(text.ends_with("}\n"));
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "x");
}

#[tokio::test]
async fn openai_errors_use_the_openai_envelope() {
    let r = send(
        state(Arc::new(mock())),
        req(
            "POST",
            "/v1/chat/completions",
            r#"{"model":"nope","messages":[{"role":"user","content":"x"}]}"#,
        ),
    )
    .await;
    assert_eq!(r.status(), 404);
    let text = body_string(r).await;
    assert!(
        text.ends_with('\n'),
        "backend failures are written by json.Encoder"
    );
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["error"]["type"], "not_found_error");
    assert_eq!(v["error"]["message"], "model 'nope' not found");
    assert!(v["error"]["param"].is_null() && v["error"]["code"].is_null());

    let r = send(
        state(Arc::new(mock())),
        req(
            "POST",
            "/v1/chat/completions",
            r#"{"model":"mock","messages":[]}"#,
        ),
    )
    .await;
    assert_eq!(r.status(), 400);
    let text = body_string(r).await;
    assert!(
        !text.ends_with('\n'),
        "validation failures are written by AbortWithStatusJSON"
    );
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["error"]["message"], "[] is too short - 'messages'");
    assert_eq!(v["error"]["type"], "invalid_request_error");
}

#[tokio::test]
async fn openai_models_lists_and_retrieves() {
    let r = send(state(Arc::new(mock())), req("GET", "/v1/models", "")).await;
    let v: Value = serde_json::from_str(&body_string(r).await).unwrap();
    assert_eq!(v["object"], "list");
    assert!(v["data"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["id"] == "mock:latest" && m["owned_by"] == "library"));
    let r = send(
        state(Arc::new(mock())),
        req("GET", "/v1/models/mock:latest", ""),
    )
    .await;
    assert_eq!(r.status(), 200);
    let r = send(state(Arc::new(mock())), req("GET", "/v1/models/absent", "")).await;
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn anthropic_stream_uses_named_events() {
    let body = r#"{"model":"mock","max_tokens":10,"stream":true,"messages":[{"role":"user","content":"hi"}]}"#;
    let r = send(state(Arc::new(mock())), req("POST", "/v1/messages", body)).await;
    assert_eq!(content_type(&r), "text/event-stream");
    let text = body_string(r).await;
    let events: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("event: "))
        .collect();
    assert_eq!(events.first(), Some(&"message_start"));
    assert_eq!(events.last(), Some(&"message_stop"));
    assert!(!text.contains("[DONE]"));
}

#[tokio::test]
async fn anthropic_errors_use_the_anthropic_envelope() {
    let r = send(
        state(Arc::new(mock())),
        req(
            "POST",
            "/v1/messages",
            r#"{"model":"nope","max_tokens":5,"messages":[{"role":"user","content":"x"}]}"#,
        ),
    )
    .await;
    assert_eq!(r.status(), 404);
    let v: Value = serde_json::from_str(&body_string(r).await).unwrap();
    assert_eq!(v["type"], "error");
    assert_eq!(v["error"]["type"], "not_found_error");
    assert!(v["request_id"].as_str().unwrap().starts_with("req_"));
}

#[tokio::test]
async fn responses_accepts_zstd_bodies_and_rejects_garbage() {
    let json = br#"{"model":"mock","input":"squeezed text"}"#;
    let compressed =
        ruzstd::encoding::compress_to_vec(&json[..], ruzstd::encoding::CompressionLevel::Fastest);
    let mut r = req("POST", "/v1/responses", "");
    *r.body_mut() = http_body_util::Full::new(bytes::Bytes::from(compressed));
    r.headers_mut()
        .insert("content-encoding", "zstd".parse().unwrap());
    let resp = send(state(Arc::new(mock())), r).await;
    assert_eq!(resp.status(), 200);
    let v: Value = serde_json::from_str(&body_string(resp).await).unwrap();
    assert_eq!(v["output"][0]["content"][0]["text"], "squeezed text");

    let mut r = req("POST", "/v1/responses", "not zstd at all");
    r.headers_mut()
        .insert("content-encoding", "zstd".parse().unwrap());
    let resp = send(state(Arc::new(mock())), r).await;
    assert_eq!(resp.status(), 400);
    let v: Value = serde_json::from_str(&body_string(resp).await).unwrap();
    assert_eq!(v["error"]["message"], "failed to decompress zstd body");
}
