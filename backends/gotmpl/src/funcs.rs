//! Template functions: Go's builtins (`eq`, `len`, `index`, `slice`, `printf`, ...) and the ones
//! Ollama adds (`json`, `currentDate`, `yesterdayDate`, `toTypeScriptType`).

use std::fmt::Write;

use crate::value::{format_float, Value};
use crate::Error;

pub(crate) fn call(name: &str, args: Vec<Value>) -> Result<Value, Error> {
    let want = |n: usize| -> Result<(), Error> {
        if args.len() == n {
            Ok(())
        } else {
            Err(Error::Exec(format!(
                "wrong number of args for {name}: want {n} got {}",
                args.len()
            )))
        }
    };
    match name {
        "not" => {
            want(1)?;
            Ok(Value::Bool(!args[0].truthy()))
        }
        "eq" => {
            if args.len() < 2 {
                return Err(Error::Exec("missing argument for comparison".into()));
            }
            let first = &args[0];
            for other in &args[1..] {
                if equal(first, other)? {
                    return Ok(Value::Bool(true));
                }
            }
            Ok(Value::Bool(false))
        }
        "ne" => {
            want(2)?;
            Ok(Value::Bool(!equal(&args[0], &args[1])?))
        }
        "lt" | "le" | "gt" | "ge" => {
            want(2)?;
            let ord = compare(&args[0], &args[1])?;
            Ok(Value::Bool(match name {
                "lt" => ord.is_lt(),
                "le" => ord.is_le(),
                "gt" => ord.is_gt(),
                _ => ord.is_ge(),
            }))
        }
        "len" => {
            want(1)?;
            let n = match &args[0] {
                Value::Str(s) => s.len(),
                Value::List(l) | Value::JsonList(l, _) => l.len(),
                Value::Map(m) | Value::JsonMap(m, _) => m.len(),
                Value::Nil => 0,
                other => {
                    return Err(Error::Exec(format!(
                        "error calling len: len of type {}",
                        other.type_name()
                    )))
                }
            };
            Ok(Value::Int(n as i64))
        }
        "index" => {
            let mut it = args.into_iter();
            let mut v = it
                .next()
                .ok_or_else(|| Error::Exec("wrong number of args for index".into()))?;
            for key in it {
                v = index(&v, &key)?;
            }
            Ok(v)
        }
        "slice" => slice(args),
        "print" => Ok(Value::Str(sprint(&args))),
        "println" => {
            let mut s = String::new();
            for (i, a) in args.iter().enumerate() {
                if i > 0 {
                    s.push(' ');
                }
                a.print_plain(&mut s);
            }
            s.push('\n');
            Ok(Value::Str(s))
        }
        "printf" => {
            let mut it = args.into_iter();
            let fmt = match it.next() {
                Some(Value::Str(s)) => s,
                _ => return Err(Error::Exec("printf: format must be a string".into())),
            };
            Ok(Value::Str(sprintf(&fmt, &it.collect::<Vec<_>>())))
        }
        "json" => {
            want(1)?;
            Ok(Value::Str(args[0].to_json().to_string()))
        }
        "currentDate" => Ok(Value::Str(date_string(0))),
        "yesterdayDate" => Ok(Value::Str(date_string(-1))),
        "toTypeScriptType" => {
            want(1)?;
            Ok(Value::Str(typescript_type(&args[0])))
        }
        "html" => Ok(Value::Str(html_escape(&sprint(&args)))),
        "urlquery" => Ok(Value::Str(url_escape(&sprint(&args)))),
        "js" => Ok(Value::Str(js_escape(&sprint(&args)))),
        _ => Err(Error::Exec(format!("function \"{name}\" not defined"))),
    }
}

impl Value {
    /// `fmt.Sprint` operand form (nil prints as `<nil>` inside print, unlike an action).
    pub(crate) fn print_plain(&self, out: &mut String) {
        match self {
            Value::Nil => out.push_str("<nil>"),
            v => v.print(out),
        }
    }
}

fn sprint(args: &[Value]) -> String {
    // fmt.Sprint adds a space between operands when neither is a string.
    let mut s = String::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 && !matches!(a, Value::Str(_)) && !matches!(args[i - 1], Value::Str(_)) {
            s.push(' ');
        }
        a.print_plain(&mut s);
    }
    s
}

fn sprintf(fmt: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut args = args.iter();
    let mut chars = fmt.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        // Flags/width/precision: keep only a precision for %f.
        let mut spec = String::new();
        while let Some(&d) = chars.peek() {
            if d.is_ascii_digit() || matches!(d, '.' | '-' | '+' | ' ' | '#' | '0') {
                spec.push(d);
                chars.next();
            } else {
                break;
            }
        }
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(a) = args.next() else {
            let _ = write!(out, "%!{verb}(MISSING)");
            continue;
        };
        match verb {
            'v' | 's' | 'd' | 't' => a.print_plain(&mut out),
            'q' => {
                let mut s = String::new();
                a.print_plain(&mut s);
                out.push_str(&serde_json::Value::String(s).to_string());
            }
            'f' | 'g' | 'e' => {
                let f = match a {
                    Value::Float(f) => *f,
                    Value::Int(i) => *i as f64,
                    _ => f64::NAN,
                };
                let prec = spec
                    .split_once('.')
                    .and_then(|(_, p)| p.parse::<usize>().ok());
                match (verb, prec) {
                    ('f', Some(p)) => {
                        let _ = write!(out, "{f:.p$}");
                    }
                    ('f', None) => {
                        let _ = write!(out, "{f:.6}");
                    }
                    _ => out.push_str(&format_float(f)),
                }
            }
            'x' => match a {
                Value::Int(i) => {
                    let _ = write!(out, "{i:x}");
                }
                other => {
                    let mut s = String::new();
                    other.print_plain(&mut s);
                    for b in s.bytes() {
                        let _ = write!(out, "{b:02x}");
                    }
                }
            },
            other => {
                let _ = write!(out, "%!{other}(");
                a.print_plain(&mut out);
                out.push(')');
            }
        }
    }
    let extra: Vec<_> = args.collect();
    if !extra.is_empty() {
        out.push_str("%!(EXTRA ");
        for (i, a) in extra.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            a.print_plain(&mut out);
        }
        out.push(')');
    }
    out
}

fn equal(a: &Value, b: &Value) -> Result<bool, Error> {
    Ok(match (a, b) {
        (Value::Int(x), Value::Float(y)) | (Value::Float(y), Value::Int(x)) => (*x as f64) == *y,
        (Value::Nil, Value::Nil) => true,
        (Value::Str(x), Value::Str(y)) => x == y,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Int(x), Value::Int(y)) => x == y,
        (Value::Float(x), Value::Float(y)) => x == y,
        (
            Value::List(_)
            | Value::JsonList(..)
            | Value::Map(_)
            | Value::JsonMap(..)
            | Value::Struct { .. },
            _,
        )
        | (
            _,
            Value::List(_)
            | Value::JsonList(..)
            | Value::Map(_)
            | Value::JsonMap(..)
            | Value::Struct { .. },
        ) => {
            return Err(Error::Exec(format!(
                "error calling eq: non-comparable type {}",
                if matches!(
                    a,
                    Value::List(_)
                        | Value::JsonList(..)
                        | Value::Map(_)
                        | Value::JsonMap(..)
                        | Value::Struct { .. }
                ) {
                    a.type_name()
                } else {
                    b.type_name()
                }
            )))
        }
        (x, y) => {
            return Err(Error::Exec(format!(
                "error calling eq: incompatible types for comparison: {} and {}",
                x.type_name(),
                y.type_name()
            )))
        }
    })
}

fn compare(a: &Value, b: &Value) -> Result<std::cmp::Ordering, Error> {
    let num = |v: &Value| match v {
        Value::Int(i) => Some(*i as f64),
        Value::Float(f) => Some(*f),
        _ => None,
    };
    match (a, b) {
        (Value::Str(x), Value::Str(y)) => Ok(x.cmp(y)),
        _ => match (num(a), num(b)) {
            (Some(x), Some(y)) => x
                .partial_cmp(&y)
                .ok_or_else(|| Error::Exec("invalid comparison of NaN".into())),
            _ => Err(Error::Exec(format!(
                "incompatible types for comparison: {} and {}",
                a.type_name(),
                b.type_name()
            ))),
        },
    }
}

fn int_arg(v: &Value) -> Result<i64, Error> {
    match v {
        Value::Int(i) => Ok(*i),
        other => Err(Error::Exec(format!(
            "cannot index slice/array with type {}",
            other.type_name()
        ))),
    }
}

fn index(v: &Value, key: &Value) -> Result<Value, Error> {
    match v {
        Value::List(l) | Value::JsonList(l, _) => {
            let i = int_arg(key)?;
            usize::try_from(i)
                .ok()
                .and_then(|i| l.get(i).cloned())
                .ok_or_else(|| Error::Exec(format!("error calling index: index out of range: {i}")))
        }
        Value::Map(m) | Value::JsonMap(m, _) => match key {
            Value::Str(k) => Ok(m.get(k).cloned().unwrap_or(Value::Nil)),
            other => Err(Error::Exec(format!(
                "error calling index: value has type {}; should be string",
                other.type_name()
            ))),
        },
        Value::Str(s) => {
            let i = int_arg(key)?;
            usize::try_from(i)
                .ok()
                .and_then(|i| s.as_bytes().get(i).copied())
                .map(|b| Value::Int(b as i64))
                .ok_or_else(|| Error::Exec(format!("error calling index: index out of range: {i}")))
        }
        Value::Nil => Err(Error::Exec(
            "error calling index: index of untyped nil".into(),
        )),
        other => Err(Error::Exec(format!(
            "error calling index: can't index item of type {}",
            other.type_name()
        ))),
    }
}

fn slice(args: Vec<Value>) -> Result<Value, Error> {
    let mut it = args.into_iter();
    let v = it
        .next()
        .ok_or_else(|| Error::Exec("wrong number of args for slice".into()))?;
    let idx: Vec<i64> = it.map(|a| int_arg(&a)).collect::<Result<_, _>>()?;
    let v = match v {
        Value::JsonList(l, _) => Value::List(l),
        other => other,
    };
    let len = match &v {
        Value::List(l) => l.len(),
        Value::Str(s) => s.len(),
        other => {
            return Err(Error::Exec(format!(
                "error calling slice: can't slice item of type {}",
                other.type_name()
            )))
        }
    } as i64;
    let lo = idx.first().copied().unwrap_or(0);
    let hi = idx.get(1).copied().unwrap_or(len);
    if idx.len() > 2 || lo < 0 || hi < lo || hi > len {
        return Err(Error::Exec(format!(
            "error calling slice: index out of range: {lo}:{hi}"
        )));
    }
    let (lo, hi) = (lo as usize, hi as usize);
    Ok(match v {
        Value::List(l) => Value::List(l[lo..hi].to_vec()),
        Value::Str(s) => Value::Str(
            s.get(lo..hi)
                .map(str::to_string)
                .unwrap_or_else(|| String::from_utf8_lossy(&s.as_bytes()[lo..hi]).into_owned()),
        ),
        _ => unreachable!("checked above"),
    })
}

/// `toTypeScriptType` of a tool property (anyOf unions, single or multiple `type`s).
fn typescript_type(v: &Value) -> String {
    let j = v.to_json();
    fn of(j: &serde_json::Value) -> String {
        if let Some(any) = j.get("anyOf").and_then(|a| a.as_array()) {
            if !any.is_empty() {
                return any.iter().map(of).collect::<Vec<_>>().join(" | ");
            }
        }
        let map = |t: &str| match t {
            "string" => "string",
            "number" | "integer" => "number",
            "boolean" => "boolean",
            "array" => "any[]",
            "object" => "Record<string, any>",
            "null" => "null",
            _ => "any",
        };
        match j.get("type") {
            Some(serde_json::Value::String(t)) => map(t).to_string(),
            Some(serde_json::Value::Array(ts)) if !ts.is_empty() => ts
                .iter()
                .map(|t| map(t.as_str().unwrap_or("")))
                .collect::<Vec<_>>()
                .join(" | "),
            _ => "any".to_string(),
        }
    }
    if !matches!(v, Value::Map(_) | Value::Struct { .. }) {
        return "any".into();
    }
    of(&j)
}

/// Local date `offset_days` from today as `2006-01-02` (UTC: the server has no zone database).
fn date_string(offset_days: i64) -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400) + offset_days);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar.
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn html_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '&' => o.push_str("&amp;"),
            '"' => o.push_str("&#34;"),
            '\'' => o.push_str("&#39;"),
            '\0' => o.push('\u{FFFD}'),
            c => o.push(c),
        }
    }
    o
}

fn js_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => o.push_str("\\\\"),
            '\'' => o.push_str("\\'"),
            '"' => o.push_str("\\\""),
            '<' => o.push_str("\\u003C"),
            '>' => o.push_str("\\u003E"),
            '&' => o.push_str("\\u0026"),
            '=' => o.push_str("\\u003D"),
            '\n' => o.push_str("\\n"),
            '\r' => o.push_str("\\r"),
            '\t' => o.push_str("\\t"),
            c => o.push(c),
        }
    }
    o
}

fn url_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                o.push(b as char)
            }
            b' ' => o.push('+'),
            b => {
                let _ = write!(o, "%{b:02X}");
            }
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_match_known_days() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_454), (2026, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }

    #[test]
    fn printf_handles_common_verbs() {
        let s = sprintf(
            "%s=%d %q %.2f %v%%",
            &[
                Value::Str("a".into()),
                Value::Int(3),
                Value::Str("x\"y".into()),
                Value::Float(1.5),
                Value::Bool(true),
            ],
        );
        assert_eq!(s, r#"a=3 "x\"y" 1.50 true%"#);
    }

    #[test]
    fn eq_matches_any_of_several_and_rejects_lists() {
        let r = call("eq", vec!["user".into(), "system".into(), "user".into()]).unwrap();
        assert_eq!(r, Value::Bool(true));
        assert!(call("eq", vec![Value::List(vec![]), Value::Int(1)]).is_err());
    }

    #[test]
    fn typescript_types_follow_ollama() {
        let p = Value::from_json(&serde_json::json!({"type": ["string", "null"]}));
        assert_eq!(typescript_type(&p), "string | null");
        let p = Value::from_json(
            &serde_json::json!({"anyOf": [{"type": "integer"}, {"type": "array"}]}),
        );
        assert_eq!(typescript_type(&p), "number | any[]");
        assert_eq!(typescript_type(&Value::Nil), "any");
    }
}
