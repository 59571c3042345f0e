//! A tiny fake ollmlx server for CLI integration tests: canned answers for the native
//! API on 127.0.0.1:0, with every request recorded for assertions.

#![allow(dead_code)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

/// One request the fake server saw.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub body: Value,
}

/// A running fake server.
pub struct Fake {
    pub addr: SocketAddr,
    pub seen: Arc<Mutex<Vec<Seen>>>,
}

fn ts(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap()
}

fn json_resp(status: StatusCode, v: Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("Content-Type", "application/json; charset=utf-8")
        .body(Full::new(Bytes::from(v.to_string())))
        .unwrap()
}

fn ndjson(lines: Vec<Value>) -> Response<Full<Bytes>> {
    let mut body = String::new();
    for l in lines {
        body.push_str(&l.to_string());
        body.push('\n');
    }
    Response::builder()
        .header("Content-Type", "application/x-ndjson")
        .body(Full::new(Bytes::from(body)))
        .unwrap()
}

fn details() -> Value {
    json!({"parent_model":"","format":"gguf","family":"llama","families":["llama"],
           "parameter_size":"3.2B","quantization_level":"Q4_K_M"})
}

fn not_found(model: &str) -> Response<Full<Bytes>> {
    json_resp(
        StatusCode::NOT_FOUND,
        json!({"error": format!("model '{model}' not found")}),
    )
}

/// Models the fake knows: `m`, `llama3.2:latest`, `emb` (embedding), `think` (thinking).
fn known(model: &str) -> bool {
    matches!(model, "m" | "llama3.2:latest" | "emb" | "think" | "a")
}

fn route(method: &str, path: &str, body: &Value, seen: &[Seen]) -> Response<Full<Bytes>> {
    let now = OffsetDateTime::now_utc();
    let model = body["model"]
        .as_str()
        .filter(|s| !s.is_empty())
        .or(body["name"].as_str())
        .unwrap_or("")
        .to_string();
    match (method, path) {
        ("HEAD", "/") | ("GET", "/") => json_resp(StatusCode::OK, json!("Ollama is running")),
        ("GET", "/api/version") => json_resp(StatusCode::OK, json!({"version": "0.33.0"})),
        ("GET", "/api/tags") => json_resp(
            StatusCode::OK,
            json!({"models": [
                {"name":"llama3.2:latest","model":"llama3.2:latest",
                 "modified_at": ts(now - Duration::hours(24) - Duration::minutes(5)),
                 "size": 2019393189u64,
                 "digest":"a80c4f17acd55265feec403c7aef86be0c25983ab279d83f3bcd3abbcb5b8b72",
                 "details": details()},
                {"name":"Mistral:7b","model":"Mistral:7b",
                 "modified_at": ts(now - Duration::days(2) - Duration::minutes(5)),
                 "size": 4113301824u64,
                 "digest":"f974a74358d62a017b37c6f424fcdf2744ca02926c4f952513ddf474b2fa5091",
                 "details": details()}
            ]}),
        ),
        ("GET", "/api/ps") => json_resp(
            StatusCode::OK,
            json!({"models": [
                {"name":"llama3.2:latest","model":"llama3.2:latest","size": 3400000000u64,
                 "digest":"a80c4f17acd55265feec403c7aef86be0c25983ab279d83f3bcd3abbcb5b8b72",
                 "details": details(),
                 "expires_at": ts(now + Duration::minutes(4) + Duration::seconds(30)),
                 "size_vram": 3400000000u64, "context_length": 4096}
            ]}),
        ),
        ("POST", "/api/show") => {
            // `pulled` becomes known after a pull of it was seen.
            let pulled = seen
                .iter()
                .any(|s| s.path == "/api/pull" && s.body["model"] == model.as_str());
            if !known(&model) && !pulled {
                return not_found(&model);
            }
            let caps = match model.as_str() {
                "emb" => json!(["embedding"]),
                "think" => json!(["completion", "thinking"]),
                _ => json!(["completion", "tools"]),
            };
            json_resp(
                StatusCode::OK,
                json!({
                    "license": "MIT License\nCopyright (c) Test\nMore text",
                    "modelfile": "FROM llama3.2\n",
                    "parameters": "stop                           \"<|eot_id|>\"\ntemperature                    0.6",
                    "template": "{{ .Prompt }}",
                    "details": details(),
                    "model_info": {
                        "general.architecture": "llama",
                        "general.parameter_count": 3212749888u64,
                        "llama.context_length": 131072,
                        "llama.embedding_length": 3072
                    },
                    "capabilities": caps,
                    "modified_at": ts(now)
                }),
            )
        }
        ("POST", "/api/generate") => {
            if !known(&model) {
                return not_found(&model);
            }
            let prompt = body["prompt"].as_str().unwrap_or("");
            let created = ts(now);
            if prompt.is_empty() {
                let unload = body["keep_alive"] == json!("0s");
                return ndjson(vec![json!({"model": model, "created_at": created,
                    "response": "", "done": true,
                    "done_reason": if unload { "unload" } else { "load" }})]);
            }
            let mut lines = Vec::new();
            if model == "think" && body["think"] == json!(true) {
                lines.push(
                    json!({"model": model, "created_at": created, "response": "",
                    "thinking": "Let me think.", "done": false}),
                );
            }
            lines.push(
                json!({"model": model, "created_at": created, "response": "Hello", "done": false}),
            );
            lines.push(
                json!({"model": model, "created_at": created, "response": " world", "done": false}),
            );
            lines.push(
                json!({"model": model, "created_at": created, "response": "", "done": true,
                "done_reason": "stop", "context": [1, 2, 3],
                "total_duration": 1234567890u64, "load_duration": 5000000u64,
                "prompt_eval_count": 10, "prompt_eval_duration": 500000000u64,
                "eval_count": 20, "eval_duration": 1000000000u64}),
            );
            ndjson(lines)
        }
        ("POST", "/api/embed") => json_resp(
            StatusCode::OK,
            json!({"model": model, "embeddings": [[0.1, -0.25, 0.5]]}),
        ),
        ("POST", "/api/pull") => {
            if model == "nosuch" {
                return ndjson(vec![
                    json!({"status": "pulling manifest"}),
                    json!({"error": "pull model manifest: file does not exist"}),
                ]);
            }
            let d = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
            ndjson(vec![
                json!({"status": "pulling manifest"}),
                json!({"status": format!("pulling {}", &d[7..19]), "digest": d, "total": 2000}),
                json!({"status": format!("pulling {}", &d[7..19]), "digest": d, "total": 2000, "completed": 1000}),
                json!({"status": format!("pulling {}", &d[7..19]), "digest": d, "total": 2000, "completed": 2000}),
                json!({"status": "verifying sha256 digest"}),
                json!({"status": "writing manifest"}),
                json!({"status": "success"}),
            ])
        }
        ("POST", "/api/push") => ndjson(vec![
            json!({"status": "retrieving manifest"}),
            json!({"status": "pushing manifest"}),
            json!({"status": "success"}),
        ]),
        ("POST", "/api/create") => ndjson(vec![
            json!({"status": "using existing layer sha256:abc"}),
            json!({"status": "writing manifest"}),
            json!({"status": "success"}),
        ]),
        ("HEAD", p) if p.starts_with("/api/blobs/") => {
            json_resp(StatusCode::NOT_FOUND, json!(null))
        }
        ("POST", p) if p.starts_with("/api/blobs/") => json_resp(StatusCode::CREATED, json!(null)),
        ("DELETE", "/api/delete") => {
            if known(&model) {
                json_resp(StatusCode::OK, json!(null))
            } else {
                not_found(&model)
            }
        }
        ("POST", "/api/copy") => {
            if known(body["source"].as_str().unwrap_or("")) {
                json_resp(StatusCode::OK, json!(null))
            } else {
                json_resp(
                    StatusCode::NOT_FOUND,
                    json!({"error": format!("model \"{}\" not found", body["source"].as_str().unwrap_or(""))}),
                )
            }
        }
        _ => json_resp(
            StatusCode::NOT_FOUND,
            json!({"error": "404 page not found"}),
        ),
    }
}

impl Fake {
    /// Start a fake server on an ephemeral port (in its own thread and runtime).
    pub fn start() -> Fake {
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::new(Mutex::new(Vec::new()));
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        std_listener.set_nonblocking(true).unwrap();
        let addr = std_listener.local_addr().unwrap();
        let seen2 = seen.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(std_listener).unwrap();
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        continue;
                    };
                    let seen = seen2.clone();
                    tokio::spawn(async move {
                        let svc = service_fn(move |req: Request<Incoming>| {
                            let seen = seen.clone();
                            async move {
                                let method = req.method().to_string();
                                let path = req.uri().path().to_string();
                                let bytes = req.into_body().collect().await.unwrap().to_bytes();
                                let body: Value =
                                    serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                                let resp = {
                                    let mut s = seen.lock().unwrap();
                                    s.push(Seen {
                                        method: method.clone(),
                                        path: path.clone(),
                                        body: body.clone(),
                                    });
                                    route(&method, &path, &body, &s)
                                };
                                Ok::<_, Infallible>(resp)
                            }
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), svc)
                            .await;
                    });
                }
            });
        });
        Fake { addr, seen }
    }

    /// The requests seen so far, excluding heartbeats.
    pub fn requests(&self) -> Vec<Seen> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.path != "/")
            .cloned()
            .collect()
    }

    /// Run `ollmlx` with `args` against this server.
    pub fn run(&self, args: &[&str]) -> Output {
        run_with_host(&self.addr.to_string(), args, None)
    }

    /// Run `ollmlx` in `dir`.
    pub fn run_in(&self, dir: &std::path::Path, args: &[&str]) -> Output {
        run_with_host(&self.addr.to_string(), args, Some(dir))
    }
}

/// Run the built binary with `OLLAMA_HOST=host`, no stdin, a scratch HOME.
pub fn run_with_host(host: &str, args: &[&str], dir: Option<&std::path::Path>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ollmlx"));
    cmd.args(args)
        .env("OLLAMA_HOST", host)
        .env("HOME", std::env::temp_dir())
        .env_remove("TERM")
        .stdin(Stdio::null());
    if let Some(d) = dir {
        cmd.current_dir(d);
    }
    cmd.output().unwrap()
}

/// Stdout as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Stderr as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Stderr with progress escape sequences removed.
pub fn stderr_plain(o: &Output) -> String {
    let s = stderr(o);
    let mut out = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' && chars.peek() == Some(&'[') {
            chars.next();
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}
