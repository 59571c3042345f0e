//! End-to-end: the built `ollmlx` binary against a fake server.

mod common;

use common::{run_with_host, stderr, stderr_plain, stdout, Fake};
use serde_json::json;

#[test]
fn list_prints_upstream_table() {
    let f = Fake::start();
    let o = f.run(&["list"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "NAME               ID              SIZE      MODIFIED     \n\
         llama3.2:latest    a80c4f17acd5    2.0 GB    24 hours ago    \n\
         Mistral:7b         f974a74358d6    4.1 GB    2 days ago      \n"
    );
}

#[test]
fn ls_alias_filters_by_prefix_case_insensitively() {
    let f = Fake::start();
    let o = f.run(&["ls", "mistral"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "NAME          ID              SIZE      MODIFIED   \n\
         Mistral:7b    f974a74358d6    4.1 GB    2 days ago    \n"
    );
}

#[test]
fn ps_prints_processor_context_and_until() {
    let f = Fake::start();
    let o = f.run(&["ps"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "NAME               ID              SIZE      PROCESSOR    CONTEXT    UNTIL              \n\
         llama3.2:latest    a80c4f17acd5    3.4 GB    100% GPU     4096       4 minutes from now    \n"
    );
}

#[test]
fn show_prints_model_sections() {
    let f = Fake::start();
    let o = f.run(&["show", "m"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "  Model
    architecture        llama     
    parameters          3.2B      
    context length      131072    
    embedding length    3072      
    quantization        Q4_K_M    

  Capabilities
    completion    
    tools         

  Parameters
    stop           \"<|eot_id|>\"    
    temperature    0.6             

  License
    MIT License           
    Copyright (c) Test    
    ...                   

"
    );
}

#[test]
fn show_single_field_flags() {
    let f = Fake::start();
    assert_eq!(
        stdout(&f.run(&["show", "m", "--modelfile"])),
        "FROM llama3.2\n\n"
    );
    assert_eq!(
        stdout(&f.run(&["show", "m", "--template"])),
        "{{ .Prompt }}"
    );
    let o = f.run(&["show", "m", "--license", "--system"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        "Error: only one of '--license', '--modelfile', '--parameters', '--system', or '--template' can be specified\n"
    );
}

#[test]
fn show_missing_model_reports_server_error() {
    let f = Fake::start();
    let o = f.run(&["show", "missing"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stderr(&o), "Error: model 'missing' not found\n");
}

#[test]
fn run_one_shot_streams_generate_to_stdout() {
    let f = Fake::start();
    let o = f.run(&["run", "m", "hi", "there"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "Hello world\n\n");
    let gen = f
        .requests()
        .into_iter()
        .find(|s| s.path == "/api/generate")
        .unwrap();
    assert_eq!(gen.body["prompt"], json!("hi there"));
    assert_eq!(gen.body["model"], json!("m"));
    assert!(gen.body.get("think").is_none(), "{}", gen.body);
    assert!(gen.body.get("format").is_none(), "{}", gen.body);
}

#[test]
fn run_verbose_prints_stats_block_to_stderr() {
    let f = Fake::start();
    let o = f.run(&[
        "run",
        "m",
        "hi",
        "--verbose",
        "--format",
        "json",
        "--keepalive",
        "10m",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "Hello world\n\n");
    assert!(stderr_plain(&o).ends_with(
        "total duration:       1.23456789s\n\
         load duration:        5ms\n\
         prompt eval count:    10 token(s)\n\
         prompt eval duration: 500ms\n\
         prompt eval rate:     20.00 tokens/s\n\
         eval count:           20 token(s)\n\
         eval duration:        1s\n\
         eval rate:            20.00 tokens/s\n"
    ));
    let gen = f
        .requests()
        .into_iter()
        .find(|s| s.path == "/api/generate")
        .unwrap();
    assert_eq!(gen.body["format"], json!("json"));
    assert_eq!(gen.body["keep_alive"], json!("10m0s"));
}

#[test]
fn run_thinking_model_prints_thinking_markers() {
    let f = Fake::start();
    let o = f.run(&["run", "think", "hi"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "Thinking...\nLet me think.\n...done thinking.\n\nHello world\n\n"
    );
    let o = f.run(&["run", "think", "hi", "--hidethinking"]);
    assert_eq!(stdout(&o), "Hello world\n\n");
    let o = f.run(&["run", "think", "hi", "--think=false"]);
    assert_eq!(stdout(&o), "Hello world\n\n");
}

#[test]
fn run_rejects_bad_think_and_keepalive_values() {
    let f = Fake::start();
    let o = f.run(&["run", "m", "hi", "--think=extreme"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        "Error: invalid value for --think: \"extreme\" (must be true, false, high, medium, low, or max)\n"
    );
    let o = f.run(&["run", "m", "hi", "--keepalive", "1d"]);
    assert_eq!(
        stderr(&o),
        "Error: time: unknown unit \"d\" in duration \"1d\"\n"
    );
}

#[test]
fn run_pulls_missing_model_first() {
    let f = Fake::start();
    let o = f.run(&["run", "fresh", "hi"]);
    // The fake only knows `fresh` for show after the pull; generate still 404s.
    let paths: Vec<String> = f.requests().into_iter().map(|s| s.path).collect();
    assert_eq!(paths[..3], ["/api/show", "/api/pull", "/api/show"]);
    assert!(
        stderr_plain(&o).contains("pulling manifest"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        stderr_plain(&o).lines().last().unwrap_or(""),
        "Error: 404 Not Found: model 'fresh' not found"
    );
}

#[test]
fn run_embedding_model_prints_vector() {
    let f = Fake::start();
    let o = f.run(&["run", "emb", "some text"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "[0.1,-0.25,0.5]\n");
    let o = f.run(&["run", "emb"]);
    assert_eq!(
        stderr(&o),
        "Error: embedding models require input text. Usage: ollmlx run emb \"your text here\"\n"
    );
}

#[test]
fn pull_shows_bars_and_statuses() {
    let f = Fake::start();
    let o = f.run(&["pull", "llama3.2"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr_plain(&o);
    for want in [
        "pulling manifest",
        "pulling 0123456789ab: 100% ▕",
        "   2 KB",
        "verifying sha256 digest",
        "writing manifest",
        "success",
    ] {
        assert!(err.contains(want), "missing {want:?} in {err:?}");
    }
    assert_eq!(stdout(&o), "");
}

#[test]
fn pull_error_line_fails_the_command() {
    let f = Fake::start();
    let o = f.run(&["pull", "nosuch"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).ends_with("\nError: pull model manifest: file does not exist\n"));
}

#[test]
fn rm_unloads_then_deletes() {
    let f = Fake::start();
    let o = f.run(&["rm", "m"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "deleted 'm'\n");
    let reqs = f.requests();
    let paths: Vec<&str> = reqs.iter().map(|s| s.path.as_str()).collect();
    assert_eq!(paths, ["/api/show", "/api/generate", "/api/delete"]);
    assert_eq!(reqs[1].body["keep_alive"], json!("0s"));
    assert_eq!(reqs[2].method, "DELETE");
}

#[test]
fn rm_missing_model_fails_without_stop_warning() {
    let f = Fake::start();
    let o = f.run(&["rm", "nope"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(!stderr(&o).contains("Warning"), "{}", stderr(&o));
    assert!(stderr(&o).ends_with("Error: model 'nope' not found\n"));
}

#[test]
fn cp_prints_copied() {
    let f = Fake::start();
    let o = f.run(&["cp", "a", "b"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "copied 'a' to 'b'\n");
    let req = f.requests().pop().unwrap();
    assert_eq!(req.body, json!({"source": "a", "destination": "b"}));
}

#[test]
fn stop_sends_keep_alive_zero_and_reports_missing_models() {
    let f = Fake::start();
    let o = f.run(&["stop", "m"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "");
    let gen = f.requests().pop().unwrap();
    assert_eq!(gen.body["keep_alive"], json!("0s"));
    let o = f.run(&["stop", "missing"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).ends_with("Error: couldn't find model \"missing\" to stop\n"));
}

#[test]
fn version_prints_server_version_and_no_warning_when_equal() {
    let f = Fake::start();
    let o = f.run(&["--version"]);
    assert!(o.status.success());
    assert_eq!(stdout(&o), "ollmlx version is 0.33.0\n");
}

fn closed_port() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    drop(l);
    addr
}

#[test]
fn unreachable_server_says_to_run_serve() {
    let host = closed_port();
    for args in [&["list"][..], &["ps"], &["run", "m", "hi"], &["pull", "m"]] {
        let o = run_with_host(&host, args, None);
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        assert_eq!(
            stderr(&o),
            "Error: could not connect to ollmlx server, run 'ollmlx serve' to start it\n"
        );
    }
    let o = run_with_host(&host, &["-v"], None);
    assert!(stdout(&o).starts_with("Warning: could not connect to a running ollmlx instance\n"));
}

#[test]
fn create_uploads_files_and_sends_request() {
    let f = Fake::start();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("model.gguf"), b"GGUF\x00\x00binary").unwrap();
    std::fs::write(
        dir.path().join("Modelfile"),
        "FROM ./model.gguf\nPARAMETER temperature 0.2\nSYSTEM be nice\n",
    )
    .unwrap();
    let o = f.run_in(dir.path(), &["create", "mine", "-q", "q4_K_M"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr_plain(&o).contains("success"));
    let reqs = f.requests();
    let paths: Vec<&str> = reqs.iter().map(|s| s.method.as_str()).collect();
    assert_eq!(paths, ["HEAD", "POST", "POST"]);
    assert!(reqs[0].path.starts_with("/api/blobs/sha256:"));
    let create = &reqs[2];
    assert_eq!(create.path, "/api/create");
    let digest = reqs[0].path.trim_start_matches("/api/blobs/");
    assert_eq!(
        create.body,
        json!({"model": "mine", "quantize": "q4_K_M", "files": {"model.gguf": digest},
               "system": "be nice", "parameters": {"temperature": 0.2}, "name": ""})
    );
}

#[test]
fn create_rejects_invalid_names_client_side() {
    let f = Fake::start();
    let o = f.run(&["create", "bad name!"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stderr(&o), "Error: invalid model name: bad name!\n");
}

#[test]
fn signin_is_not_supported() {
    let f = Fake::start();
    let o = f.run(&["signin"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        "Error: signing in to ollama.com is not supported by ollmlx\n"
    );
}

#[test]
fn serve_help_lists_environment() {
    let o = run_with_host("127.0.0.1:1", &["serve", "--help"], None);
    assert!(o.status.success());
    let out = stdout(&o);
    assert!(out.starts_with("Start ollmlx\n"), "{out}");
    assert!(out.contains(
        "      OLLAMA_HOST                   IP Address for the ollmlx server (default 127.0.0.1:11434)\n"
    ));
}
