//! OpenAI-compatible bodies (`/v1/chat/completions`, `/v1/completions`, `/v1/embeddings`,
//! `/v1/models`, `/v1/responses`), as upstream Ollama declares them in `openai/openai.go` and
//! `openai/responses.go`.
//!
//! Sits at the bottom of the OpenAI request path: the server decodes request bodies into these
//! types, `ollmlx-dialect::openai` translates them, and an upstream-OpenAI client backend can use
//! the same structs in the other direction (requests serialize, responses and chunks deserialize).

pub mod chat;
pub mod completions;
pub mod embeddings;
pub mod error;
pub mod models;
pub mod responses;

#[cfg(test)]
mod tests {
    use super::chat::{ChatCompletionChunk, ChatCompletionRequest, Message};
    use super::responses::{ResponsesInput, ResponsesRequest};
    use serde_json::{json, Value};

    #[test]
    fn chunk_from_an_upstream_openai_server_deserializes() {
        let c: ChatCompletionChunk = serde_json::from_value(json!({
            "id":"chatcmpl-x","object":"chat.completion.chunk","created":1,"model":"gpt",
            "system_fingerprint":null,"service_tier":"default",
            "choices":[{"index":0,"delta":{"role":"assistant","content":null,"refusal":null},"logprobs":null,"finish_reason":null}],
            "usage":null
        }))
        .unwrap();
        assert_eq!(c.choices[0].delta.content, None);
        assert_eq!(c.choices[0].delta.role, "assistant");
        assert!(c.usage.is_none());
    }

    #[test]
    fn chat_request_serializes_without_unset_options() {
        let r = ChatCompletionRequest {
            model: "gpt".into(),
            messages: vec![Message {
                role: "user".into(),
                content: json!("hi"),
                ..Default::default()
            }],
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            json!({"model":"gpt","messages":[{"role":"user","content":"hi"}],"stream":false})
        );
    }

    #[test]
    fn responses_input_accepts_string_array_and_null() {
        let r: ResponsesRequest = serde_json::from_value(json!({"input":null})).unwrap();
        assert_eq!(r.input, ResponsesInput::Text(String::new()));
        let r: ResponsesRequest =
            serde_json::from_value(json!({"input":[{"role":"user"}]})).unwrap();
        assert_eq!(r.input, ResponsesInput::Items(vec![json!({"role":"user"})]));
        let e = serde_json::from_value::<ResponsesRequest>(json!({"input":1})).unwrap_err();
        assert!(e.to_string().starts_with("input must be a string or array"));
        let v: Value = serde_json::to_value(ResponsesInput::Text("x".into())).unwrap();
        assert_eq!(v, json!("x"));
    }
}
