//! Tests of [`OllamaUpstream`] against fake upstreams: recorded real Ollama traffic replayed
//! byte for byte, and scripted failures (down, hanging, error bodies, garbage, hang-ups).

use std::time::Duration;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use ollmlx_infer::{
    Backend, BackendError, ChatInput, DoneReason, EmbedRequest, Event, GenerateInput, Input,
    ManageRequest, Message, RawBody, RawRequest, Request, Stats,
};
use ollmlx_wire::ollama as wire;
use serde_json::Value;

use super::OllamaUpstream;
use crate::config::OllamaUpstreamConfig;
use crate::test_util::httprr::{self, Interaction};
use crate::test_util::{FakeUpstream, Reply, Step};

fn backend(url: &str) -> OllamaUpstream {
    let mut cfg = OllamaUpstreamConfig::new(url);
    cfg.connect_timeout_secs = 2.0;
    cfg.header_timeout_secs = 5.0;
    OllamaUpstream::new(&cfg).unwrap()
}

fn raw_body(chunks: Vec<Bytes>) -> RawBody {
    futures::stream::iter(chunks.into_iter().map(Ok)).boxed()
}

async fn collect(body: RawBody) -> Vec<u8> {
    body.try_fold(Vec::new(), |mut acc, b| async move {
        acc.extend_from_slice(&b);
        Ok(acc)
    })
    .await
    .unwrap()
}

fn raw_request(i: &Interaction) -> RawRequest {
    RawRequest {
        method: i.request.method.clone(),
        path_and_query: i.request.path.clone(),
        headers: i
            .request
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), v.as_bytes().to_vec()))
            .collect(),
        body: raw_body(vec![i.request.body.clone()]),
    }
}

fn header<'a>(headers: &'a [(String, Vec<u8>)], name: &str) -> Option<&'a [u8]> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_slice())
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
            tools: vec![],
        }),
        ..Default::default()
    }
}

async fn events(b: &OllamaUpstream, req: Request) -> Vec<Result<Event, BackendError>> {
    b.generate(req).await.unwrap().collect().await
}

#[tokio::test]
async fn forward_reproduces_every_recorded_response_byte_for_byte() {
    let Some(traces) = httprr::all_langchaingo("forward_reproduces_every_recorded_response") else {
        return;
    };
    let mut checked = 0;
    for (path, interactions) in traces {
        let fake = FakeUpstream::replay(interactions.clone()).await;
        let b = backend(&fake.url());
        assert!(b.is_transparent());
        for (n, i) in interactions.iter().enumerate() {
            let what = format!("{} #{n}", path.display());
            let resp = b.forward(raw_request(i)).unwrap().await.expect(&what);
            assert_eq!(resp.status, i.response.status, "{what}");
            assert_eq!(
                header(&resp.headers, "content-type"),
                i.response.header("content-type").map(str::as_bytes),
                "{what}"
            );
            assert_eq!(
                header(&resp.headers, "date"),
                i.response.header("date").map(str::as_bytes),
                "{what}"
            );
            assert!(
                header(&resp.headers, "transfer-encoding").is_none(),
                "{what}"
            );
            assert_eq!(collect(resp.body).await, i.response.body(), "{what}");
            checked += 1;
        }
        let seen = fake.observed().requests();
        for (s, i) in seen.iter().zip(&interactions) {
            assert_eq!(s.body, i.request.body, "{} request body", path.display());
            assert_eq!(s.headers.get("user-agent").unwrap(), "langchaingo-httprr");
        }
    }
    assert!(checked >= 14, "only {checked} interactions checked");
}

#[tokio::test]
async fn forward_passes_pull_progress_on_before_upstream_finishes() {
    let Some(rec) = httprr::langchaingo(
        "forward_passes_pull_progress",
        "testdata/TestWithPullModel.httprr",
    ) else {
        return;
    };
    let body = String::from_utf8(rec[0].response.body()).unwrap();
    let lines: Vec<String> = body.split_inclusive('\n').map(String::from).collect();
    let first = lines[0].clone();
    let fake = FakeUpstream::start(move |_| {
        let mut r = Reply::new(200, "application/x-ndjson", first.clone());
        r.body.push(Step::Hang);
        r
    })
    .await;
    let b = backend(&fake.url());
    let resp = b.forward(raw_request(&rec[0])).unwrap().await.unwrap();
    assert_eq!(
        header(&resp.headers, "content-type"),
        Some(&b"application/x-ndjson"[..])
    );
    let mut body = resp.body;
    let got = tokio::time::timeout(Duration::from_secs(5), body.next())
        .await
        .expect("first progress line must arrive while upstream is still streaming")
        .unwrap()
        .unwrap();
    assert_eq!(got, Bytes::from(lines[0].clone()));
}

#[tokio::test]
async fn forward_streams_request_body_with_its_content_length() {
    let fake = FakeUpstream::start(|_| Reply::new(201, "text/plain", "")).await;
    let b = backend(&fake.url());
    let resp = b
        .forward(RawRequest {
            method: "POST".into(),
            path_and_query: "/api/blobs/sha256:abc".into(),
            headers: vec![
                ("Content-Length".into(), b"10".to_vec()),
                ("Host".into(), b"ollmlx.example:11434".to_vec()),
            ],
            body: raw_body(vec![Bytes::from("01234"), Bytes::from("56789")]),
        })
        .unwrap()
        .await
        .unwrap();
    assert_eq!(resp.status, 201);
    let seen = &fake.observed().requests()[0];
    assert_eq!(seen.path, "/api/blobs/sha256:abc");
    assert_eq!(&seen.body[..], b"0123456789");
    assert_eq!(seen.headers.get("content-length").unwrap(), "10");
    assert!(seen.headers.get("transfer-encoding").is_none());
    assert_eq!(
        seen.headers.get("host").unwrap().to_str().unwrap(),
        fake.url().trim_start_matches("http://")
    );
}

#[tokio::test]
async fn forward_get_without_body_sends_no_body_framing() {
    let fake = FakeUpstream::start(|_| Reply::json(200, r#"{"models":[]}"#)).await;
    let b = backend(&fake.url());
    let resp = b
        .forward(RawRequest {
            method: "GET".into(),
            path_and_query: "/api/tags".into(),
            headers: vec![],
            body: raw_body(vec![]),
        })
        .unwrap()
        .await
        .unwrap();
    assert_eq!(collect(resp.body).await, br#"{"models":[]}"#);
    let seen = &fake.observed().requests()[0];
    assert!(seen.headers.get("transfer-encoding").is_none());
    assert!(seen.headers.get("content-length").is_none());
}

#[tokio::test]
async fn dropping_forwarded_body_closes_the_upstream_connection() {
    let fake = FakeUpstream::start(|_| {
        let mut r = Reply::new(200, "application/x-ndjson", "{\"status\":\"pulling\"}\n");
        for _ in 0..500 {
            r.body.push(Step::Sleep(Duration::from_millis(10)));
            r.body
                .push(Step::Chunk(Bytes::from_static(b"{\"status\":\"more\"}\n")));
        }
        r
    })
    .await;
    let b = backend(&fake.url());
    let resp = b
        .forward(RawRequest {
            method: "POST".into(),
            path_and_query: "/api/pull".into(),
            headers: vec![],
            body: raw_body(vec![Bytes::from_static(b"{\"model\":\"x\"}")]),
        })
        .unwrap()
        .await
        .unwrap();
    let mut body = resp.body;
    assert!(body.next().await.is_some());
    drop(body);
    assert!(
        fake.observed().wait_aborted(Duration::from_secs(3)).await,
        "upstream never saw the client go away"
    );
}

#[tokio::test]
async fn typed_chat_turns_recorded_stream_into_events_and_final_stats() {
    let Some(rec) = httprr::langchaingo(
        "typed_chat_turns_recorded_stream_into_events",
        "internal/ollamaclient/testdata/TestClient_GenerateChatStream.httprr",
    ) else {
        return;
    };
    let lines: Vec<Value> = String::from_utf8(rec[0].response.body())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let fake = FakeUpstream::replay(rec).await;
    let b = backend(&fake.url());
    let got = events(&b, chat("gemma3:1b", "Count from 1 to 5")).await;

    let mut want: Vec<Event> = lines
        .iter()
        .filter(|l| !l["message"]["content"].as_str().unwrap().is_empty())
        .map(|l| Event::content(l["message"]["content"].as_str().unwrap()))
        .collect();
    let last = lines.last().unwrap();
    let n = |k: &str| last[k].as_u64().unwrap();
    want.push(Event::Done {
        reason: DoneReason::Stop,
        stats: Stats {
            total_duration: n("total_duration"),
            load_duration: n("load_duration"),
            prompt_eval_count: n("prompt_eval_count"),
            prompt_eval_duration: n("prompt_eval_duration"),
            eval_count: n("eval_count"),
            eval_duration: n("eval_duration"),
        },
        context: None,
    });
    let got: Vec<Event> = got.into_iter().map(Result::unwrap).collect();
    assert_eq!(got, want);

    let sent: Value = serde_json::from_slice(&fake.observed().requests()[0].body).unwrap();
    assert_eq!(sent["model"], "gemma3:1b");
    assert_eq!(sent["stream"], true);
    assert_eq!(sent["messages"][0]["content"], "Count from 1 to 5");
}

#[tokio::test]
async fn typed_generate_returns_context_on_done() {
    let Some(rec) = httprr::langchaingo(
        "typed_generate_returns_context_on_done",
        "internal/ollamaclient/testdata/TestClient_GenerateStream.httprr",
    ) else {
        return;
    };
    let fake = FakeUpstream::replay(rec).await;
    let b = backend(&fake.url());
    let req = Request {
        model: "gemma3:1b".into(),
        input: Input::Generate(GenerateInput {
            prompt: "hi".into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    let got = events(&b, req).await;
    match got.last().unwrap() {
        Ok(Event::Done {
            reason, context, ..
        }) => {
            assert_eq!(*reason, DoneReason::Stop);
            assert!(context.as_ref().is_some_and(|c| !c.is_empty()));
        }
        other => panic!("last event is not Done: {other:?}"),
    }
    assert_eq!(fake.observed().requests()[0].path, "/api/generate");
}

#[tokio::test]
async fn pull_progress_recording_decodes_to_progress_objects() {
    let Some(rec) = httprr::langchaingo(
        "pull_progress_recording",
        "testdata/TestWithPullModel.httprr",
    ) else {
        return;
    };
    let fake = FakeUpstream::replay(rec).await;
    let b = backend(&fake.url());
    let progress: Vec<wire::ProgressResponse> = b
        .manage(ManageRequest::Pull(wire::PullRequest {
            model: "gemma3:1b".into(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(progress.first().unwrap().status, "pulling manifest");
    assert_eq!(progress.last().unwrap().status, "success");
    assert!(progress
        .iter()
        .any(|p| p.total > 0 && p.completed == p.total));
}

#[tokio::test]
async fn embed_recording_returns_vectors() {
    let Some(rec) = httprr::langchaingo(
        "embed_recording_returns_vectors",
        "internal/ollamaclient/testdata/TestClient_CreateEmbedding.httprr",
    ) else {
        return;
    };
    let recorded: Value = serde_json::from_slice(&rec[0].response.body()).unwrap();
    let fake = FakeUpstream::replay(rec).await;
    let b = backend(&fake.url());
    let r = b
        .embed(EmbedRequest {
            model: "nomic-embed-text".into(),
            input: vec!["hello".into()],
            normalize: true,
            ..Default::default()
        })
        .await
        .unwrap();
    let want = recorded["embeddings"].as_array().unwrap();
    assert_eq!(r.embeddings.len(), want.len());
    assert_eq!(r.embeddings[0].len(), want[0].as_array().unwrap().len());
    assert_eq!(fake.observed().requests()[0].path, "/api/embed");
}

#[tokio::test]
async fn upstream_down_is_unavailable_naming_the_upstream() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let b = backend(&url);
    let e = b.list_models().await.unwrap_err();
    match &e {
        BackendError::Unavailable(m) => assert!(
            m.starts_with(&format!("cannot connect to upstream ollama at {url}")),
            "{m}"
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(e.status(), 502);
}

#[tokio::test]
async fn upstream_404_error_body_becomes_upstream_error_unchanged() {
    let fake =
        FakeUpstream::start(|_| Reply::json(404, r#"{"error":"model 'x' not found"}"#)).await;
    let b = backend(&fake.url());
    let e = b.generate(chat("x", "hi")).await.err().unwrap();
    assert_eq!(
        e,
        BackendError::Upstream {
            status: 404,
            message: "model 'x' not found".into()
        }
    );
    assert!(!b.has_model("x").await.unwrap());
}

#[tokio::test]
async fn garbage_body_is_a_clear_error() {
    let fake =
        FakeUpstream::start(|_| Reply::new(200, "text/html", "<html>proxy login</html>")).await;
    let b = backend(&fake.url());
    match b.list_models().await.unwrap_err() {
        BackendError::Unavailable(m) => {
            assert!(m.contains("/api/tags"), "{m}");
            assert!(m.contains("not the expected JSON"), "{m}");
            assert!(m.contains("<html>proxy login</html>"), "{m}");
        }
        other => panic!("{other:?}"),
    }
    match b.generate(chat("m", "hi")).await.unwrap().next().await {
        Some(Err(BackendError::Unavailable(m))) => assert!(m.contains("not JSON"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn hanging_upstream_is_bounded_by_the_header_timeout() {
    let fake = FakeUpstream::start(|_| {
        let mut r = Reply::json(200, "{}");
        r.head_delay = Duration::from_secs(30);
        r
    })
    .await;
    let mut cfg = OllamaUpstreamConfig::new(fake.url());
    cfg.header_timeout_secs = 0.3;
    let b = OllamaUpstream::new(&cfg).unwrap();
    let started = std::time::Instant::now();
    let e = b.list_models().await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(
        e,
        BackendError::Unavailable(format!(
            "upstream ollama at {} did not send response headers within 0.3s",
            fake.url()
        ))
    );
}

#[tokio::test]
async fn slow_stream_after_headers_is_not_timed_out() {
    let fake = FakeUpstream::start(|_| {
        Reply::chunks(
            200,
            "application/x-ndjson",
            &[
                r#"{"model":"m","created_at":"2025-01-01T00:00:00Z","message":{"role":"assistant","content":"a"},"done":false}"#,
                "\n",
                r#"{"model":"m","created_at":"2025-01-01T00:00:00Z","message":{"role":"assistant","content":""},"done":true,"done_reason":"length"}"#,
            ],
            Duration::from_millis(400),
        )
    })
    .await;
    let mut cfg = OllamaUpstreamConfig::new(fake.url());
    cfg.header_timeout_secs = 0.2;
    let b = OllamaUpstream::new(&cfg).unwrap();
    let got: Vec<Event> = b
        .generate(chat("m", "hi"))
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(got[0], Event::content("a"));
    assert!(matches!(
        got[1],
        Event::Done {
            reason: DoneReason::Length,
            ..
        }
    ));
}

#[tokio::test]
async fn mid_stream_error_line_becomes_an_error_item() {
    let fake = FakeUpstream::start(|_| {
        Reply::new(
            200,
            "application/x-ndjson",
            concat!(
                r#"{"model":"m","created_at":"2025-01-01T00:00:00Z","message":{"role":"assistant","content":"Hel"},"done":false}"#,
                "\n",
                r#"{"error":"an error was encountered while running the model"}"#,
                "\n"
            ),
        )
    })
    .await;
    let b = backend(&fake.url());
    let got = events(&b, chat("m", "hi")).await;
    assert_eq!(
        got,
        vec![
            Ok(Event::content("Hel")),
            Err(BackendError::Upstream {
                status: 500,
                message: "an error was encountered while running the model".into()
            })
        ]
    );
}

#[tokio::test]
async fn stream_cut_before_done_is_an_error() {
    let fake = FakeUpstream::start(|_| {
        Reply::new(
            200,
            "application/x-ndjson",
            r#"{"model":"m","created_at":"2025-01-01T00:00:00Z","message":{"role":"assistant","content":"x"},"done":false}"#,
        )
    })
    .await;
    let b = backend(&fake.url());
    let got = events(&b, chat("m", "hi")).await;
    assert_eq!(got[0], Ok(Event::content("x")));
    assert!(
        matches!(&got[1], Err(BackendError::Unavailable(m)) if m.ends_with("ended the stream before the final object")),
        "{got:?}"
    );
}

#[tokio::test]
async fn blob_routes_map_statuses_and_stream_the_upload() {
    let fake = FakeUpstream::start(|r| match (r.method.as_str(), r.path.as_str()) {
        ("HEAD", "/api/blobs/sha256-aa") => Reply::new(200, "text/plain", ""),
        ("HEAD", _) => Reply::new(404, "text/plain", ""),
        ("POST", _) => Reply::new(201, "text/plain", ""),
        _ => Reply::new(500, "text/plain", "unexpected"),
    })
    .await;
    let b = backend(&fake.url());
    assert!(b.blob_exists("sha256-aa".into()).await.unwrap());
    assert!(!b.blob_exists("sha256-bb".into()).await.unwrap());
    let created = b
        .blob_put(
            "sha256:cc".into(),
            raw_body(vec![Bytes::from("ab"), Bytes::from("cd")]),
        )
        .await
        .unwrap();
    assert!(created);
    assert_eq!(&fake.observed().requests()[2].body[..], b"abcd");
    assert_eq!(
        b.blob_exists("../etc".into()).await.unwrap_err(),
        BackendError::InvalidRequest("invalid digest format".into())
    );
}

#[tokio::test]
async fn copy_and_delete_use_native_routes_and_pass_errors_through() {
    let fake = FakeUpstream::start(|r| match r.path.as_str() {
        "/api/copy" => Reply::new(200, "text/plain", ""),
        _ => Reply::json(404, r#"{"error":"model 'gone' not found"}"#),
    })
    .await;
    let b = backend(&fake.url());
    b.copy(wire::CopyRequest {
        source: "a".into(),
        destination: "b".into(),
    })
    .await
    .unwrap();
    assert_eq!(
        b.delete("gone".into()).await.unwrap_err(),
        BackendError::Upstream {
            status: 404,
            message: "model 'gone' not found".into()
        }
    );
    let seen = fake.observed().requests();
    assert_eq!(seen[1].method, "DELETE");
    let body: Value = serde_json::from_slice(&seen[1].body).unwrap();
    assert_eq!(body["model"], "gone");
}

#[tokio::test]
async fn headers_without_body_are_bounded_by_the_header_timeout() {
    let fake = FakeUpstream::start(|_| {
        let mut r = Reply::new(200, "application/x-ndjson", "");
        r.body = vec![Step::Hang];
        r
    })
    .await;
    let mut cfg = OllamaUpstreamConfig::new(fake.url());
    cfg.header_timeout_secs = 0.3;
    let b = OllamaUpstream::new(&cfg).unwrap();
    let got = tokio::time::timeout(Duration::from_secs(5), events(&b, chat("m", "hi")))
        .await
        .expect("bounded");
    assert_eq!(
        got,
        vec![Err(BackendError::Unavailable(format!(
            "upstream ollama at {} sent response headers but no body within 0.3s",
            fake.url()
        )))]
    );
    assert!(fake.observed().wait_aborted(Duration::from_secs(3)).await);
}

#[tokio::test]
async fn slow_upload_is_not_cut_by_the_header_timeout() {
    let fake = FakeUpstream::start(|_| Reply::new(201, "text/plain", "")).await;
    let mut cfg = OllamaUpstreamConfig::new(fake.url());
    cfg.header_timeout_secs = 0.2;
    let b = OllamaUpstream::new(&cfg).unwrap();
    let body: RawBody = futures::stream::iter(0..6)
        .then(|i| async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            Ok(Bytes::from(format!("part{i}")))
        })
        .boxed();
    assert!(b.blob_put("sha256:dd".into(), body).await.unwrap());
    assert_eq!(
        &fake.observed().requests()[0].body[..],
        b"part0part1part2part3part4part5"
    );
}
