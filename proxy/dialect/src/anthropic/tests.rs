//! Table tests for `/v1/messages`: validation texts, message conversion, the event sequence and
//! the non-streaming body.

use ollmlx_infer::{DoneReason, Event, Input, Stats, Think, ToolCall};
use serde_json::{json, Map, Value};

use super::codec::MessagesCodec;
use super::*;
use crate::{Chunk, Codec};

fn codec() -> MessagesCodec {
    MessagesCodec::new("msg_0123".into(), "claude".into(), 9)
}

fn done(reason: DoneReason) -> Event {
    Event::Done {
        reason,
        stats: Stats {
            prompt_eval_count: 11,
            eval_count: 4,
            ..Default::default()
        },
        context: None,
    }
}

fn call(id: &str) -> ToolCall {
    let mut arguments = Map::new();
    arguments.insert("q".into(), json!("x"));
    ToolCall {
        id: id.into(),
        index: 0,
        name: "search".into(),
        arguments,
    }
}

fn run(events: &[Event]) -> Vec<(String, Value)> {
    let mut c = codec();
    events
        .iter()
        .flat_map(|e| c.stream(e))
        .map(|ch| match ch {
            Chunk::Named(n, d) => (n.to_string(), serde_json::from_slice(&d).unwrap()),
            other => panic!("unexpected {other:?}"),
        })
        .collect()
}

fn names(evs: &[(String, Value)]) -> Vec<String> {
    evs.iter()
        .map(|(n, v)| {
            assert_eq!(v["type"], n.as_str());
            match (v.get("index"), v.get("content_block"), v.get("delta")) {
                (Some(i), Some(b), _) => format!("{n}[{i}]:{}", b["type"].as_str().unwrap()),
                (Some(i), None, Some(d)) => format!("{n}[{i}]:{}", d["type"].as_str().unwrap()),
                (Some(i), _, _) => format!("{n}[{i}]"),
                _ => n.clone(),
            }
        })
        .collect()
}

fn decode(body: Value) -> Result<ollmlx_infer::Request, String> {
    decode_messages(&serde_json::to_vec(&body).unwrap())
        .map(|d| d.request)
        .map_err(|e| e.message)
}

fn msgs(r: &ollmlx_infer::Request) -> &[ollmlx_infer::Message] {
    match &r.input {
        Input::Chat(c) => &c.messages,
        _ => panic!(),
    }
}

#[test]
fn anthropic_stream_orders_thinking_before_text() {
    let evs = run(&[
        Event::thinking("let me"),
        Event::thinking(" think"),
        Event::content("Hi"),
        Event::content("!"),
        done(DoneReason::Stop),
    ]);
    assert_eq!(
        names(&evs),
        vec![
            "message_start",
            "content_block_start[0]:thinking",
            "content_block_delta[0]:thinking_delta",
            "content_block_delta[0]:thinking_delta",
            "content_block_stop[0]",
            "content_block_start[1]:text",
            "content_block_delta[1]:text_delta",
            "content_block_delta[1]:text_delta",
            "content_block_stop[1]",
            "message_delta",
            "message_stop",
        ]
    );
    assert_eq!(
        evs[1].1["content_block"],
        json!({"type":"thinking","thinking":""})
    );
    assert_eq!(evs[5].1["content_block"], json!({"type":"text","text":""}));
    assert_eq!(
        evs[9].1,
        json!({"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"input_tokens":11,"output_tokens":4}})
    );
}

#[test]
fn message_start_bytes_use_estimated_input_tokens() {
    let mut c = codec();
    let out = c.stream(&Event::content("a"));
    assert_eq!(
        out[0],
        Chunk::Named(
            "message_start",
            br#"{"type":"message_start","message":{"id":"msg_0123","type":"message","role":"assistant","model":"claude","content":[],"usage":{"input_tokens":9,"output_tokens":0}}}"#.to_vec()
        )
    );
    assert_eq!(
        out[2],
        Chunk::Named(
            "content_block_delta",
            br#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"a"}}"#
                .to_vec()
        )
    );
}

#[test]
fn tool_use_block_carries_whole_input_in_one_delta() {
    let evs = run(&[
        Event::content("calling"),
        Event::ToolCalls(vec![call("toolu_1"), call("toolu_2")]),
        done(DoneReason::Stop),
    ]);
    assert_eq!(
        names(&evs),
        vec![
            "message_start",
            "content_block_start[0]:text",
            "content_block_delta[0]:text_delta",
            "content_block_stop[0]",
            "content_block_start[1]:tool_use",
            "content_block_delta[1]:input_json_delta",
            "content_block_stop[1]",
            "content_block_start[2]:tool_use",
            "content_block_delta[2]:input_json_delta",
            "content_block_stop[2]",
            "message_delta",
            "message_stop",
        ]
    );
    assert_eq!(
        evs[4].1["content_block"],
        json!({"type":"tool_use","id":"toolu_1","name":"search","input":{}})
    );
    assert_eq!(
        evs[5].1["delta"],
        json!({"type":"input_json_delta","partial_json":"{\"q\":\"x\"}"})
    );
    assert_eq!(evs[10].1["delta"]["stop_reason"], "tool_use");
}

#[test]
fn thinking_then_tool_use_closes_thinking_block() {
    let evs = run(&[
        Event::thinking("t"),
        Event::ToolCalls(vec![call("a")]),
        done(DoneReason::Stop),
    ]);
    assert_eq!(
        names(&evs)[1..5],
        [
            "content_block_start[0]:thinking",
            "content_block_delta[0]:thinking_delta",
            "content_block_stop[0]",
            "content_block_start[1]:tool_use",
        ]
    );
}

#[test]
fn stop_reason_mapping() {
    let cases = [
        (DoneReason::Stop, "end_turn"),
        (DoneReason::Length, "max_tokens"),
        (DoneReason::Other("stop_word".into()), "stop_sequence"),
    ];
    for (reason, want) in cases {
        let evs = run(&[Event::content("x"), done(reason)]);
        assert_eq!(evs[evs.len() - 2].1["delta"]["stop_reason"], want);
    }
}

#[test]
fn stream_error_is_an_error_event() {
    let mut c = codec();
    assert_eq!(
        c.stream_error(503, "busy"),
        vec![Chunk::Named(
            "error",
            br#"{"type":"error","error":{"type":"overloaded_error","message":"busy"}}"#.to_vec()
        )]
    );
}

#[test]
fn non_stream_body_has_blocks_in_order() {
    let mut c = codec();
    for e in [
        Event::thinking("t"),
        Event::content("hi"),
        Event::ToolCalls(vec![call("toolu_9")]),
        done(DoneReason::Stop),
    ] {
        c.collect(&e);
    }
    assert_eq!(
        String::from_utf8(c.body()).unwrap(),
        "{\"id\":\"msg_0123\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude\",\"content\":[{\"type\":\"thinking\",\"thinking\":\"t\"},{\"type\":\"text\",\"text\":\"hi\"},{\"type\":\"tool_use\",\"id\":\"toolu_9\",\"name\":\"search\",\"input\":{\"q\":\"x\"}}],\"stop_reason\":\"tool_use\",\"usage\":{\"input_tokens\":11,\"output_tokens\":4}}\n"
    );
}

#[test]
fn non_stream_empty_answer_has_null_content() {
    let mut c = codec();
    c.collect(&done(DoneReason::Length));
    let v: Value = serde_json::from_slice(&c.body()).unwrap();
    assert_eq!(v["content"], Value::Null);
    assert_eq!(v["stop_reason"], "max_tokens");
}

#[test]
fn validation_errors_use_upstream_texts() {
    let cases = [
        (json!({"max_tokens":1,"messages":[{"role":"user","content":"x"}]}), "model is required"),
        (json!({"model":"m","messages":[{"role":"user","content":"x"}]}), "max_tokens is required and must be positive"),
        (json!({"model":"m","max_tokens":1}), "messages is required"),
        (json!({"model":"m","max_tokens":1,"messages":[{"role":"user","content":[{"type":"image","source":{"type":"url","url":"http://x"}}]}]}),
            "invalid image source type: url. Only base64 images are supported."),
        (json!({"model":"m","max_tokens":1,"messages":[{"role":"user","content":[{"type":"image"}]}]}), "invalid image source"),
        (json!({"model":"m","max_tokens":1,"messages":[{"role":"assistant","content":[{"type":"tool_use","name":"f","input":{}}]}]}),
            "tool_use block missing required 'id' field"),
        (json!({"model":"m","max_tokens":1,"messages":[{"role":"assistant","content":[{"type":"tool_use","id":"t","input":{}}]}]}),
            "tool_use block missing required 'name' field"),
        (json!({"model":"m","max_tokens":1,"messages":[{"role":"user","content":"x"}],"tools":[{"name":"f","input_schema":"bad"}]}),
            "invalid input_schema for tool \"f\": json: cannot unmarshal string into Go value of type api.ToolFunctionParameters"),
    ];
    for (body, want) in cases {
        assert_eq!(decode(body.clone()).unwrap_err(), want, "{body}");
    }
}

#[test]
fn request_maps_options_system_thinking_and_relax() {
    let r = decode(
        json!({"model":"m","max_tokens":64,"temperature":0.1,"top_k":5,"stop_sequences":["END"],
        "system":[{"type":"text","text":"a"},{"type":"text","text":"b"}],
        "thinking":{"type":"enabled","budget_tokens":100},
        "messages":[{"role":"user","content":"hi"}]}),
    )
    .unwrap();
    assert!(r.relax_thinking);
    assert_eq!(r.options.num_predict, Some(64));
    assert_eq!(r.options.top_k, Some(5));
    assert_eq!(r.options.stop, Some(vec!["END".to_string()]));
    assert_eq!(r.think, Some(Think::Bool(true)));
    assert_eq!(msgs(&r)[0].content, "ab");
    assert_eq!(msgs(&r)[0].role, "system");

    let effort = |e: &str| {
        decode(json!({"model":"m","max_tokens":1,"output_config":{"effort":e},"messages":[{"role":"user","content":"x"}]}))
            .unwrap()
            .think
    };
    assert_eq!(effort("XHigh"), Some(Think::Level("high".into())));
    assert_eq!(effort("low"), Some(Think::Level("low".into())));
    assert_eq!(effort("weird"), None);
}

#[test]
fn user_tool_results_come_before_text() {
    let r = decode(json!({"model":"m","max_tokens":1,"messages":[
        {"role":"assistant","content":[{"type":"text","text":"let me"},{"type":"tool_use","id":"t1","name":"f","input":{"a":1}}]},
        {"role":"user","content":[{"type":"text","text":"and?"},{"type":"tool_result","tool_use_id":"t1","content":[{"type":"text","text":"42"}]}]}
    ]}))
    .unwrap();
    let m = msgs(&r);
    assert_eq!(m.len(), 3);
    assert_eq!(m[0].tool_calls[0].arguments["a"], json!(1));
    assert_eq!(
        (
            m[1].role.as_str(),
            m[1].content.as_str(),
            m[1].tool_call_id.as_str()
        ),
        ("tool", "42", "t1")
    );
    assert_eq!(
        (m[2].role.as_str(), m[2].content.as_str()),
        ("user", "and?")
    );
}

#[test]
fn error_body_envelope_and_request_id() {
    let v: Value = serde_json::from_slice(&error_body(529, "over")).unwrap();
    assert_eq!(v["type"], "error");
    assert_eq!(
        v["error"],
        json!({"type":"overloaded_error","message":"over"})
    );
    let id = v["request_id"].as_str().unwrap();
    assert!(
        id.starts_with("req_") && id.len() == 28 && id[4..].chars().all(|c| c.is_ascii_hexdigit())
    );
    assert!(error_body(400, "x").ends_with(b"\n"));
    assert!(!abort_error_body(400, "x").ends_with(b"\n"));
    let v: Value = serde_json::from_slice(&abort_error_body(404, "nf")).unwrap();
    assert_eq!(v["error"]["type"], "not_found_error");
}

#[test]
fn message_ids_are_msg_and_24_hex() {
    let id = random_id("msg");
    assert_eq!(id.len(), 28);
    assert!(id.starts_with("msg_"));
}

#[test]
fn estimate_is_chars_over_four_with_minimum_one() {
    let req: ollmlx_wire::anthropic::messages::MessagesRequest = serde_json::from_value(
        json!({"model":"m","max_tokens":1,"messages":[{"role":"user","content":"hi"}]}),
    )
    .unwrap();
    assert_eq!(estimate_input_tokens(&req), 1);
    let req: ollmlx_wire::anthropic::messages::MessagesRequest =
        serde_json::from_value(json!({"model":"m","max_tokens":1,"system":"0123456789012345","messages":[{"role":"user","content":"abcd"}]})).unwrap();
    // 16 + len("user") 4 + 4 = 24 → 6.
    assert_eq!(estimate_input_tokens(&req), 6);
}
