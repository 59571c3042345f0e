//! Table tests for the tool-call parser: token-split tags, several calls, malformed JSON.

use super::*;

fn run(format: ToolFormat, pieces: &[&str]) -> Parsed {
    let mut p = ToolParser::new(format);
    let mut all = Parsed::default();
    for piece in pieces {
        let r = p.push(piece);
        all.content += &r.content;
        all.calls.extend(r.calls);
    }
    let r = p.flush();
    all.content += &r.content;
    all.calls.extend(r.calls);
    all
}

fn names(p: &Parsed) -> Vec<(usize, &str, String)> {
    p.calls
        .iter()
        .map(|c| {
            (
                c.index,
                c.name.as_str(),
                serde_json::to_string(&c.arguments).unwrap(),
            )
        })
        .collect()
}

#[test]
fn parser_table_covers_split_tags_multiple_calls_and_malformed_json() {
    type Case<'a> = (
        ToolFormat,
        &'a [&'a str],
        &'a str,
        &'a [(usize, &'a str, &'a str)],
    );
    let cases: &[Case] = &[
        (
            ToolFormat::Hermes,
            &["<tool", "_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"unit\": \"c\"}}\n</tool_", "call>"],
            "",
            &[(0, "get_weather", r#"{"city":"Paris","unit":"c"}"#)],
        ),
        (
            ToolFormat::Hermes,
            &["Sure. <tool_call>{\"name\":\"a\",\"arguments\":{}}</tool_call>", "<tool_call>{\"name\":\"b\",\"arguments\":{\"z\":1,\"a\":2}}</tool_call>"],
            "Sure. ",
            &[(0, "a", "{}"), (1, "b", r#"{"z":1,"a":2}"#)],
        ),
        (
            ToolFormat::Hermes,
            &["<tool_call>{not json}</tool_call> ok"],
            "<tool_call>{not json}</tool_call> ok",
            &[],
        ),
        (ToolFormat::Hermes, &["a < b", " and <tool"], "a < b and <tool", &[]),
        (
            ToolFormat::Hermes,
            &["<tool_call>{\"name\":\"f\",\"arguments\":{\"x\":1}}"],
            "",
            &[(0, "f", r#"{"x":1}"#)],
        ),
        (
            ToolFormat::Llama,
            &["<|python", "_tag|>{\"name\": \"f\", \"para", "meters\": {\"q\": \"}\"}}"],
            "",
            &[(0, "f", r#"{"q":"}"}"#)],
        ),
        (
            ToolFormat::Llama,
            &["{\"name\":\"f\",\"parameters\":{}}; {\"name\":\"g\",\"parameters\":{\"a\":[1]}}"],
            "",
            &[(0, "f", "{}"), (1, "g", r#"{"a":[1]}"#)],
        ),
        (ToolFormat::Llama, &["The answer {is} 4"], "The answer {is} 4", &[]),
        (ToolFormat::Llama, &["{\"a\": 1}"], "{\"a\": 1}", &[]),
        (
            ToolFormat::Mistral,
            &["[TOOL", "_CALLS][{\"name\":\"f\",\"arguments\":{\"x\":\"y\"}},", "{\"name\":\"g\",\"arguments\":\"{\\\"n\\\":2}\"}]"],
            "",
            &[(0, "f", r#"{"x":"y"}"#), (1, "g", r#"{"n":2}"#)],
        ),
        (ToolFormat::Mistral, &["[TOOL_CALLS][oops]"], "[TOOL_CALLS][oops]", &[]),
        (ToolFormat::Mistral, &["plain [text]"], "plain [text]", &[]),
    ];
    for (i, (format, pieces, content, calls)) in cases.iter().enumerate() {
        let got = run(*format, pieces);
        assert_eq!(got.content, *content, "case {i}: content");
        let want: Vec<(usize, &str, String)> = calls
            .iter()
            .map(|(n, f, a)| (*n, *f, a.to_string()))
            .collect();
        assert_eq!(names(&got), want, "case {i}: calls");
    }
}

#[test]
fn call_ids_are_call_underscore_and_eight_lowercase_alphanumerics() {
    let id = call_id();
    assert_eq!(id.len(), 13);
    assert!(id.starts_with("call_"));
    assert!(id[5..]
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
}

#[test]
fn format_is_detected_from_the_template() {
    assert_eq!(
        ToolFormat::detect("{% if tools %}<tool_call>{% endif %}"),
        Some(ToolFormat::Hermes)
    );
    assert_eq!(
        ToolFormat::detect("[AVAILABLE_TOOLS][TOOL_CALLS]"),
        Some(ToolFormat::Mistral)
    );
    assert_eq!(
        ToolFormat::detect("{{ tools }} {\"name\": function name, \"parameters\": dict}"),
        Some(ToolFormat::Llama)
    );
    assert_eq!(ToolFormat::detect("<|im_start|>"), None);
}
