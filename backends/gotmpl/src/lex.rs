//! Lexer: splits template source into text and action tokens, applying Go's `{{-`/`-}}` trim
//! markers and dropping `{{/* comments */}}`.

use crate::Error;

/// A token inside `{{ }}`, or a run of text outside.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    Text(String),
    /// Start of an action (`{{`).
    Open,
    /// End of an action (`}}`).
    Close,
    Ident(String),
    /// `.Name` (the name without the dot); `Dot` alone is `.`.
    Field(String),
    Dot,
    /// `$` or `$name` (with the `$`).
    Var(String),
    Str(String),
    Num(f64, bool),
    Char(char),
    LParen,
    RParen,
    Pipe,
    Declare,
    Assign,
    Comma,
}

/// A token and whether whitespace preceded it (Go only chains `.Field` onto an operand when they
/// touch: `$m.Role`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub tok: Tok,
    pub spaced: bool,
}

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

/// Tokenize `src`.
pub(crate) fn lex(src: &str) -> Result<Vec<Token>, Error> {
    let mut out: Vec<Token> = Vec::new();
    let mut rest = src;
    let mut trim_next_text = false;
    loop {
        let Some(start) = rest.find("{{") else {
            push_text(&mut out, rest, trim_next_text, false);
            return Ok(out);
        };
        let after = &rest[start + 2..];
        let trim_left = after.starts_with("- ")
            || after.starts_with("-\t")
            || after.starts_with("-\n")
            || after.starts_with("-\r");
        push_text(&mut out, &rest[..start], trim_next_text, trim_left);
        let mut body = if trim_left { &after[1..] } else { after };
        // Comments: `{{/* ... */}}`, optionally with trim markers around.
        let lead = body.trim_start_matches(is_space);
        if lead.starts_with("/*") {
            let end = lead
                .find("*/")
                .ok_or_else(|| Error::Parse("unclosed comment".into()))?;
            let tail = lead[end + 2..].trim_start_matches(is_space);
            let (trim_right, tail) = if let Some(t) = tail.strip_prefix("-}}") {
                (true, t)
            } else if let Some(t) = tail.strip_prefix("}}") {
                (false, t)
            } else {
                return Err(Error::Parse("comment ends before closing delimiter".into()));
            };
            trim_next_text = trim_right;
            rest = tail;
            continue;
        }
        out.push(Token {
            tok: Tok::Open,
            spaced: false,
        });
        let (trim_right, remaining) = lex_action(&mut body, &mut out)?;
        trim_next_text = trim_right;
        rest = remaining;
    }
}

fn push_text(out: &mut Vec<Token>, text: &str, trim_start: bool, trim_end: bool) {
    let mut t = text;
    if trim_start {
        t = t.trim_start_matches(is_space);
    }
    if trim_end {
        t = t.trim_end_matches(is_space);
    }
    if !t.is_empty() {
        out.push(Token {
            tok: Tok::Text(t.to_string()),
            spaced: false,
        });
    }
}

/// Lex one action body up to `}}`; returns (right trim, source after the action).
fn lex_action<'a>(body: &mut &'a str, out: &mut Vec<Token>) -> Result<(bool, &'a str), Error> {
    let s: &'a str = body;
    let b = s.as_bytes();
    let mut i = 0;
    let mut spaced = true;
    while i < b.len() {
        let c = b[i];
        if s[i..].starts_with(" -}}") || s[i..].starts_with("\t-}}") || s[i..].starts_with("\n-}}")
        {
            out.push(Token {
                tok: Tok::Close,
                spaced: true,
            });
            return Ok((true, &s[i + 4..]));
        }
        if s[i..].starts_with("}}") {
            out.push(Token {
                tok: Tok::Close,
                spaced,
            });
            return Ok((false, &s[i + 2..]));
        }
        if is_space(c as char) {
            i += 1;
            spaced = true;
            continue;
        }
        let (tok, len) = match c {
            b'(' => (Tok::LParen, 1),
            b')' => (Tok::RParen, 1),
            b'|' => (Tok::Pipe, 1),
            b',' => (Tok::Comma, 1),
            b':' if b.get(i + 1) == Some(&b'=') => (Tok::Declare, 2),
            b'=' => (Tok::Assign, 1),
            b'"' => lex_quoted(&s[i..])?,
            b'`' => {
                let end = s[i + 1..]
                    .find('`')
                    .ok_or_else(|| Error::Parse("unterminated raw quoted string".into()))?;
                (Tok::Str(s[i + 1..i + 1 + end].to_string()), end + 2)
            }
            b'\'' => lex_char(&s[i..])?,
            b'.' => {
                let n = ident_len(&s[i + 1..]);
                if n == 0 {
                    if b.get(i + 1).is_some_and(u8::is_ascii_digit) {
                        lex_number(&s[i..])?
                    } else {
                        (Tok::Dot, 1)
                    }
                } else {
                    (Tok::Field(s[i + 1..i + 1 + n].to_string()), n + 1)
                }
            }
            b'$' => {
                let n = ident_len(&s[i + 1..]);
                (Tok::Var(s[i..i + 1 + n].to_string()), n + 1)
            }
            b'-' | b'+' | b'0'..=b'9' => lex_number(&s[i..])?,
            _ if c.is_ascii_alphabetic() || c == b'_' || c >= 0x80 => {
                let n = ident_len(&s[i..]);
                if n == 0 {
                    return Err(Error::Parse(format!(
                        "unexpected {:?} in command",
                        s[i..].chars().next().unwrap_or(' ')
                    )));
                }
                (Tok::Ident(s[i..i + n].to_string()), n)
            }
            _ => {
                return Err(Error::Parse(format!(
                    "unexpected {:?} in command",
                    s[i..].chars().next().unwrap_or(' ')
                )))
            }
        };
        out.push(Token { tok, spaced });
        spaced = false;
        i += len;
    }
    Err(Error::Parse("unclosed action".into()))
}

fn ident_len(s: &str) -> usize {
    s.char_indices()
        .find(|(_, c)| !(c.is_alphanumeric() || *c == '_'))
        .map_or(s.len(), |(i, _)| i)
}

fn lex_quoted(s: &str) -> Result<(Tok, usize), Error> {
    let mut out = String::new();
    let mut chars = s.char_indices().skip(1);
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((Tok::Str(out), i + 1)),
            '\n' => break,
            '\\' => {
                let (_, e) = chars
                    .next()
                    .ok_or_else(|| Error::Parse("unterminated quoted string".into()))?;
                match e {
                    'n' => out.push('\n'),
                    't' => out.push('\t'),
                    'r' => out.push('\r'),
                    '\\' => out.push('\\'),
                    '"' => out.push('"'),
                    '\'' => out.push('\''),
                    '0' => out.push('\0'),
                    'u' => {
                        let hex: String =
                            (0..4).filter_map(|_| chars.next().map(|x| x.1)).collect();
                        let cp = u32::from_str_radix(&hex, 16)
                            .ok()
                            .and_then(char::from_u32)
                            .ok_or_else(|| Error::Parse("bad \\u escape".into()))?;
                        out.push(cp);
                    }
                    other => return Err(Error::Parse(format!("unknown escape \\{other}"))),
                }
            }
            c => out.push(c),
        }
    }
    Err(Error::Parse("unterminated quoted string".into()))
}

fn lex_char(s: &str) -> Result<(Tok, usize), Error> {
    let mut it = s.char_indices().skip(1);
    let (_, c) = it
        .next()
        .ok_or_else(|| Error::Parse("unterminated character constant".into()))?;
    let (c, next) = if c == '\\' {
        let (_, e) = it
            .next()
            .ok_or_else(|| Error::Parse("unterminated character constant".into()))?;
        let v = match e {
            'n' => '\n',
            't' => '\t',
            '\\' => '\\',
            '\'' => '\'',
            other => other,
        };
        (v, it.next())
    } else {
        (c, it.next())
    };
    match next {
        Some((i, '\'')) => Ok((Tok::Char(c), i + 1)),
        _ => Err(Error::Parse("unterminated character constant".into())),
    }
}

fn lex_number(s: &str) -> Result<(Tok, usize), Error> {
    let n = s
        .char_indices()
        .skip(1)
        .find(|(_, c)| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '+' | '-')))
        .map_or(s.len(), |(i, _)| i);
    let text = &s[..n];
    let clean = text.replace('_', "");
    if let Ok(i) = clean.parse::<i64>() {
        return Ok((Tok::Num(i as f64, true), n));
    }
    if let Some(h) = clean.strip_prefix("0x") {
        if let Ok(i) = i64::from_str_radix(h, 16) {
            return Ok((Tok::Num(i as f64, true), n));
        }
    }
    clean
        .parse::<f64>()
        .map(|f| (Tok::Num(f, false), n))
        .map_err(|_| Error::Parse(format!("bad number syntax: {text:?}")))
}
