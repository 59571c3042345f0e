//! `POST /v1/responses` request decoding: input items into chat messages (Ollama's
//! `FromResponsesRequest`), with upstream's item and content error texts.

use ollmlx_infer::{ChatInput, Format, Input, Message, Options, Request, ToolCall};
use ollmlx_wire::openai::responses::{ResponsesInput, ResponsesRequest, ResponsesTool};
use serde_json::{json, Map, Value};

use super::common::{decode_image_url, now_unix, rand_id, think_from_effort};
use super::responses_codec::ResponsesCodec;
use crate::{decode_json, DecodeError, Decoded};

/// Decode a Responses API body into a request and the codec for its answer.
pub fn decode_responses(body: &[u8]) -> Result<Decoded, DecodeError> {
    let req: ResponsesRequest = decode_json(body, "ResponsesRequest")?;
    let request = to_request(&req).map_err(DecodeError::bad_request)?;
    let codec = ResponsesCodec::new(
        rand_id("resp_", 999_999),
        rand_id("msg_", 999_999),
        now_unix(),
        req,
    );
    Ok(Decoded {
        request,
        codec: Box::new(codec),
    })
}

/// A content part of a message or function output.
#[derive(Debug, Clone, PartialEq)]
enum Part {
    Text(String),
    Image(String),
    File,
}

/// One parsed input item.
#[derive(Debug, Clone, PartialEq)]
enum Item {
    Message {
        role: String,
        content: Vec<Part>,
    },
    FunctionCall {
        call_id: String,
        name: String,
        arguments: String,
    },
    FunctionCallOutput {
        call_id: String,
        output: String,
        parts: Vec<Part>,
    },
    Reasoning {
        encrypted_content: String,
    },
    WebSearchCall,
}

fn str_field(o: &Map<String, Value>, k: &str) -> String {
    o.get(k)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn go_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn parse_part(v: &Value) -> Result<Part, String> {
    let o = v.as_object().ok_or_else(|| {
        format!(
            "json: cannot unmarshal {} into Go value of type struct {{ Type string \"json:\\\"type\\\"\" }}",
            go_kind(v)
        )
    })?;
    match o.get("type").and_then(Value::as_str).unwrap_or_default() {
        "input_text" | "output_text" => Ok(Part::Text(str_field(o, "text"))),
        "input_image" => Ok(Part::Image(str_field(o, "image_url"))),
        "input_file" => Ok(Part::File),
        other => Err(format!("unknown content type: {other}")),
    }
}

fn parse_parts(v: &Value, what: &str) -> Result<Vec<Part>, String> {
    let arr = v.as_array().ok_or_else(|| {
        format!(
            "{what} must be a string or array: json: cannot unmarshal {} into Go value of type []json.RawMessage",
            go_kind(v)
        )
    })?;
    arr.iter()
        .enumerate()
        .map(|(i, p)| parse_part(p).map_err(|e| format!("{what}[{i}]: {e}")))
        .collect()
}

fn parse_item(v: &Value) -> Result<Item, String> {
    let o = v.as_object().ok_or_else(|| {
        format!(
            "json: cannot unmarshal {} into Go value of type struct {{ Type string \"json:\\\"type\\\"\"; Role string \"json:\\\"role\\\"\" }}",
            go_kind(v)
        )
    })?;
    let mut kind = str_field(o, "type");
    let role = str_field(o, "role");
    if kind.is_empty() && !role.is_empty() {
        kind = "message".into();
    }
    match kind.as_str() {
        "message" => {
            let content = match o.get("content") {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::String(s)) => vec![Part::Text(s.clone())],
                Some(other) => parse_parts(other, "content")?,
            };
            Ok(Item::Message { role, content })
        }
        "function_call" => Ok(Item::FunctionCall {
            call_id: str_field(o, "call_id"),
            name: str_field(o, "name"),
            arguments: str_field(o, "arguments"),
        }),
        "function_call_output" => {
            let call_id = str_field(o, "call_id");
            match o.get("output") {
                None | Some(Value::Null) => Ok(Item::FunctionCallOutput {
                    call_id,
                    output: String::new(),
                    parts: Vec::new(),
                }),
                Some(Value::String(s)) => Ok(Item::FunctionCallOutput {
                    call_id,
                    output: s.clone(),
                    parts: Vec::new(),
                }),
                Some(other) => {
                    let parts = parse_parts(other, "output")?;
                    let output = parts
                        .iter()
                        .filter_map(|p| match p {
                            Part::Text(t) => Some(t.as_str()),
                            _ => None,
                        })
                        .collect();
                    Ok(Item::FunctionCallOutput {
                        call_id,
                        output,
                        parts,
                    })
                }
            }
        }
        "reasoning" => Ok(Item::Reasoning {
            encrypted_content: str_field(o, "encrypted_content"),
        }),
        "web_search_call" => Ok(Item::WebSearchCall),
        "" => Err("input item missing required 'type' field".into()),
        other => Err(format!(
            "unknown input item type: {}",
            super::common::go_quote(other)
        )),
    }
}

/// Text and decoded images of content parts (Ollama's `convertResponsesContent`).
fn convert_parts(parts: &[Part]) -> Result<(String, Vec<Vec<u8>>), String> {
    let mut content = String::new();
    let mut images = Vec::new();
    for p in parts {
        match p {
            Part::Text(t) => content.push_str(t),
            Part::Image(url) if url.is_empty() => {}
            Part::Image(url) => images.push(decode_image_url(url)?),
            Part::File => return Err("file inputs are not currently supported".into()),
        }
    }
    Ok((content, images))
}

/// Translate the wire request.
pub(crate) fn to_request(r: &ResponsesRequest) -> Result<Request, String> {
    let items: Vec<Item> = match &r.input {
        ResponsesInput::Text(_) => Vec::new(),
        ResponsesInput::Items(raw) => raw
            .iter()
            .enumerate()
            .map(|(i, v)| parse_item(v).map_err(|e| format!("input[{i}]: {e}")))
            .collect::<Result<_, _>>()?,
    };

    let mut messages: Vec<Message> = Vec::new();
    if !r.instructions.is_empty() {
        messages.push(Message {
            role: "system".into(),
            content: r.instructions.clone(),
            ..Default::default()
        });
    }
    if let ResponsesInput::Text(t) = &r.input {
        if !t.is_empty() {
            messages.push(Message {
                role: "user".into(),
                content: t.clone(),
                ..Default::default()
            });
        }
    }

    let mut pending_thinking = String::new();
    for (i, item) in items.iter().enumerate() {
        match item {
            Item::Reasoning { encrypted_content } => pending_thinking = encrypted_content.clone(),
            Item::Message { role, content } => {
                let (text, images) = convert_parts(content)?;
                let mut msg = Message {
                    role: role.to_lowercase(),
                    content: text,
                    images,
                    ..Default::default()
                };
                if msg.role == "assistant" && !pending_thinking.is_empty() {
                    msg.thinking = std::mem::take(&mut pending_thinking);
                }
                // An assistant message replayed between a function_call and its output stays
                // in the calling assistant turn so the result follows the call it answers.
                let output_call_id = match items.get(i + 1) {
                    Some(Item::FunctionCallOutput { call_id, .. }) => call_id.as_str(),
                    _ => "",
                };
                if msg.role == "assistant" && !output_call_id.is_empty() {
                    if let Some(last) = messages.last_mut() {
                        if last.role == "assistant"
                            && last.tool_calls.iter().any(|c| c.id == output_call_id)
                        {
                            if !last.content.is_empty() && !msg.content.is_empty() {
                                last.content.push('\n');
                            }
                            last.content.push_str(&msg.content);
                            last.images.extend(msg.images);
                            if !msg.thinking.is_empty() {
                                last.thinking = msg.thinking;
                            }
                            continue;
                        }
                    }
                }
                messages.push(msg);
            }
            Item::FunctionCall {
                call_id,
                name,
                arguments,
            } => {
                let args = if arguments.is_empty() {
                    Map::new()
                } else {
                    decode_json::<Map<String, Value>>(arguments.as_bytes(), "")
                        .map_err(|e| format!("failed to parse function call arguments: {e}"))?
                };
                let call = ToolCall {
                    id: call_id.clone(),
                    index: 0,
                    name: name.clone(),
                    arguments: args,
                };
                match messages.last_mut() {
                    Some(last) if last.role == "assistant" => {
                        last.tool_calls.push(call);
                        if !pending_thinking.is_empty() {
                            last.thinking = std::mem::take(&mut pending_thinking);
                        }
                    }
                    _ => messages.push(Message {
                        role: "assistant".into(),
                        tool_calls: vec![call],
                        thinking: std::mem::take(&mut pending_thinking),
                        ..Default::default()
                    }),
                }
            }
            Item::FunctionCallOutput {
                call_id,
                output,
                parts,
            } => {
                let (content, images) = if parts.is_empty() {
                    (output.clone(), Vec::new())
                } else {
                    convert_parts(parts)?
                };
                messages.push(Message {
                    role: "tool".into(),
                    content,
                    images,
                    tool_call_id: call_id.clone(),
                    ..Default::default()
                });
            }
            Item::WebSearchCall => {}
        }
    }
    if !pending_thinking.is_empty() {
        messages.push(Message {
            role: "assistant".into(),
            thinking: pending_thinking,
            ..Default::default()
        });
    }

    let options = Options {
        temperature: Some(r.temperature.unwrap_or(1.0) as f32),
        top_p: r.top_p.map(|v| v as f32),
        num_predict: r.max_output_tokens,
        ..Default::default()
    };
    let think = think_from_effort(&r.reasoning.effort)?;

    let declared = r.tools.as_deref().unwrap_or_default();
    let has_web_search = declared.iter().any(|t| t.kind == "web_search");
    let mut tools = Vec::new();
    for t in declared {
        if t.kind == "web_search" {
            tools.push(web_search_tool());
            continue;
        }
        for tool in expand_tool(t) {
            if has_web_search && tool["function"]["name"] == "web_search" {
                continue;
            }
            tools.push(tool);
        }
    }

    let format = r
        .text
        .as_ref()
        .and_then(|t| t.format.as_ref())
        .filter(|f| f.kind == "json_schema")
        .and_then(|f| f.schema.clone())
        .filter(|s| !s.is_null())
        .map(Format::Schema);

    Ok(Request {
        model: r.model.clone(),
        input: Input::Chat(ChatInput { messages, tools }),
        options,
        format,
        think,
        stream: r.stream.unwrap_or(false),
        ..Default::default()
    })
}

/// One declaration as Ollama tools; `namespace` expands to its members named `ns.member`.
fn expand_tool(t: &ResponsesTool) -> Vec<Value> {
    if t.kind != "namespace" {
        return vec![json!({
            "type": t.kind,
            "function": {
                "name": t.name,
                "description": t.description.clone().unwrap_or_default(),
                "parameters": t.parameters.clone().map(Value::Object).unwrap_or_else(|| json!({})),
            }
        })];
    }
    let mut out = Vec::new();
    for member in &t.tools {
        for mut tool in expand_tool(member) {
            let prefix = format!("{}.", t.name);
            if let Some(name) = tool["function"]["name"].as_str() {
                if !t.name.is_empty() && !name.starts_with(&prefix) {
                    tool["function"]["name"] = Value::String(format!("{prefix}{name}"));
                }
            }
            out.push(tool);
        }
    }
    out
}

/// The private function the model sees for the built-in `web_search` tool.
fn web_search_tool() -> Value {
    json!({
        "type": "function",
        "function": {
            "name": "web_search",
            "description": "Search the web for current information.",
            "parameters": {
                "type": "object",
                "required": ["query"],
                "properties": {"query": {"type": "string", "description": "The search query."}}
            }
        }
    })
}
