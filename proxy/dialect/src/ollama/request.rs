//! Native request decoding: `/api/generate` and `/api/chat` bodies into `infer::Request`.

use ollmlx_infer::{ChatInput, GenerateInput, Input, Message, Request, ToolCall};
use ollmlx_wire::ollama as wire;

use super::codec::{ChatCodec, GenerateCodec};
use super::values;
use crate::{decode_json, DecodeError, Decoded};

/// Decode a `/api/generate` body.
pub fn decode_generate(body: &[u8]) -> Result<Decoded, DecodeError> {
    let w: wire::GenerateRequest = decode_json(body, "GenerateRequest")?;
    let request = generate_request(w)?;
    let codec = Box::new(GenerateCodec::new(&request));
    Ok(Decoded { request, codec })
}

/// Decode a `/api/chat` body.
pub fn decode_chat(body: &[u8]) -> Result<Decoded, DecodeError> {
    let w: wire::ChatRequest = decode_json(body, "ChatRequest")?;
    let request = chat_request(w)?;
    let codec = Box::new(ChatCodec::new(&request));
    Ok(Decoded { request, codec })
}

/// Normalize a decoded `/api/generate` request (upstream's validation order).
pub fn generate_request(w: wire::GenerateRequest) -> Result<Request, DecodeError> {
    let top_logprobs = values::top_logprobs(w.top_logprobs)?;
    if w.model.is_empty() {
        return Err(DecodeError::new(404, "model '' not found"));
    }
    if w.raw && (!w.template.is_empty() || !w.system.is_empty() || !w.context.is_empty()) {
        return Err(DecodeError::bad_request(
            "raw mode does not support template, system, or context",
        ));
    }
    Ok(Request {
        model: w.model,
        input: Input::Generate(GenerateInput {
            prompt: w.prompt,
            suffix: w.suffix,
            system: w.system,
            template: w.template,
            raw: w.raw,
            images: values::images(&w.images)?,
            context: w.context,
        }),
        options: values::options(&w.options)?,
        format: values::format(&w.format)?,
        think: values::think(&w.think)?,
        keep_alive: values::keep_alive(&w.keep_alive)?,
        stream: w.stream.unwrap_or(true),
        logprobs: w.logprobs,
        top_logprobs,
        truncate: w.truncate,
        shift: w.shift,
        debug_render_only: w.debug_render_only,
        relax_thinking: false,
    })
}

/// Normalize a decoded `/api/chat` request.
pub fn chat_request(w: wire::ChatRequest) -> Result<Request, DecodeError> {
    let top_logprobs = values::top_logprobs(w.top_logprobs)?;
    if w.model.is_empty() {
        return Err(DecodeError::bad_request("model is required"));
    }
    let messages = w
        .messages
        .into_iter()
        .map(message)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Request {
        model: w.model,
        input: Input::Chat(ChatInput {
            messages,
            tools: w.tools,
        }),
        options: values::options(&w.options)?,
        format: values::format(&w.format)?,
        think: values::think(&w.think)?,
        keep_alive: values::keep_alive(&w.keep_alive)?,
        stream: w.stream.unwrap_or(true),
        logprobs: w.logprobs,
        top_logprobs,
        truncate: w.truncate,
        shift: w.shift,
        debug_render_only: w.debug_render_only,
        relax_thinking: false,
    })
}

/// Convert a wire message (base64 images) to an internal one.
pub fn message(m: wire::Message) -> Result<Message, DecodeError> {
    let images = m
        .images
        .iter()
        .map(|s| values::decode_base64(s))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Message {
        role: m.role,
        content: m.content,
        thinking: m.thinking,
        images,
        tool_calls: m.tool_calls.into_iter().map(tool_call_from_wire).collect(),
        tool_name: m.tool_name,
        tool_call_id: m.tool_call_id,
    })
}

/// Wire tool call to internal.
pub fn tool_call_from_wire(tc: wire::ToolCall) -> ToolCall {
    ToolCall {
        id: tc.id,
        index: tc.function.index,
        name: tc.function.name,
        arguments: tc.function.arguments,
    }
}

/// Internal tool call to wire.
pub fn tool_call_to_wire(tc: &ToolCall) -> wire::ToolCall {
    wire::ToolCall {
        id: tc.id.clone(),
        function: wire::ToolCallFunction {
            index: tc.index,
            name: tc.name.clone(),
            arguments: tc.arguments.clone(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ollmlx_infer::{KeepAlive, Think};

    #[test]
    fn generate_with_empty_model_is_404_like_upstream() {
        let e = decode_generate(br#"{"prompt":"hi"}"#).err().unwrap();
        assert_eq!((e.status, e.message.as_str()), (404, "model '' not found"));
    }

    #[test]
    fn chat_with_empty_model_is_400_model_is_required() {
        let e = decode_chat(br#"{"messages":[]}"#).err().unwrap();
        assert_eq!((e.status, e.message.as_str()), (400, "model is required"));
    }

    #[test]
    fn top_logprobs_is_checked_before_the_model() {
        let e = decode_chat(br#"{"top_logprobs":99}"#).err().unwrap();
        assert_eq!(e.message, "top_logprobs must be between 0 and 20");
    }

    #[test]
    fn raw_mode_rejects_system() {
        let e = decode_generate(br#"{"model":"m","raw":true,"system":"s"}"#)
            .err()
            .unwrap();
        assert_eq!(
            e.message,
            "raw mode does not support template, system, or context"
        );
    }

    #[test]
    fn stream_defaults_to_true_and_fields_are_normalized() {
        let d = decode_chat(
            br#"{"model":"m","messages":[{"role":"User","content":"hi","images":["aGk="]}],"keep_alive":"1m","think":"low","options":{"seed":1}}"#,
        )
        .ok()
        .unwrap();
        let r = d.request;
        assert!(r.stream);
        assert_eq!(
            r.keep_alive,
            Some(KeepAlive::For(std::time::Duration::from_secs(60)))
        );
        assert_eq!(r.think, Some(Think::Level("low".into())));
        assert_eq!(r.options.seed, Some(1));
        let Input::Chat(c) = r.input else {
            panic!("chat input expected")
        };
        assert_eq!(c.messages[0].role, "user");
        assert_eq!(c.messages[0].images[0], b"hi");
    }

    #[test]
    fn option_type_errors_are_500() {
        let e = decode_generate(br#"{"model":"m","options":{"top_k":"x"}}"#)
            .err()
            .unwrap();
        assert_eq!(
            (e.status, e.message.as_str()),
            (500, "option \"top_k\" must be of type integer")
        );
    }
}
