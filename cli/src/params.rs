//! Go's `%v` rendering of typed model parameters, for the REPL's `/show parameters`. Typing
//! parameter text is [`ollmlx_infer::options::format_param`].

use serde_json::Value;

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

    #[test]
    fn go_value_formats_like_percent_v() {
        assert_eq!(go_value(&Value::from(vec!["a", "b"])), "[a b]");
        assert_eq!(go_value(&Value::from(0.5)), "0.5");
        assert_eq!(go_value(&Value::from("x")), "x");
    }
}
