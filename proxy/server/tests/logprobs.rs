//! Logprobs wire shapes over the full stack with a scripted mock backend: per-chunk `logprobs`
//! on /api/chat and /api/generate (streaming), concatenated for non-streaming responses, and
//! OpenAI's `choices[0].logprobs.content` on /v1/chat/completions.

mod common;

use std::sync::Arc;

use common::*;
use ollmlx_infer::{DoneReason, Event, Logprob, Stats, TokenLogprob};
use ollmlx_mock::{MockBackend, MockModel};
use serde_json::{json, Value};

fn lp(token: &str, logprob: f64, alt: (&str, f64)) -> Logprob {
    Logprob {
        token: token.into(),
        logprob,
        bytes: token.as_bytes().to_vec(),
        top_logprobs: vec![
            TokenLogprob {
                token: token.into(),
                logprob,
                bytes: token.as_bytes().to_vec(),
            },
            TokenLogprob {
                token: alt.0.into(),
                logprob: alt.1,
                bytes: alt.0.as_bytes().to_vec(),
            },
        ],
    }
}

fn backend() -> Arc<MockBackend> {
    let events = vec![
        Event::Delta {
            content: "Hi".into(),
            thinking: String::new(),
            logprobs: vec![lp("Hi", -0.25, ("Hello", -1.5))],
        },
        Event::Delta {
            content: "!".into(),
            thinking: String::new(),
            logprobs: vec![lp("!", -0.5, (".", -1.0))],
        },
        Event::Done {
            reason: DoneReason::Stop,
            stats: Stats::default(),
            context: None,
        },
    ];
    Arc::new(MockBackend::new(vec![MockModel::scripted(
        "lp:latest",
        events,
    )]))
}

fn lines(body: &str) -> Vec<Value> {
    body.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l.trim_start_matches("data: ")).unwrap_or(Value::Null))
        .collect()
}

fn first_entry() -> Value {
    json!({"token": "Hi", "logprob": -0.25, "bytes": [72, 105], "top_logprobs": [
        {"token": "Hi", "logprob": -0.25, "bytes": [72, 105]},
        {"token": "Hello", "logprob": -1.5, "bytes": [72, 101, 108, 108, 111]}]})
}

#[tokio::test]
async fn ollama_chat_streams_each_tokens_logprobs_with_its_chunk() {
    let body = r#"{"model":"lp","messages":[{"role":"user","content":"x"}],"logprobs":true,"top_logprobs":2}"#;
    let r = send(state(backend()), req("POST", "/api/chat", body)).await;
    assert_eq!(r.status(), 200);
    let chunks = lines(&body_string(r).await);
    assert_eq!(chunks[0]["message"]["content"], "Hi");
    assert_eq!(chunks[0]["logprobs"], json!([first_entry()]));
    assert_eq!(chunks[1]["logprobs"][0]["token"], "!");
    assert_eq!(chunks.last().unwrap()["done"], true);
}

#[tokio::test]
async fn ollama_non_streaming_responses_concatenate_logprobs() {
    for (path, body) in [
        (
            "/api/chat",
            r#"{"model":"lp","messages":[{"role":"user","content":"x"}],"stream":false,"logprobs":true,"top_logprobs":2}"#,
        ),
        (
            "/api/generate",
            r#"{"model":"lp","prompt":"x","stream":false,"logprobs":true,"top_logprobs":2}"#,
        ),
    ] {
        let r = send(state(backend()), req("POST", path, body)).await;
        assert_eq!(r.status(), 200, "{path}");
        let v: Value = serde_json::from_str(&body_string(r).await).unwrap();
        let lps = v["logprobs"].as_array().unwrap();
        assert_eq!(lps.len(), 2, "{path}: {v}");
        assert_eq!(lps[0], first_entry());
        assert_eq!(lps[1]["token"], "!");
        assert_eq!(lps[1]["bytes"], json!([33]));
    }
}

#[tokio::test]
async fn openai_chat_puts_logprobs_under_choices_logprobs_content() {
    let body = r#"{"model":"lp","messages":[{"role":"user","content":"x"}],"logprobs":true,"top_logprobs":2}"#;
    let r = send(state(backend()), req("POST", "/v1/chat/completions", body)).await;
    assert_eq!(r.status(), 200);
    let v: Value = serde_json::from_str(&body_string(r).await).unwrap();
    let content = &v["choices"][0]["logprobs"]["content"];
    assert_eq!(content.as_array().unwrap().len(), 2, "{v}");
    assert_eq!(content[0]["token"], "Hi");
    assert_eq!(content[0]["top_logprobs"][1]["token"], "Hello");
}
