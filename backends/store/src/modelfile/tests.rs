//! Table tests for the Modelfile parser and serializer.

use super::*;
use serde_json::json;

fn cmds(src: &str) -> Vec<(String, String)> {
    parse(src.as_bytes())
        .unwrap_or_else(|e| panic!("{src:?}: {e}"))
        .commands
        .into_iter()
        .map(|c| (c.name, c.args))
        .collect()
}

fn c(n: &str, a: &str) -> (String, String) {
    (n.to_string(), a.to_string())
}

#[test]
fn parses_every_command_kind() {
    let src = "FROM llama3.2\nADAPTER adapter.gguf\nPARAMETER temperature 1\nPARAMETER stop <|eot|>\n\
               TEMPLATE \"\"\"{{ .System }} {{ .Prompt }}\"\"\"\nSYSTEM You are a bot.\nLICENSE MIT\n\
               MESSAGE user hi there\nRENDERER r\nPARSER p\nREQUIRES 0.14.0\nDRAFT ./draft\n";
    assert_eq!(
        cmds(src),
        vec![
            c("model", "llama3.2"),
            c("adapter", "adapter.gguf"),
            c("temperature", "1"),
            c("stop", "<|eot|>"),
            c("template", "{{ .System }} {{ .Prompt }}"),
            c("system", "You are a bot."),
            c("license", "MIT"),
            c("message", "user: hi there"),
            c("renderer", "r"),
            c("parser", "p"),
            c("requires", "0.14.0"),
            c("draft", "./draft"),
        ]
    );
}

#[test]
fn parses_quotes_comments_and_lower_case_parameters() {
    let mf = r#"
# a comment
FROM llama3.2
PARAMETER temperature 0.7
parameter stop <|end|>
PARAMETER stop "<|user|>"
TEMPLATE """{{ .System }}
{{ .Prompt }}"""
SYSTEM You are "helpful".
MESSAGE user hi there
MESSAGE assistant hello
LICENSE MIT
ADAPTER ./lora.gguf
"#;
    assert_eq!(
        cmds(mf),
        vec![
            c("model", "llama3.2"),
            c("temperature", "0.7"),
            c("stop", "<|end|>"),
            c("stop", "<|user|>"),
            c("template", "{{ .System }}\n{{ .Prompt }}"),
            c("system", "You are \"helpful\"."),
            c("message", "user: hi there"),
            c("message", "assistant: hello"),
            c("license", "MIT"),
            c("adapter", "./lora.gguf"),
        ]
    );
}

#[test]
fn commands_are_case_insensitive_and_comments_skipped() {
    assert_eq!(
        cmds("# comment\nfrom m\n  # indented comment\nSyStEm hello   \n"),
        vec![c("model", "m"), c("system", "hello")]
    );
}

#[test]
fn multiline_quotes_keep_newlines() {
    assert_eq!(
        cmds("FROM m\nTEMPLATE \"\"\"line one\nline two\n\"\"\"\nSYSTEM \"a\nb\"\n"),
        vec![
            c("model", "m"),
            c("template", "line one\nline two\n"),
            c("system", "a\nb"),
        ]
    );
}

#[test]
fn value_without_trailing_newline_is_flushed() {
    assert_eq!(cmds("FROM m"), vec![c("model", "m")]);
    assert_eq!(
        cmds("FROM m\nSYSTEM \"\"\"x\"\"\""),
        vec![c("model", "m"), c("system", "x")]
    );
}

#[test]
fn errors_match_upstream_text() {
    let cases: &[(&str, &str)] = &[
        ("", "no FROM line"),
        ("SYSTEM x\n", "no FROM line"),
        (
            "FROM m\nFOO bar\n",
            "(line 2): command must be one of \"from\", \"license\", \"template\", \"system\", \"adapter\", \"draft\", \"renderer\", \"parser\", \"parameter\", \"message\", or \"requires\"",
        ),
        (
            "FROM m\nMESSAGE badrole hi\n",
            "(line 2): message role must be one of \"system\", \"user\", or \"assistant\"",
        ),
        ("FROM m\nPARAMETER temperature\n", "unexpected EOF: temperature"),
        ("FROM m\nSYSTEM \"\"\"unterminated\n", "unexpected EOF"),
        ("FROM m\nPARAMETER", "unexpected EOF"),
        ("PARAMETER temperature 1", "no FROM line"),
        (
            "FROM m\nBOGUS x\n",
            "(line 2): command must be one of \"from\", \"license\", \"template\", \"system\", \"adapter\", \"draft\", \"renderer\", \"parser\", \"parameter\", \"message\", or \"requires\"",
        ),
        (
            "FROM m\nMESSAGE bot hi\n",
            "(line 2): message role must be one of \"system\", \"user\", or \"assistant\"",
        ),
    ];
    for (src, want) in cases {
        let e = parse(src.as_bytes()).unwrap_err();
        assert_eq!(e.to_string(), *want, "{src:?}");
    }
}

#[test]
fn utf16_and_bom_inputs_are_decoded() {
    let mut le = vec![0xFF, 0xFE];
    for u in "FROM m\nSYSTEM héllo\n".encode_utf16() {
        le.extend_from_slice(&u.to_le_bytes());
    }
    assert_eq!(
        parse(&le).unwrap().commands[1],
        Command::new("system", "héllo")
    );
    let mut bom = vec![0xEF, 0xBB, 0xBF];
    bom.extend_from_slice(b"FROM m\n");
    assert_eq!(parse(&bom).unwrap().commands[0], Command::new("model", "m"));
    assert_eq!(
        parse(&bom).unwrap().commands,
        vec![Command::new("model", "m")]
    );
    let mut u = vec![0xFF, 0xFE];
    for unit in "FROM m\n".encode_utf16() {
        u.extend_from_slice(&unit.to_le_bytes());
    }
    assert_eq!(
        parse(&u).unwrap().commands,
        vec![Command::new("model", "m")]
    );
}

#[test]
fn serializer_quotes_like_upstream() {
    let f = Modelfile {
        commands: vec![
            Command::new("model", "/blobs/sha256-x"),
            Command::new("template", "{{ .Prompt }}\n"),
            Command::new("system", "say \"hi\"\nplease"),
            Command::new("system", " padded"),
            Command::new("stop", "<|im_end|>"),
            Command::new("message", "user: hello"),
            Command::new("license", "MIT"),
        ],
    };
    assert_eq!(
        f.to_string(),
        "FROM /blobs/sha256-x\nTEMPLATE \"{{ .Prompt }}\n\"\nSYSTEM \"\"\"say \"hi\"\nplease\"\"\"\n\
         SYSTEM \" padded\"\nPARAMETER stop <|im_end|>\nMESSAGE user hello\nLICENSE MIT\n"
    );
}

#[test]
fn serialized_modelfile_parses_back() {
    let src = "FROM m\nTEMPLATE \"\"\"{{ if .System }}\"sys\"{{ end }}\n\"\"\"\nPARAMETER stop \" x \"\nMESSAGE assistant ok\n";
    let f = parse(src.as_bytes()).unwrap();
    let again = parse(f.to_string().as_bytes()).unwrap();
    assert_eq!(f, again);
}

#[test]
fn to_request_types_parameters_and_accumulates_stop() {
    let f = parse(
        b"FROM m\nPARAMETER temperature 0.7\nPARAMETER num_ctx 4096\nPARAMETER use_mmap true\n\
          PARAMETER stop a\nPARAMETER stop b\nPARAMETER mirostat 1\nREQUIRES v0.19.1\nMESSAGE system be nice\n",
    )
    .unwrap();
    let r = f.to_request().unwrap();
    assert_eq!(r.from, vec!["m"]);
    assert_eq!(
        Value::Object(r.parameters),
        json!({"temperature": 0.7, "num_ctx": 4096, "use_mmap": true, "stop": ["a", "b"]})
    );
    assert_eq!(r.deprecated, vec!["mirostat"]);
    assert_eq!(r.requires.as_deref(), Some("0.19.1"));
    assert_eq!(
        r.messages,
        vec![("system".to_string(), "be nice".to_string())]
    );
}

#[test]
fn to_request_errors_match_format_params() {
    let cases = [
        ("PARAMETER bogus 1", "unknown parameter 'bogus'"),
        ("PARAMETER temperature hot", "invalid float value [hot]"),
        ("PARAMETER top_k 1.5", "invalid int value [1.5]"),
        ("PARAMETER use_mmap yes", "invalid bool value [yes]"),
        (
            "REQUIRES 1.2.x",
            "requires must be a valid semver (e.g. 0.14.0)",
        ),
    ];
    for (line, want) in cases {
        let f = parse(format!("FROM m\n{line}\n").as_bytes()).unwrap();
        assert_eq!(f.to_request().unwrap_err().to_string(), want, "{line}");
    }
}

#[test]
fn repeated_stop_accumulates() {
    let mut m = Map::new();
    merge_param(&mut m, "stop", Value::from(vec!["a"]));
    merge_param(&mut m, "stop", Value::from(vec!["b"]));
    merge_param(&mut m, "seed", Value::from(1));
    merge_param(&mut m, "seed", Value::from(2));
    assert_eq!(
        Value::Object(m).to_string(),
        r#"{"stop":["a","b"],"seed":2}"#
    );
}
