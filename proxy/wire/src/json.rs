//! JSON output byte-compatible with Go's `encoding/json`, which is what Ollama emits.
//!
//! Two differences from serde_json's defaults matter to clients that compare bytes: Go escapes
//! `<`, `>`, `&`, U+2028 and U+2029 as `\u003c`-style sequences, and it formats floats in plain
//! notation between 1e-6 and 1e21 and as `1e+21` / `1e-7` outside that range.

use std::io;

use serde::Serialize;
use serde_json::ser::{CharEscape, Formatter, Serializer};

/// A serde_json formatter reproducing Go's escaping and float formatting.
#[derive(Debug, Default, Clone, Copy)]
pub struct GoFormatter;

impl Formatter for GoFormatter {
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            let esc: Option<&[u8]> = match c {
                '<' => Some(b"\\u003c"),
                '>' => Some(b"\\u003e"),
                '&' => Some(b"\\u0026"),
                '\u{2028}' => Some(b"\\u2028"),
                '\u{2029}' => Some(b"\\u2029"),
                _ => None,
            };
            if let Some(e) = esc {
                writer.write_all(&fragment.as_bytes()[start..i])?;
                writer.write_all(e)?;
                start = i + c.len_utf8();
            }
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }

    fn write_char_escape<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        char_escape: CharEscape,
    ) -> io::Result<()> {
        // Go writes \b and \f since 1.22, \u00XX for other control characters.
        let s: Vec<u8> = match char_escape {
            CharEscape::Quote => b"\\\"".to_vec(),
            CharEscape::ReverseSolidus => b"\\\\".to_vec(),
            CharEscape::Solidus => b"/".to_vec(),
            CharEscape::Backspace => b"\\b".to_vec(),
            CharEscape::FormFeed => b"\\f".to_vec(),
            CharEscape::LineFeed => b"\\n".to_vec(),
            CharEscape::CarriageReturn => b"\\r".to_vec(),
            CharEscape::Tab => b"\\t".to_vec(),
            CharEscape::AsciiControl(b) => format!("\\u{:04x}", b).into_bytes(),
        };
        writer.write_all(&s)
    }

    fn write_f64<W: ?Sized + io::Write>(&mut self, writer: &mut W, value: f64) -> io::Result<()> {
        writer.write_all(go_float(value, format!("{value}"), format!("{value:e}")).as_bytes())
    }

    fn write_f32<W: ?Sized + io::Write>(&mut self, writer: &mut W, value: f32) -> io::Result<()> {
        let v = value as f64;
        writer.write_all(go_float(v, format!("{value}"), format!("{value:e}")).as_bytes())
    }
}

/// Pick Go's notation for a float given Rust's shortest plain and exponent renderings.
fn go_float(v: f64, plain: String, exp: String) -> String {
    if !v.is_finite() {
        // Go refuses to encode these; emitting null keeps the document valid.
        return "null".to_string();
    }
    let abs = v.abs();
    if abs == 0.0 || (1e-6..1e21).contains(&abs) {
        plain
    } else {
        // Rust: "1.5e-7" / "1e21"; Go: "1.5e-07" cleaned to "1.5e-7", and "1e+21".
        match exp.split_once('e') {
            Some((m, e)) if !e.starts_with('-') => format!("{m}e+{e}"),
            _ => exp,
        }
    }
}

/// Serialize `value` as Go's `json.Marshal` would (no trailing newline).
pub fn to_vec<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    let mut ser = Serializer::with_formatter(&mut out, GoFormatter);
    // Serializing our own types into memory cannot fail (no maps with non-string keys).
    if value.serialize(&mut ser).is_err() {
        out.clear();
        out.extend_from_slice(b"null");
    }
    out
}

/// Serialize `value` followed by a newline (NDJSON line, or Go's `json.Encoder` output).
pub fn to_line<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    let mut out = to_vec(value);
    out.push(b'\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn html_characters_are_escaped_like_go() {
        let s = to_vec(&json!({"a": "<s> & </s>\u{2028}"}));
        assert_eq!(s, br#"{"a":"\u003cs\u003e \u0026 \u003c/s\u003e\u2028"}"#);
    }

    #[test]
    fn control_characters_use_go_escapes() {
        let s = to_vec(&json!("\n\t\u{1}\u{8}"));
        assert_eq!(s, br#""\n\t\u0001\b""#);
    }

    #[test]
    fn floats_use_go_notation() {
        assert_eq!(to_vec(&json!(0.1)), b"0.1");
        assert_eq!(to_vec(&json!(1e-7)), b"1e-7");
        assert_eq!(to_vec(&json!(1.5e21)), b"1.5e+21");
        assert_eq!(to_vec(&json!(123456.0)), b"123456");
        assert_eq!(to_vec(&0.25f32), b"0.25");
        assert_eq!(to_vec(&-0.0123f32), b"-0.0123");
    }

    #[test]
    fn to_line_appends_newline() {
        assert_eq!(to_line(&json!({"x": 1})), b"{\"x\":1}\n");
    }
}
