//! Behaviour of the Go template engine and Ollama's rendering convention.

use serde_json::json;

use super::*;

/// Execute with `.Response` empty (Ollama appends `{{ .Response }}` to templates lacking it).
fn run(src: &str, mut data: serde_json::Value) -> String {
    if let Some(o) = data.as_object_mut() {
        o.entry("Response").or_insert(json!(""));
    }
    Template::parse(src)
        .unwrap()
        .execute(&Value::from_json(&data))
        .unwrap()
}

fn msg(role: &str, content: &str) -> Message {
    Message {
        role: role.into(),
        content: content.into(),
        ..Message::default()
    }
}

#[test]
fn actions_print_fields_and_trim_markers_eat_whitespace() {
    assert_eq!(
        run("a  {{- .X -}}  b {{ .Y }}", json!({"X": 1, "Y": "y"})),
        "a1b y"
    );
    // A dash without a space is a negative number, not a trim marker.
    assert_eq!(run("a {{-3}} b", json!({})), "a -3 b");
}

#[test]
fn comments_vanish_and_may_trim() {
    assert_eq!(run("a {{/* note */}} b", json!({})), "a  b");
    assert_eq!(run("a {{- /* note */ -}} b", json!({})), "ab");
}

#[test]
fn if_else_if_else_chains_pick_the_first_true_branch() {
    let t = "{{ if eq .R \"a\" }}A{{ else if eq .R \"b\" }}B{{ else }}C{{ end }}";
    assert_eq!(run(t, json!({"R": "a"})), "A");
    assert_eq!(run(t, json!({"R": "b"})), "B");
    assert_eq!(run(t, json!({"R": "z"})), "C");
}

#[test]
fn range_binds_index_and_element_and_supports_else() {
    let t = "{{ range $i, $m := .L }}{{ $i }}={{ $m.N }};{{ else }}none{{ end }}";
    assert_eq!(run(t, json!({"L": [{"N": "a"}, {"N": "b"}]})), "0=a;1=b;");
    assert_eq!(run(t, json!({"L": []})), "none");
    assert_eq!(
        run("{{ range .L }}{{ . }}{{ end }}", json!({"L": [1, 2]})),
        "12"
    );
}

#[test]
fn range_over_a_map_goes_in_key_order() {
    assert_eq!(
        run(
            "{{ range $k, $v := .M }}{{ $k }}:{{ $v }} {{ end }}",
            json!({"M": {"b": 2, "a": 1}})
        ),
        "a:1 b:2 "
    );
}

#[test]
fn break_and_continue_steer_range() {
    let t = "{{ range .L }}{{ if eq . 2 }}{{ continue }}{{ end }}{{ if eq . 4 }}{{ break }}{{ end }}{{ . }}{{ end }}";
    assert_eq!(run(t, json!({"L": [1, 2, 3, 4, 5]})), "13");
}

#[test]
fn dollar_reaches_the_root_inside_range_and_with() {
    let t = "{{ range .L }}{{ $.P }}{{ . }}{{ end }}{{ with .W }}{{ .Z }}{{ $.P }}{{ end }}";
    assert_eq!(
        run(t, json!({"P": "-", "L": [1, 2], "W": {"Z": "z"}})),
        "-1-2z-"
    );
}

#[test]
fn last_message_idiom_with_slice_and_len_works() {
    // The idiom Ollama templates use to find the last message.
    let t = "{{ range $i, $_ := .M }}{{ $last := eq (len (slice $.M $i)) 1 }}{{ if $last }}LAST{{ end }}{{ end }}";
    assert_eq!(run(t, json!({"M": [1, 2, 3]})), "LAST");
}

#[test]
fn variables_assign_with_equals_across_iterations() {
    let t = "{{ $n := 0 }}{{ range .L }}{{ $n = . }}{{ end }}{{ $n }}";
    assert_eq!(run(t, json!({"L": [4, 5, 6]})), "6");
}

#[test]
fn pipelines_pass_the_previous_value_as_last_argument() {
    assert_eq!(run("{{ .S | printf \"<%s>\" }}", json!({"S": "x"})), "<x>");
    assert_eq!(run("{{ \"a\" | eq \"a\" }}", json!({})), "true");
}

#[test]
fn and_or_not_return_go_values() {
    assert_eq!(
        run("{{ and 1 0 }} {{ or 0 \"x\" }} {{ not .M }}", json!({})),
        "0 x true"
    );
    assert_eq!(run("{{ or .A .B }}", json!({"A": "", "B": "b"})), "b");
}

#[test]
fn define_and_template_calls_use_their_own_dot() {
    let t =
        "{{ define \"item\" }}[{{ .N }}]{{ end }}{{ range .L }}{{ template \"item\" . }}{{ end }}";
    assert_eq!(run(t, json!({"L": [{"N": 1}, {"N": 2}]})), "[1][2]");
    let b = "{{ block \"b\" .X }}<{{ . }}>{{ end }}";
    assert_eq!(run(b, json!({"X": "x"})), "<x>");
}

#[test]
fn missing_map_keys_are_zero_and_missing_struct_fields_are_errors() {
    // Ollama renders with missingkey=zero over map[string]any: nil prints "<no value>".
    assert_eq!(run("{{ .Nope }}", json!({})), "<no value>");
    assert_eq!(run("{{ if .Nope }}y{{ else }}n{{ end }}", json!({})), "n");
    let t = Template::parse("{{ .Role.X }}").unwrap();
    let data = Value::fields(vec![("Role", Value::fields(vec![]))]);
    let err = t.execute(&data).unwrap_err();
    assert!(err.to_string().contains("can't evaluate field X"), "{err}");
}

#[test]
fn json_function_marshals_values() {
    assert_eq!(
        run("{{ json .A }}", json!({"A": {"b": [1, "x"], "a": true}})),
        r#"{"a":true,"b":[1,"x"]}"#
    );
}

#[test]
fn parse_errors_are_reported_not_panicked() {
    for bad in [
        "{{ if .X }}",
        "{{ end }}",
        "{{ .X",
        "{{ $undefined }}",
        "{{ \"unterminated }}",
        "{{ range }}{{ end }}",
        "{{ else }}",
        "{{ ( .X }}",
        "{{/* open",
    ] {
        assert!(
            matches!(Template::parse(bad), Err(Error::Parse(_))),
            "accepted {bad:?}"
        );
    }
}

#[test]
fn exec_errors_are_reported() {
    for (bad, data) in [
        ("{{ nofunc 1 }}", json!({})),
        ("{{ index .L 5 }}", json!({"L": [1]})),
        ("{{ slice .L 2 1 }}", json!({"L": [1, 2]})),
        ("{{ range .S }}{{ end }}", json!({"S": true})),
        ("{{ .X 1 }}", json!({"X": 1})),
        ("{{ eq .L 1 }}", json!({"L": [1]})),
    ] {
        let t = Template::parse(bad).unwrap();
        assert!(
            matches!(t.execute(&Value::from_json(&data)), Err(Error::Exec(_))),
            "ran {bad:?}"
        );
    }
}

#[test]
fn recursive_templates_stop_at_a_depth_limit() {
    let t =
        Template::parse("{{ define \"r\" }}{{ template \"r\" . }}{{ end }}{{ template \"r\" . }}")
            .unwrap();
    assert!(t.execute(&Value::Nil).is_err());
}

#[test]
fn vars_lists_fields_and_variables_lowercased() {
    let t = Template::parse(
        "{{ range $.Messages }}{{ .Content }}{{ end }}{{ if (len .Tools) }}{{ end }}",
    )
    .unwrap();
    assert_eq!(t.vars(), ["$", "content", "messages", "tools"]);
}

const CHATML_MESSAGES: &str = "{{- range $i, $_ := .Messages }}
{{- $last := eq (len (slice $.Messages $i)) 1 -}}
<|im_start|>{{ .Role }}
{{ .Content }}<|im_end|>
{{ if and $last (ne .Role \"assistant\") }}<|im_start|>assistant
{{ end }}
{{- end }}";

#[test]
fn messages_templates_get_the_collated_conversation() {
    let t = Template::parse(CHATML_MESSAGES).unwrap();
    let v = Values {
        messages: vec![
            msg("system", "Be brief."),
            msg("user", "Hi"),
            msg("user", "there"),
        ],
        ..Values::default()
    };
    assert_eq!(
        t.render(&v).unwrap(),
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi\n\nthere<|im_end|>\n<|im_start|>assistant\n"
    );
}

const LEGACY: &str = "{{ if .System }}<<SYS>>{{ .System }}<</SYS>>{{ end }}[INST] {{ .Prompt }} [/INST] {{ .Response }}</s>";

#[test]
fn legacy_templates_render_each_turn_and_cut_the_last_at_response() {
    let t = Template::parse(LEGACY).unwrap();
    let v = Values {
        messages: vec![
            msg("system", "S"),
            msg("user", "one"),
            msg("assistant", "uno"),
            msg("user", "two"),
        ],
        ..Values::default()
    };
    assert_eq!(
        t.render(&v).unwrap(),
        "<<SYS>>S<</SYS>>[INST] one [/INST] uno</s>[INST] two [/INST] "
    );
}

#[test]
fn templates_without_response_get_it_appended() {
    let t = Template::parse("Q: {{ .Prompt }}\nA: ").unwrap();
    let v = Values {
        messages: vec![
            msg("user", "hi"),
            msg("assistant", "yo"),
            msg("user", "again"),
        ],
        ..Values::default()
    };
    assert_eq!(t.render(&v).unwrap(), "Q: hi\nA: yoQ: again\nA: ");
}

#[test]
fn suffix_requests_render_prompt_and_suffix_only() {
    let t = Template::parse("<PRE> {{ .Prompt }} <SUF>{{ .Suffix }} <MID>").unwrap();
    let v = Values {
        prompt: "def f(".into(),
        suffix: "return x".into(),
        ..Values::default()
    };
    assert_eq!(t.render(&v).unwrap(), "<PRE> def f( <SUF>return x <MID>");
}

#[test]
fn tools_print_as_json_and_expose_go_fields() {
    let t = Template::parse(
        "{{ if .Tools }}{{ .Tools }}|{{ range .Tools }}{{ .Function.Name }}:{{ range $k, $p := .Function.Parameters.Properties }}{{ $k }}={{ toTypeScriptType $p }};{{ end }}{{ end }}{{ end }}{{ range .Messages }}{{ range .ToolCalls }}{{ .Function.Name }}{{ .Function.Arguments }}{{ end }}{{ end }}",
    )
    .unwrap();
    let v = Values {
        messages: vec![Message {
            role: "assistant".into(),
            tool_calls: vec![ToolCall {
                name: "get_weather".into(),
                arguments: json!({"unit": "c", "city": "Paris"})
                    .as_object()
                    .unwrap()
                    .clone(),
                ..ToolCall::default()
            }],
            ..Message::default()
        }],
        tools: vec![json!({
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": {
                    "type": "object",
                    "required": ["city"],
                    "properties": {"city": {"type": "string", "description": "City"}, "days": {"type": ["integer", "null"]}}
                }
            }
        })],
        ..Values::default()
    };
    assert_eq!(
        t.render(&v).unwrap(),
        concat!(
            r#"[{"type":"function","function":{"name":"get_weather","description":"","parameters":{"type":"object","required":["city"],"properties":{"city":{"type":"string","description":"City"},"days":{"type":["integer","null"]}}}}}]"#,
            "|get_weather:city=string;days=number | null;",
            r#"get_weather{"city":"Paris","unit":"c"}"#
        )
    );
}

#[test]
fn no_tools_leaves_the_tools_branch_false() {
    let t = Template::parse("{{ if .Tools }}T{{ else }}none{{ end }}{{ .Messages }}").unwrap();
    assert!(t.render(&Values::default()).unwrap().starts_with("none"));
}

#[test]
fn think_variables_reach_the_template() {
    let t = Template::parse("{{ .Messages }}{{ if .IsThinkSet }}{{ if .Think }}on{{ else }}off{{ end }}{{ .ThinkLevel }}{{ end }}").unwrap();
    let v = Values {
        think: true,
        think_level: "high".into(),
        is_think_set: true,
        ..Values::default()
    };
    assert!(t.render(&v).unwrap().ends_with("onhigh"));
}
