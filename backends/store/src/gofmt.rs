//! Go `fmt` renderings that leak into Ollama's API text: `%v` / `%#v` of JSON-decoded values
//! (used by `/api/show`'s `parameters` block and generated Modelfile) and `strconv.Quote`.

use serde_json::Value;

/// Go's `%v` of a float64 (`strconv.FormatFloat(v, 'g', -1, 64)`): shortest digits, exponent
/// form when the decimal exponent is < -4 or >= 6 (`1e+06`, `1.5e-05`).
pub fn go_float_g(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    if v == 0.0 {
        return if v.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    let sci = format!("{v:e}"); // e.g. "-1.2345e6", "1e-5"
    let (mant, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mant}e{sign}{:02}", exp.abs())
    } else {
        format!("{v}")
    }
}

/// Go's `strconv.Quote`: double-quoted with Go escapes; printable Unicode kept as is.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if is_go_printable(c) => out.push(c),
            c if (c as u32) < 0x80 => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if (c as u32) < 0x10000 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push_str(&format!("\\U{:08x}", c as u32)),
        }
    }
    out.push('"');
    out
}

/// Approximates Go's `strconv.IsPrint`: letters, marks, numbers, punctuation, symbols and the
/// ASCII space; not controls, other spaces, format characters or private use.
pub fn is_go_printable(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    let u = c as u32;
    !matches!(u,
        0xAD | 0x600..=0x605 | 0x61C | 0x6DD | 0x70F | 0x180E | 0x200B..=0x200F | 0x202A..=0x202E
        | 0x2060..=0x206F | 0xFEFF | 0xFFF9..=0xFFFB | 0xE000..=0xF8FF | 0xF0000..=0x10FFFF)
}

/// Go's `%#v` of a value decoded from JSON into `any` (numbers are float64).
pub fn go_sharp_v(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => go_float_g(n.as_f64().unwrap_or(0.0)),
        Value::String(s) => go_quote(s),
        Value::Array(a) => format!(
            "[]interface {{}}{{{}}}",
            a.iter().map(go_sharp_v).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(_) => v.to_string(),
    }
}

/// Go's `%v` of a value decoded from JSON into `any`.
pub fn go_v(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => go_float_g(n.as_f64().unwrap_or(0.0)),
        Value::String(s) => s.clone(),
        Value::Array(a) => format!("[{}]", a.iter().map(go_v).collect::<Vec<_>>().join(" ")),
        Value::Object(_) => v.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn floats_format_like_go_percent_v() {
        for (v, want) in [
            (0.7, "0.7"),
            (42.0, "42"),
            (4096.0, "4096"),
            (100000.0, "100000"),
            (1_000_000.0, "1e+06"),
            (1_234_567.0, "1.234567e+06"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (-1.0, "-1"),
            (1e21, "1e+21"),
        ] {
            assert_eq!(go_float_g(v), want, "{v}");
        }
    }

    #[test]
    fn quote_matches_strconv_quote() {
        assert_eq!(go_quote("<|im_end|>"), "\"<|im_end|>\"");
        assert_eq!(go_quote("a\"b\\c\nd\te"), "\"a\\\"b\\\\c\\nd\\te\"");
        assert_eq!(go_quote("héllo 世界"), "\"héllo 世界\"");
        assert_eq!(go_quote("\u{1}\u{feff}"), "\"\\x01\\ufeff\"");
    }

    #[test]
    fn sharp_v_of_json_values() {
        assert_eq!(go_sharp_v(&json!("x")), "\"x\"");
        assert_eq!(go_sharp_v(&json!(true)), "true");
        assert_eq!(go_sharp_v(&json!(40)), "40");
        assert_eq!(go_v(&json!(0.9)), "0.9");
        assert_eq!(go_v(&json!("raw")), "raw");
    }
}
