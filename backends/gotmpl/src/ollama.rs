//! Ollama's calling convention for prompt templates: which variables a template gets
//! (`.System`, `.Messages`, `.Tools`, `.Prompt`, `.Suffix`, `.Response`, `.Think`, `.ThinkLevel`,
//! `.IsThinkSet`), how consecutive messages are collated, how tools and tool calls look inside a
//! template (Go field names) and when printed (JSON), and how templates without `.Messages` are
//! run turn by turn and cut at `.Response`.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value as J};

use crate::parse::{Arg, List, Node, Pipe};
use crate::value::Value;
use crate::{exec, Error, Template};

/// A tool call inside an assistant message.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ToolCall {
    /// Call id, if the client sent one.
    pub id: String,
    /// Position among the message's calls.
    pub index: i64,
    /// Function name.
    pub name: String,
    /// Arguments object.
    pub arguments: Map<String, J>,
}

/// A chat message as templates see it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Message {
    /// `system`, `user`, `assistant`, `tool`.
    pub role: String,
    /// Text.
    pub content: String,
    /// Reasoning text of an assistant turn.
    pub thinking: String,
    /// Number of images attached (templates only test for their presence).
    pub images: usize,
    /// Tool calls of an assistant turn.
    pub tool_calls: Vec<ToolCall>,
    /// For tool results: the tool's name.
    pub tool_name: String,
    /// For tool results: the call they answer.
    pub tool_call_id: String,
}

/// Everything a render needs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Values {
    /// The conversation (system messages included).
    pub messages: Vec<Message>,
    /// Tool definitions as the request sent them (`{"type":"function","function":{...}}`).
    pub tools: Vec<J>,
    /// Completion prompt (with `suffix`: fill-in-the-middle).
    pub prompt: String,
    /// Fill-in-the-middle suffix.
    pub suffix: String,
    /// Thinking switch.
    pub think: bool,
    /// `low`/`medium`/`high` when think was given as a level.
    pub think_level: String,
    /// Whether the request set `think` at all.
    pub is_think_set: bool,
}

impl Template {
    /// Render a prompt the way Ollama's server does for a chat or generate request.
    pub fn render(&self, v: &Values) -> Result<String, Error> {
        let think = |m: &mut BTreeMap<String, Value>| {
            m.insert("Think".into(), Value::Bool(v.think));
            m.insert("ThinkLevel".into(), Value::Str(v.think_level.clone()));
            m.insert("IsThinkSet".into(), Value::Bool(v.is_think_set));
        };
        if !v.prompt.is_empty() && !v.suffix.is_empty() {
            let mut m = BTreeMap::new();
            m.insert("Prompt".into(), Value::Str(v.prompt.clone()));
            m.insert("Suffix".into(), Value::Str(v.suffix.clone()));
            m.insert("Response".into(), Value::Str(String::new()));
            think(&mut m);
            return self.execute(&Value::Map(m));
        }
        let (system, messages) = collate(&v.messages);
        if self.vars.iter().any(|x| x == "messages") {
            let mut m = BTreeMap::new();
            m.insert("System".into(), Value::Str(system));
            m.insert(
                "Messages".into(),
                Value::List(messages.iter().map(message_value).collect()),
            );
            m.insert("Tools".into(), tools_value(&v.tools));
            m.insert("Response".into(), Value::Str(String::new()));
            think(&mut m);
            return self.execute(&Value::Map(m));
        }

        // Turn-by-turn: each completed (system, prompt, response) triple renders the whole
        // template; the open last turn renders only up to `.Response`.
        let mut out = String::new();
        let (mut system, mut prompt, mut response) = (String::new(), String::new(), String::new());
        let turn = |s: &str, p: &str, r: &str| {
            let mut m = BTreeMap::new();
            m.insert("System".into(), Value::Str(s.to_string()));
            m.insert("Prompt".into(), Value::Str(p.to_string()));
            m.insert("Response".into(), Value::Str(r.to_string()));
            think(&mut m);
            Value::Map(m)
        };
        for msg in &messages {
            match msg.role.as_str() {
                "system" => {
                    if !prompt.is_empty() || !response.is_empty() {
                        out.push_str(&self.execute(&turn(&system, &prompt, &response))?);
                        system.clear();
                        prompt.clear();
                        response.clear();
                    }
                    system = msg.content.clone();
                }
                "user" => {
                    if !response.is_empty() {
                        out.push_str(&self.execute(&turn(&system, &prompt, &response))?);
                        system.clear();
                        prompt.clear();
                        response.clear();
                    }
                    prompt = msg.content.clone();
                }
                "assistant" => response = msg.content.clone(),
                _ => {}
            }
        }
        let mut cut = false;
        let head = cut_list(&self.tree.root, &mut cut);
        out.push_str(&exec::execute(
            &self.tree,
            &head,
            &turn(&system, &prompt, &response),
        )?);
        Ok(out)
    }
}

/// Join all system messages for `.System`, and merge consecutive messages of the same role
/// (except tool results) with a blank line.
fn collate(msgs: &[Message]) -> (String, Vec<Message>) {
    let mut system = Vec::new();
    let mut out: Vec<Message> = Vec::new();
    for m in msgs {
        if m.role == "system" {
            system.push(m.content.clone());
        }
        match out.last_mut() {
            Some(last) if last.role == m.role && m.role != "tool" => {
                last.content.push_str("\n\n");
                last.content.push_str(&m.content);
            }
            _ => out.push(m.clone()),
        }
    }
    (system.join("\n\n"), out)
}

fn message_value(m: &Message) -> Value {
    let calls = m
        .tool_calls
        .iter()
        .map(|c| {
            Value::fields(vec![
                ("ID", Value::Str(c.id.clone())),
                (
                    "Function",
                    Value::fields(vec![
                        ("Index", Value::Int(c.index)),
                        ("Name", Value::Str(c.name.clone())),
                        ("Arguments", args_value(&c.arguments)),
                    ]),
                ),
            ])
        })
        .collect();
    Value::fields(vec![
        ("Role", Value::Str(m.role.clone())),
        ("Content", Value::Str(m.content.clone())),
        ("Thinking", Value::Str(m.thinking.clone())),
        ("Images", Value::List(vec![Value::Nil; m.images])),
        ("ToolCalls", Value::List(calls)),
        ("ToolName", Value::Str(m.tool_name.clone())),
        ("ToolCallID", Value::Str(m.tool_call_id.clone())),
    ])
}

/// Tool-call arguments: a map (ranged by key) that prints as JSON with sorted keys.
fn args_value(args: &Map<String, J>) -> Value {
    Value::Map(
        args.iter()
            .map(|(k, v)| (k.clone(), Value::from_json(v)))
            .collect(),
    )
    .printing_as_json()
}

impl Value {
    /// Maps print as JSON when their Go type has a JSON `String` method.
    fn printing_as_json(self) -> Value {
        match self {
            Value::Map(m) => {
                let json = sorted_json(&Value::Map(m.clone()).to_json());
                Value::JsonMap(m, json)
            }
            other => other,
        }
    }
}

/// JSON with object keys sorted, as Go marshals maps.
fn sorted_json(j: &J) -> J {
    match j {
        J::Object(o) => {
            let mut keys: Vec<_> = o.keys().collect();
            keys.sort();
            J::Object(
                keys.into_iter()
                    .map(|k| (k.clone(), sorted_json(&o[k])))
                    .collect(),
            )
        }
        J::Array(a) => J::Array(a.iter().map(sorted_json).collect()),
        other => other.clone(),
    }
}

/// One tool property (`ToolProperty`): Go fields for templates, JSON in Ollama's field order.
fn property_value(p: &J) -> Value {
    let get = |k: &str| p.get(k).cloned().unwrap_or(J::Null);
    let mut json = Map::new();
    let any_of: Vec<J> = p
        .get("anyOf")
        .and_then(|a| a.as_array())
        .cloned()
        .unwrap_or_default();
    if !any_of.is_empty() {
        json.insert(
            "anyOf".into(),
            J::Array(any_of.iter().map(|a| property_value(a).to_json()).collect()),
        );
    }
    let types: Vec<String> = match p.get("type") {
        Some(J::String(s)) => vec![s.clone()],
        Some(J::Array(a)) => a
            .iter()
            .filter_map(|t| t.as_str().map(String::from))
            .collect(),
        _ => Vec::new(),
    };
    match types.len() {
        0 => {}
        1 => {
            json.insert("type".into(), J::String(types[0].clone()));
        }
        _ => {
            json.insert("type".into(), json!(types));
        }
    }
    for k in ["items", "description", "enum", "properties", "required"] {
        let v = get(k);
        let empty = match &v {
            J::Null => true,
            J::String(s) => s.is_empty(),
            J::Array(a) => a.is_empty(),
            _ => false,
        };
        if !empty {
            let v = if k == "properties" {
                // Nested properties keep the client's order (an ordered map in Ollama).
                match &v {
                    J::Object(o) => J::Object(
                        o.iter()
                            .map(|(n, x)| (n.clone(), property_value(x).to_json()))
                            .collect(),
                    ),
                    other => other.clone(),
                }
            } else {
                v
            };
            json.insert(k.into(), v);
        }
    }
    let type_value = match types.len() {
        0 => Value::List(Vec::new()),
        _ => Value::List(types.iter().map(|t| Value::Str(t.clone())).collect()),
    };
    Value::Struct {
        fields: vec![
            (
                "AnyOf".into(),
                Value::List(any_of.iter().map(property_value).collect()),
            ),
            ("Type".into(), type_value),
            ("Items".into(), Value::from_json(&get("items"))),
            (
                "Description".into(),
                Value::Str(get("description").as_str().unwrap_or("").to_string()),
            ),
            ("Enum".into(), Value::from_json(&get("enum"))),
            ("Properties".into(), Value::from_json(&get("properties"))),
            ("Required".into(), Value::from_json(&get("required"))),
        ],
        json: Some(J::Object(json)),
    }
}

fn tool_value(t: &J) -> Value {
    let f = t.get("function").cloned().unwrap_or(J::Null);
    let params = f.get("parameters").cloned().unwrap_or(J::Null);
    let props: BTreeMap<String, Value> = params
        .get("properties")
        .and_then(|p| p.as_object())
        .map(|o| {
            o.iter()
                .map(|(k, v)| (k.clone(), property_value(v)))
                .collect()
        })
        .unwrap_or_default();
    let has_props = params.get("properties").is_some_and(|p| p.is_object());
    let props_json = if has_props {
        J::Object(
            props
                .iter()
                .map(|(k, v)| (k.clone(), v.to_json()))
                .collect(),
        )
    } else {
        J::Null
    };
    let s = |v: &J, k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string();
    let mut pjson = Map::new();
    pjson.insert("type".into(), J::String(s(&params, "type")));
    for k in ["$defs", "items"] {
        if let Some(v) = params.get(k).filter(|v| !v.is_null()) {
            pjson.insert(k.into(), v.clone());
        }
    }
    if let Some(r) = params
        .get("required")
        .filter(|r| r.as_array().is_some_and(|a| !a.is_empty()))
    {
        pjson.insert("required".into(), r.clone());
    }
    pjson.insert("properties".into(), props_json.clone());
    let fjson = json!({
        "name": s(&f, "name"),
        "description": s(&f, "description"),
        "parameters": J::Object(pjson.clone()),
    });
    let mut tjson = Map::new();
    tjson.insert("type".into(), J::String(s(t, "type")));
    if let Some(i) = t.get("items").filter(|v| !v.is_null()) {
        tjson.insert("items".into(), i.clone());
    }
    tjson.insert("function".into(), fjson.clone());
    // templateProperties prints "{}" when nil, and as JSON with sorted keys otherwise.
    let properties = Value::JsonMap(
        props,
        if has_props {
            sorted_json(&props_json)
        } else {
            json!({})
        },
    );
    let parameters = Value::Struct {
        fields: vec![
            ("Type".into(), Value::Str(s(&params, "type"))),
            (
                "Defs".into(),
                Value::from_json(&params.get("$defs").cloned().unwrap_or(J::Null)),
            ),
            (
                "Items".into(),
                Value::from_json(&params.get("items").cloned().unwrap_or(J::Null)),
            ),
            (
                "Required".into(),
                Value::from_json(&params.get("required").cloned().unwrap_or(J::Null)),
            ),
            ("Properties".into(), properties),
        ],
        json: Some(J::Object(pjson)),
    };
    Value::Struct {
        fields: vec![
            ("Type".into(), Value::Str(s(t, "type"))),
            (
                "Items".into(),
                Value::from_json(&t.get("items").cloned().unwrap_or(J::Null)),
            ),
            (
                "Function".into(),
                Value::Struct {
                    fields: vec![
                        ("Name".into(), Value::Str(s(&f, "name"))),
                        ("Description".into(), Value::Str(s(&f, "description"))),
                        ("Parameters".into(), parameters),
                    ],
                    json: Some(fjson),
                },
            ),
        ],
        json: Some(J::Object(tjson)),
    }
}

/// `.Tools`: nil when the request has none (so `{{ if .Tools }}` is false), else a list that
/// prints as a JSON array.
fn tools_value(tools: &[J]) -> Value {
    if tools.is_empty() {
        return Value::Nil;
    }
    let items: Vec<Value> = tools.iter().map(tool_value).collect();
    let json = J::Array(items.iter().map(Value::to_json).collect());
    // A list with a JSON form: keep it rangeable by representing it as a list whose print form
    // is JSON. Lists print Go-style, so wrap the JSON in a one-off struct only for printing.
    Value::List(items).with_list_json(json)
}

impl Value {
    fn with_list_json(self, json: J) -> Value {
        match self {
            Value::List(items) => Value::JsonList(items, json),
            other => other,
        }
    }
}

/// The tree up to (not including) the first `.Response` field: Ollama's cut for the last turn of
/// a turn-by-turn template. Conditions of `if`/`with`/`range` are kept as they are.
fn cut_list(list: &List, cut: &mut bool) -> List {
    let mut out = Vec::new();
    for n in list {
        if *cut {
            break;
        }
        if let Some(n) = cut_node(n, cut) {
            out.push(n);
        }
    }
    out
}

fn cut_node(n: &Node, cut: &mut bool) -> Option<Node> {
    match n {
        Node::Action(p) => cut_pipe(p, cut).map(Node::Action),
        Node::If(b) | Node::Range(b) | Node::With(b) => {
            let mut b = b.clone();
            b.list = cut_list(&b.list, cut);
            if let Some(e) = &b.else_list {
                b.else_list = Some(if *cut { Vec::new() } else { cut_list(e, cut) });
            }
            Some(match n {
                Node::If(_) => Node::If(b),
                Node::Range(_) => Node::Range(b),
                _ => Node::With(b),
            })
        }
        other => Some(other.clone()),
    }
}

fn cut_pipe(p: &Pipe, cut: &mut bool) -> Option<Pipe> {
    let mut cmds = Vec::new();
    for c in &p.cmds {
        let mut args = Vec::new();
        for a in &c.args {
            if *cut {
                continue;
            }
            match a {
                Arg::Field(f) if f.iter().any(|x| x == "Response") => *cut = true,
                Arg::Sub(sub, fields) => {
                    if let Some(s) = cut_pipe(sub, cut) {
                        args.push(Arg::Sub(Box::new(s), fields.clone()));
                    }
                }
                other => args.push(other.clone()),
            }
        }
        if args.is_empty() {
            return None;
        }
        cmds.push(crate::parse::Cmd { args });
    }
    if cmds.is_empty() {
        return None;
    }
    Some(Pipe {
        decl: p.decl.clone(),
        assign: p.assign,
        cmds,
    })
}
