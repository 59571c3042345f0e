//! Tests of [`OpenAiUpstream`] against a scripted fake OpenAI-compatible server.

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use ollmlx_infer::{
    Backend, BackendError, ChatInput, DoneReason, EmbedRequest, Event, Input, KeepAlive, Message,
    Request, ToolCall,
};
use ollmlx_wire::ollama as wire;
use serde_json::{json, Value};

use super::{sha256_hex, OpenAiUpstream};
use crate::config::OpenAiUpstreamConfig;
use crate::test_util::{FakeUpstream, Reply, SeenRequest};

const MODELS: &str = r#"{"object":"list","data":[
    {"id":"Qwen/Qwen3-8B","object":"model","created":1700000000,"owned_by":"vllm","max_model_len":32768},
    {"id":"nomic-embed-text","object":"model","created":1700000001,"owned_by":"vllm"}]}"#;

fn config(url: &str) -> OpenAiUpstreamConfig {
    let mut c = OpenAiUpstreamConfig::new(url);
    c.header_timeout_secs = 5.0;
    c
}

fn chat(model: &str, text: &str) -> Request {
    Request {
        model: model.into(),
        input: Input::Chat(ChatInput {
            messages: vec![Message {
                role: "user".into(),
                content: text.into(),
                ..Default::default()
            }],
            tools: vec![
                json!({"type":"function","function":{"name":"get_weather","parameters":{"type":"object"}}}),
            ],
        }),
        ..Default::default()
    }
}

/// An SSE body split at awkward places: mid-line, mid-`data:`, two events in one chunk.
const SSE: &[&str] = &[
    "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n",
    "data: {\"choices\":[{\"index\":0,\"delta\":{\"reasoning_content\":\"User wants weather.\"}}]}\n\nda",
    "ta: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Let me check\"}}]}\n\n",
    "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":\"{\\\"ci\"}}]}}]}\n\n",
    "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"ty\\\": \\\"Paris\\\"}\"}}]}}]}\n\ndata: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\n",
    "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":21,\"completion_tokens\":17,\"total_tokens\":38}}\n\n",
    "data: [DONE]\n\n",
];

fn sse_server_handler(gap: Duration) -> impl Fn(&SeenRequest) -> Reply + Send + Sync + 'static {
    move |r: &SeenRequest| match r.path.as_str() {
        "/v1/models" => Reply::json(200, MODELS),
        "/v1/chat/completions" => Reply::chunks(200, "text/event-stream", SSE, gap),
        _ => Reply::json(404, r#"{"error":{"message":"no route"}}"#),
    }
}

#[tokio::test]
async fn sse_stream_from_fake_server_becomes_the_exact_event_sequence() {
    let fake = FakeUpstream::start(sse_server_handler(Duration::from_millis(40))).await;
    let mut cfg = config(&format!("{}/v1", fake.url()));
    cfg.api_key = Some("sk-test".into());
    cfg.aliases
        .insert("qwen3:8b".into(), "Qwen/Qwen3-8B".into());
    let b = OpenAiUpstream::new(cfg).unwrap();
    let mut req = chat("qwen3:8b", "Weather in Paris?");
    req.options.temperature = Some(0.0);
    req.options.num_predict = Some(100);
    let events: Vec<Event> = b.generate(req).await.unwrap().try_collect().await.unwrap();

    let mut args = serde_json::Map::new();
    args.insert("city".into(), json!("Paris"));
    assert_eq!(
        events[..3],
        [
            Event::thinking("User wants weather."),
            Event::content("Let me check"),
            Event::ToolCalls(vec![ToolCall {
                id: "call_1".into(),
                index: 0,
                name: "get_weather".into(),
                arguments: args,
            }]),
        ]
    );
    let Event::Done {
        reason,
        stats,
        context,
    } = &events[3]
    else {
        panic!("{events:?}")
    };
    assert_eq!((reason, context), (&DoneReason::Stop, &None));
    assert_eq!((stats.prompt_eval_count, stats.eval_count), (21, 17));
    // Six 40 ms gaps: one before the first token, five after it.
    let ms = |n: u64| n * 1_000_000;
    assert!(stats.prompt_eval_duration >= ms(35), "{stats:?}");
    assert!(stats.eval_duration >= ms(150), "{stats:?}");
    assert!(stats.total_duration >= stats.prompt_eval_duration + stats.eval_duration);
    assert_eq!(events.len(), 4);

    let seen = fake.observed().requests();
    let post = seen.iter().find(|r| r.method == "POST").unwrap();
    assert_eq!(post.path, "/v1/chat/completions");
    assert_eq!(post.headers.get("authorization").unwrap(), "Bearer sk-test");
    let body: Value = serde_json::from_slice(&post.body).unwrap();
    assert_eq!(body["model"], "Qwen/Qwen3-8B");
    assert_eq!(body["stream"], true);
    assert_eq!(body["stream_options"], json!({"include_usage": true}));
    assert_eq!(body["max_tokens"], 100);
    assert_eq!(body["temperature"], 0.0);
    assert_eq!(body["tools"][0]["function"]["name"], "get_weather");
}

#[tokio::test]
async fn latest_tag_is_dropped_when_the_upstream_id_has_none() {
    let fake = FakeUpstream::start(sse_server_handler(Duration::ZERO)).await;
    let b = OpenAiUpstream::new(config(&fake.url())).unwrap();
    let _: Vec<_> = b
        .generate(chat("Qwen/Qwen3-8B:latest", "hi"))
        .await
        .unwrap()
        .collect()
        .await;
    let post = fake
        .observed()
        .requests()
        .into_iter()
        .find(|r| r.method == "POST")
        .unwrap();
    let body: Value = serde_json::from_slice(&post.body).unwrap();
    assert_eq!(body["model"], "Qwen/Qwen3-8B");
    assert!(b.has_model("Qwen/Qwen3-8B:latest").await.unwrap());
    assert!(!b.has_model("llama3").await.unwrap());
}

#[tokio::test]
async fn upstream_error_statuses_and_messages_pass_through() {
    let cases: Vec<(u16, &'static str, &'static str, String)> = vec![
        (
            401,
            "application/json",
            r#"{"error":{"message":"Incorrect API key provided","type":"invalid_request_error"}}"#,
            "Incorrect API key provided".into(),
        ),
        (
            404,
            "application/json",
            r#"{"object":"error","message":"The model `x` does not exist.","type":"NotFoundError","code":404}"#,
            "The model `x` does not exist.".into(),
        ),
        (
            429,
            "text/plain",
            "Too Many Requests",
            "Too Many Requests".into(),
        ),
        (
            502,
            "text/html",
            "<html>bad gateway</html>",
            "<html>bad gateway</html>".into(),
        ),
        (503, "text/plain", "", String::new()),
    ];
    for (status, ct, body, want) in cases {
        let fake = FakeUpstream::start(move |_| Reply::new(status, ct, body)).await;
        let b = OpenAiUpstream::new(config(&fake.url())).unwrap();
        let e = b.generate(chat("x", "hi")).await.err().unwrap();
        let want = if want.is_empty() {
            format!(
                "upstream openai at {} answered 503 Service Unavailable",
                fake.url()
            )
        } else {
            want
        };
        assert_eq!(
            e,
            BackendError::Upstream {
                status,
                message: want
            },
            "status {status}"
        );
    }
}

#[tokio::test]
async fn non_streaming_json_answer_is_a_clear_error() {
    let fake = FakeUpstream::start(|r| match r.path.as_str() {
        "/v1/models" => Reply::json(200, MODELS),
        _ => Reply::json(200, r#"{"choices":[{"message":{"content":"hi"}}]}"#),
    })
    .await;
    let b = OpenAiUpstream::new(config(&fake.url())).unwrap();
    match b.generate(chat("Qwen/Qwen3-8B", "hi")).await.err().unwrap() {
        BackendError::Unavailable(m) => assert!(m.contains("must support \"stream\": true"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn upstream_down_is_unavailable_naming_the_upstream() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let b = OpenAiUpstream::new(config(&url)).unwrap();
    match b.generate(chat("m", "hi")).await.err().unwrap() {
        BackendError::Unavailable(m) => assert!(
            m.starts_with(&format!("cannot connect to upstream openai at {url}")),
            "{m}"
        ),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn list_models_maps_v1_models_and_configured_names() {
    let fake = FakeUpstream::start(|_| Reply::json(200, MODELS)).await;
    let mut cfg = config(&fake.url());
    cfg.models = vec!["static-model".into()];
    cfg.aliases
        .insert("qwen3:8b".into(), "Qwen/Qwen3-8B".into());
    let b = OpenAiUpstream::new(cfg).unwrap();
    let models = b.list_models().await.unwrap();
    let names: Vec<&str> = models.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "static-model",
            "qwen3:8b",
            "Qwen/Qwen3-8B",
            "nomic-embed-text"
        ]
    );
    let q = &models[1];
    assert_eq!(q.model, "qwen3:8b");
    assert_eq!(q.size, 0);
    assert_eq!(q.digest, sha256_hex(b"qwen3:8b"));
    assert_eq!(q.details.format, "openai");
    assert_eq!(q.details.family, "qwen3");
    assert_eq!(q.details.parameter_size, "8B");
    assert_eq!(q.modified_at.unix(), 1_700_000_000);
    assert!(b.loaded().await.unwrap().is_empty());
}

#[tokio::test]
async fn configured_models_are_listed_when_the_upstream_is_down() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let mut cfg = config(&url);
    cfg.models = vec!["qwen3:8b".into()];
    let b = OpenAiUpstream::new(cfg).unwrap();
    let names: Vec<String> = b
        .list_models()
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.name)
        .collect();
    assert_eq!(names, ["qwen3:8b"]);
    assert!(b.has_model("qwen3:8b").await.unwrap());
}

#[tokio::test]
async fn show_synthesizes_details_and_unknown_models_are_not_found() {
    let fake = FakeUpstream::start(|_| Reply::json(200, MODELS)).await;
    let b = OpenAiUpstream::new(config(&fake.url())).unwrap();
    let s = b
        .show(wire::ShowRequest {
            model: "Qwen/Qwen3-8B".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(s.model_info["general.architecture"], "qwen3");
    assert_eq!(s.model_info["qwen3.context_length"], 32768);
    assert_eq!(s.capabilities, ["completion", "tools"]);
    assert_eq!(s.details.format, "openai");
    let e = b
        .show(wire::ShowRequest {
            model: "nope".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        e,
        BackendError::ModelNotFound {
            model: "nope".into()
        }
    );
}

#[tokio::test]
async fn embed_posts_v1_embeddings_in_input_order_and_normalizes() {
    let fake = FakeUpstream::start(|r| match r.path.as_str() {
        "/v1/models" => Reply::json(200, MODELS),
        _ => Reply::json(
            200,
            r#"{"object":"list","data":[{"object":"embedding","index":1,"embedding":[0.0,2.0]},{"object":"embedding","index":0,"embedding":[3.0,4.0]}],"usage":{"prompt_tokens":5,"total_tokens":5}}"#,
        ),
    })
    .await;
    let b = OpenAiUpstream::new(config(&fake.url())).unwrap();
    let r = b
        .embed(EmbedRequest {
            model: "nomic-embed-text".into(),
            input: vec!["a".into(), "b".into()],
            normalize: true,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(r.embeddings, vec![vec![0.6, 0.8], vec![0.0, 1.0]]);
    assert_eq!(r.prompt_eval_count, 5);
    assert!(r.total_duration > 0);
    let post = fake
        .observed()
        .requests()
        .into_iter()
        .find(|r| r.path == "/v1/embeddings")
        .unwrap();
    let body: Value = serde_json::from_slice(&post.body).unwrap();
    assert_eq!(
        body,
        json!({"model":"nomic-embed-text","input":["a","b"],"encoding_format":"float"})
    );
}

#[tokio::test]
async fn empty_chat_loads_or_unloads_without_calling_completions() {
    let fake = FakeUpstream::start(|_| Reply::json(200, MODELS)).await;
    let b = OpenAiUpstream::new(config(&fake.url())).unwrap();
    let mut req = Request {
        model: "Qwen/Qwen3-8B".into(),
        ..Default::default()
    };
    let ev: Vec<Event> = b
        .generate(req.clone())
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert!(matches!(
        ev[..],
        [Event::Done {
            reason: DoneReason::Load,
            ..
        }]
    ));
    req.keep_alive = Some(KeepAlive::For(Duration::ZERO));
    let ev: Vec<Event> = b.generate(req).await.unwrap().try_collect().await.unwrap();
    assert!(matches!(
        ev[..],
        [Event::Done {
            reason: DoneReason::Unload,
            ..
        }]
    ));
    assert!(fake
        .observed()
        .requests()
        .iter()
        .all(|r| r.path == "/v1/models"));
    let e = b
        .generate(Request {
            model: "missing".into(),
            ..Default::default()
        })
        .await
        .err()
        .unwrap();
    assert_eq!(
        e,
        BackendError::ModelNotFound {
            model: "missing".into()
        }
    );
}

#[tokio::test]
async fn dropping_the_event_stream_closes_the_upstream_connection() {
    let fake = FakeUpstream::start(|r| match r.path.as_str() {
        "/v1/models" => Reply::json(200, MODELS),
        _ => {
            let mut chunks =
                vec!["data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"}}]}\n\n"; 300];
            chunks.push("data: [DONE]\n\n");
            Reply::chunks(200, "text/event-stream", &chunks, Duration::from_millis(10))
        }
    })
    .await;
    let b = OpenAiUpstream::new(config(&fake.url())).unwrap();
    let mut s = b.generate(chat("Qwen/Qwen3-8B", "hi")).await.unwrap();
    assert_eq!(s.next().await, Some(Ok(Event::content("a"))));
    drop(s);
    assert!(fake.observed().wait_aborted(Duration::from_secs(3)).await);
}

#[tokio::test]
async fn debug_render_only_is_refused_without_calling_upstream() {
    let fake = FakeUpstream::start(|_| Reply::json(200, MODELS)).await;
    let b = OpenAiUpstream::new(config(&fake.url())).unwrap();
    let mut req = chat("Qwen/Qwen3-8B", "hi");
    req.debug_render_only = true;
    let e = b.generate(req).await.err().unwrap();
    assert_eq!(e.status(), 501);
    assert!(fake.observed().requests().is_empty());
}
