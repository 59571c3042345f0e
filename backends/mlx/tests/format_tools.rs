//! `format`, logprobs and the tools capability through the store's `StoreBackend` + `MlxRunner`
//! on the real SmolLM2 GGUF (its chat template has no tools). Skips loudly without the file.

mod common;

use futures::StreamExt;
use ollmlx_infer::{Backend, BackendError, ChatInput, Event, Format, Input, Message, Request};
use ollmlx_store::StoreBackend;

use common::{import_gguf, smollm2, store_backend};

/// A store in `dir` holding SmolLM2 as `smollm2:135m`, served by the MLX runner.
async fn backend(dir: &std::path::Path, gguf: &std::path::Path) -> StoreBackend {
    let backend = store_backend(dir);
    import_gguf(
        &backend,
        gguf,
        "smollm2:135m",
        serde_json::json!({"parameters": {"temperature": 0, "num_predict": 96}}),
    )
    .await;
    backend
}

fn chat(q: &str, tools: Vec<serde_json::Value>) -> Request {
    Request {
        model: "smollm2:135m".into(),
        input: Input::Chat(ChatInput {
            messages: vec![Message {
                role: "user".into(),
                content: q.into(),
                ..Default::default()
            }],
            tools,
        }),
        ..Default::default()
    }
}

#[tokio::test]
async fn tools_on_a_model_without_tools_get_upstreams_400_and_format_logprobs_flow_through() {
    let Some(gguf) = smollm2() else { return };
    let dir = tempfile::tempdir().unwrap();
    let backend = backend(dir.path(), &gguf).await;

    // SmolLM2's template never mentions tools: Ollama refuses with the fully-qualified name.
    let tool = serde_json::json!({"type": "function", "function": {
        "name": "get_weather", "parameters": {"type": "object", "properties": {}}}});
    let err = backend
        .generate(chat("Weather in Paris?", vec![tool]))
        .await
        .err()
        .expect("tools must be refused");
    assert_eq!(
        err,
        BackendError::Unsupported(
            "registry.ollama.ai/library/smollm2:135m does not support tools".into()
        )
    );

    // format (a schema) + logprobs through the store, the runner and the event mapping.
    let mut req = chat(
        "Describe France as JSON with its name, capital and population.",
        vec![],
    );
    req.format = Some(Format::Schema(serde_json::json!({"type": "object",
        "properties": {"name": {"type": "string"}, "capital": {"type": "string"},
                       "population": {"type": "integer"}},
        "required": ["name", "capital", "population"]})));
    // Without a penalty this 135M model's answer keeps adding properties (the schema allows
    // them) until the token limit; the classic 1.1 lets it close the object.
    req.options.repeat_penalty = Some(1.1);
    req.logprobs = true;
    req.top_logprobs = 2;
    let mut s = backend.generate(req).await.unwrap();
    let (mut text, mut lps, mut eval_count) = (String::new(), Vec::new(), 0);
    while let Some(ev) = s.next().await {
        match ev.unwrap() {
            Event::Delta {
                content, logprobs, ..
            } => {
                text.push_str(&content);
                lps.extend(logprobs);
            }
            Event::Done { stats, reason, .. } => {
                assert_eq!(reason.as_str(), "stop");
                eval_count = stats.eval_count;
            }
            _ => {}
        }
    }
    let v: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text:?}"));
    assert!(v["name"].is_string() && v["capital"].is_string() && v["population"].is_i64());
    assert_eq!(
        lps.len() as u64,
        eval_count,
        "one logprob per generated token"
    );
    let spelled: Vec<u8> = lps.iter().flat_map(|l| l.bytes.clone()).collect();
    assert_eq!(String::from_utf8_lossy(&spelled), text);
    assert!(lps.iter().all(|l| l.top_logprobs.len() == 2));
}

/// A ChatML Go TEMPLATE for SmolLM2 that renders `.Tools` and writes earlier calls as bare JSON
/// objects (`{"name": .., "parameters": ..}`), as Llama 3.x templates do.
const JSON_TOOLS_TEMPLATE: &str = r#"{{- if or .System .Tools }}<|im_start|>system
{{- if .System }}
{{ .System }}
{{- end }}
{{- if .Tools }}
You have access to these functions:
{{ range .Tools }}{{ . }}
{{ end }}
To call a function, respond only with JSON of the form {"name": function name, "parameters": dictionary of argument name and its value}.
{{- end }}<|im_end|>
{{ end }}
{{- range $i, $_ := .Messages }}
{{- $last := eq (len (slice $.Messages $i)) 1 -}}
{{- if eq .Role "user" }}<|im_start|>user
{{ .Content }}<|im_end|>
{{ else if eq .Role "assistant" }}<|im_start|>assistant
{{ if .Content }}{{ .Content }}
{{- else if .ToolCalls }}{{ range .ToolCalls }}{"name": "{{ .Function.Name }}", "parameters": {{ .Function.Arguments }}}{{ end }}
{{- end }}{{ if not $last }}<|im_end|>
{{ end }}
{{- else if eq .Role "tool" }}<|im_start|>user
{{ .Content }}<|im_end|>
{{ end }}
{{- if and (ne .Role "assistant") $last }}<|im_start|>assistant
{{ end }}
{{- end }}"#;

#[tokio::test]
async fn smollm2_under_a_tools_template_answers_with_a_parsed_tool_call() {
    let Some(gguf) = smollm2() else { return };
    let dir = tempfile::tempdir().unwrap();
    let backend = store_backend(dir.path());
    import_gguf(
        &backend,
        &gguf,
        "smoltools:135m",
        serde_json::json!({
            "template": JSON_TOOLS_TEMPLATE,
            "parameters": {"temperature": 0, "num_predict": 64, "stop": ["<|im_end|>"]},
        }),
    )
    .await;
    let tool = serde_json::json!({"type": "function", "function": {
        "name": "get_weather", "description": "Get the current weather in a city",
        "parameters": {"type": "object", "required": ["city"],
            "properties": {"city": {"type": "string", "description": "The city"}}}}});
    let msg = |role: &str, content: &str| Message {
        role: role.into(),
        content: content.into(),
        ..Default::default()
    };
    let called = |city: &str| Message {
        role: "assistant".into(),
        tool_calls: vec![ollmlx_infer::ToolCall {
            name: "get_weather".into(),
            arguments: serde_json::json!({"city": city})
                .as_object()
                .unwrap()
                .clone(),
            ..Default::default()
        }],
        ..Default::default()
    };
    let mut req = Request {
        model: "smoltools:135m".into(),
        input: Input::Chat(ChatInput {
            messages: vec![
                msg(
                    "system",
                    "You answer every weather question by calling the get_weather function.",
                ),
                msg("user", "What is the weather in London?"),
                called("London"),
                msg("user", "What is the weather in Berlin?"),
                called("Berlin"),
                msg("user", "What is the weather in Paris?"),
            ],
            tools: vec![tool],
        }),
        ..Default::default()
    };
    // The call's shape is held by a JSON schema (constrained decoding); the model picks the
    // argument. The answer must come back as a parsed tool call, not as text.
    req.format = Some(Format::Schema(serde_json::json!({"type": "object",
        "required": ["name", "parameters"],
        "properties": {"name": {"type": "string", "enum": ["get_weather"]},
            "parameters": {"type": "object", "required": ["city"],
                "properties": {"city": {"type": "string"}}}}})));
    let mut s = backend.generate(req).await.unwrap();
    let (mut text, mut calls, mut reason) = (String::new(), Vec::new(), None);
    while let Some(ev) = s.next().await {
        match ev.unwrap() {
            Event::Delta { content, .. } => text.push_str(&content),
            Event::ToolCalls(c) => calls.extend(c),
            Event::Done { reason: r, .. } => reason = Some(r.as_str().to_string()),
            _ => {}
        }
    }
    assert_eq!(
        calls.len(),
        1,
        "one tool call, got {calls:?} and text {text:?}"
    );
    assert_eq!(calls[0].name, "get_weather");
    assert_eq!(calls[0].arguments["city"], "Paris", "{calls:?}");
    assert!(calls[0].id.starts_with("call_"), "{calls:?}");
    assert_eq!(text.trim(), "", "the call is not repeated as text");
    assert_eq!(reason.as_deref(), Some("stop"));
}
