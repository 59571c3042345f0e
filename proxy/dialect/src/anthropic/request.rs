//! `/v1/messages` request decoding: validation, system prompt, content blocks into chat messages,
//! tools, thinking, and the rough input-token estimate used by `message_start`.

use base64::Engine as _;
use ollmlx_infer::{ChatInput, Input, Message, Options, Request, Think, ToolCall};
use ollmlx_wire::anthropic::messages::{
    ContentBlock, ImageSource, MessageParam, MessagesRequest, Tool,
};
use ollmlx_wire::json::to_vec;
use serde_json::{json, Value};

use super::codec::MessagesCodec;
use super::random_id;
use crate::{decode_json, DecodeError, Decoded};

/// Decode a Messages API body into a request and the codec for its answer.
pub fn decode_messages(body: &[u8]) -> Result<Decoded, DecodeError> {
    let req: MessagesRequest = decode_json(body, "MessagesRequest")?;
    if req.model.is_empty() {
        return Err(DecodeError::bad_request("model is required"));
    }
    if req.max_tokens <= 0 {
        return Err(DecodeError::bad_request(
            "max_tokens is required and must be positive",
        ));
    }
    if req.messages.is_empty() {
        return Err(DecodeError::bad_request("messages is required"));
    }
    let request = to_request(&req).map_err(DecodeError::bad_request)?;
    let codec = MessagesCodec::new(
        random_id("msg"),
        req.model.clone(),
        estimate_input_tokens(&req),
    );
    Ok(Decoded {
        request,
        codec: Box::new(codec),
    })
}

/// Translate the wire request (Ollama's `FromMessagesRequest`).
pub(crate) fn to_request(r: &MessagesRequest) -> Result<Request, String> {
    let mut messages = Vec::new();
    let system = match &r.system {
        Value::String(s) => s.clone(),
        Value::Array(blocks) => blocks
            .iter()
            .filter(|b| b.get("type").and_then(Value::as_str) == Some("text"))
            .filter_map(|b| b.get("text").and_then(Value::as_str))
            .collect(),
        _ => String::new(),
    };
    if !system.is_empty() {
        messages.push(Message {
            role: "system".into(),
            content: system,
            ..Default::default()
        });
    }
    for m in &r.messages {
        messages.extend(convert_message(m)?);
    }

    let options = Options {
        num_predict: Some(r.max_tokens),
        temperature: r.temperature.map(|v| v as f32),
        top_p: r.top_p.map(|v| v as f32),
        top_k: r.top_k,
        stop: (!r.stop_sequences.is_empty()).then(|| r.stop_sequences.clone()),
        ..Default::default()
    };

    let builtin_search = r.tools.iter().any(|t| t.kind.starts_with("web_search"));
    let mut tools = Vec::new();
    for t in &r.tools {
        if builtin_search && !t.kind.starts_with("web_search") && t.name == "web_search" {
            continue;
        }
        tools.push(convert_tool(t)?);
    }

    let effort = r
        .output_config
        .as_ref()
        .map(|o| match o.effort.trim().to_lowercase().as_str() {
            "xhigh" => "high".to_string(),
            e => e.to_string(),
        });
    let think = match r.thinking.as_ref().map(|t| t.kind.as_str()) {
        Some("enabled") => Some(Think::Bool(true)),
        Some("disabled") => Some(Think::Bool(false)),
        _ => match effort.as_deref() {
            Some(e @ ("high" | "medium" | "low" | "max")) => Some(Think::Level(e.into())),
            _ => None,
        },
    };

    Ok(Request {
        model: r.model.clone(),
        input: Input::Chat(ChatInput { messages, tools }),
        options,
        think,
        stream: r.stream,
        relax_thinking: true,
        ..Default::default()
    })
}

/// One Anthropic message into Ollama messages. For user turns, tool results come first.
fn convert_message(msg: &MessageParam) -> Result<Vec<Message>, String> {
    let role = msg.role.to_lowercase();
    let mut text = String::new();
    let mut images = Vec::new();
    let mut tool_calls = Vec::new();
    let mut thinking = String::new();
    let mut results = Vec::new();

    for block in &msg.content {
        match block.kind.as_str() {
            "text" => text.push_str(block.text.as_deref().unwrap_or_default()),
            "image" => {
                let source = block.source.as_ref().ok_or("invalid image source")?;
                images.push(resolve_image(source)?);
            }
            "tool_use" | "server_tool_use" => {
                if block.kind == "tool_use" {
                    if block.id.is_empty() {
                        return Err("tool_use block missing required 'id' field".into());
                    }
                    if block.name.is_empty() {
                        return Err("tool_use block missing required 'name' field".into());
                    }
                }
                tool_calls.push(ToolCall {
                    id: block.id.clone(),
                    index: 0,
                    name: block.name.clone(),
                    arguments: block.input.clone().unwrap_or_default(),
                });
            }
            "tool_result" => {
                let (content, imgs) = tool_result_content(&block.content)?;
                results.push(Message {
                    role: "tool".into(),
                    content,
                    images: imgs,
                    tool_call_id: block.tool_use_id.clone(),
                    ..Default::default()
                });
            }
            "thinking" => {
                if let Some(t) = &block.thinking {
                    thinking = t.clone();
                }
            }
            "web_search_tool_result" => results.push(Message {
                role: "tool".into(),
                content: web_search_result_text(&block.content),
                tool_call_id: block.tool_use_id.clone(),
                ..Default::default()
            }),
            _ => {}
        }
    }

    let mut out = Vec::new();
    let results_first = role == "user" && !results.is_empty();
    if results_first {
        out.append(&mut results);
    }
    if !text.is_empty() || !images.is_empty() || !tool_calls.is_empty() || !thinking.is_empty() {
        out.push(Message {
            role,
            content: text,
            images,
            tool_calls,
            thinking,
            ..Default::default()
        });
    }
    out.append(&mut results);
    Ok(out)
}

fn resolve_image(source: &ImageSource) -> Result<Vec<u8>, String> {
    if source.kind != "base64" {
        return Err(format!(
            "invalid image source type: {}. Only base64 images are supported.",
            source.kind
        ));
    }
    base64::engine::general_purpose::STANDARD
        .decode(&source.data)
        .map_err(|e| {
            format!(
                "invalid base64 image data: {}",
                crate::openai::go_base64_error(&e)
            )
        })
}

fn tool_result_content(content: &Value) -> Result<(String, Vec<Vec<u8>>), String> {
    match content {
        Value::String(s) => Ok((s.clone(), Vec::new())),
        Value::Array(blocks) => {
            let mut text = String::new();
            let mut images = Vec::new();
            for b in blocks.iter().filter_map(Value::as_object) {
                match b.get("type").and_then(Value::as_str) {
                    Some("text") => {
                        text.push_str(b.get("text").and_then(Value::as_str).unwrap_or_default())
                    }
                    Some("image") => {
                        let src = b
                            .get("source")
                            .and_then(Value::as_object)
                            .ok_or("invalid tool_result image source")?;
                        let field = |k: &str| {
                            src.get(k)
                                .and_then(Value::as_str)
                                .unwrap_or_default()
                                .to_string()
                        };
                        images.push(resolve_image(&ImageSource {
                            kind: field("type"),
                            media_type: field("media_type"),
                            data: field("data"),
                            url: String::new(),
                        })?);
                    }
                    _ => {}
                }
            }
            Ok((text, images))
        }
        _ => Ok((String::new(), Vec::new())),
    }
}

fn search_error_text(code: Option<&str>) -> String {
    match code {
        Some(c) if !c.is_empty() => format!("web_search_tool_result_error: {c}"),
        _ => "web_search_tool_result_error".into(),
    }
}

/// A `web_search_tool_result` block's content as the text the model sees.
fn web_search_result_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(items) => {
            let mut out = String::new();
            for item in items.iter().filter_map(Value::as_object) {
                let field = |k: &str| item.get(k).and_then(Value::as_str).unwrap_or_default();
                match field("type") {
                    "web_search_result" => {
                        out.push_str(&format!("- {}: {}\n", field("title"), field("url")))
                    }
                    "web_search_tool_result_error" => {
                        return search_error_text(Some(field("error_code")))
                    }
                    _ => {}
                }
            }
            out
        }
        Value::Object(o)
            if o.get("type").and_then(Value::as_str) == Some("web_search_tool_result_error") =>
        {
            search_error_text(o.get("error_code").and_then(Value::as_str))
        }
        Value::Null => String::new(),
        other => String::from_utf8(to_vec(other)).unwrap_or_default(),
    }
}

fn convert_tool(t: &Tool) -> Result<Value, String> {
    if t.kind.starts_with("web_search") {
        return Ok(json!({
            "type": "function",
            "function": {
                "name": "web_search",
                "description": "Search the web for current information. Use this to find up-to-date information about any topic.",
                "parameters": {
                    "type": "object",
                    "required": ["query"],
                    "properties": {"query": {"type": "string", "description": "The search query to look up on the web"}}
                }
            }
        }));
    }
    let parameters = match &t.input_schema {
        None | Some(Value::Null) => json!({}),
        Some(v @ Value::Object(_)) => v.clone(),
        Some(other) => {
            let kind = match other {
                Value::Bool(_) => "bool",
                Value::Number(_) => "number",
                Value::String(_) => "string",
                _ => "array",
            };
            return Err(format!(
                "invalid input_schema for tool {}: json: cannot unmarshal {kind} into Go value of type api.ToolFunctionParameters",
                crate::openai::go_quote(&t.name)
            ));
        }
    };
    Ok(json!({
        "type": "function",
        "function": {"name": t.name, "description": t.description, "parameters": parameters}
    }))
}

/// Ollama's rough input estimate for `message_start` (characters / 4, at least 1 when there is
/// any message or system prompt).
pub fn estimate_input_tokens(r: &MessagesRequest) -> u64 {
    fn block_len(b: &ContentBlock) -> usize {
        let mut n =
            b.text.as_ref().map_or(0, String::len) + b.thinking.as_ref().map_or(0, String::len);
        if b.kind == "tool_use" || b.kind == "tool_result" {
            n += to_vec(b).len();
        }
        n
    }
    let mut total = match &r.system {
        Value::Null => 0,
        Value::String(s) => s.len(),
        Value::Array(items) => items
            .iter()
            .filter_map(|i| serde_json::from_value::<ContentBlock>(i.clone()).ok())
            .map(|b| block_len(&b))
            .sum(),
        other => to_vec(other).len(),
    };
    for m in &r.messages {
        total += m.role.len() + m.content.iter().map(block_len).sum::<usize>();
    }
    for t in &r.tools {
        total += t.name.len()
            + t.description.len()
            + t.input_schema.as_ref().map_or(0, |s| to_vec(s).len());
    }
    let tokens = (total / 4) as u64;
    if tokens == 0 && (!r.messages.is_empty() || !r.system.is_null()) {
        1
    } else {
        tokens
    }
}
