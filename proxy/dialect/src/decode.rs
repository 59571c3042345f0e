//! Body decoding with upstream's error texts.
//!
//! Ollama decodes bodies with Go's `encoding/json`; clients see its messages verbatim
//! (`invalid character 'x' looking for beginning of value`, `unexpected EOF`,
//! `json: cannot unmarshal number into Go struct field GenerateRequest.prompt of type string`).
//! [`decode_json`] reproduces those texts from serde_json's errors.

use serde::de::DeserializeOwned;
use serde_json::Value;

/// A request body that could not be turned into a request (status + message).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct DecodeError {
    /// HTTP status (400 for nearly everything; 500 for option type errors, as upstream).
    pub status: u16,
    /// Message, worded as upstream words it.
    pub message: String,
}

impl DecodeError {
    /// A 400 with this message.
    pub fn bad_request(msg: impl Into<String>) -> Self {
        DecodeError {
            status: 400,
            message: msg.into(),
        }
    }
    /// Any status with this message.
    pub fn new(status: u16, msg: impl Into<String>) -> Self {
        DecodeError {
            status,
            message: msg.into(),
        }
    }
}

/// Decode `body` into `T` (Go struct name `go_type` for error texts).
///
/// An empty body is `missing request body`; a literal `null` decodes to `T::default()` as Go does.
pub fn decode_json<T: DeserializeOwned + Default>(
    body: &[u8],
    go_type: &str,
) -> Result<T, DecodeError> {
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(DecodeError::bad_request("missing request body"));
    }
    let value: Value = serde_json::from_slice(body).map_err(|e| syntax_error(body, &e))?;
    if value.is_null() {
        return Ok(T::default());
    }
    serde_json::from_value::<T>(value.clone()).map_err(|e| type_error(&value, &e, go_type))
}

fn syntax_error(body: &[u8], e: &serde_json::Error) -> DecodeError {
    use serde_json::error::Category;
    let msg = match e.classify() {
        Category::Eof => "unexpected EOF".to_string(),
        _ => {
            // Locate the offending byte to word it like Go's scanner.
            let offset = line_col_to_offset(body, e.line(), e.column());
            match body.get(offset.saturating_sub(1)).copied() {
                Some(c) if offset > 0 && first_non_ws(body) == Some(offset - 1) => {
                    format!(
                        "invalid character {} looking for beginning of value",
                        go_quote_char(c)
                    )
                }
                Some(c) if e.to_string().starts_with("trailing characters") => {
                    format!(
                        "invalid character {} after top-level value",
                        go_quote_char(c)
                    )
                }
                Some(c) => format!(
                    "invalid character {} {}",
                    go_quote_char(c),
                    context_phrase(e)
                ),
                None => "unexpected EOF".to_string(),
            }
        }
    };
    DecodeError::bad_request(msg)
}

fn context_phrase(e: &serde_json::Error) -> &'static str {
    let s = e.to_string();
    if s.starts_with("expected `:`") {
        "after object key"
    } else if s.starts_with("key must be a string") {
        "looking for beginning of object key string"
    } else if s.starts_with("expected `,` or `}`") {
        "after object key:value pair"
    } else if s.starts_with("expected `,` or `]`") {
        "after array element"
    } else {
        "looking for beginning of value"
    }
}

fn first_non_ws(body: &[u8]) -> Option<usize> {
    body.iter().position(|b| !b.is_ascii_whitespace())
}

fn line_col_to_offset(body: &[u8], line: usize, col: usize) -> usize {
    let mut l = 1;
    let mut start = 0;
    for (i, b) in body.iter().enumerate() {
        if l == line {
            start = i;
            break;
        }
        if *b == b'\n' {
            l += 1;
            start = i + 1;
        }
    }
    (start + col).min(body.len())
}

fn go_quote_char(c: u8) -> String {
    match c {
        b'\'' => "'\\''".to_string(),
        b'"' => "'\"'".to_string(),
        c if c.is_ascii_graphic() || c == b' ' => format!("'{}'", c as char),
        c => format!("'\\x{c:02x}'"),
    }
}

/// Word a serde type error as Go's `UnmarshalTypeError`.
fn type_error(value: &Value, e: &serde_json::Error, go_type: &str) -> DecodeError {
    let s = e.to_string();
    // serde_json: "invalid type: integer `1`, expected a string"
    let (found, expected) = match s.strip_prefix("invalid type: ") {
        Some(rest) => {
            let found = rest.split([' ', ',']).next().unwrap_or("");
            let expected = rest.split("expected ").nth(1).unwrap_or("").to_string();
            (found.to_string(), expected)
        }
        None => return DecodeError::bad_request(strip_position(&s)),
    };
    let json_kind = match found.as_str() {
        "integer" | "floating" => "number",
        "string" => "string",
        "boolean" => "bool",
        "sequence" => "array",
        "map" => "object",
        "null" => "null",
        other => other,
    };
    let go_kind = go_type_name(&expected);
    let field = find_field_path(value, json_kind).unwrap_or_default();
    let field = if field.is_empty() {
        String::new()
    } else {
        format!(" field {go_type}.{field}")
    };
    if field.is_empty() {
        DecodeError::bad_request(format!(
            "json: cannot unmarshal {json_kind} into Go value of type {go_kind}"
        ))
    } else {
        DecodeError::bad_request(format!(
            "json: cannot unmarshal {json_kind} into Go struct{field} of type {go_kind}"
        ))
    }
}

fn strip_position(s: &str) -> String {
    match s.find(" at line ") {
        Some(i) => s[..i].to_string(),
        None => s.to_string(),
    }
}

fn go_type_name(expected: &str) -> &'static str {
    let e = expected.trim_end_matches(|c: char| c == '`' || c.is_whitespace());
    if e.contains("string") {
        "string"
    } else if e.contains("bool") {
        "bool"
    } else if e.contains("i64") || e.contains("u64") || e.contains("usize") || e.contains("integer")
    {
        "int"
    } else if e.contains("f32") || e.contains("f64") || e.contains("float") {
        "float64"
    } else if e.contains("sequence") {
        "[]interface {}"
    } else if e.contains("map") || e.contains("struct") {
        "map[string]interface {}"
    } else {
        "string"
    }
}

/// Best-effort: the dotted path of the first top-level (or one-level nested) field whose JSON
/// kind matches the offending kind. serde_json does not report paths for `from_value`, and this
/// is what users read in the message, so an approximate path beats none.
fn find_field_path(value: &Value, kind: &str) -> Option<String> {
    fn kind_of(v: &Value) -> &'static str {
        match v {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        }
    }
    let obj = value.as_object()?;
    for (k, v) in obj {
        if kind_of(v) == kind
            && !matches!(
                k.as_str(),
                "options" | "format" | "keep_alive" | "think" | "input" | "images"
            )
        {
            return Some(k.clone());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default, serde::Deserialize)]
    #[allow(dead_code)]
    struct Req {
        #[serde(default)]
        model: String,
        #[serde(default)]
        prompt: String,
    }

    #[test]
    fn empty_body_is_missing_request_body() {
        assert_eq!(
            decode_json::<Req>(b"", "GenerateRequest")
                .unwrap_err()
                .message,
            "missing request body"
        );
    }

    #[test]
    fn garbage_is_worded_like_go() {
        assert_eq!(
            decode_json::<Req>(b"xyz", "GenerateRequest")
                .unwrap_err()
                .message,
            "invalid character 'x' looking for beginning of value"
        );
        assert_eq!(
            decode_json::<Req>(b"{\"model\":", "GenerateRequest")
                .unwrap_err()
                .message,
            "unexpected EOF"
        );
    }

    #[test]
    fn wrong_field_type_names_the_go_field() {
        assert_eq!(
            decode_json::<Req>(br#"{"model":"m","prompt":1}"#, "GenerateRequest").unwrap_err().message,
            "json: cannot unmarshal number into Go struct field GenerateRequest.prompt of type string"
        );
    }

    #[test]
    fn null_body_decodes_to_default() {
        let r = decode_json::<Req>(b"null", "GenerateRequest").unwrap();
        assert_eq!(r.model, "");
    }
}
