//! The built-in scenario suite: every endpoint of the Ollama v0.33 surface, streaming and not,
//! tools, format, think, images, embeddings, and the error paths clients hit (unknown model,
//! bad JSON, wrong method, bad options, ...).

use serde_json::{json, Value};

use crate::cassette::Request;

/// Which model each kind of scenario uses.
#[derive(Debug, Clone)]
pub struct ModelSet {
    /// A chat/completion model (also used for images).
    pub chat: String,
    /// A model with the `tools` capability.
    pub tools: String,
    /// A model with the `thinking` capability.
    pub think: String,
    /// An embedding model.
    pub embed: String,
}

impl ModelSet {
    /// The models of the scripted backend (`scripted::models`).
    pub fn scripted() -> Self {
        ModelSet {
            chat: "mock".into(),
            tools: "tools".into(),
            think: "think".into(),
            embed: "embed".into(),
        }
    }

    /// One model for every kind (what `record --model NAME` uses unless told otherwise).
    pub fn single(model: &str) -> Self {
        ModelSet {
            chat: model.into(),
            tools: model.into(),
            think: model.into(),
            embed: model.into(),
        }
    }
}

/// One scenario: a named request.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Stable name (cassette and snapshot file name).
    pub name: &'static str,
    /// The request.
    pub request: Request,
}

/// A 1x1 transparent PNG.
pub const TINY_PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==";

const MISSING: &str = "no-such-model-ollmlx:latest";

fn req(method: &str, path: &str, body: Option<Value>) -> Request {
    Request {
        method: method.into(),
        path: path.into(),
        headers: if body.is_some() {
            vec![("content-type".into(), "application/json".into())]
        } else {
            Vec::new()
        },
        body: body.map(|b| b.to_string()).unwrap_or_default(),
    }
}

fn raw(method: &str, path: &str, body: &str) -> Request {
    Request {
        method: method.into(),
        path: path.into(),
        headers: vec![("content-type".into(), "application/json".into())],
        body: body.into(),
    }
}

fn weather_tool() -> Value {
    json!([{"type": "function", "function": {"name": "get_weather",
        "description": "Get the weather in a city",
        "parameters": {"type": "object", "required": ["city"],
            "properties": {"city": {"type": "string", "description": "The city"}}}}}])
}

/// The whole suite for `m`.
pub fn suite(m: &ModelSet) -> Vec<Scenario> {
    let opts = json!({"num_predict": 8, "temperature": 0, "seed": 1});
    let chat_msgs = json!([{"role": "user", "content": "Say hello in one word."}]);
    let weather_msgs = json!([{"role": "user", "content": "What is the weather in Paris?"}]);
    let schema = json!({"type": "object", "properties": {"answer": {"type": "integer"}},
        "required": ["answer"]});
    let s = |name, request| Scenario { name, request };
    vec![
        // Plumbing.
        s("root_get", req("GET", "/", None)),
        s("root_head", req("HEAD", "/", None)),
        s("version", req("GET", "/api/version", None)),
        s("unknown_path", req("GET", "/api/nope", None)),
        s("wrong_method_show", req("GET", "/api/show", None)),
        s("wrong_method_generate", req("GET", "/api/generate", None)),
        s("trailing_slash_redirect", req("GET", "/api/tags/", None)),
        // Models.
        s("tags", req("GET", "/api/tags", None)),
        s("ps", req("GET", "/api/ps", None)),
        s("show", req("POST", "/api/show", Some(json!({"model": m.chat})))),
        s("show_unknown_model", req("POST", "/api/show", Some(json!({"model": MISSING})))),
        s("show_missing_model", req("POST", "/api/show", Some(json!({})))),
        s("copy_unknown_source", req("POST", "/api/copy",
            Some(json!({"source": MISSING, "destination": "ollmlx-copy-target"})))),
        s("delete_unknown_model", req("DELETE", "/api/delete", Some(json!({"model": MISSING})))),
        s("blob_head_missing", req("HEAD",
            "/api/blobs/sha256:0000000000000000000000000000000000000000000000000000000000000000", None)),
        s("blob_head_bad_digest", req("HEAD", "/api/blobs/sha256:xyz", None)),
        // Generate.
        s("generate_stream", req("POST", "/api/generate",
            Some(json!({"model": m.chat, "prompt": "Why is the sky blue?", "options": opts})))),
        s("generate_no_stream", req("POST", "/api/generate",
            Some(json!({"model": m.chat, "prompt": "Why is the sky blue?", "stream": false, "options": opts})))),
        s("generate_load", req("POST", "/api/generate", Some(json!({"model": m.chat})))),
        s("generate_unload", req("POST", "/api/generate",
            Some(json!({"model": m.chat, "keep_alive": 0})))),
        s("generate_format_json", req("POST", "/api/generate",
            Some(json!({"model": m.chat, "prompt": "Reply with a JSON object.", "format": "json",
                "stream": false, "options": opts})))),
        s("generate_format_schema", req("POST", "/api/generate",
            Some(json!({"model": m.chat, "prompt": "What is 6 times 7?", "format": schema,
                "stream": false, "options": opts})))),
        s("generate_images", req("POST", "/api/generate",
            Some(json!({"model": m.chat, "prompt": "Describe the image.", "images": [TINY_PNG],
                "stream": false, "options": opts})))),
        s("generate_think", req("POST", "/api/generate",
            Some(json!({"model": m.think, "prompt": "What is 6 times 7?", "think": true,
                "stream": false, "options": {"num_predict": 64, "temperature": 0, "seed": 1}})))),
        s("generate_unknown_model", req("POST", "/api/generate",
            Some(json!({"model": MISSING, "prompt": "hi"})))),
        s("generate_empty_model", req("POST", "/api/generate", Some(json!({"model": "", "prompt": "hi"})))),
        s("generate_bad_json", raw("POST", "/api/generate", "{\"model\": ")),
        s("generate_empty_body", raw("POST", "/api/generate", "")),
        s("generate_wrong_field_type", req("POST", "/api/generate",
            Some(json!({"model": m.chat, "prompt": 1})))),
        s("generate_bad_option_type", req("POST", "/api/generate",
            Some(json!({"model": m.chat, "prompt": "hi", "options": {"num_predict": "many"}})))),
        s("generate_bad_think_value", req("POST", "/api/generate",
            Some(json!({"model": m.chat, "prompt": "hi", "think": "extreme"})))),
        s("generate_bad_keep_alive", req("POST", "/api/generate",
            Some(json!({"model": m.chat, "prompt": "hi", "keep_alive": "42"})))),
        // Chat.
        s("chat_stream", req("POST", "/api/chat",
            Some(json!({"model": m.chat, "messages": chat_msgs, "options": opts})))),
        s("chat_no_stream", req("POST", "/api/chat",
            Some(json!({"model": m.chat, "messages": chat_msgs, "stream": false, "options": opts})))),
        s("chat_load", req("POST", "/api/chat", Some(json!({"model": m.chat, "messages": []})))),
        s("chat_tools_stream", req("POST", "/api/chat",
            Some(json!({"model": m.tools, "messages": weather_msgs, "tools": weather_tool(), "options": opts})))),
        s("chat_tools_no_stream", req("POST", "/api/chat",
            Some(json!({"model": m.tools, "messages": weather_msgs, "tools": weather_tool(),
                "stream": false, "options": opts})))),
        s("chat_think_stream", req("POST", "/api/chat",
            Some(json!({"model": m.think, "messages": chat_msgs, "think": true,
                "options": {"num_predict": 64, "temperature": 0, "seed": 1}})))),
        s("chat_format_schema", req("POST", "/api/chat",
            Some(json!({"model": m.chat, "messages": [{"role": "user", "content": "What is 6 times 7?"}],
                "format": schema, "stream": false, "options": opts})))),
        s("chat_images", req("POST", "/api/chat",
            Some(json!({"model": m.chat, "messages": [{"role": "user", "content": "Describe the image.",
                "images": [TINY_PNG]}], "stream": false, "options": opts})))),
        s("chat_missing_model", req("POST", "/api/chat", Some(json!({"messages": chat_msgs})))),
        s("chat_unknown_model", req("POST", "/api/chat",
            Some(json!({"model": MISSING, "messages": chat_msgs})))),
        s("chat_bad_role_type", req("POST", "/api/chat",
            Some(json!({"model": m.chat, "messages": [{"role": 1, "content": "hi"}]})))),
        // Embeddings.
        s("embed_single", req("POST", "/api/embed", Some(json!({"model": m.embed, "input": "hello"})))),
        s("embed_batch", req("POST", "/api/embed",
            Some(json!({"model": m.embed, "input": ["hello", "world"]})))),
        s("embed_unknown_model", req("POST", "/api/embed", Some(json!({"model": MISSING, "input": "x"})))),
        s("embeddings_legacy", req("POST", "/api/embeddings",
            Some(json!({"model": m.embed, "prompt": "hello"})))),
        // OpenAI compatibility.
        s("openai_models", req("GET", "/v1/models", None)),
        s("openai_chat", req("POST", "/v1/chat/completions",
            Some(json!({"model": m.chat, "messages": chat_msgs, "max_tokens": 8, "temperature": 0, "seed": 1})))),
        s("openai_chat_stream", req("POST", "/v1/chat/completions",
            Some(json!({"model": m.chat, "messages": chat_msgs, "stream": true, "max_tokens": 8,
                "temperature": 0, "seed": 1})))),
        s("openai_chat_tools", req("POST", "/v1/chat/completions",
            Some(json!({"model": m.tools, "messages": weather_msgs, "tools": weather_tool(),
                "temperature": 0, "seed": 1})))),
        s("openai_chat_unknown_model", req("POST", "/v1/chat/completions",
            Some(json!({"model": MISSING, "messages": chat_msgs})))),
        s("openai_completions", req("POST", "/v1/completions",
            Some(json!({"model": m.chat, "prompt": "Say hello.", "max_tokens": 8, "temperature": 0, "seed": 1})))),
        s("openai_embeddings", req("POST", "/v1/embeddings",
            Some(json!({"model": m.embed, "input": "hello"})))),
        // Anthropic compatibility.
        s("anthropic_messages", Request {
            headers: vec![("content-type".into(), "application/json".into()),
                ("anthropic-version".into(), "2023-06-01".into())],
            ..req("POST", "/v1/messages", Some(json!({"model": m.chat, "max_tokens": 8,
                "messages": [{"role": "user", "content": "Say hello in one word."}]})))
        }),
        s("anthropic_messages_stream", Request {
            headers: vec![("content-type".into(), "application/json".into()),
                ("anthropic-version".into(), "2023-06-01".into())],
            ..req("POST", "/v1/messages", Some(json!({"model": m.chat, "max_tokens": 8, "stream": true,
                "messages": [{"role": "user", "content": "Say hello in one word."}]})))
        }),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenario_names_are_unique_and_every_body_is_json_or_deliberately_broken() {
        let s = suite(&ModelSet::scripted());
        let mut names: Vec<&str> = s.iter().map(|x| x.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), s.len());
        for x in &s {
            let ok = x.request.body.is_empty()
                || serde_json::from_str::<Value>(&x.request.body).is_ok()
                || x.name.contains("bad_json");
            assert!(ok, "{}", x.name);
        }
    }
}
