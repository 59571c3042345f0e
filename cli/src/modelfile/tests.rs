//! Tests for turning a parsed Modelfile into a create request with digested local files.

use ollmlx_store::modelfile::parse;

use super::*;

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

/// `ADAPTER <mlx-lm adapter dir>` uploads `adapters.safetensors` together with its
/// `adapter_config.json` (the LoRA scale lives there).
#[test]
fn mlx_lm_adapter_directory_uploads_tensors_and_config() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("ad")).unwrap();
    std::fs::write(d.join("ad/adapters.safetensors"), b"\x02\0\0\0\0\0\0\0{}").unwrap();
    std::fs::write(
        d.join("ad/adapter_config.json"),
        b"{\"fine_tune_type\":\"lora\"}",
    )
    .unwrap();
    std::fs::write(d.join("base.gguf"), b"GGUF\x03\0\0\0").unwrap();
    let cmds = parse(b"FROM ./base.gguf\nADAPTER ./ad\n").unwrap();
    let p = plan(&cmds, d).unwrap();
    let names: Vec<String> = named(&p.adapters).keys().cloned().collect();
    assert_eq!(names, vec!["adapter_config.json", "adapters.safetensors"]);
}

#[test]
fn draft_naming_a_model_becomes_the_draft_parameter_and_a_local_draft_is_uploaded() {
    let cmds = parse(b"FROM llama3.2\nDRAFT smollm2-draft:latest\n").unwrap();
    let p = plan(&cmds, Path::new("/nonexistent-dir")).unwrap();
    assert!(p.draft_files.is_empty());
    assert_eq!(
        p.req.parameters.get("draft"),
        Some(&Value::String("smollm2-draft:latest".into()))
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("draft.gguf"), b"GGUF").unwrap();
    let cmds = parse(b"FROM llama3.2\nDRAFT ./draft.gguf\n").unwrap();
    let p = plan(&cmds, dir.path()).unwrap();
    assert_eq!(p.draft_files.len(), 1);
    assert!(!p.req.parameters.contains_key("draft"));
}
