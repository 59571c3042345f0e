//! Pins the event sequence [`StreamState`] derives from OpenAI stream chunks, with time injected.

use std::time::{Duration, Instant};

use ollmlx_infer::{BackendError, DoneReason, Event, Stats, ToolCall};
use serde_json::{json, Map, Value};

use super::{Step, StreamState};

const MS: Duration = Duration::from_millis(1);

fn obj(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

/// Feed `(offset_ms, payload)` pairs; returns all events and the final step's error if any.
fn run(drop_thinking: bool, script: &[(u64, &str)]) -> (Vec<Event>, Option<BackendError>, Instant) {
    let t0 = Instant::now();
    let mut st = StreamState::new("upstream openai at http://h", t0, drop_thinking);
    let mut out = Vec::new();
    for (at, data) in script {
        match st.push(data, t0 + MS * (*at as u32)) {
            Ok(Step::Events(ev)) => out.extend(ev),
            Ok(Step::Done(ev)) => {
                out.extend(ev);
                return (out, None, t0);
            }
            Err(e) => return (out, Some(e), t0),
        }
    }
    (out, None, t0)
}

fn done(reason: DoneReason, stats: Stats) -> Event {
    Event::Done {
        reason,
        stats,
        context: None,
    }
}

fn ms(n: u64) -> u64 {
    n * 1_000_000
}

#[test]
fn content_reasoning_and_split_tool_calls_become_the_exact_event_sequence() {
    let (events, err, _) = run(
        false,
        &[
            (
                5,
                r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}"#,
            ),
            (
                10,
                r#"{"choices":[{"index":0,"delta":{"reasoning_content":"Let me think"}}]}"#,
            ),
            (
                12,
                r#"{"choices":[{"index":0,"delta":{"content":"Checking."}}]}"#,
            ),
            (
                14,
                r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_a","type":"function","function":{"name":"get_weather","arguments":""}}]}}]}"#,
            ),
            (
                16,
                r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"city\":"}}]}}]}"#,
            ),
            (
                18,
                r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"call_b","type":"function","function":{"name":"get_time","arguments":"{}"}}]}}]}"#,
            ),
            (
                20,
                r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\"Paris\"}"}}]}}]}"#,
            ),
            (
                22,
                r#"{"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}"#,
            ),
            (
                23,
                r#"{"choices":[],"usage":{"prompt_tokens":12,"completion_tokens":34,"total_tokens":46}}"#,
            ),
            (30, "[DONE]"),
        ],
    );
    assert_eq!(err, None);
    assert_eq!(
        events,
        vec![
            Event::thinking("Let me think"),
            Event::content("Checking."),
            Event::ToolCalls(vec![
                ToolCall {
                    id: "call_a".into(),
                    index: 0,
                    name: "get_weather".into(),
                    arguments: obj(json!({"city":"Paris"})),
                },
                ToolCall {
                    id: "call_b".into(),
                    index: 1,
                    name: "get_time".into(),
                    arguments: Map::new(),
                },
            ]),
            done(
                DoneReason::Stop,
                Stats {
                    total_duration: ms(30),
                    load_duration: 0,
                    prompt_eval_count: 12,
                    prompt_eval_duration: ms(10),
                    eval_count: 34,
                    eval_duration: ms(20),
                }
            ),
        ]
    );
}

#[test]
fn reasoning_field_alias_is_thinking_and_think_false_drops_it() {
    let script = [
        (
            1,
            r#"{"choices":[{"index":0,"delta":{"reasoning":"hmm"}}]}"#,
        ),
        (
            2,
            r#"{"choices":[{"index":0,"delta":{"content":"ok"},"finish_reason":"stop"}]}"#,
        ),
        (3, "[DONE]"),
    ];
    let (events, _, _) = run(false, &script);
    assert_eq!(events[..2], [Event::thinking("hmm"), Event::content("ok")]);
    let (events, _, _) = run(true, &script);
    assert_eq!(events[0], Event::content("ok"));
    assert!(matches!(events[1], Event::Done { .. }));
}

#[test]
fn length_finish_reason_maps_to_length_and_unknown_reasons_pass_through() {
    let (events, _, _) = run(
        false,
        &[
            (
                1,
                r#"{"choices":[{"index":0,"delta":{"content":"a"},"finish_reason":"length"}]}"#,
            ),
            (2, "[DONE]"),
        ],
    );
    assert!(matches!(
        &events[1],
        Event::Done {
            reason: DoneReason::Length,
            ..
        }
    ));
    let (events, _, _) = run(
        false,
        &[
            (
                1,
                r#"{"choices":[{"index":0,"delta":{},"finish_reason":"content_filter"}]}"#,
            ),
            (2, "[DONE]"),
        ],
    );
    assert_eq!(
        events,
        vec![done(
            DoneReason::Other("content_filter".into()),
            Stats {
                total_duration: ms(2),
                prompt_eval_duration: ms(2),
                ..Default::default()
            }
        )]
    );
}

#[test]
fn completions_text_chunks_are_content() {
    let (events, _, _) = run(
        false,
        &[
            (
                1,
                r#"{"object":"text_completion","choices":[{"index":0,"text":"Once"}]}"#,
            ),
            (
                2,
                r#"{"choices":[{"index":0,"text":" upon","finish_reason":"stop"}]}"#,
            ),
            (3, "[DONE]"),
        ],
    );
    assert_eq!(
        events[..2],
        [Event::content("Once"), Event::content(" upon")]
    );
}

#[test]
fn chat_logprobs_ride_on_the_content_delta() {
    let (events, _, _) = run(
        false,
        &[(
            1,
            r#"{"choices":[{"index":0,"delta":{"content":"Hi"},"logprobs":{"content":[{"token":"Hi","logprob":-0.5,"bytes":[72,105],"top_logprobs":[{"token":"Hello","logprob":-1.0}]}]}}]}"#,
        )],
    );
    let Event::Delta { logprobs, .. } = &events[0] else {
        panic!("{events:?}")
    };
    assert_eq!(logprobs[0].token, "Hi");
    assert_eq!(logprobs[0].bytes, b"Hi");
    assert_eq!(logprobs[0].top_logprobs[0].token, "Hello");
    assert_eq!(logprobs[0].top_logprobs[0].bytes, b"Hello");
}

#[test]
fn error_event_in_the_stream_becomes_an_upstream_error() {
    let (events, err, _) = run(
        false,
        &[
            (1, r#"{"choices":[{"index":0,"delta":{"content":"a"}}]}"#),
            (
                2,
                r#"{"error":{"message":"CUDA out of memory","type":"InternalServerError","code":503}}"#,
            ),
        ],
    );
    assert_eq!(events, vec![Event::content("a")]);
    assert_eq!(
        err,
        Some(BackendError::Upstream {
            status: 503,
            message: "CUDA out of memory".into()
        })
    );
    let (_, err, _) = run(
        false,
        &[(1, r#"{"object":"error","message":"bad things","code":"x"}"#)],
    );
    assert_eq!(
        err,
        Some(BackendError::Upstream {
            status: 500,
            message: "bad things".into()
        })
    );
}

#[test]
fn stream_without_finish_is_an_error_but_missing_done_sentinel_is_not() {
    let t0 = Instant::now();
    let mut st = StreamState::new("upstream openai at http://h", t0, false);
    st.push(r#"{"choices":[{"index":0,"delta":{"content":"a"}}]}"#, t0)
        .unwrap();
    assert_eq!(
        st.end_of_body(t0).unwrap_err(),
        BackendError::Unavailable(
            "upstream openai at http://h ended the stream before the generation finished".into()
        )
    );
    let mut st = StreamState::new("u", t0, false);
    st.push(
        r#"{"choices":[{"index":0,"delta":{"content":"a"},"finish_reason":"stop"}]}"#,
        t0,
    )
    .unwrap();
    let ev = st.end_of_body(t0 + MS).unwrap();
    assert!(matches!(
        ev[0],
        Event::Done {
            reason: DoneReason::Stop,
            ..
        }
    ));
}

#[test]
fn tool_arguments_that_are_not_an_object_are_a_clear_error() {
    let (_, err, _) = run(
        false,
        &[
            (
                1,
                r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c","function":{"name":"f","arguments":"{\"a\":"}}]}}]}"#,
            ),
            (
                2,
                r#"{"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}"#,
            ),
        ],
    );
    match err {
        Some(BackendError::Internal(m)) => assert!(
            m.starts_with("upstream openai at http://h returned arguments for tool call \"f\" that are not a JSON object"),
            "{m}"
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn tool_fragments_without_index_are_grouped_by_id_and_string_arguments_unwrapped() {
    let (events, err, _) = run(
        false,
        &[
            (
                1,
                r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"id":"a","function":{"name":"f","arguments":"{\"x\":"}}]}}]}"#,
            ),
            (
                2,
                r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"function":{"arguments":"1}"}}]}}]}"#,
            ),
            (
                3,
                r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"id":"b","function":{"name":"g","arguments":"\"{\\\"y\\\":2}\""}}]}}]}"#,
            ),
            (4, "[DONE]"),
        ],
    );
    assert_eq!(err, None);
    assert_eq!(
        events[0],
        Event::ToolCalls(vec![
            ToolCall {
                id: "a".into(),
                index: 0,
                name: "f".into(),
                arguments: obj(json!({"x":1})),
            },
            ToolCall {
                id: "b".into(),
                index: 1,
                name: "g".into(),
                arguments: obj(json!({"y":2})),
            },
        ])
    );
}

#[test]
fn non_json_event_is_a_clear_error() {
    let (_, err, _) = run(false, &[(1, "<html>")]);
    assert!(
        matches!(&err, Some(BackendError::Unavailable(m)) if m.starts_with("upstream openai at http://h sent a stream event that is not JSON")),
        "{err:?}"
    );
}
