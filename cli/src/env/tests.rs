//! Tests of environment parsing, pinned against upstream's envconfig tables.

use super::*;

fn env(key: &str, value: &str) -> Env {
    Env::from_pairs([(key, value)])
}

#[test]
fn host_matches_upstream_test_host_table() {
    let cases = [
        ("", "http://127.0.0.1:11434"),
        ("1.2.3.4", "http://1.2.3.4:11434"),
        (":1234", "http://:1234"),
        ("1.2.3.4:1234", "http://1.2.3.4:1234"),
        ("example.com", "http://example.com:11434"),
        ("example.com:1234", "http://example.com:1234"),
        (":0", "http://:0"),
        (":66000", "http://:11434"),
        (":-1", "http://:11434"),
        ("[::1]", "http://[::1]:11434"),
        ("[::]", "http://[::]:11434"),
        ("::1", "http://[::1]:11434"),
        ("[::1]:1337", "http://[::1]:1337"),
        (" 1.2.3.4 ", "http://1.2.3.4:11434"),
        ("\"1.2.3.4\"", "http://1.2.3.4:11434"),
        (" \" 1.2.3.4 \" ", "http://1.2.3.4:11434"),
        ("'1.2.3.4'", "http://1.2.3.4:11434"),
        ("http://1.2.3.4", "http://1.2.3.4:80"),
        ("http://1.2.3.4:4321", "http://1.2.3.4:4321"),
        ("https://1.2.3.4", "https://1.2.3.4:443"),
        ("https://1.2.3.4:4321", "https://1.2.3.4:4321"),
        (
            "https://example.com/ollama",
            "https://example.com:443/ollama",
        ),
        ("ollama.com", "https://ollama.com:443"),
    ];
    for (value, expect) in cases {
        assert_eq!(
            env("OLLAMA_HOST", value).host().to_string(),
            expect,
            "OLLAMA_HOST={value:?}"
        );
    }
}

#[test]
fn unset_host_is_the_default() {
    assert_eq!(
        Env::from_pairs::<&str, &str>([]).host().to_string(),
        "http://127.0.0.1:11434"
    );
}

#[test]
fn connectable_host_maps_unspecified_to_loopback() {
    let cases = [
        ("", "http://127.0.0.1:11434"),
        ("127.0.0.1", "http://127.0.0.1:11434"),
        ("127.0.0.1:1234", "http://127.0.0.1:1234"),
        ("0.0.0.0", "http://127.0.0.1:11434"),
        ("0.0.0.0:1234", "http://127.0.0.1:1234"),
        ("[::]", "http://[::1]:11434"),
        ("[::]:1234", "http://[::1]:1234"),
        ("[::1]", "http://[::1]:11434"),
        ("[::1]:1234", "http://[::1]:1234"),
        ("192.168.1.5", "http://192.168.1.5:11434"),
        ("192.168.1.5:8080", "http://192.168.1.5:8080"),
        ("example.com", "http://example.com:11434"),
        ("example.com:1234", "http://example.com:1234"),
        ("https://0.0.0.0:4321", "https://127.0.0.1:4321"),
    ];
    for (value, expect) in cases {
        assert_eq!(
            env("OLLAMA_HOST", value).connectable_host().to_string(),
            expect,
            "OLLAMA_HOST={value:?}"
        );
    }
}

#[test]
fn join_appends_api_paths_to_the_base_path() {
    let h = parse_host("https://example.com/ollama");
    assert_eq!(
        h.join("/api/tags"),
        "https://example.com:443/ollama/api/tags"
    );
    assert_eq!(parse_host("").join("/"), "http://127.0.0.1:11434/");
}

#[test]
fn origins_prepend_user_values_to_builtins() {
    let o = env("OLLAMA_ORIGINS", "http://172.16.0.1,https://192.168.0.1").allowed_origins();
    assert_eq!(o[0], "http://172.16.0.1");
    assert_eq!(o[1], "https://192.168.0.1");
    assert_eq!(o[2], "http://localhost");
    assert_eq!(o[5], "https://localhost:*");
    assert_eq!(o.last().map(String::as_str), Some("vscode-file://*"));
    assert_eq!(o.len(), 19);
    assert_eq!(env("OLLAMA_ORIGINS", "").allowed_origins().len(), 17);
}

#[test]
fn bools_treat_garbage_as_true() {
    for (v, want) in [
        ("", false),
        ("true", true),
        ("false", false),
        ("1", true),
        ("0", false),
        ("random", true),
        ("something", true),
    ] {
        assert_eq!(env("OLLAMA_BOOL", v).bool("OLLAMA_BOOL"), want, "{v:?}");
    }
}

#[test]
fn uints_fall_back_to_default_when_invalid() {
    for (v, want) in [
        ("0", 0),
        ("1", 1),
        ("1337", 1337),
        ("", 11434),
        ("-1", 11434),
        ("0o10", 11434),
        ("0x10", 11434),
        ("string", 11434),
    ] {
        assert_eq!(
            env("OLLAMA_UINT", v).uint("OLLAMA_UINT", 11434),
            want,
            "{v:?}"
        );
    }
}

#[test]
fn keep_alive_accepts_durations_and_seconds() {
    let m = |n: u64| Duration::from_secs(60 * n);
    for (v, want) in [
        ("", m(5)),
        ("1s", Duration::from_secs(1)),
        ("1m", m(1)),
        ("1h", m(60)),
        ("5m0s", m(5)),
        ("1h2m3s", Duration::from_secs(3723)),
        ("0", Duration::ZERO),
        ("60", m(1)),
        ("120", m(2)),
        ("3600", m(60)),
        ("-0", Duration::ZERO),
        ("-1", FOREVER),
        ("-1m", FOREVER),
        (" ", m(5)),
        ("???", m(5)),
        ("1d", m(5)),
        ("1y", m(5)),
        ("1w", m(5)),
    ] {
        assert_eq!(env("OLLAMA_KEEP_ALIVE", v).keep_alive(), want, "{v:?}");
    }
}

#[test]
fn load_timeout_treats_zero_and_negative_as_forever() {
    let m = |n: u64| Duration::from_secs(60 * n);
    for (v, want) in [
        ("", m(5)),
        ("1s", Duration::from_secs(1)),
        ("0", FOREVER),
        ("-0", FOREVER),
        ("-1", FOREVER),
        ("-1m", FOREVER),
        ("60", m(1)),
        ("???", m(5)),
        ("1d", m(5)),
    ] {
        assert_eq!(env("OLLAMA_LOAD_TIMEOUT", v).load_timeout(), want, "{v:?}");
    }
}

#[test]
fn var_trims_spaces_then_quotes() {
    for (v, want) in [
        ("value", "value"),
        (" value ", "value"),
        (" 'value' ", "value"),
        (r#" "value" "#, "value"),
        (" ' value ' ", " value "),
        (r#" " value " "#, " value "),
    ] {
        assert_eq!(env("OLLAMA_VAR", v).var("OLLAMA_VAR"), want, "{v:?}");
    }
}

#[test]
fn context_length_defaults_to_zero() {
    assert_eq!(env("OLLAMA_CONTEXT_LENGTH", "").context_length(), 0);
    assert_eq!(env("OLLAMA_CONTEXT_LENGTH", "2048").context_length(), 2048);
}

#[test]
fn log_level_maps_debug_values_to_slog_levels() {
    for (v, want) in [
        ("", 0),
        ("false", 0),
        ("f", 0),
        ("0", 0),
        ("true", -4),
        ("t", -4),
        ("1", -4),
        ("2", -8),
        ("-1", 4),
        ("-2", 8),
    ] {
        assert_eq!(env("OLLAMA_DEBUG", v).log_level(), want, "{v:?}");
    }
}

#[test]
fn defaults_match_upstream() {
    let e = Env::from_pairs([("HOME", "/home/u")]);
    assert_eq!(e.num_parallel(), 1);
    assert_eq!(e.max_queue(), 512);
    assert_eq!(e.max_loaded_models(), 0);
    assert_eq!(e.max_transfer_streams(), 4);
    assert_eq!(e.models(), PathBuf::from("/home/u/.ollama/models"));
    assert_eq!(e.remotes(), vec!["ollama.com".to_string()]);
    assert!(e.go_template());
    assert!(e.vulkan());
    assert_eq!(e.flash_attention(), None);
    assert_eq!(e.cloud_base_url(), "https://ollama.com:443");
    assert_eq!(e.no_cloud_source(), "none");
}

#[test]
fn no_cloud_reads_env_and_server_json() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join(".ollama")).unwrap();
    std::fs::write(
        dir.path().join(".ollama/server.json"),
        r#"{"disable_ollama_cloud": true}"#,
    )
    .unwrap();
    let home = dir.path().to_str().unwrap();
    let e = Env::from_pairs([("HOME", home), ("OLLAMA_NO_CLOUD", "1")]);
    assert_eq!(e.no_cloud_source(), "both");
    let e = Env::from_pairs([("HOME", home)]);
    assert_eq!(e.no_cloud_source(), "config");
    assert!(e.no_cloud());
}

#[test]
fn serve_help_lists_variables_in_upstream_format() {
    let block = help_block(SERVE_HELP_VARS);
    let lines: Vec<&str> = block.lines().collect();
    assert_eq!(lines[0], "Environment Variables:");
    assert_eq!(
        lines[1],
        "      OLLAMA_DEBUG                  Show additional debug information (e.g. OLLAMA_DEBUG=1)"
    );
    assert_eq!(
        lines[2],
        "      OLLAMA_HOST                   IP Address for the ollmlx server (default 127.0.0.1:11434)"
    );
    assert_eq!(lines.len(), 1 + SERVE_HELP_VARS.len());
}

#[test]
fn memory_limit_accepts_bytes_and_units_and_ignores_garbage() {
    assert_eq!(Env::from_pairs([("HOME", "/h")]).memory_limit(), None);
    assert_eq!(
        env("OLLMLX_MEMORY_LIMIT", "8GiB").memory_limit(),
        Some(8 << 30)
    );
    assert_eq!(
        env("OLLMLX_MEMORY_LIMIT", "\"512 MB\"").memory_limit(),
        Some(512_000_000)
    );
    assert_eq!(
        env("OLLMLX_MEMORY_LIMIT", "1024").memory_limit(),
        Some(1024)
    );
    assert_eq!(env("OLLMLX_MEMORY_LIMIT", "lots").memory_limit(), None);
    assert_eq!(env("OLLMLX_MEMORY_LIMIT", "0").memory_limit(), None);
}
