//! Anthropic Messages API bodies (`POST /v1/messages`), as upstream Ollama declares them in
//! `anthropic/anthropic.go`.
//!
//! Sits at the bottom of the Anthropic request path: the server decodes request bodies into these
//! types and `ollmlx-dialect::anthropic` translates them; the same structs serialize requests and
//! deserialize responses and stream events for client use.

pub mod error;
pub mod messages;

#[cfg(test)]
mod tests {
    use super::messages::{MessageParam, MessagesResponse};
    use serde_json::json;

    #[test]
    fn string_content_becomes_one_text_block() {
        let m: MessageParam =
            serde_json::from_value(json!({"role":"user","content":"hi"})).unwrap();
        assert_eq!(m.content.len(), 1);
        assert_eq!(m.content[0].kind, "text");
        assert_eq!(m.content[0].text.as_deref(), Some("hi"));
        let e = serde_json::from_value::<MessageParam>(json!({"role":"user","content":{}}))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("json: cannot unmarshal object"), "{e}");
    }

    #[test]
    fn response_from_anthropic_deserializes() {
        let r: MessagesResponse = serde_json::from_value(json!({
            "id":"msg_1","type":"message","role":"assistant","model":"claude",
            "content":[{"type":"text","text":"hi"},{"type":"tool_use","id":"t","name":"f","input":{"a":1}}],
            "stop_reason":"tool_use","stop_sequence":null,"usage":{"input_tokens":1,"output_tokens":2,"cache_read_input_tokens":0}
        }))
        .unwrap();
        let content = r.content.unwrap();
        assert_eq!(content[1].input.as_ref().unwrap()["a"], json!(1));
        assert_eq!(r.stop_reason.as_deref(), Some("tool_use"));
    }
}
