//! Typed model parameters from text (upstream `api.FormatParams`), used by Modelfile
//! `PARAMETER` lines and the REPL's `/set parameter`.

use serde_json::{Map, Number, Value};

use crate::env::{parse_go_bool, parse_go_int};

/// How a parameter's text is typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Int,
    Float,
    Bool,
    Strings,
}

/// Every option upstream's `api.Options` (and its embedded `Runner`) accepts.
const OPTIONS: &[(&str, Kind)] = &[
    ("num_ctx", Kind::Int),
    ("num_batch", Kind::Int),
    ("num_gpu", Kind::Int),
    ("main_gpu", Kind::Int),
    ("use_mmap", Kind::Bool),
    ("num_thread", Kind::Int),
    ("draft_num_predict", Kind::Int),
    ("num_keep", Kind::Int),
    ("seed", Kind::Int),
    ("num_predict", Kind::Int),
    ("top_k", Kind::Int),
    ("top_p", Kind::Float),
    ("min_p", Kind::Float),
    ("typical_p", Kind::Float),
    ("repeat_last_n", Kind::Int),
    ("temperature", Kind::Float),
    ("repeat_penalty", Kind::Float),
    ("presence_penalty", Kind::Float),
    ("frequency_penalty", Kind::Float),
    ("stop", Kind::Strings),
];

/// Parameters upstream drops with `warning: parameter <p> is deprecated`.
pub const DEPRECATED: &[&str] = &[
    "penalize_newline",
    "low_vram",
    "f16_kv",
    "logits_all",
    "vocab_only",
    "use_mlock",
    "mirostat",
    "mirostat_tau",
    "mirostat_eta",
];

/// Go's `%s` rendering of a `[]string` (`[a b]`), used in upstream's error texts.
fn go_list(vals: &[String]) -> String {
    format!("[{}]", vals.join(" "))
}

/// Type one parameter's values: ints, float32s, bools or (for `stop`) a string list.
///
/// Errors are upstream's: `unknown parameter 'x'`, `invalid float value [x]`,
/// `invalid int value [x]`, `invalid bool value [x]`.
pub fn format_param(key: &str, vals: &[String]) -> Result<Value, String> {
    let Some((_, kind)) = OPTIONS.iter().find(|(k, _)| *k == key) else {
        return Err(format!("unknown parameter '{key}'"));
    };
    let first = vals.first().map(String::as_str).unwrap_or("");
    match kind {
        Kind::Int => parse_go_int(first)
            .map(Value::from)
            .ok_or_else(|| format!("invalid int value {}", go_list(vals))),
        Kind::Float => {
            parse_float32(first).ok_or_else(|| format!("invalid float value {}", go_list(vals)))
        }
        Kind::Bool => parse_go_bool(first)
            .map(Value::Bool)
            .ok_or_else(|| format!("invalid bool value {}", go_list(vals))),
        Kind::Strings => Ok(Value::Array(
            vals.iter().map(|v| Value::String(v.clone())).collect(),
        )),
    }
}

/// Parse as a float32 and keep its shortest decimal form (Go marshals float32 that way).
fn parse_float32(s: &str) -> Option<Value> {
    let f: f32 = s.trim_start_matches('+').parse().ok()?;
    if !f.is_finite() {
        return None;
    }
    let shortest: f64 = format!("{f}").parse().ok()?;
    Number::from_f64(shortest).map(Value::Number)
}

/// Add a typed parameter to `params`, accumulating repeated `stop` values.
pub fn merge_param(params: &mut Map<String, Value>, key: &str, value: Value) {
    match (params.get_mut(key), value) {
        (Some(Value::Array(existing)), Value::Array(more)) => existing.extend(more),
        (_, v) => {
            params.insert(key.to_string(), v);
        }
    }
}

/// Go's `%v` of a parameter value (`0.7`, `42`, `true`, `[a b]`).
pub fn go_value(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(a) => format!("[{}]", a.iter().map(go_value).collect::<Vec<_>>().join(" ")),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn types_values_by_option() {
        assert_eq!(
            format_param("num_ctx", &s(&["4096"])),
            Ok(Value::from(4096))
        );
        assert_eq!(
            format_param("temperature", &s(&["0.7"]))
                .unwrap()
                .to_string(),
            "0.7"
        );
        assert_eq!(
            format_param("use_mmap", &s(&["true"])),
            Ok(Value::Bool(true))
        );
        assert_eq!(
            format_param("stop", &s(&["<|a|>", "b"]))
                .unwrap()
                .to_string(),
            r#"["<|a|>","b"]"#
        );
    }

    #[test]
    fn reports_upstream_errors() {
        assert_eq!(
            format_param("bogus", &s(&["1"])).unwrap_err(),
            "unknown parameter 'bogus'"
        );
        assert_eq!(
            format_param("top_p", &s(&["high"])).unwrap_err(),
            "invalid float value [high]"
        );
        assert_eq!(
            format_param("seed", &s(&["1.5"])).unwrap_err(),
            "invalid int value [1.5]"
        );
        assert_eq!(
            format_param("use_mmap", &s(&["yes"])).unwrap_err(),
            "invalid bool value [yes]"
        );
    }

    #[test]
    fn repeated_stop_accumulates() {
        let mut m = Map::new();
        merge_param(&mut m, "stop", Value::from(vec!["a"]));
        merge_param(&mut m, "stop", Value::from(vec!["b"]));
        merge_param(&mut m, "seed", Value::from(1));
        merge_param(&mut m, "seed", Value::from(2));
        assert_eq!(
            Value::Object(m).to_string(),
            r#"{"stop":["a","b"],"seed":2}"#
        );
    }

    #[test]
    fn go_value_formats_like_percent_v() {
        assert_eq!(go_value(&Value::from(vec!["a", "b"])), "[a b]");
        assert_eq!(go_value(&Value::from(0.5)), "0.5");
        assert_eq!(go_value(&Value::from("x")), "x");
    }
}
