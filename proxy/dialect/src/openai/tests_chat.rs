//! Table tests for `/v1/chat/completions`: request translation and the chunk state machine.

use ollmlx_infer::{DoneReason, Event, Format, Input, Logprob, Stats, Think, ToolCall};
use serde_json::{json, Map, Value};

use super::chat::decode_chat;
use super::chat_codec::ChatCodec;
use crate::{Chunk, Codec};

fn codec(include_usage: bool) -> ChatCodec {
    ChatCodec::new("chatcmpl-7".into(), 1700000000, "m".into(), include_usage)
}

fn done(reason: DoneReason) -> Event {
    Event::Done {
        reason,
        stats: Stats {
            prompt_eval_count: 5,
            eval_count: 3,
            ..Default::default()
        },
        context: None,
    }
}

fn call(name: &str) -> ToolCall {
    let mut arguments = Map::new();
    arguments.insert("city".into(), json!("Paris"));
    ToolCall {
        id: "call_abc".into(),
        index: 0,
        name: name.into(),
        arguments,
    }
}

fn run(c: &mut ChatCodec, events: &[Event]) -> Vec<Chunk> {
    let mut out: Vec<Chunk> = events.iter().flat_map(|e| c.stream(e)).collect();
    out.extend(c.stream_end());
    out
}

fn deltas(chunks: &[Chunk]) -> Vec<Value> {
    chunks
        .iter()
        .filter_map(|c| match c {
            Chunk::Data(d) => Some(serde_json::from_slice::<Value>(d).unwrap()),
            _ => None,
        })
        .collect()
}

fn req(body: Value) -> ollmlx_infer::Request {
    decode_chat(&serde_json::to_vec(&body).unwrap())
        .unwrap()
        .request
}

fn err(body: Value) -> String {
    match decode_chat(&serde_json::to_vec(&body).unwrap()) {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.message,
    }
}

fn messages(r: &ollmlx_infer::Request) -> &[ollmlx_infer::Message] {
    match &r.input {
        Input::Chat(c) => &c.messages,
        _ => panic!("not chat"),
    }
}

#[test]
fn chat_stream_emits_role_only_on_first_chunk() {
    let mut c = codec(false);
    let out = deltas(&run(
        &mut c,
        &[
            Event::content("Hel"),
            Event::content("lo"),
            done(DoneReason::Stop),
        ],
    ));
    assert_eq!(
        out[0]["choices"][0]["delta"],
        json!({"role":"assistant","content":"Hel"})
    );
    assert_eq!(out[1]["choices"][0]["delta"], json!({"content":"lo"}));
    for chunk in &out {
        assert_eq!(chunk["id"], "chatcmpl-7");
        assert_eq!(chunk["created"], 1700000000);
        assert_eq!(chunk["object"], "chat.completion.chunk");
        assert_eq!(chunk["system_fingerprint"], "fp_ollama");
    }
}

#[test]
fn chunk_bytes_follow_upstream_field_order() {
    let mut c = codec(false);
    let out = c.stream(&Event::content("a<b"));
    assert_eq!(
        out,
        vec![Chunk::Data(
            br#"{"id":"chatcmpl-7","object":"chat.completion.chunk","created":1700000000,"model":"m","system_fingerprint":"fp_ollama","choices":[{"index":0,"delta":{"role":"assistant","content":"a\u003cb"},"finish_reason":null}]}"#.to_vec()
        )]
    );
}

#[test]
fn reasoning_and_content_in_one_event_are_split_reasoning_first() {
    let mut c = codec(false);
    let ev = Event::Delta {
        content: "answer".into(),
        thinking: "hmm".into(),
        logprobs: vec![],
    };
    let out = deltas(&c.stream(&ev));
    assert_eq!(out.len(), 2);
    assert_eq!(
        out[0]["choices"][0]["delta"],
        json!({"role":"assistant","reasoning":"hmm"})
    );
    assert_eq!(out[1]["choices"][0]["delta"], json!({"content":"answer"}));
}

#[test]
fn reasoning_only_chunk_keeps_empty_content() {
    let mut c = codec(false);
    let out = deltas(&c.stream(&Event::thinking("hmm")));
    assert_eq!(
        out[0]["choices"][0]["delta"],
        json!({"role":"assistant","content":"","reasoning":"hmm"})
    );
}

#[test]
fn finish_chunk_has_empty_delta() {
    let mut c = codec(false);
    c.stream(&Event::content("x"));
    let out = c.stream(&done(DoneReason::Stop));
    assert_eq!(
        out,
        vec![Chunk::Data(
            br#"{"id":"chatcmpl-7","object":"chat.completion.chunk","created":1700000000,"model":"m","system_fingerprint":"fp_ollama","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#.to_vec()
        )]
    );
}

#[test]
fn finish_reason_table() {
    let cases: Vec<(Vec<Event>, &str)> = vec![
        (vec![Event::content("x"), done(DoneReason::Stop)], "stop"),
        (
            vec![Event::content("x"), done(DoneReason::Length)],
            "length",
        ),
        (
            vec![Event::ToolCalls(vec![call("get")]), done(DoneReason::Stop)],
            "tool_calls",
        ),
        (
            vec![
                Event::ToolCalls(vec![call("get")]),
                done(DoneReason::Length),
            ],
            "length",
        ),
    ];
    for (events, want) in cases {
        let mut c = codec(false);
        let out = deltas(&run(&mut c, &events));
        let last = out.last().unwrap();
        assert_eq!(last["choices"][0]["finish_reason"], want, "{events:?}");
    }
}

#[test]
fn tool_call_chunk_carries_index_type_and_string_arguments() {
    let mut c = codec(false);
    let out = deltas(&c.stream(&Event::ToolCalls(vec![call("get")])));
    assert_eq!(
        out[0]["choices"][0]["delta"],
        json!({"role":"assistant","content":"","tool_calls":[{"id":"call_abc","index":0,"type":"function","function":{"name":"get","arguments":"{\"city\":\"Paris\"}"}}]})
    );
}

#[test]
fn tool_calls_without_id_get_generated_call_ids() {
    let mut c = codec(false);
    let mut tc = call("get");
    tc.id.clear();
    let out = deltas(&c.stream(&Event::ToolCalls(vec![tc])));
    let id = out[0]["choices"][0]["delta"]["tool_calls"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(id.starts_with("call_") && id.len() == 13, "{id}");
}

#[test]
fn include_usage_adds_final_usage_chunk() {
    let mut c = codec(true);
    let out = run(&mut c, &[Event::content("x"), done(DoneReason::Stop)]);
    assert_eq!(out.last(), Some(&Chunk::Done));
    let data = deltas(&out);
    let usage = data.last().unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(
        usage["usage"],
        json!({"prompt_tokens":5,"completion_tokens":3,"total_tokens":8})
    );
    // Earlier chunks carry no usage.
    assert!(data[0].get("usage").is_none());
}

#[test]
fn empty_completion_still_opens_with_role_chunk() {
    let mut c = codec(false);
    let out = deltas(&run(&mut c, &[done(DoneReason::Stop)]));
    assert_eq!(out.len(), 2);
    assert_eq!(
        out[0]["choices"][0]["delta"],
        json!({"role":"assistant","content":""})
    );
    assert_eq!(out[1]["choices"][0]["delta"], json!({}));
}

#[test]
fn empty_deltas_are_not_emitted() {
    let mut c = codec(false);
    assert!(c.stream(&Event::content("")).is_empty());
}

#[test]
fn logprobs_attach_to_the_chunk() {
    let mut c = codec(false);
    let ev = Event::Delta {
        content: "a".into(),
        thinking: String::new(),
        logprobs: vec![Logprob {
            token: "a".into(),
            logprob: -0.5,
            bytes: vec![97],
            top_logprobs: vec![],
        }],
    };
    let out = deltas(&c.stream(&ev));
    assert_eq!(
        out[0]["choices"][0]["logprobs"],
        json!({"content":[{"token":"a","logprob":-0.5,"bytes":[97]}]})
    );
}

#[test]
fn stream_error_is_an_openai_error_chunk() {
    let mut c = codec(false);
    let out = deltas(&c.stream_error(500, "boom"));
    assert_eq!(
        out[0],
        json!({"error":{"message":"boom","type":"api_error","param":null,"code":null}})
    );
}

#[test]
fn non_stream_body_aggregates_events_with_trailing_newline() {
    let mut c = codec(false);
    for e in [
        Event::thinking("th"),
        Event::content("Hi"),
        Event::content(" there"),
        done(DoneReason::Stop),
    ] {
        c.collect(&e);
    }
    let body = c.body();
    assert_eq!(
        String::from_utf8(body).unwrap(),
        "{\"id\":\"chatcmpl-7\",\"object\":\"chat.completion\",\"created\":1700000000,\"model\":\"m\",\"system_fingerprint\":\"fp_ollama\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"Hi there\",\"reasoning\":\"th\"},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":3,\"total_tokens\":8}}\n"
    );
}

#[test]
fn non_stream_tool_calls_turn_stop_into_tool_calls() {
    let mut c = codec(false);
    c.collect(&Event::ToolCalls(vec![call("get")]));
    c.collect(&done(DoneReason::Stop));
    let v: Value = serde_json::from_slice(&c.body()).unwrap();
    assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(v["choices"][0]["message"]["content"], "");
    assert_eq!(
        v["choices"][0]["message"]["tool_calls"][0]["type"],
        "function"
    );
}

#[test]
fn temperature_and_top_p_default_to_one() {
    let r = req(json!({"model":"m","messages":[{"role":"user","content":"hi"}]}));
    assert_eq!(r.options.temperature, Some(1.0));
    assert_eq!(r.options.top_p, Some(1.0));
    assert!(!r.stream);
    let r = req(
        json!({"model":"m","messages":[{"role":"user","content":"hi"}],"temperature":0.2,"top_p":0.5,"max_tokens":7,"seed":3,"stop":"x","stream":true}),
    );
    assert_eq!(r.options.temperature, Some(0.2));
    assert_eq!(r.options.top_p, Some(0.5));
    assert_eq!(r.options.num_predict, Some(7));
    assert_eq!(r.options.seed, Some(3));
    assert_eq!(r.options.stop, Some(vec!["x".to_string()]));
    assert!(r.stream);
}

#[test]
fn max_completion_tokens_is_not_read() {
    let r = req(
        json!({"model":"m","messages":[{"role":"user","content":"hi"}],"max_completion_tokens":9}),
    );
    assert_eq!(r.options.num_predict, None);
}

#[test]
fn stop_array_keeps_only_strings() {
    let r =
        req(json!({"model":"m","messages":[{"role":"user","content":"hi"}],"stop":["a",1,"b"]}));
    assert_eq!(r.options.stop, Some(vec!["a".to_string(), "b".to_string()]));
}

#[test]
fn response_format_maps_to_format() {
    let base = json!({"model":"m","messages":[{"role":"user","content":"hi"}]});
    let with = |rf: Value| {
        let mut b = base.clone();
        b["response_format"] = rf;
        req(b).format
    };
    assert_eq!(with(json!({"type":"json_object"})), Some(Format::Json));
    assert_eq!(
        with(json!({"type":" JSON_Schema ","json_schema":{"name":"x","schema":{"type":"object"}}})),
        Some(Format::Schema(json!({"type":"object"})))
    );
    assert_eq!(with(json!({"type":"text"})), None);
}

#[test]
fn reasoning_effort_maps_to_think() {
    let cases = [
        ("none", Think::Bool(false)),
        ("minimal", Think::Level("low".into())),
        ("low", Think::Level("low".into())),
        ("medium", Think::Level("medium".into())),
        ("high", Think::Level("high".into())),
        ("max", Think::Level("max".into())),
        ("xhigh", Think::Level("max".into())),
        ("ultra", Think::Level("max".into())),
    ];
    for (effort, want) in cases {
        let r = req(
            json!({"model":"m","messages":[{"role":"user","content":"hi"}],"reasoning_effort":effort}),
        );
        assert_eq!(r.think, Some(want.clone()), "{effort}");
        let r = req(
            json!({"model":"m","messages":[{"role":"user","content":"hi"}],"reasoning":{"effort":effort},"reasoning_effort":"bogus"}),
        );
        assert_eq!(r.think, Some(want), "nested {effort}");
    }
    let r = req(json!({"model":"m","messages":[{"role":"user","content":"hi"}]}));
    assert_eq!(r.think, None);
}

#[test]
fn reasoning_effort_invalid_value_is_rejected_with_upstream_text() {
    assert_eq!(
        err(
            json!({"model":"m","messages":[{"role":"user","content":"hi"}],"reasoning_effort":"extreme"})
        ),
        r#"invalid reasoning value: "extreme" (must be "minimal", "low", "medium", "high", "xhigh", "ultra", "max", or "none")"#
    );
}

#[test]
fn validation_errors_use_upstream_texts() {
    let cases = [
        (
            json!({"model":"m","messages":[]}),
            "[] is too short - 'messages'",
        ),
        (json!({"model":"m"}), "[] is too short - 'messages'"),
        (
            json!({"model":"m","messages":[{"role":"user"}]}),
            "invalid message content type: <nil>",
        ),
        (
            json!({"model":"m","messages":[{"role":"user","content":5}]}),
            "invalid message content type: float64",
        ),
        (
            json!({"model":"m","messages":[{"role":"user","content":["x"]}]}),
            "invalid message format",
        ),
        (
            json!({"model":"m","messages":[{"role":"user","content":[{"type":"video"}]}]}),
            "invalid message format",
        ),
        (
            json!({"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"https://x/y.png"}}]}]}),
            "image URLs are not currently supported, please use base64 encoded data instead",
        ),
        (
            json!({"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":"data:image/gif;base64,AAAA"}]}]}),
            "invalid image input",
        ),
        (
            json!({"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":"data:image/png;base64,!!"}]}]}),
            "invalid image input",
        ),
        (
            json!({"model":"m","messages":[{"role":"assistant","content":"","tool_calls":[{"id":"1","type":"function","function":{"name":"f","arguments":"{bad"}}]}]}),
            "invalid tool call arguments",
        ),
        (
            json!({"model":"m","messages":[{"role":"user","content":"x"}],"top_logprobs":21}),
            "top_logprobs must be between 0 and 20",
        ),
    ];
    for (body, want) in cases {
        assert_eq!(err(body.clone()), want, "{body}");
    }
}

#[test]
fn image_data_urls_are_decoded_to_bytes() {
    for url in [
        "data:image/png;base64,aGk=",
        "data:;base64,aGk=",
        "data:image/jpg;base64,aGk=",
    ] {
        let r = req(
            json!({"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":url}}]}]}),
        );
        assert_eq!(messages(&r)[0].images, vec![b"hi".to_vec()], "{url}");
    }
}

#[test]
fn each_content_part_becomes_a_separate_message() {
    let r = req(json!({"model":"m","messages":[{"role":"User","content":[
        {"type":"text","text":"look"},
        {"type":"image_url","image_url":"data:image/png;base64,aGk="}
    ]}]}));
    let m = messages(&r);
    assert_eq!(m.len(), 2);
    assert_eq!(
        (m[0].role.as_str(), m[0].content.as_str()),
        ("user", "look")
    );
    assert_eq!(m[1].images, vec![b"hi".to_vec()]);
    assert_eq!(m[1].content, "");
}

#[test]
fn tool_messages_take_name_or_look_it_up_by_call_id() {
    let r = req(json!({"model":"m","messages":[
        {"role":"assistant","content":null,"reasoning":"r","tool_calls":[{"id":"c1","type":"function","function":{"name":"weather","arguments":"{\"a\":1}"}}]},
        {"role":"tool","content":"sunny","tool_call_id":"c1"},
        {"role":"tool","content":"x","name":"explicit","tool_call_id":"c1"}
    ]}));
    let m = messages(&r);
    assert_eq!(m[0].tool_calls[0].name, "weather");
    assert_eq!(m[0].tool_calls[0].arguments["a"], json!(1));
    assert_eq!(m[0].thinking, "r");
    assert_eq!(
        (m[1].tool_name.as_str(), m[1].tool_call_id.as_str()),
        ("weather", "c1")
    );
    assert_eq!(m[2].tool_name, "explicit");
}

#[test]
fn decode_errors_are_worded_like_go() {
    assert!(err(json!({"model":"m","messages":"x"})).starts_with("json: cannot unmarshal string"));
    match decode_chat(b"{") {
        Err(e) => assert_eq!(e.message, "unexpected EOF"),
        Ok(_) => panic!(),
    }
}
