//! Decoding of the loosely-typed native fields, with upstream's error texts:
//! `keep_alive` (seconds or Go duration), `think` (bool or level), `format`, `images`, `options`.

use std::time::Duration;

use base64::Engine;
use ollmlx_infer::{Format, KeepAlive, Options, Think};
use serde_json::{Map, Value};

use crate::DecodeError;

/// Go's `reflect.TypeOf` name for a decoded JSON value (used in `Unsupported type` errors).
fn go_type_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(_) => "float64",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

/// Decode `keep_alive`: a number of seconds or a Go duration string; negative means forever.
pub fn keep_alive(v: &Option<Value>) -> Result<Option<KeepAlive>, DecodeError> {
    let Some(v) = v else { return Ok(None) };
    match v {
        Value::Null => Ok(None),
        Value::Number(n) => {
            let secs = n.as_f64().unwrap_or(0.0);
            if secs < 0.0 {
                Ok(Some(KeepAlive::Forever))
            } else {
                Ok(Some(KeepAlive::For(Duration::from_secs_f64(secs))))
            }
        }
        Value::String(s) => match parse_go_duration(s) {
            Ok(d) if d < 0 => Ok(Some(KeepAlive::Forever)),
            Ok(d) => Ok(Some(KeepAlive::For(Duration::from_nanos(d as u64)))),
            Err(e) => Err(DecodeError::bad_request(e)),
        },
        other => Err(DecodeError::bad_request(format!(
            "Unsupported type: '{}'",
            go_type_of(other)
        ))),
    }
}

/// Parse a Go duration string (`"5m"`, `"1h30m"`, `"-1s"`, `"0"`) into nanoseconds.
pub fn parse_go_duration(s: &str) -> Result<i128, String> {
    let invalid = || format!("time: invalid duration \"{s}\"");
    let mut rest = s;
    let mut neg = false;
    if let Some(r) = rest.strip_prefix('-') {
        neg = true;
        rest = r;
    } else if let Some(r) = rest.strip_prefix('+') {
        rest = r;
    }
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let num = &rest[..num_len];
        if num.is_empty() || num == "." {
            return Err(invalid());
        }
        let value: f64 = num.parse().map_err(|_| invalid())?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        if unit.is_empty() {
            return Err(format!("time: missing unit in duration \"{s}\""));
        }
        let scale = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(format!("time: unknown unit \"{unit}\" in duration \"{s}\"")),
        };
        total += value * scale;
        rest = &rest[unit_len..];
    }
    let ns = total.round() as i128;
    Ok(if neg { -ns } else { ns })
}

/// Decode `think`: `true`/`false` or `"high"|"medium"|"low"|"max"`.
pub fn think(v: &Option<Value>) -> Result<Option<Think>, DecodeError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(Think::Bool(*b))),
        Some(Value::String(s)) => match s.as_str() {
            "high" | "medium" | "low" | "max" => Ok(Some(Think::Level(s.clone()))),
            _ => Err(DecodeError::bad_request(format!(
                "invalid think value: \"{s}\" (must be \"high\", \"medium\", \"low\", \"max\", true, or false)"
            ))),
        },
        Some(_) => Err(DecodeError::bad_request(
            "think must be a boolean or string (\"high\", \"medium\", \"low\", \"max\", true, or false)",
        )),
    }
}

/// Decode `format`: absent/empty string means free text, `"json"` or a schema object.
pub fn format(v: &Option<Value>) -> Result<Option<Format>, DecodeError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) if s == "json" => Ok(Some(Format::Json)),
        Some(obj @ Value::Object(_)) => Ok(Some(Format::Schema(obj.clone()))),
        Some(other) => Err(DecodeError::new(
            500,
            format!(
                "invalid format: {}; expected \"json\" or a valid JSON Schema object",
                String::from_utf8_lossy(&ollmlx_wire::json::to_vec(other))
            ),
        )),
    }
}

/// Decode a list of base64 images.
pub fn images(v: &Option<Value>) -> Result<Vec<Vec<u8>>, DecodeError> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items.iter().map(image).collect(),
        Some(other) => Err(DecodeError::bad_request(format!(
            "json: cannot unmarshal {} into Go value of type []api.ImageData",
            json_kind(other)
        ))),
    }
}

/// Decode one base64 image string.
pub fn image(v: &Value) -> Result<Vec<u8>, DecodeError> {
    let Value::String(s) = v else {
        return Err(DecodeError::bad_request(format!(
            "json: cannot unmarshal {} into Go value of type []uint8",
            json_kind(v)
        )));
    };
    decode_base64(s)
}

/// Standard base64 with Go's error text (`illegal base64 data at input byte N`).
pub fn decode_base64(s: &str) -> Result<Vec<u8>, DecodeError> {
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .map_err(|e| {
            let at = match e {
                base64::DecodeError::InvalidByte(i, _) => i,
                base64::DecodeError::InvalidLength(n) => n,
                base64::DecodeError::InvalidLastSymbol(i, _) => i,
                base64::DecodeError::InvalidPadding => s.len(),
            };
            DecodeError::bad_request(format!("illegal base64 data at input byte {at}"))
        })
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Decode `options` (type errors are HTTP 500 upstream).
pub fn options(v: &Option<Map<String, Value>>) -> Result<Options, DecodeError> {
    match v {
        None => Ok(Options::default()),
        Some(m) => Options::from_map(m).map_err(|e| DecodeError::new(500, e.0)),
    }
}

/// Validate `top_logprobs` (0..=20).
pub fn top_logprobs(n: i64) -> Result<u32, DecodeError> {
    if !(0..=20).contains(&n) {
        return Err(DecodeError::bad_request(
            "top_logprobs must be between 0 and 20",
        ));
    }
    Ok(n as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keep_alive_accepts_seconds_strings_and_negatives() {
        assert_eq!(
            keep_alive(&Some(json!(42.5))).unwrap(),
            Some(KeepAlive::For(Duration::from_millis(42_500)))
        );
        assert_eq!(
            keep_alive(&Some(json!("5m"))).unwrap(),
            Some(KeepAlive::For(Duration::from_secs(300)))
        );
        assert_eq!(
            keep_alive(&Some(json!("1h30m"))).unwrap(),
            Some(KeepAlive::For(Duration::from_secs(5400)))
        );
        assert_eq!(
            keep_alive(&Some(json!(-1))).unwrap(),
            Some(KeepAlive::Forever)
        );
        assert_eq!(
            keep_alive(&Some(json!("-1s"))).unwrap(),
            Some(KeepAlive::Forever)
        );
        assert_eq!(
            keep_alive(&Some(json!("0"))).unwrap(),
            Some(KeepAlive::For(Duration::ZERO))
        );
        assert_eq!(keep_alive(&None).unwrap(), None);
    }

    #[test]
    fn keep_alive_errors_use_go_texts() {
        assert_eq!(
            keep_alive(&Some(json!("42"))).unwrap_err().message,
            "time: missing unit in duration \"42\""
        );
        assert_eq!(
            keep_alive(&Some(json!("5x"))).unwrap_err().message,
            "time: unknown unit \"x\" in duration \"5x\""
        );
        assert_eq!(
            keep_alive(&Some(json!(true))).unwrap_err().message,
            "Unsupported type: 'bool'"
        );
    }

    #[test]
    fn think_accepts_bool_and_levels_and_rejects_others_with_upstream_text() {
        assert_eq!(think(&Some(json!(true))).unwrap(), Some(Think::Bool(true)));
        assert_eq!(
            think(&Some(json!("max"))).unwrap(),
            Some(Think::Level("max".into()))
        );
        assert_eq!(
            think(&Some(json!("x"))).unwrap_err().message,
            "invalid think value: \"x\" (must be \"high\", \"medium\", \"low\", \"max\", true, or false)"
        );
        assert!(think(&Some(json!(1)))
            .unwrap_err()
            .message
            .starts_with("think must be a boolean or string"));
    }

    #[test]
    fn format_accepts_json_schema_and_empty() {
        assert_eq!(format(&Some(json!("json"))).unwrap(), Some(Format::Json));
        assert_eq!(format(&Some(json!(""))).unwrap(), None);
        assert!(matches!(
            format(&Some(json!({"type":"object"}))).unwrap(),
            Some(Format::Schema(_))
        ));
        let e = format(&Some(json!("xml"))).unwrap_err();
        assert_eq!(e.status, 500);
        assert_eq!(
            e.message,
            "invalid format: \"xml\"; expected \"json\" or a valid JSON Schema object"
        );
    }

    #[test]
    fn invalid_base64_reports_the_byte_offset() {
        assert_eq!(
            images(&Some(json!(["aGk=", "a$b"]))).unwrap_err().message,
            "illegal base64 data at input byte 1"
        );
        assert_eq!(
            images(&Some(json!(["aGk="]))).unwrap(),
            vec![b"hi".to_vec()]
        );
    }

    #[test]
    fn top_logprobs_must_be_in_range() {
        assert!(top_logprobs(21).is_err());
        assert!(top_logprobs(-1).is_err());
        assert_eq!(top_logprobs(20).unwrap(), 20);
    }
}
