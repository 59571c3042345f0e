//! Structural comparison of two normalized documents, reporting every difference with a path
//! (`body.ndjson[2].done_reason`). Key order is compared too: serde_json's own `==` ignores it.

use serde_json::Value;

/// One difference between the expected (recorded / reference) and the actual document.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Difference {
    /// Where: `status`, `headers.content-type`, `body.json.message.content`, ...
    pub path: String,
    /// What kind: `missing`, `extra`, `order`, `type`, `value`, `length`.
    pub kind: &'static str,
    /// The expected side (compact JSON), empty for `extra`.
    pub expected: String,
    /// The actual side (compact JSON), empty for `missing`.
    pub actual: String,
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.kind {
            "missing" => write!(f, "{}: missing (expected {})", self.path, self.expected),
            "extra" => write!(f, "{}: unexpected {}", self.path, self.actual),
            _ => write!(
                f,
                "{}: {} differs: expected {}, got {}",
                self.path, self.kind, self.expected, self.actual
            ),
        }
    }
}

/// How strictly to compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Everything must match (keys, order, types, values).
    Exact,
    /// Only the expected side's object keys must exist (docs examples: field names are
    /// normative, values and order are not).
    Fields,
}

/// All differences between `expected` and `actual`.
pub fn diff(expected: &Value, actual: &Value, mode: Mode) -> Vec<Difference> {
    let mut out = Vec::new();
    walk("", expected, actual, mode, &mut out);
    out
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 120 {
        let cut = (0..=117)
            .rev()
            .find(|i| s.is_char_boundary(*i))
            .unwrap_or(0);
        format!("{}...", &s[..cut])
    } else {
        s
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn push(out: &mut Vec<Difference>, path: &str, kind: &'static str, e: String, a: String) {
    out.push(Difference {
        path: path.to_string(),
        kind,
        expected: e,
        actual: a,
    });
}

fn walk(path: &str, e: &Value, a: &Value, mode: Mode, out: &mut Vec<Difference>) {
    match (e, a) {
        (Value::Object(em), Value::Object(am)) => {
            for (k, ev) in em {
                match am.get(k) {
                    Some(av) => walk(&join(path, k), ev, av, mode, out),
                    None => push(out, &join(path, k), "missing", short(ev), String::new()),
                }
            }
            if mode == Mode::Fields {
                return;
            }
            for (k, av) in am {
                if !em.contains_key(k) {
                    push(out, &join(path, k), "extra", String::new(), short(av));
                }
            }
            let ek: Vec<&String> = em.keys().filter(|k| am.contains_key(*k)).collect();
            let ak: Vec<&String> = am.keys().filter(|k| em.contains_key(*k)).collect();
            if ek != ak {
                push(
                    out,
                    if path.is_empty() { "(root)" } else { path },
                    "order",
                    format!("{ek:?}"),
                    format!("{ak:?}"),
                );
            }
        }
        (Value::Array(ea), Value::Array(aa)) => {
            if mode == Mode::Fields {
                // Compare each expected element with the actual one at the same position, or
                // the last one (docs show a first and a final stream chunk).
                for (i, ev) in ea.iter().enumerate() {
                    let av = if i + 1 == ea.len() {
                        aa.last()
                    } else {
                        aa.get(i)
                    };
                    if let Some(av) = av {
                        walk(&format!("{path}[{i}]"), ev, av, mode, out);
                    }
                }
                return;
            }
            if ea.len() != aa.len() {
                push(
                    out,
                    path,
                    "length",
                    ea.len().to_string(),
                    aa.len().to_string(),
                );
            }
            for (i, (ev, av)) in ea.iter().zip(aa).enumerate() {
                walk(&format!("{path}[{i}]"), ev, av, mode, out);
            }
        }
        _ if type_name(e) != type_name(a) => {
            if mode == Mode::Exact {
                push(out, path, "type", short(e), short(a));
            }
        }
        _ => {
            if mode == Mode::Exact && e != a {
                push(out, path, "value", short(e), short(a));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn key_order_missing_extra_and_type_are_each_reported() {
        let e = json!({"a": 1, "b": "x", "c": null});
        let a = json!({"b": "x", "a": "1", "d": true});
        let d = diff(&e, &a, Mode::Exact);
        let kinds: Vec<&str> = d.iter().map(|x| x.kind).collect();
        assert_eq!(kinds, vec!["type", "missing", "extra", "order"], "{d:?}");
    }

    #[test]
    fn fields_mode_only_requires_the_documented_keys() {
        let e = json!({"a": 1, "b": {"c": 2}});
        let a = json!({"b": {"c": 3, "z": 0}, "a": 5, "more": 1});
        assert!(diff(&e, &a, Mode::Fields).is_empty());
        assert_eq!(diff(&json!({"q": 1}), &a, Mode::Fields).len(), 1);
    }
}
