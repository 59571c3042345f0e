//! Table tests for `/v1/completions`, `/v1/embeddings`, `/v1/models` and the error envelope.

use ollmlx_infer::{DoneReason, EmbedResponse, Event, Input, Stats};
use ollmlx_wire::ollama::{ListModel, ModelDetails};
use ollmlx_wire::time::Timestamp;
use serde_json::{json, Value};

use super::completions::{decode_completion, CompletionCodec};
use super::*;
use crate::{Chunk, Codec};

fn done(reason: DoneReason) -> Event {
    Event::Done {
        reason,
        stats: Stats {
            prompt_eval_count: 4,
            eval_count: 2,
            ..Default::default()
        },
        context: None,
    }
}

fn data(chunks: &[Chunk]) -> Vec<Value> {
    chunks
        .iter()
        .filter_map(|c| match c {
            Chunk::Data(d) => Some(serde_json::from_slice(d).unwrap()),
            _ => None,
        })
        .collect()
}

#[test]
fn completion_request_defaults_and_logprobs() {
    let d = decode_completion(br#"{"model":"m","prompt":"p","suffix":"s","logprobs":3}"#).unwrap();
    let r = d.request;
    assert_eq!(r.options.temperature, Some(1.0));
    assert_eq!(r.options.top_p, Some(1.0));
    assert_eq!(r.options.frequency_penalty, Some(0.0));
    assert_eq!(r.options.presence_penalty, Some(0.0));
    assert!(r.logprobs);
    assert_eq!(r.top_logprobs, 3);
    match r.input {
        Input::Generate(g) => assert_eq!((g.prompt.as_str(), g.suffix.as_str()), ("p", "s")),
        _ => panic!(),
    }
}

#[test]
fn completion_stop_with_non_string_is_rejected() {
    let e = decode_completion(br#"{"model":"m","prompt":"p","stop":["a",1]}"#)
        .err()
        .unwrap();
    assert_eq!(e.message, "invalid type for 'stop' field: float64");
}

#[test]
fn completion_prompt_must_be_a_string() {
    let e = decode_completion(br#"{"model":"m","prompt":["a"]}"#)
        .err()
        .unwrap();
    assert!(
        e.message.starts_with("json: cannot unmarshal array"),
        "{}",
        e.message
    );
}

#[test]
fn completion_stream_puts_finish_reason_on_last_chunk_and_usage_after() {
    let mut c = CompletionCodec::new("cmpl-3".into(), 10, "m".into(), true);
    let mut out: Vec<Chunk> = [Event::content("ab"), done(DoneReason::Length)]
        .iter()
        .flat_map(|e| c.stream(e))
        .collect();
    out.extend(c.stream_end());
    assert_eq!(out.last(), Some(&Chunk::Done));
    let Chunk::Data(first) = &out[0] else {
        panic!()
    };
    assert_eq!(
        first.as_slice(),
        br#"{"id":"cmpl-3","object":"text_completion","created":10,"choices":[{"text":"ab","index":0,"finish_reason":null}],"model":"m","system_fingerprint":"fp_ollama","usage":{"prompt_tokens":0,"completion_tokens":0,"total_tokens":0}}"#
    );
    let d = data(&out);
    assert_eq!(d[1]["choices"][0]["finish_reason"], "length");
    assert_eq!(d[2]["choices"], json!([]));
    assert_eq!(d[2]["usage"]["total_tokens"], 6);
}

#[test]
fn completion_body_has_upstream_shape() {
    let mut c = CompletionCodec::new("cmpl-3".into(), 10, "m".into(), false);
    c.collect(&Event::content("hi"));
    c.collect(&done(DoneReason::Stop));
    assert_eq!(
        String::from_utf8(c.body()).unwrap(),
        "{\"id\":\"cmpl-3\",\"object\":\"text_completion\",\"created\":10,\"model\":\"m\",\"system_fingerprint\":\"fp_ollama\",\"choices\":[{\"text\":\"hi\",\"index\":0,\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":4,\"completion_tokens\":2,\"total_tokens\":6}}\n"
    );
}

fn embed_err(body: &str) -> String {
    decode_embeddings(body.as_bytes()).err().unwrap().message
}

#[test]
fn embeddings_validation_uses_upstream_texts() {
    assert_eq!(
        embed_err(r#"{"model":"m","input":"x","encoding_format":"int8"}"#),
        "Invalid value for 'encoding_format' = int8. Supported values: ['float', 'base64']."
    );
    assert_eq!(embed_err(r#"{"model":"m"}"#), "invalid input");
    assert_eq!(embed_err(r#"{"model":"m","input":[]}"#), "invalid input");
    assert_eq!(
        embed_err(r#"{"model":"m","input":[1]}"#),
        "invalid input type"
    );
}

#[test]
fn embeddings_empty_string_input_becomes_one_empty_input() {
    let d = decode_embeddings(br#"{"model":"m","input":"","dimensions":8}"#).unwrap();
    assert_eq!(d.request.input, vec![String::new()]);
    assert_eq!(d.request.dimensions, Some(8));
    assert!(d.request.normalize);
}

#[test]
fn embeddings_float_and_base64_encodings() {
    let resp = EmbedResponse {
        embeddings: vec![vec![1.0, -0.5]],
        prompt_eval_count: 3,
        ..Default::default()
    };
    let d = decode_embeddings(br#"{"model":"m","input":["a"]}"#).unwrap();
    assert_eq!(
        String::from_utf8((d.encode)(&resp)).unwrap(),
        "{\"object\":\"list\",\"data\":[{\"object\":\"embedding\",\"embedding\":[1,-0.5],\"index\":0}],\"model\":\"m\",\"usage\":{\"prompt_tokens\":3,\"total_tokens\":3}}\n"
    );
    let d =
        decode_embeddings(br#"{"model":"m","input":["a"],"encoding_format":"BASE64"}"#).unwrap();
    let v: Value = serde_json::from_slice(&(d.encode)(&resp)).unwrap();
    // 1.0f32 = 00 00 80 3f, -0.5f32 = 00 00 00 bf (little-endian).
    assert_eq!(v["data"][0]["embedding"], "AACAPwAAAL8=");
}

fn list_model(name: &str) -> ListModel {
    ListModel {
        name: name.into(),
        model: name.into(),
        remote_model: String::new(),
        remote_host: String::new(),
        modified_at: serde_json::from_value::<Timestamp>(json!("2023-11-14T22:15:23Z")).unwrap(),
        size: 1,
        digest: "d".into(),
        details: ModelDetails::default(),
        capabilities: vec![],
    }
}

#[test]
fn models_body_lists_owned_by_namespace_and_null_when_empty() {
    assert_eq!(models_body(&[]), b"{\"object\":\"list\",\"data\":null}\n");
    let v: Value = serde_json::from_slice(&models_body(&[
        list_model("llama3:latest"),
        list_model("me/m:1"),
    ]))
    .unwrap();
    assert_eq!(
        v["data"],
        json!([
            {"id":"llama3:latest","object":"model","created":1700000123,"owned_by":"library"},
            {"id":"me/m:1","object":"model","created":1700000123,"owned_by":"me"}
        ])
    );
    assert_eq!(
        model_body("llama3", &list_model("llama3:latest")),
        b"{\"id\":\"llama3\",\"object\":\"model\",\"created\":1700000123,\"owned_by\":\"library\"}\n"
    );
    assert_eq!(namespace_of("registry.example.com:5000/team/m:tag"), "team");
}

#[test]
fn error_envelope_type_by_status() {
    assert_eq!(
        error_body(400, "bad <x>"),
        b"{\"error\":{\"message\":\"bad \\u003cx\\u003e\",\"type\":\"invalid_request_error\",\"param\":null,\"code\":null}}\n"
    );
    let v: Value = serde_json::from_slice(&error_body(404, "nf")).unwrap();
    assert_eq!(v["error"]["type"], "not_found_error");
    let v: Value = serde_json::from_slice(&abort_error_body(503, "busy")).unwrap();
    assert_eq!(v["error"]["type"], "api_error");
    assert!(!abort_error_body(400, "x").ends_with(b"\n"));
}
