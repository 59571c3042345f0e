//! Tests for the Modelfile lexer and its conversion to a create request.

use super::*;

fn cmd(name: &str, args: &str) -> Command {
    Command {
        name: name.into(),
        args: args.into(),
    }
}

#[test]
fn parses_every_instruction_kind() {
    let mf = br#"
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
    let cmds = parse(mf).unwrap();
    assert_eq!(
        cmds,
        vec![
            cmd("model", "llama3.2"),
            cmd("temperature", "0.7"),
            cmd("stop", "<|end|>"),
            cmd("stop", "<|user|>"),
            cmd("template", "{{ .System }}\n{{ .Prompt }}"),
            cmd("system", "You are \"helpful\"."),
            cmd("message", "user: hi there"),
            cmd("message", "assistant: hello"),
            cmd("license", "MIT"),
            cmd("adapter", "./lora.gguf"),
        ]
    );
}

#[test]
fn reports_upstream_parse_errors() {
    assert_eq!(
        parse(b"PARAMETER temperature 1").unwrap_err(),
        "no FROM line"
    );
    assert_eq!(
        parse(b"FROM m\nBOGUS x\n").unwrap_err(),
        "(line 2): command must be one of \"from\", \"license\", \"template\", \"system\", \"adapter\", \"draft\", \"renderer\", \"parser\", \"parameter\", \"message\", or \"requires\""
    );
    assert_eq!(
        parse(b"FROM m\nMESSAGE bot hi\n").unwrap_err(),
        "(line 2): message role must be one of \"system\", \"user\", or \"assistant\""
    );
    assert_eq!(
        parse(b"FROM m\nSYSTEM \"\"\"unterminated\n").unwrap_err(),
        "unexpected EOF"
    );
    assert_eq!(parse(b"FROM m\nPARAMETER").unwrap_err(), "unexpected EOF");
}

#[test]
fn strips_utf8_bom_and_decodes_utf16() {
    let mut b = vec![0xEF, 0xBB, 0xBF];
    b.extend_from_slice(b"FROM m\n");
    assert_eq!(parse(&b).unwrap(), vec![cmd("model", "m")]);
    let mut u = vec![0xFF, 0xFE];
    for unit in "FROM m\n".encode_utf16() {
        u.extend_from_slice(&unit.to_le_bytes());
    }
    assert_eq!(parse(&u).unwrap(), vec![cmd("model", "m")]);
}

#[test]
fn converts_commands_to_create_request() {
    let cmds = parse(
        b"FROM llama3.2\nPARAMETER temperature 0.7\nPARAMETER stop a\nPARAMETER stop b\nPARAMETER num_ctx 4096\nSYSTEM be brief\nTEMPLATE {{ .Prompt }}\nMESSAGE user hi\nLICENSE one\nLICENSE two\nREQUIRES v0.14.0\nPARAMETER mirostat 1\n",
    )
    .unwrap();
    let p = plan(&cmds, Path::new("/nonexistent-dir")).unwrap();
    let json = serde_json::to_string(&p.req).unwrap();
    assert_eq!(
        json,
        r#"{"model":"","from":"llama3.2","template":"{{ .Prompt }}","license":["one","two"],"system":"be brief","parameters":{"temperature":0.7,"stop":["a","b"],"num_ctx":4096},"messages":[{"role":"user","content":"hi"}],"requires":"0.14.0","name":""}"#
    );
    assert_eq!(
        p.warnings,
        vec!["warning: parameter mirostat is deprecated"]
    );
}

#[test]
fn rejects_bad_parameters_and_semver() {
    let cmds = parse(b"FROM m\nPARAMETER nope 1\n").unwrap();
    assert_eq!(
        plan(&cmds, Path::new(".")).unwrap_err(),
        "unknown parameter 'nope'"
    );
    let cmds = parse(b"FROM m\nREQUIRES banana\n").unwrap();
    assert_eq!(
        plan(&cmds, Path::new(".")).unwrap_err(),
        "requires must be a valid semver (e.g. 0.14.0)"
    );
}

#[test]
fn local_from_paths_become_digested_files() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("model.gguf"), b"GGUF\x00\x01binary").unwrap();
    std::fs::write(dir.path().join("lora.gguf"), b"GGUF\x00\x02").unwrap();
    let cmds = parse(b"FROM ./model.gguf\nADAPTER lora.gguf\n").unwrap();
    let p = plan(&cmds, dir.path()).unwrap();
    assert_eq!(p.req.from, "");
    let files = named(&p.files);
    assert_eq!(files.len(), 1);
    let digest = files["model.gguf"].as_str().unwrap();
    assert!(
        digest.starts_with("sha256:") && digest.len() == 71,
        "{digest}"
    );
    assert!(named(&p.adapters).contains_key("lora.gguf"));
}

#[test]
fn safetensors_directories_keep_their_layout() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("model-00001.safetensors"), b"\x00\x01").unwrap();
    std::fs::write(d.join("config.json"), b"{}").unwrap();
    std::fs::create_dir(d.join("sub")).unwrap();
    std::fs::write(d.join("sub/config.json"), b"{}").unwrap();
    let cmds = parse(b"FROM .\n").unwrap();
    let p = plan(&cmds, d).unwrap();
    let names: Vec<String> = named(&p.files).keys().cloned().collect();
    assert_eq!(
        names,
        vec!["config.json", "model-00001.safetensors", "sub/config.json"]
    );
}

#[test]
fn empty_directory_has_no_model_files() {
    let dir = tempfile::tempdir().unwrap();
    let cmds = parse(b"FROM .\n").unwrap();
    assert_eq!(
        plan(&cmds, dir.path()).unwrap_err(),
        "no Modelfile or safetensors files found"
    );
}
