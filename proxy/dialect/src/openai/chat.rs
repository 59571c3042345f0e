//! `POST /v1/chat/completions` request decoding: OpenAI messages, sampling defaults and
//! reasoning effort into an [`ollmlx_infer::Request`], with Ollama's validation texts.

use base64::Engine as _;
use ollmlx_infer::{ChatInput, Format, Input, Message, Options, Request, ToolCall};
use ollmlx_wire::openai::chat::{self as wire, ChatCompletionRequest};
use serde_json::{Map, Value};

use super::chat_codec::ChatCodec;
use super::common::{decode_image_url, go_type_of, now_unix, rand_id, think_from_effort};
use crate::{decode_json, DecodeError, Decoded};

/// Decode a chat completion body into a request and the codec for its answer.
pub fn decode_chat(body: &[u8]) -> Result<Decoded, DecodeError> {
    let req: ChatCompletionRequest = decode_json(body, "ChatCompletionRequest")?;
    if req.messages.is_empty() {
        return Err(DecodeError::bad_request("[] is too short - 'messages'"));
    }
    let request = to_request(&req).map_err(DecodeError::bad_request)?;
    let include_usage = req.stream_options.as_ref().is_some_and(|o| o.include_usage);
    let codec = ChatCodec::new(
        rand_id("chatcmpl-", 999),
        now_unix(),
        req.model.clone(),
        include_usage,
    );
    Ok(Decoded {
        request,
        codec: Box::new(codec),
    })
}

/// Translate the wire request (Ollama's `FromChatRequest`).
pub(crate) fn to_request(r: &ChatCompletionRequest) -> Result<Request, String> {
    let messages = to_messages(&r.messages)?;

    let mut options = Options {
        stop: stops(&r.stop),
        num_predict: r.max_tokens,
        temperature: Some(r.temperature.unwrap_or(1.0) as f32),
        seed: r.seed,
        frequency_penalty: r.frequency_penalty.map(|v| v as f32),
        presence_penalty: r.presence_penalty.map(|v| v as f32),
        top_p: Some(r.top_p.unwrap_or(1.0) as f32),
        ..Default::default()
    };
    if options.stop.as_ref().is_some_and(|s| s.is_empty()) {
        options.stop = None;
    }

    let format =
        r.response_format
            .as_ref()
            .and_then(|f| match f.kind.trim().to_lowercase().as_str() {
                "json_object" => Some(Format::Json),
                "json_schema" => f
                    .json_schema
                    .as_ref()
                    .filter(|s| !s.schema.is_null())
                    .map(|s| Format::Schema(s.schema.clone())),
                _ => None,
            });

    let effort = match (&r.reasoning, &r.reasoning_effort) {
        (Some(reasoning), _) => reasoning.effort.as_str(),
        (None, Some(e)) => e.as_str(),
        (None, None) => "",
    };
    let think = think_from_effort(effort)?;

    if !(0..=20).contains(&r.top_logprobs) {
        return Err("top_logprobs must be between 0 and 20".into());
    }

    Ok(Request {
        model: r.model.clone(),
        input: Input::Chat(ChatInput {
            messages,
            tools: r.tools.clone(),
        }),
        options,
        format,
        think,
        stream: r.stream,
        logprobs: r.logprobs.unwrap_or(false),
        top_logprobs: r.top_logprobs as u32,
        debug_render_only: r.debug_render_only,
        ..Default::default()
    })
}

/// `stop` as a string or an array (non-string elements are skipped on this route).
fn stops(v: &Value) -> Option<Vec<String>> {
    match v {
        Value::String(s) => Some(vec![s.clone()]),
        Value::Array(a) => Some(
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect(),
        ),
        _ => None,
    }
}

fn to_messages(msgs: &[wire::Message]) -> Result<Vec<Message>, String> {
    let mut out: Vec<Message> = Vec::new();
    for msg in msgs {
        let role = msg.role.to_lowercase();
        let mut tool_name = String::new();
        if role == "tool" {
            tool_name = msg.name.clone();
            if tool_name.is_empty() && !msg.tool_call_id.is_empty() {
                tool_name = name_from_call_id(msgs, &msg.tool_call_id);
            }
        }
        match &msg.content {
            Value::String(content) => {
                let tool_calls = from_wire_calls(msg.tool_calls.as_deref().unwrap_or_default())?;
                out.push(Message {
                    role,
                    content: content.clone(),
                    thinking: msg.reasoning.clone(),
                    tool_calls,
                    tool_name,
                    tool_call_id: msg.tool_call_id.clone(),
                    ..Default::default()
                });
            }
            Value::Array(parts) => {
                for part in parts {
                    out.push(part_message(&role, part)?);
                }
                let calls = msg.tool_calls.as_deref().unwrap_or_default();
                if !calls.is_empty() {
                    if let Some(last) = out.last_mut() {
                        last.tool_calls = from_wire_calls(calls)?;
                        last.tool_name = tool_name;
                        last.tool_call_id = msg.tool_call_id.clone();
                        last.thinking = msg.reasoning.clone();
                    }
                }
            }
            other => {
                // Content may only be missing when tool calls are present.
                let Some(calls) = &msg.tool_calls else {
                    return Err(format!(
                        "invalid message content type: {}",
                        go_type_of(other)
                    ));
                };
                out.push(Message {
                    role,
                    thinking: msg.reasoning.clone(),
                    tool_calls: from_wire_calls(calls)?,
                    tool_call_id: msg.tool_call_id.clone(),
                    ..Default::default()
                });
            }
        }
    }
    Ok(out)
}

/// One array content part becomes its own message.
fn part_message(role: &str, part: &Value) -> Result<Message, String> {
    const BAD: &str = "invalid message format";
    let data = part.as_object().ok_or(BAD)?;
    let msg = |content: String, images: Vec<Vec<u8>>| Message {
        role: role.to_string(),
        content,
        images,
        ..Default::default()
    };
    match data.get("type").and_then(Value::as_str) {
        Some("text") => {
            let text = data.get("text").and_then(Value::as_str).ok_or(BAD)?;
            Ok(msg(text.to_string(), Vec::new()))
        }
        Some("image_url") => {
            let url = match data.get("image_url") {
                Some(Value::Object(m)) => m.get("url").and_then(Value::as_str).ok_or(BAD)?,
                Some(Value::String(s)) => s.as_str(),
                _ => return Err(BAD.into()),
            };
            Ok(msg(String::new(), vec![decode_image_url(url)?]))
        }
        Some("input_audio") => {
            let audio = data
                .get("input_audio")
                .and_then(Value::as_object)
                .ok_or("invalid input_audio format")?;
            let b64 = audio
                .get("data")
                .and_then(Value::as_str)
                .ok_or("invalid input_audio format: missing data")?;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map_err(|e| format!("invalid input_audio base64 data: {}", go_base64_error(&e)))?;
            Ok(msg(String::new(), vec![bytes]))
        }
        _ => Err(BAD.into()),
    }
}

/// Word a base64 failure like Go's `base64.CorruptInputError`.
pub(crate) fn go_base64_error(e: &base64::DecodeError) -> String {
    let at = match e {
        base64::DecodeError::InvalidByte(i, _) | base64::DecodeError::InvalidLastSymbol(i, _) => *i,
        base64::DecodeError::InvalidLength(n) => *n,
        base64::DecodeError::InvalidPadding => 0,
    };
    format!("illegal base64 data at input byte {at}")
}

fn name_from_call_id(msgs: &[wire::Message], id: &str) -> String {
    // Last one wins when ids repeat.
    msgs.iter()
        .rev()
        .flat_map(|m| m.tool_calls.iter().flatten())
        .find(|tc| tc.id == id)
        .map(|tc| tc.function.name.clone())
        .unwrap_or_default()
}

/// OpenAI tool calls (string arguments) into internal ones.
fn from_wire_calls(calls: &[wire::ToolCall]) -> Result<Vec<ToolCall>, String> {
    calls
        .iter()
        .map(|tc| {
            let arguments = match serde_json::from_str::<Value>(&tc.function.arguments) {
                Ok(Value::Object(m)) => m,
                Ok(Value::Null) => Map::new(),
                _ => return Err("invalid tool call arguments".to_string()),
            };
            Ok(ToolCall {
                id: tc.id.clone(),
                index: 0,
                name: tc.function.name.clone(),
                arguments,
            })
        })
        .collect()
}
