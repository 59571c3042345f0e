//! The Responses API response object, in both of upstream's renderings: the non-streaming body
//! (a Go struct, so declaration order) and the object inside stream events (a Go map, so keys
//! sorted). Also the sorted-map helpers the stream events are built with.

use ollmlx_infer::{Stats, ToolCall};
use ollmlx_wire::openai::responses::{
    ResponsesInputTokensDetails, ResponsesOutputContent, ResponsesOutputItem,
    ResponsesOutputTokensDetails, ResponsesReasoningOutput, ResponsesReasoningSummary,
    ResponsesRequest, ResponsesResponse, ResponsesTextField, ResponsesTextFormat, ResponsesTool,
    ResponsesUsage,
};
use serde_json::{json, Map, Value};

use super::common::to_wire_calls;

/// A JSON object with keys in byte order, as Go marshals a `map[string]any` (values as given).
pub(crate) fn gomap(mut entries: Vec<(&str, Value)>) -> Value {
    entries.sort_by(|a, b| a.0.cmp(b.0));
    Value::Object(
        entries
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
    )
}

/// Sort the keys of every object in `v`, recursively (a decoded `map[string]any` re-marshaled).
pub(crate) fn sorted(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            Value::Object(
                keys.into_iter()
                    .map(|k| (k.clone(), sorted(&m[k])))
                    .collect(),
            )
        }
        Value::Array(a) => Value::Array(a.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

fn sorted_tool(t: &ResponsesTool) -> ResponsesTool {
    ResponsesTool {
        parameters: t
            .parameters
            .as_ref()
            .map(|p| match sorted(&Value::Object(p.clone())) {
                Value::Object(m) => m,
                _ => Map::new(),
            }),
        tools: t.tools.iter().map(sorted_tool).collect(),
        ..t.clone()
    }
}

/// What a finished generation produced, for the non-streaming body.
#[derive(Debug, Default)]
pub(crate) struct Outcome<'a> {
    pub content: &'a str,
    pub thinking: &'a str,
    pub tool_calls: &'a [ToolCall],
    pub stats: Stats,
}

/// Ollama's `ToResponse`: the non-streaming body.
pub(crate) fn to_response(
    response_id: &str,
    item_id: &str,
    created_at: i64,
    completed_at: i64,
    out: &Outcome<'_>,
    req: &ResponsesRequest,
) -> ResponsesResponse {
    let mut output = Vec::new();
    if !out.thinking.is_empty() {
        output.push(ResponsesOutputItem {
            id: format!("rs_{response_id}"),
            kind: "reasoning".into(),
            summary: vec![ResponsesReasoningSummary {
                kind: "summary_text".into(),
                text: out.thinking.to_string(),
            }],
            encrypted_content: out.thinking.to_string(),
            ..Default::default()
        });
    }
    if !out.tool_calls.is_empty() {
        for (i, tc) in to_wire_calls(out.tool_calls).into_iter().enumerate() {
            output.push(ResponsesOutputItem {
                id: format!("fc_{response_id}_{i}"),
                kind: "function_call".into(),
                status: "completed".into(),
                call_id: tc.id,
                name: tc.function.name,
                arguments: tc.function.arguments,
                ..Default::default()
            });
        }
    } else {
        output.push(ResponsesOutputItem {
            id: item_id.to_string(),
            kind: "message".into(),
            status: "completed".into(),
            role: "assistant".into(),
            content: vec![ResponsesOutputContent {
                kind: "output_text".into(),
                text: out.content.to_string(),
                annotations: Vec::new(),
                logprobs: Vec::new(),
            }],
            ..Default::default()
        });
    }

    let format = req
        .text
        .as_ref()
        .and_then(|t| t.format.clone())
        .unwrap_or_else(|| ResponsesTextFormat {
            kind: "text".into(),
            ..Default::default()
        });
    let reasoning =
        (!req.reasoning.effort.is_empty() || !req.reasoning.summary.is_empty()).then(|| {
            ResponsesReasoningOutput {
                effort: Some(req.reasoning.effort.clone()).filter(|s| !s.is_empty()),
                summary: Some(req.reasoning.summary.clone()).filter(|s| !s.is_empty()),
            }
        });
    let (inp, outp) = (out.stats.prompt_eval_count, out.stats.eval_count);
    ResponsesResponse {
        id: response_id.to_string(),
        object: "response".into(),
        created_at,
        completed_at: Some(completed_at),
        status: "completed".into(),
        incomplete_details: None,
        model: req.model.clone(),
        previous_response_id: None,
        instructions: Some(req.instructions.clone()).filter(|s| !s.is_empty()),
        output: Some(output),
        error: None,
        tools: req
            .tools
            .as_deref()
            .unwrap_or_default()
            .iter()
            .map(sorted_tool)
            .collect(),
        tool_choice: Value::String("auto".into()),
        truncation: req.truncation.clone().unwrap_or_else(|| "disabled".into()),
        parallel_tool_calls: true,
        text: ResponsesTextField { format },
        top_p: req.top_p.unwrap_or(1.0),
        presence_penalty: 0.0,
        frequency_penalty: 0.0,
        top_logprobs: 0,
        temperature: req.temperature.unwrap_or(1.0),
        reasoning,
        usage: Some(ResponsesUsage {
            input_tokens: inp,
            output_tokens: outp,
            total_tokens: inp + outp,
            input_tokens_details: ResponsesInputTokensDetails { cached_tokens: 0 },
            output_tokens_details: ResponsesOutputTokensDetails {
                reasoning_tokens: 0,
            },
        }),
        max_output_tokens: req.max_output_tokens,
        max_tool_calls: None,
        store: false,
        background: req.background,
        service_tier: "default".into(),
        metadata: Map::new(),
        safety_identifier: None,
        prompt_cache_key: None,
    }
}

/// Usage as the stream's `response.completed` carries it (a sorted map).
pub(crate) fn stream_usage(stats: &Stats) -> Value {
    let (i, o) = (stats.prompt_eval_count, stats.eval_count);
    gomap(vec![
        ("input_tokens", json!(i)),
        ("output_tokens", json!(o)),
        ("total_tokens", json!(i + o)),
        ("input_tokens_details", json!({"cached_tokens": 0})),
        ("output_tokens_details", json!({"reasoning_tokens": 0})),
    ])
}

/// The response object inside stream events (`buildResponseObject`): every key sorted.
pub(crate) fn stream_response_object(
    id: &str,
    req: &ResponsesRequest,
    created_at: i64,
    status: &str,
    output: Value,
    usage: Value,
) -> Value {
    let instructions = if req.instructions.is_empty() {
        Value::Null
    } else {
        Value::String(req.instructions.clone())
    };
    let tools: Vec<Value> = req
        .tools
        .as_deref()
        .unwrap_or_default()
        .iter()
        .map(|t| {
            gomap(vec![
                ("type", json!(t.kind)),
                ("name", json!(t.name)),
                ("description", json!(t.description)),
                ("strict", json!(t.strict)),
                (
                    "parameters",
                    t.parameters
                        .as_ref()
                        .map(|p| sorted(&Value::Object(p.clone())))
                        .unwrap_or(Value::Null),
                ),
            ])
        })
        .collect();
    let text_format = match req.text.as_ref().and_then(|t| t.format.as_ref()) {
        None => json!({"type": "text"}),
        Some(f) => {
            let mut e = vec![("type", json!(f.kind))];
            if !f.name.is_empty() {
                e.push(("name", json!(f.name)));
            }
            if let Some(s) = &f.schema {
                // A json.RawMessage: re-emitted in its original key order.
                e.push(("schema", s.clone()));
            }
            if let Some(s) = f.strict {
                e.push(("strict", json!(s)));
            }
            gomap(e)
        }
    };
    let reasoning = if req.reasoning.effort.is_empty() && req.reasoning.summary.is_empty() {
        Value::Null
    } else {
        let opt = |s: &str| {
            if s.is_empty() {
                Value::Null
            } else {
                json!(s)
            }
        };
        gomap(vec![
            ("effort", opt(&req.reasoning.effort)),
            ("summary", opt(&req.reasoning.summary)),
        ])
    };
    gomap(vec![
        ("id", json!(id)),
        ("object", json!("response")),
        ("created_at", json!(created_at)),
        ("completed_at", Value::Null),
        ("status", json!(status)),
        ("incomplete_details", Value::Null),
        ("model", json!(req.model)),
        ("previous_response_id", Value::Null),
        ("instructions", instructions),
        ("output", output),
        ("error", Value::Null),
        ("tools", Value::Array(tools)),
        ("tool_choice", json!("auto")),
        (
            "truncation",
            json!(req.truncation.as_deref().unwrap_or("disabled")),
        ),
        ("parallel_tool_calls", json!(true)),
        ("text", json!({ "format": text_format })),
        ("top_p", json!(req.top_p.unwrap_or(1.0))),
        ("presence_penalty", json!(0)),
        ("frequency_penalty", json!(0)),
        ("top_logprobs", json!(0)),
        ("temperature", json!(req.temperature.unwrap_or(1.0))),
        ("reasoning", reasoning),
        ("usage", usage),
        ("max_output_tokens", json!(req.max_output_tokens)),
        ("max_tool_calls", Value::Null),
        ("store", json!(false)),
        ("background", json!(req.background)),
        ("service_tier", json!("default")),
        ("metadata", json!({})),
        ("safety_identifier", Value::Null),
        ("prompt_cache_key", Value::Null),
    ])
}
