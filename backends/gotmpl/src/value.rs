//! Template data: the values a Go template walks (`.Messages`, `.Tools`, ...), with Go's printing
//! and truthiness rules.
//!
//! Go templates see structs (field names capitalized, `.Role`), maps and slices. Some of Ollama's
//! template types print themselves as JSON (their `String` method), so a [`Value::Struct`] may carry
//! the JSON it prints as.

use std::collections::BTreeMap;
use std::fmt::Write;

/// A value as a template sees it.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Value {
    /// Go's nil (a missing map key with `missingkey=zero` on `map[string]any`).
    #[default]
    Nil,
    /// bool.
    Bool(bool),
    /// Any integer.
    Int(i64),
    /// float64.
    Float(f64),
    /// string.
    Str(String),
    /// A slice.
    List(Vec<Value>),
    /// A slice whose Go type prints itself as JSON (Ollama's tool lists).
    JsonList(Vec<Value>, serde_json::Value),
    /// `map[string]any`: ranged and printed in key order.
    Map(BTreeMap<String, Value>),
    /// A map whose Go type prints itself as JSON (tool-call arguments, tool properties).
    JsonMap(BTreeMap<String, Value>, serde_json::Value),
    /// A struct: fields in declaration order; `json` is what it prints as when its type has a
    /// JSON `String` method (and what the `json` function marshals).
    Struct {
        /// Go field names and values.
        fields: Vec<(String, Value)>,
        /// JSON form (tags applied), if the type defines one.
        json: Option<serde_json::Value>,
    },
}

impl Value {
    /// A struct without a JSON form.
    pub fn fields(fields: Vec<(&str, Value)>) -> Value {
        Value::Struct {
            fields: fields
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
            json: None,
        }
    }

    /// Go's truth: false, 0, nil, and empty strings, slices and maps are false.
    pub fn truthy(&self) -> bool {
        match self {
            Value::Nil => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::Str(s) => !s.is_empty(),
            Value::List(l) | Value::JsonList(l, _) => !l.is_empty(),
            Value::Map(m) | Value::JsonMap(m, _) => !m.is_empty(),
            Value::Struct { .. } => true,
        }
    }

    /// A field or map key (`.Name`). `None` when a struct has no such field.
    pub fn field(&self, name: &str) -> Option<Value> {
        match self {
            Value::Map(m) | Value::JsonMap(m, _) => {
                Some(m.get(name).cloned().unwrap_or(Value::Nil))
            }
            Value::Struct { fields, .. } => fields
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone()),
            // Field access on nil yields nil in Go's map case; structs can't be nil here.
            Value::Nil => Some(Value::Nil),
            _ => None,
        }
    }

    /// The elements, for slices of either kind.
    pub fn as_list(&self) -> Option<&[Value]> {
        match self {
            Value::List(l) | Value::JsonList(l, _) => Some(l),
            _ => None,
        }
    }

    /// The entries, for maps of either kind.
    pub fn as_map(&self) -> Option<&BTreeMap<String, Value>> {
        match self {
            Value::Map(m) | Value::JsonMap(m, _) => Some(m),
            _ => None,
        }
    }

    /// Go type name, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Nil => "nil",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float64",
            Value::Str(_) => "string",
            Value::List(_) | Value::JsonList(..) => "slice",
            Value::Map(_) | Value::JsonMap(..) => "map[string]interface {}",
            Value::Struct { .. } => "struct",
        }
    }

    /// How `{{ . }}` prints it (`fmt.Sprint`).
    pub fn print(&self, out: &mut String) {
        match self {
            Value::Nil => out.push_str("<no value>"),
            other => other.print_inner(out),
        }
    }

    fn print_inner(&self, out: &mut String) {
        match self {
            Value::Nil => out.push_str("<nil>"),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Int(i) => {
                let _ = write!(out, "{i}");
            }
            Value::Float(f) => out.push_str(&format_float(*f)),
            Value::Str(s) => out.push_str(s),
            Value::List(l) => {
                out.push('[');
                for (i, v) in l.iter().enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    v.print_inner(out);
                }
                out.push(']');
            }
            Value::Map(m) => {
                out.push_str("map[");
                for (i, (k, v)) in m.iter().enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    out.push_str(k);
                    out.push(':');
                    v.print_inner(out);
                }
                out.push(']');
            }
            Value::JsonList(_, j) | Value::JsonMap(_, j) => out.push_str(&j.to_string()),
            Value::Struct { fields, json } => match json {
                Some(j) => out.push_str(&j.to_string()),
                None => {
                    out.push('{');
                    for (i, (_, v)) in fields.iter().enumerate() {
                        if i > 0 {
                            out.push(' ');
                        }
                        v.print_inner(out);
                    }
                    out.push('}');
                }
            },
        }
    }

    /// The value as `encoding/json` would marshal it.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            Value::Nil => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Int(i) => J::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
            Value::Str(s) => J::String(s.clone()),
            Value::List(l) => J::Array(l.iter().map(Value::to_json).collect()),
            Value::JsonList(_, j) | Value::JsonMap(_, j) => j.clone(),
            Value::Map(m) => J::Object(m.iter().map(|(k, v)| (k.clone(), v.to_json())).collect()),
            Value::Struct { fields, json } => match json {
                Some(j) => j.clone(),
                None => J::Object(
                    fields
                        .iter()
                        .map(|(k, v)| (k.clone(), v.to_json()))
                        .collect(),
                ),
            },
        }
    }

    /// Go-style `map[string]any` / `[]any` / scalars from JSON.
    pub fn from_json(v: &serde_json::Value) -> Value {
        use serde_json::Value as J;
        match v {
            J::Null => Value::Nil,
            J::Bool(b) => Value::Bool(*b),
            J::Number(n) => match n.as_i64() {
                Some(i) => Value::Int(i),
                None => Value::Float(n.as_f64().unwrap_or(0.0)),
            },
            J::String(s) => Value::Str(s.clone()),
            J::Array(a) => Value::List(a.iter().map(Value::from_json).collect()),
            J::Object(o) => Value::Map(
                o.iter()
                    .map(|(k, v)| (k.clone(), Value::from_json(v)))
                    .collect(),
            ),
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Str(s.to_string())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Str(s)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}

/// Go's `%v` for float64: shortest representation, exponent form outside [1e-4, 1e21).
pub fn format_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    let abs = f.abs();
    if abs != 0.0 && !(1e-4..1e21).contains(&abs) {
        // Rust's `{:e}` gives the shortest digits: 1e-5, 1.5e22. Go writes e-05 / e+22.
        let s = format!("{f:e}");
        let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
        let exp: i32 = exp.parse().unwrap_or(0);
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{mant}e{sign}{:02}", exp.abs());
    }
    format!("{f}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truthiness_follows_go() {
        assert!(!Value::Nil.truthy());
        assert!(!Value::Str(String::new()).truthy());
        assert!(Value::Str("x".into()).truthy());
        assert!(!Value::List(vec![]).truthy());
        assert!(!Value::Int(0).truthy());
        assert!(Value::fields(vec![]).truthy());
    }

    #[test]
    fn printing_follows_fmt_sprint() {
        let mut s = String::new();
        Value::List(vec![Value::Int(1), Value::Str("a".into())]).print(&mut s);
        assert_eq!(s, "[1 a]");
        let mut s = String::new();
        Value::Nil.print(&mut s);
        assert_eq!(s, "<no value>");
        assert_eq!(format_float(0.5), "0.5");
        assert_eq!(format_float(3.0), "3");
        assert_eq!(format_float(1e-5), "1e-05");
        assert_eq!(format_float(1.5e22), "1.5e+22");
    }

    #[test]
    fn structs_with_a_json_form_print_as_json() {
        let v = Value::Struct {
            fields: vec![("Name".into(), "f".into())],
            json: Some(serde_json::json!({"name": "f"})),
        };
        let mut s = String::new();
        v.print(&mut s);
        assert_eq!(s, r#"{"name":"f"}"#);
        assert_eq!(v.field("Name"), Some(Value::Str("f".into())));
        assert_eq!(v.field("Nope"), None);
    }
}
