//! Table tests for `/v1/responses`: input items, the event sequence and the response object.

use ollmlx_infer::{DoneReason, Event, Format, Input, Stats, Think, ToolCall};
use ollmlx_wire::openai::responses::ResponsesRequest;
use serde_json::{json, Map, Value};

use super::responses::decode_responses;
use super::responses_codec::ResponsesCodec;
use crate::{Chunk, Codec};

fn codec(req: Value) -> ResponsesCodec {
    let req: ResponsesRequest = serde_json::from_value(req).unwrap();
    let mut n = 0;
    ResponsesCodec::new("resp_1".into(), "msg_2".into(), 100, req).with_sources(
        || 200,
        move |p| {
            n += 1;
            format!("{p}{n}")
        },
    )
}

fn done() -> Event {
    Event::Done {
        reason: DoneReason::Stop,
        stats: Stats {
            prompt_eval_count: 7,
            eval_count: 5,
            ..Default::default()
        },
        context: None,
    }
}

fn events(c: &mut ResponsesCodec, evs: &[Event]) -> Vec<(String, Value)> {
    evs.iter()
        .flat_map(|e| c.stream(e))
        .map(|ch| match ch {
            Chunk::Named(n, d) => (n.to_string(), serde_json::from_slice(&d).unwrap()),
            other => panic!("unexpected {other:?}"),
        })
        .collect()
}

fn names(evs: &[(String, Value)]) -> Vec<&str> {
    evs.iter().map(|(n, _)| n.as_str()).collect()
}

fn req(body: Value) -> ollmlx_infer::Request {
    decode_responses(&serde_json::to_vec(&body).unwrap())
        .unwrap()
        .request
}

fn err(body: Value) -> String {
    match decode_responses(&serde_json::to_vec(&body).unwrap()) {
        Ok(_) => panic!("expected error"),
        Err(e) => e.message,
    }
}

fn msgs(r: &ollmlx_infer::Request) -> Vec<(String, String)> {
    match &r.input {
        Input::Chat(c) => c
            .messages
            .iter()
            .map(|m| (m.role.clone(), m.content.clone()))
            .collect(),
        _ => panic!(),
    }
}

#[test]
fn responses_text_stream_event_sequence() {
    let mut c = codec(json!({"model":"m","input":"hi"}));
    let evs = events(
        &mut c,
        &[Event::content("Hel"), Event::content("lo"), done()],
    );
    assert_eq!(
        names(&evs),
        vec![
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.completed",
        ]
    );
    for (i, (name, data)) in evs.iter().enumerate() {
        assert_eq!(data["sequence_number"], i, "{name}");
        assert_eq!(data["type"], name.as_str());
    }
    assert_eq!(
        evs[2].1["item"],
        json!({"content":[],"id":"msg_2","role":"assistant","status":"in_progress","type":"message"})
    );
    assert_eq!(evs[6].1["text"], "Hello");
    let resp = &evs[9].1["response"];
    assert_eq!(resp["status"], "completed");
    assert_eq!(resp["completed_at"], 200);
    assert_eq!(resp["output"][0]["content"][0]["text"], "Hello");
    assert_eq!(resp["usage"]["total_tokens"], 12);
}

#[test]
fn responses_stream_event_keys_are_sorted_like_go_maps() {
    let mut c = codec(json!({"model":"m","input":"hi"}));
    let out = c.stream(&Event::content("x"));
    let Chunk::Named(name, bytes) = &out[4] else {
        panic!()
    };
    assert_eq!(*name, "response.output_text.delta");
    assert_eq!(
        String::from_utf8(bytes.clone()).unwrap(),
        r#"{"content_index":0,"delta":"x","item_id":"msg_2","logprobs":[],"output_index":0,"sequence_number":4,"type":"response.output_text.delta"}"#
    );
    let Chunk::Named(_, created) = &out[0] else {
        panic!()
    };
    let s = String::from_utf8(created.clone()).unwrap();
    assert!(s.starts_with(r#"{"response":{"background":false,"completed_at":null,"created_at":100,"error":null,"frequency_penalty":0,"id":"resp_1","#), "{s}");
    assert!(
        s.ends_with(r#""sequence_number":0,"type":"response.created"}"#),
        "{s}"
    );
}

#[test]
fn responses_reasoning_then_text_uses_two_output_items() {
    let mut c = codec(json!({"model":"m","input":"hi","reasoning":{"effort":"high"}}));
    let evs = events(
        &mut c,
        &[
            Event::thinking("a"),
            Event::thinking("b"),
            Event::content("x"),
            done(),
        ],
    );
    assert_eq!(
        names(&evs)[2..],
        [
            "response.output_item.added",
            "response.reasoning_summary_text.delta",
            "response.reasoning_summary_text.delta",
            "response.reasoning_summary_text.done",
            "response.output_item.done",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.completed",
        ]
    );
    assert_eq!(evs[5].1["text"], "ab");
    assert_eq!(
        evs[6].1["item"],
        json!({"encrypted_content":"ab","id":"rs_1","summary":[{"text":"ab","type":"summary_text"}],"type":"reasoning"})
    );
    assert_eq!(evs[7].1["output_index"], 1);
    let resp = &evs.last().unwrap().1["response"];
    assert_eq!(resp["output"].as_array().unwrap().len(), 2);
    assert_eq!(resp["reasoning"], json!({"effort":"high","summary":null}));
}

#[test]
fn responses_function_call_events_and_text_suppression() {
    let mut args = Map::new();
    args.insert("q".into(), json!("x"));
    let call = ToolCall {
        id: "call_1".into(),
        index: 0,
        name: "search".into(),
        arguments: args,
    };
    let mut c = codec(
        json!({"model":"m","input":"hi","tools":[{"type":"function","name":"search","parameters":{"type":"object","properties":{}}}]}),
    );
    let evs = events(
        &mut c,
        &[
            Event::ToolCalls(vec![call]),
            Event::content("ignored"),
            done(),
        ],
    );
    assert_eq!(
        names(&evs)[2..],
        [
            "response.output_item.added",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.done",
            "response.output_item.done",
            "response.completed",
        ]
    );
    assert_eq!(
        evs[2].1["item"],
        json!({"arguments":"","call_id":"call_1","id":"fc_1_0","name":"search","status":"in_progress","type":"function_call"})
    );
    assert_eq!(evs[3].1["delta"], "{\"q\":\"x\"}");
    let resp = &evs.last().unwrap().1["response"];
    assert_eq!(resp["output"][0]["status"], "completed");
    assert_eq!(
        resp["tools"],
        json!([{"description":null,"name":"search","parameters":{"properties":{},"type":"object"},"strict":null,"type":"function"}])
    );
}

#[test]
fn responses_non_stream_body_is_the_full_response_object() {
    let mut c = codec(
        json!({"model":"m","input":"hi","instructions":"be nice","max_output_tokens":50,"temperature":0.5}),
    );
    for e in [Event::thinking("t"), Event::content("hello"), done()] {
        c.collect(&e);
    }
    let body = c.body();
    assert!(body.ends_with(b"}\n"));
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        v,
        json!({
            "id":"resp_1","object":"response","created_at":100,"completed_at":200,"status":"completed",
            "incomplete_details":null,"model":"m","previous_response_id":null,"instructions":"be nice",
            "output":[
                {"id":"rs_resp_1","type":"reasoning","summary":[{"type":"summary_text","text":"t"}],"encrypted_content":"t"},
                {"id":"msg_2","type":"message","status":"completed","role":"assistant","content":[{"type":"output_text","text":"hello","annotations":[],"logprobs":[]}]}
            ],
            "error":null,"tools":[],"tool_choice":"auto","truncation":"disabled","parallel_tool_calls":true,
            "text":{"format":{"type":"text"}},"top_p":1,"presence_penalty":0,"frequency_penalty":0,"top_logprobs":0,
            "temperature":0.5,"reasoning":null,
            "usage":{"input_tokens":7,"output_tokens":5,"total_tokens":12,"input_tokens_details":{"cached_tokens":0},"output_tokens_details":{"reasoning_tokens":0}},
            "max_output_tokens":50,"max_tool_calls":null,"store":false,"background":false,"service_tier":"default",
            "metadata":{},"safety_identifier":null,"prompt_cache_key":null
        })
    );
    // Struct order, not map order.
    assert!(body.starts_with(br#"{"id":"resp_1","object":"response","created_at":100"#));
}

#[test]
fn responses_input_items_become_messages() {
    let r = req(json!({"model":"m","instructions":"sys","input":[
        {"role":"user","content":"q"},
        {"type":"reasoning","id":"rs","summary":[],"encrypted_content":"thought"},
        {"type":"function_call","call_id":"c1","name":"f","arguments":"{\"a\":1}"},
        {"type":"function_call_output","call_id":"c1","output":[{"type":"input_text","text":"r1"},{"type":"output_text","text":"r2"}]},
        {"type":"message","role":"assistant","content":[{"type":"output_text","text":"done"}]}
    ]}));
    assert_eq!(
        msgs(&r),
        vec![
            ("system".into(), "sys".into()),
            ("user".into(), "q".into()),
            ("assistant".into(), "".into()),
            ("tool".into(), "r1r2".into()),
            ("assistant".into(), "done".into()),
        ]
    );
    let Input::Chat(chat) = &r.input else {
        panic!()
    };
    assert_eq!(chat.messages[2].thinking, "thought");
    assert_eq!(chat.messages[2].tool_calls[0].arguments["a"], json!(1));
    assert_eq!(chat.messages[3].tool_call_id, "c1");
    assert_eq!(r.options.temperature, Some(1.0));
    assert_eq!(r.options.top_p, None);
}

#[test]
fn responses_options_think_tools_and_format() {
    let r = req(
        json!({"model":"m","input":"x","reasoning":{"effort":"minimal"},"max_output_tokens":9,"top_p":0.3,
        "text":{"format":{"type":"json_schema","name":"s","schema":{"type":"object"}}},
        "tools":[{"type":"namespace","name":"fs","tools":[{"type":"function","name":"read","parameters":{"type":"object"}}]}],
        "stream":true}),
    );
    assert_eq!(r.think, Some(Think::Level("low".into())));
    assert_eq!(r.options.num_predict, Some(9));
    assert_eq!(r.options.top_p, Some(0.3));
    assert_eq!(r.format, Some(Format::Schema(json!({"type":"object"}))));
    assert!(r.stream);
    let Input::Chat(chat) = &r.input else {
        panic!()
    };
    assert_eq!(chat.tools[0]["function"]["name"], "fs.read");
}

#[test]
fn responses_input_errors_use_upstream_texts() {
    let cases = [
        (json!({"model":"m","input":[{"content":"x"}]}), "input[0]: input item missing required 'type' field"),
        (json!({"model":"m","input":[{"type":"bogus"}]}), "input[0]: unknown input item type: \"bogus\""),
        (json!({"model":"m","input":[{"role":"user","content":[{"type":"input_text","text":"a"},{"type":"x"}]}]}),
            "input[0]: content[1]: unknown content type: x"),
        (json!({"model":"m","input":[{"role":"user","content":[{"type":"input_file","file_id":"f"}]}]}),
            "file inputs are not currently supported"),
        (json!({"model":"m","input":"x","reasoning":{"effort":"huge"}}),
            "invalid reasoning value: \"huge\" (must be \"minimal\", \"low\", \"medium\", \"high\", \"xhigh\", \"ultra\", \"max\", or \"none\")"),
        (json!({"model":"m","input":[{"role":"user","content":[{"type":"input_image","image_url":"http://x"}]}]}),
            "image URLs are not currently supported, please use base64 encoded data instead"),
    ];
    for (body, want) in cases {
        assert_eq!(err(body.clone()), want, "{body}");
    }
}
