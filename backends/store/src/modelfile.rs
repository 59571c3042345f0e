//! Modelfile grammar (upstream `parser/parser.go`): parser, serializer, and typed PARAMETERs.
//!
//! The CLI's `ollama create -f Modelfile` parses with [`parse`] and turns the commands into a
//! create request with [`Modelfile::to_request`]; `/api/show` renders a Modelfile back with
//! [`Command`]'s `Display`. The parser is a port of upstream's rune state machine, so its quirks
//! and error texts (`(line N): ...`, `unexpected EOF`, `no FROM line`) match. PARAMETER values
//! are typed by [`ollmlx_infer::options::format_param`], the option list's single owner.

use std::fmt;

use serde_json::{Map, Value};

use ollmlx_infer::options::{format_param, DEPRECATED_PARAMETERS};

use crate::gofmt::is_go_printable;

/// Modelfile errors, worded like upstream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelfileError {
    /// A syntax error on a line: `(line N): <msg>`.
    #[error("(line {line}): {msg}")]
    Line {
        /// 1-based line number.
        line: usize,
        /// What was wrong.
        msg: String,
    },
    /// A parameter/message name was cut short: `unexpected EOF: <buffered text>`.
    #[error("unexpected EOF: {0}")]
    UnexpectedEofIn(String),
    /// The file ended inside a command or an open quote.
    #[error("unexpected EOF")]
    UnexpectedEof,
    /// No FROM command.
    #[error("no FROM line")]
    MissingFrom,
    /// A command's value is invalid (`unknown parameter 'x'`, `invalid float value [x]`, ...).
    #[error("{0}")]
    Invalid(String),
}

const ERR_INVALID_COMMAND: &str = "command must be one of \"from\", \"license\", \"template\", \"system\", \"adapter\", \"draft\", \"renderer\", \"parser\", \"parameter\", \"message\", or \"requires\"";
const ERR_INVALID_ROLE: &str = "message role must be one of \"system\", \"user\", or \"assistant\"";

/// One command. `name` is lower-case (`model` for FROM, the parameter name for PARAMETER);
/// MESSAGE args are `role: text`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// Command or parameter name.
    pub name: String,
    /// Its value.
    pub args: String,
}

impl Command {
    /// A command.
    pub fn new(name: impl Into<String>, args: impl Into<String>) -> Self {
        Command {
            name: name.into(),
            args: args.into(),
        }
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name.as_str() {
            "model" => write!(f, "FROM {}", self.args),
            "license" | "template" | "system" | "adapter" | "renderer" | "parser" | "requires"
            | "draft" => write!(f, "{} {}", self.name.to_uppercase(), quote(&self.args)),
            "message" => {
                let (role, msg) = self.args.split_once(": ").unwrap_or((&self.args, ""));
                write!(f, "MESSAGE {role} {}", quote(msg))
            }
            _ => write!(f, "PARAMETER {} {}", self.name, quote(&self.args)),
        }
    }
}

/// A parsed Modelfile.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Modelfile {
    /// Commands in file order.
    pub commands: Vec<Command>,
}

impl fmt::Display for Modelfile {
    /// One command per line, each newline-terminated.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in &self.commands {
            writeln!(f, "{c}")?;
        }
        Ok(())
    }
}

/// Upstream's `quote`: values with a newline or leading/trailing space are wrapped in `"…"`, or
/// `"""…"""` when they also contain a `"`.
pub fn quote(s: &str) -> String {
    if s.contains('\n') || s.starts_with(' ') || s.ends_with(' ') {
        if s.contains('"') {
            return format!("\"\"\"{s}\"\"\"");
        }
        return format!("\"{s}\"");
    }
    s.to_string()
}

fn unquote(s: &str) -> Option<&str> {
    if let Some(rest) = s.strip_prefix("\"\"\"") {
        return (s.len() >= 6 && s.ends_with("\"\"\"")).then(|| &rest[..rest.len() - 3]);
    }
    if let Some(rest) = s.strip_prefix('"') {
        return (s.len() >= 2 && s.ends_with('"')).then(|| &rest[..rest.len() - 1]);
    }
    Some(s)
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum State {
    Nil,
    Name,
    Value,
    Parameter,
    Message,
    Comment,
}

enum Step {
    Ok(State, Option<char>),
    InvalidCommand,
    Eof,
}

fn is_space(c: char) -> bool {
    c == ' ' || c == '\t'
}
fn is_newline(c: char) -> bool {
    c == '\r' || c == '\n'
}

fn step(c: char, s: State) -> Step {
    use State::*;
    match s {
        Nil if c == '#' => Step::Ok(Comment, None),
        Nil if is_space(c) || is_newline(c) => Step::Ok(Nil, None),
        Nil => Step::Ok(Name, Some(c)),
        Name if c.is_ascii_alphabetic() => Step::Ok(Name, Some(c)),
        Name if is_space(c) => Step::Ok(Value, None),
        Name => Step::InvalidCommand,
        Value if is_newline(c) || is_space(c) => Step::Ok(Nil, Some(c)),
        Value => Step::Ok(Value, Some(c)),
        Parameter if c.is_ascii_alphanumeric() || c == '_' => Step::Ok(Parameter, Some(c)),
        Parameter if is_space(c) => Step::Ok(Value, None),
        Parameter => Step::Eof,
        Message if c.is_ascii_alphabetic() => Step::Ok(Message, Some(c)),
        Message if is_space(c) => Step::Ok(Value, None),
        Message => Step::Eof,
        Comment if is_newline(c) => Step::Ok(Nil, None),
        Comment => Step::Ok(Comment, None),
    }
}

fn is_valid_command(s: &str) -> bool {
    matches!(
        s.to_ascii_lowercase().as_str(),
        "from"
            | "license"
            | "template"
            | "system"
            | "adapter"
            | "draft"
            | "renderer"
            | "parser"
            | "parameter"
            | "message"
            | "requires"
    )
}

/// Decode Modelfile bytes: a UTF-8 BOM is dropped, a UTF-16 BOM switches to UTF-16; invalid
/// sequences become U+FFFD.
pub fn decode_text(bytes: &[u8]) -> String {
    if let Some(rest) = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]) {
        return String::from_utf8_lossy(rest).into_owned();
    }
    let utf16 = |rest: &[u8], le: bool| {
        let units: Vec<u16> = rest
            .chunks(2)
            .map(|c| {
                let pair = [c[0], *c.get(1).unwrap_or(&0)];
                if le {
                    u16::from_le_bytes(pair)
                } else {
                    u16::from_be_bytes(pair)
                }
            })
            .collect();
        String::from_utf16_lossy(&units)
    };
    if let Some(rest) = bytes.strip_prefix(&[0xFF, 0xFE]) {
        return utf16(rest, true);
    }
    if let Some(rest) = bytes.strip_prefix(&[0xFE, 0xFF]) {
        return utf16(rest, false);
    }
    String::from_utf8_lossy(bytes).into_owned()
}

/// Parse a Modelfile.
pub fn parse(input: &[u8]) -> Result<Modelfile, ModelfileError> {
    let text = decode_text(input);
    let mut f = Modelfile::default();
    let mut cmd = Command::new("", "");
    let mut curr = State::Nil;
    let mut line = 1usize;
    let mut b = String::new();
    let mut role = String::new();

    for c in text.chars() {
        if is_newline(c) {
            line += 1;
        }
        let (mut next, r) = match step(c, curr) {
            Step::Ok(n, r) => (n, r),
            Step::Eof => return Err(ModelfileError::UnexpectedEofIn(b)),
            Step::InvalidCommand => {
                return Err(ModelfileError::Line {
                    line,
                    msg: ERR_INVALID_COMMAND.into(),
                })
            }
        };
        if next != curr {
            match curr {
                State::Name => {
                    if !is_valid_command(&b) {
                        return Err(ModelfileError::Line {
                            line,
                            msg: ERR_INVALID_COMMAND.into(),
                        });
                    }
                    match b.to_ascii_lowercase().as_str() {
                        "from" => cmd.name = "model".into(),
                        "parameter" => next = State::Parameter,
                        "message" => {
                            next = State::Message;
                            cmd.name = "message".into();
                        }
                        other => cmd.name = other.into(),
                    }
                }
                State::Parameter => cmd.name = b.clone(),
                State::Message => {
                    if !matches!(b.as_str(), "system" | "user" | "assistant") {
                        return Err(ModelfileError::Line {
                            line,
                            msg: ERR_INVALID_ROLE.into(),
                        });
                    }
                    role = b.clone();
                }
                State::Comment | State::Nil => {}
                State::Value => match unquote(b.trim()).map(str::to_string) {
                    Some(s) if !r.is_some_and(is_space) => {
                        cmd.args = if role.is_empty() {
                            s
                        } else {
                            format!("{}: {s}", std::mem::take(&mut role))
                        };
                        f.commands.push(cmd.clone());
                    }
                    _ => {
                        if let Some(rc) = r {
                            b.push(rc);
                        }
                        continue;
                    }
                },
            }
            b.clear();
            curr = next;
        }
        if let Some(rc) = r {
            if is_go_printable(rc) {
                b.push(rc);
            }
        }
    }

    match curr {
        State::Comment | State::Nil => {}
        State::Value => {
            let s = unquote(b.trim()).ok_or(ModelfileError::UnexpectedEof)?;
            cmd.args = if role.is_empty() {
                s.to_string()
            } else {
                format!("{role}: {s}")
            };
            f.commands.push(cmd);
        }
        _ => return Err(ModelfileError::UnexpectedEof),
    }

    if f.commands.iter().any(|c| c.name == "model") {
        Ok(f)
    } else {
        Err(ModelfileError::MissingFrom)
    }
}

/// Add a typed parameter to `params`: repeated `stop` values accumulate, anything else is
/// replaced (upstream's `Modelfile.CreateRequest`).
pub fn merge_param(params: &mut Map<String, Value>, key: &str, value: Value) {
    match (params.get_mut(key), value) {
        (Some(Value::Array(existing)), Value::Array(more)) => existing.extend(more),
        (_, v) => {
            params.insert(key.to_string(), v);
        }
    }
}

/// What a Modelfile asks `create` to do, before local paths are resolved (that, and uploading
/// blobs, is the CLI's job).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModelfileRequest {
    /// Every FROM argument, in order: a model name or a local path.
    pub from: Vec<String>,
    /// ADAPTER paths.
    pub adapters: Vec<String>,
    /// DRAFT arguments: a local file or directory (uploaded as the draft layer, as upstream)
    /// or, when no such path exists, an installed model's name (ollmlx: the create request gets
    /// the `draft` parameter, resolved when generating).
    pub drafts: Vec<String>,
    /// TEMPLATE (last wins).
    pub template: Option<String>,
    /// SYSTEM (last wins).
    pub system: Option<String>,
    /// LICENSE texts.
    pub license: Vec<String>,
    /// RENDERER.
    pub renderer: Option<String>,
    /// PARSER.
    pub parser: Option<String>,
    /// REQUIRES, without a leading `v`.
    pub requires: Option<String>,
    /// MESSAGEs as `(role, content)`.
    pub messages: Vec<(String, String)>,
    /// Typed PARAMETERs (`stop` accumulates).
    pub parameters: Map<String, Value>,
    /// Deprecated parameters that were dropped (print `warning: parameter <p> is deprecated`).
    pub deprecated: Vec<String>,
}

impl Modelfile {
    /// Turn the commands into a [`ModelfileRequest`] (upstream's `Modelfile.CreateRequest`
    /// minus the filesystem work).
    pub fn to_request(&self) -> Result<ModelfileRequest, ModelfileError> {
        let mut r = ModelfileRequest::default();
        for c in &self.commands {
            match c.name.as_str() {
                "model" => r.from.push(c.args.clone()),
                "adapter" => r.adapters.push(c.args.clone()),
                "draft" => r.drafts.push(c.args.clone()),
                "template" => r.template = Some(c.args.clone()),
                "system" => r.system = Some(c.args.clone()),
                "license" => r.license.push(c.args.clone()),
                "renderer" => r.renderer = Some(c.args.clone()),
                "parser" => r.parser = Some(c.args.clone()),
                "requires" => {
                    let v = c.args.strip_prefix('v').unwrap_or(&c.args);
                    if !is_semver(v) {
                        return Err(ModelfileError::Invalid(
                            "requires must be a valid semver (e.g. 0.14.0)".into(),
                        ));
                    }
                    r.requires = Some(v.to_string());
                }
                "message" => {
                    let (role, msg) = c.args.split_once(": ").unwrap_or((&c.args, ""));
                    r.messages.push((role.to_string(), msg.to_string()));
                }
                p if DEPRECATED_PARAMETERS.contains(&p) => r.deprecated.push(p.to_string()),
                p => {
                    let v = format_param(p, std::slice::from_ref(&c.args))
                        .map_err(|e| ModelfileError::Invalid(e.0))?;
                    merge_param(&mut r.parameters, p, v);
                }
            }
        }
        Ok(r)
    }
}

/// `golang.org/x/mod/semver.IsValid` without the `v`: `MAJOR[.MINOR[.PATCH]][-pre][+build]`.
fn is_semver(v: &str) -> bool {
    let (core, _build) = v.split_once('+').unwrap_or((v, ""));
    let (core, pre) = match core.split_once('-') {
        Some((c, p)) => (c, Some(p)),
        None => (core, None),
    };
    let parts: Vec<&str> = core.split('.').collect();
    let num_ok = |p: &str| {
        !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && (p == "0" || !p.starts_with('0'))
    };
    if parts.is_empty() || parts.len() > 3 || !parts.iter().all(|p| num_ok(p)) {
        return false;
    }
    if parts.len() < 3 && (pre.is_some() || v.contains('+')) {
        return false;
    }
    pre.is_none_or_valid()
}

trait PreExt {
    fn is_none_or_valid(&self) -> bool;
}
impl PreExt for Option<&str> {
    fn is_none_or_valid(&self) -> bool {
        match self {
            None => true,
            Some(p) => p.split('.').all(|id| {
                !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            }),
        }
    }
}

#[cfg(test)]
mod tests;
