//! Modelfiles: the lexer (upstream `parser.ParseFile`) and the conversion of its commands
//! into a `/api/create` request (upstream `Modelfile.CreateRequest`), including digesting
//! the local files that `FROM`, `ADAPTER` and `DRAFT` point at.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use ollmlx_wire::ollama::{CreateRequest, Message};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use ollmlx_infer::options::{format_param, DEPRECATED_PARAMETERS};
use ollmlx_store::modelfile::merge_param;

/// One Modelfile instruction: lower-cased name (`model` for FROM, the parameter name for
/// PARAMETER) and its unquoted argument (`role: text` for MESSAGE).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// Instruction or parameter name.
    pub name: String,
    /// Argument text.
    pub args: String,
}

const INVALID_COMMAND: &str = "command must be one of \"from\", \"license\", \"template\", \"system\", \"adapter\", \"draft\", \"renderer\", \"parser\", \"parameter\", \"message\", or \"requires\"";
const INVALID_ROLE: &str = "message role must be one of \"system\", \"user\", or \"assistant\"";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum St {
    Nil,
    Name,
    Value,
    Parameter,
    Message,
    Comment,
}

enum Step {
    Next(St, Option<char>),
    Eof,
    Invalid,
}

fn is_space(c: char) -> bool {
    c == ' ' || c == '\t'
}

fn is_newline(c: char) -> bool {
    c == '\r' || c == '\n'
}

fn step(c: char, s: St) -> Step {
    match s {
        St::Nil => {
            if c == '#' {
                Step::Next(St::Comment, None)
            } else if is_space(c) || is_newline(c) {
                Step::Next(St::Nil, None)
            } else {
                Step::Next(St::Name, Some(c))
            }
        }
        St::Name => {
            if c.is_ascii_alphabetic() {
                Step::Next(St::Name, Some(c))
            } else if is_space(c) {
                Step::Next(St::Value, None)
            } else {
                Step::Invalid
            }
        }
        St::Value => {
            if is_newline(c) || is_space(c) {
                Step::Next(St::Nil, Some(c))
            } else {
                Step::Next(St::Value, Some(c))
            }
        }
        St::Parameter => {
            if c.is_ascii_alphanumeric() || c == '_' {
                Step::Next(St::Parameter, Some(c))
            } else if is_space(c) {
                Step::Next(St::Value, None)
            } else {
                Step::Eof
            }
        }
        St::Message => {
            if c.is_ascii_alphabetic() {
                Step::Next(St::Message, Some(c))
            } else if is_space(c) {
                Step::Next(St::Value, None)
            } else {
                Step::Eof
            }
        }
        St::Comment => {
            if is_newline(c) {
                Step::Next(St::Nil, None)
            } else {
                Step::Next(St::Comment, None)
            }
        }
    }
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

fn is_valid_command(s: &str) -> bool {
    matches!(
        s.to_lowercase().as_str(),
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

/// Decode a Modelfile's bytes: UTF-8 (BOM stripped) or UTF-16 with a BOM.
fn decode(bytes: &[u8]) -> String {
    let utf16 = |be: bool| {
        let units: Vec<u16> = bytes[2..]
            .chunks_exact(2)
            .map(|c| {
                if be {
                    u16::from_be_bytes([c[0], c[1]])
                } else {
                    u16::from_le_bytes([c[0], c[1]])
                }
            })
            .collect();
        String::from_utf16_lossy(&units)
    };
    match bytes {
        [0xEF, 0xBB, 0xBF, rest @ ..] => String::from_utf8_lossy(rest).into_owned(),
        [0xFF, 0xFE, ..] => utf16(false),
        [0xFE, 0xFF, ..] => utf16(true),
        _ => String::from_utf8_lossy(bytes).into_owned(),
    }
}

/// Parse a Modelfile. Errors read like upstream's (`(line 3): command must be one of ...`,
/// `unexpected EOF`, `no FROM line`).
pub fn parse(bytes: &[u8]) -> Result<Vec<Command>, String> {
    let text = decode(bytes);
    let mut cmds: Vec<Command> = Vec::new();
    let mut cmd = Command {
        name: String::new(),
        args: String::new(),
    };
    let mut curr = St::Nil;
    let mut line = 1;
    let mut b = String::new();
    let mut role = String::new();

    for c in text.chars() {
        if is_newline(c) {
            line += 1;
        }
        let (mut next, r) = match step(c, curr) {
            Step::Next(n, r) => (n, r),
            Step::Eof => return Err(format!("unexpected EOF: {b}")),
            Step::Invalid => return Err(format!("(line {line}): {INVALID_COMMAND}")),
        };
        if next != curr {
            match curr {
                St::Name => {
                    if !is_valid_command(&b) {
                        return Err(format!("(line {line}): {INVALID_COMMAND}"));
                    }
                    let s = b.to_lowercase();
                    match s.as_str() {
                        "from" => cmd.name = "model".into(),
                        "parameter" => next = St::Parameter,
                        "message" => {
                            next = St::Message;
                            cmd.name = s;
                        }
                        _ => cmd.name = s,
                    }
                }
                St::Parameter => cmd.name = b.clone(),
                St::Message => {
                    if !matches!(b.as_str(), "system" | "user" | "assistant") {
                        return Err(format!("(line {line}): {INVALID_ROLE}"));
                    }
                    role = b.clone();
                }
                St::Comment | St::Nil => {}
                St::Value => {
                    let trimmed = b.trim().to_string();
                    match unquote(&trimmed) {
                        Some(s) if !r.is_some_and(is_space) => {
                            let mut s = s.to_string();
                            if !role.is_empty() {
                                s = format!("{role}: {s}");
                                role.clear();
                            }
                            cmd.args = s;
                            cmds.push(cmd.clone());
                        }
                        _ => {
                            if let Some(r) = r {
                                b.push(r);
                            }
                            continue;
                        }
                    }
                }
            }
            b.clear();
            curr = next;
        }
        if let Some(r) = r {
            if !r.is_control() {
                b.push(r);
            }
        }
    }

    match curr {
        St::Comment | St::Nil => {}
        St::Value => {
            let trimmed = b.trim().to_string();
            let Some(s) = unquote(&trimmed) else {
                return Err("unexpected EOF".into());
            };
            let mut s = s.to_string();
            if !role.is_empty() {
                s = format!("{role}: {s}");
            }
            cmd.args = s;
            cmds.push(cmd);
        }
        _ => return Err("unexpected EOF".into()),
    }

    if cmds.iter().any(|c| c.name == "model") {
        Ok(cmds)
    } else {
        Err("no FROM line".into())
    }
}

/// A create request plus the local files it needs uploaded first.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// The request, without `files`/`adapters`/`draft_files` (filled after upload).
    pub req: CreateRequest,
    /// Model weight/config files: absolute path → `sha256:<hex>`.
    pub files: BTreeMap<PathBuf, String>,
    /// Adapter files.
    pub adapters: BTreeMap<PathBuf, String>,
    /// Draft model files.
    pub draft_files: BTreeMap<PathBuf, String>,
    /// `warning: ...` lines to print.
    pub warnings: Vec<String>,
}

/// Convert parsed commands into a [`Plan`]; relative paths resolve against `dir`.
pub fn plan(cmds: &[Command], dir: &Path) -> Result<Plan, String> {
    let mut p = Plan::default();
    let mut params = Map::new();
    let mut messages = Vec::new();
    let mut licenses = Vec::new();
    let mut model_paths: Vec<PathBuf> = Vec::new();
    let mut draft_paths: Vec<PathBuf> = Vec::new();
    for c in cmds {
        match c.name.as_str() {
            "model" => {
                let path = expand_path(&c.args, dir)?;
                if !path.exists() {
                    p.req.from = c.args.clone();
                    continue;
                }
                reject_same_path(&path, &draft_paths)?;
                p.files.extend(file_digests(&path)?);
                model_paths.push(path);
            }
            "draft" => {
                let path = expand_path(&c.args, dir)?;
                let digests = file_digests(&path)?;
                reject_same_path(&path, &model_paths)?;
                p.draft_files.extend(digests);
                draft_paths.push(path);
            }
            "adapter" => {
                let path = expand_path(&c.args, dir)?;
                p.adapters = file_digests(&path)?;
            }
            "template" => p.req.template = c.args.clone(),
            "system" => p.req.system = c.args.clone(),
            "license" => licenses.push(Value::String(c.args.clone())),
            "renderer" => p.req.renderer = c.args.clone(),
            "parser" => p.req.parser = c.args.clone(),
            "requires" => {
                let v = c.args.strip_prefix('v').unwrap_or(&c.args);
                if !is_semver(v) {
                    return Err("requires must be a valid semver (e.g. 0.14.0)".into());
                }
                p.req.requires = v.to_string();
            }
            "message" => {
                let (role, content) = c.args.split_once(": ").unwrap_or((&c.args, ""));
                messages.push(Message {
                    role: role.to_string(),
                    content: content.to_string(),
                    ..Default::default()
                });
            }
            name if DEPRECATED_PARAMETERS.contains(&name) => {
                p.warnings
                    .push(format!("warning: parameter {name} is deprecated"));
            }
            name => {
                let v = format_param(name, std::slice::from_ref(&c.args)).map_err(|e| e.0)?;
                merge_param(&mut params, name, v);
            }
        }
    }
    p.req.parameters = params;
    p.req.messages = messages;
    if !licenses.is_empty() {
        p.req.license = Some(Value::Array(licenses));
    }
    Ok(p)
}

/// Upstream accepts `MAJOR[.MINOR[.PATCH]][-pre][+build]` (golang.org/x/mod/semver).
fn is_semver(v: &str) -> bool {
    let (core, _build) = v.split_once('+').unwrap_or((v, ""));
    let (core, pre) = match core.split_once('-') {
        Some((c, p)) => (c, Some(p)),
        None => (core, None),
    };
    let parts: Vec<&str> = core.split('.').collect();
    let num_ok = |s: &&str| {
        !s.is_empty()
            && s.bytes().all(|b| b.is_ascii_digit())
            && (s.len() == 1 || !s.starts_with('0'))
    };
    if parts.is_empty() || parts.len() > 3 || !parts.iter().all(num_ok) {
        return false;
    }
    if pre.is_some() && parts.len() != 3 {
        return false;
    }
    pre.is_none_or(|p| {
        !p.is_empty()
            && p.split('.').all(|id| {
                !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            })
    })
}

fn reject_same_path(path: &Path, others: &[PathBuf]) -> Result<(), String> {
    let canon = |p: &Path| std::fs::canonicalize(p).map_err(|e| e.to_string());
    let me = canon(path)?;
    for o in others {
        if canon(o)? == me {
            return Err(format!(
                "DRAFT must not reference the same local path as FROM: {}",
                path.display()
            ));
        }
    }
    Ok(())
}

/// Resolve `~`, `~user`, absolute and `dir`-relative paths (upstream `expandPath`).
pub fn expand_path(path: &str, dir: &Path) -> Result<PathBuf, String> {
    let p = if path.starts_with('/') || path.starts_with('\\') || Path::new(path).is_absolute() {
        PathBuf::from(path)
    } else if let Some(rest) = path.strip_prefix('~') {
        if rest.is_empty() || rest.starts_with('/') {
            let home = std::env::var_os("HOME")
                .ok_or_else(|| "failed to get current user: $HOME is not defined".to_string())?;
            PathBuf::from(home).join(rest.trim_start_matches('/'))
        } else {
            let (user, tail) = rest.split_once('/').unwrap_or((rest, ""));
            let home = user_home(user)
                .ok_or_else(|| format!("failed to find user '{user}': unknown user {user}"))?;
            home.join(tail)
        }
    } else {
        dir.join(path)
    };
    Ok(absolute(&p))
}

fn user_home(user: &str) -> Option<PathBuf> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() > 5 && f[0] == user).then(|| PathBuf::from(f[5]))
    })
}

fn absolute(p: &Path) -> PathBuf {
    let joined = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(p)
    };
    // Lexically clean `.` and `..` like Go's filepath.Abs.
    let mut out = PathBuf::new();
    for c in joined.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// `sha256:<hex>` of a file's contents.
pub fn digest_file(path: &Path) -> Result<String, String> {
    let mut f = std::fs::File::open(path).map_err(|e| format!("open {}: {e}", path.display()))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    let hex: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("sha256:{hex}"))
}

fn file_digests(path: &Path) -> Result<BTreeMap<PathBuf, String>, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("stat {}: {e}", path.display()))?;
    let files = if meta.is_dir() {
        files_for_model(path)?
    } else {
        vec![path.to_path_buf()]
    };
    files
        .into_iter()
        .map(|f| {
            let real = std::fs::canonicalize(&f).map_err(|e| e.to_string())?;
            digest_file(&real).map(|d| (f, d))
        })
        .collect()
}

#[derive(PartialEq)]
enum Sniff {
    Zip,
    Text,
    Binary,
}

fn sniff(path: &Path) -> Sniff {
    let mut head = [0u8; 512];
    let n = std::fs::File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .unwrap_or(0);
    let head = &head[..n];
    if head.starts_with(b"PK\x03\x04") {
        Sniff::Zip
    } else if head
        .iter()
        .all(|b| *b >= 0x20 || matches!(b, b'\t' | b'\n' | b'\r' | 0x0c | 0x1b))
    {
        Sniff::Text
    } else {
        Sniff::Binary
    }
}

/// Go `filepath.Glob` for `dir/[sub/]pattern` where a single `*` wildcard may appear in
/// each segment (`**` behaves as `*`, as in Go).
fn glob(dir: &Path, pattern: &str) -> Vec<PathBuf> {
    let mut current = vec![dir.to_path_buf()];
    for seg in pattern.split('/') {
        let mut next = Vec::new();
        for d in &current {
            let Ok(rd) = std::fs::read_dir(d) else {
                continue;
            };
            let mut names: Vec<String> = rd
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|n| wildcard(seg, n))
                .collect();
            names.sort();
            next.extend(names.into_iter().map(|n| d.join(n)));
        }
        current = next;
    }
    current
}

fn wildcard(pattern: &str, name: &str) -> bool {
    let pattern = pattern.replace("**", "*");
    match pattern.split_once('*') {
        None => pattern == name,
        Some((pre, post)) => {
            name.len() >= pre.len() + post.len() && name.starts_with(pre) && name.ends_with(post)
        }
    }
}

fn files_for_model(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let typed = |pattern: &str, want: Sniff| -> Option<Vec<PathBuf>> {
        let m = glob(dir, pattern);
        (!m.is_empty() && m.iter().all(|f| sniff(f) == want)).then_some(m)
    };
    let mut files = Vec::new();
    let st = glob(dir, "model*.safetensors");
    if !st.is_empty() {
        files.extend(st);
        files.extend(glob(dir, "*/model*.safetensors"));
    } else if let Some(m) = Some(glob(dir, "consolidated*.safetensors")).filter(|m| !m.is_empty()) {
        files.extend(m);
    } else if let Some(m) = typed("pytorch_model*.bin", Sniff::Zip) {
        files.extend(m);
    } else if let Some(m) = typed("consolidated*.pth", Sniff::Zip) {
        files.extend(m);
    } else if let Some(m) = typed("*.gguf", Sniff::Binary) {
        files.extend(m);
    } else if let Some(m) = typed("*.bin", Sniff::Binary) {
        files.extend(m);
    } else {
        return Err("no Modelfile or safetensors files found".into());
    }
    for pattern in ["*.json", "**/*.json", "chat_template.jinja"] {
        for f in glob(dir, pattern) {
            if sniff(&f) != Sniff::Text {
                return Err(format!(
                    "invalid content type: expected application/octet-stream for {}",
                    f.display()
                ));
            }
            files.push(f);
        }
    }
    if let Some(m) = typed("tokenizer.model", Sniff::Binary) {
        files.extend(m);
    } else if let Some(m) = typed("**/tokenizer.model", Sniff::Text) {
        files.extend(m);
    }
    Ok(files)
}

/// The names files get in the request: base names, or paths relative to the files' common
/// directory when there are several (upstream `createRequestFileNames`).
pub fn request_file_names(files: &BTreeMap<PathBuf, String>) -> BTreeMap<PathBuf, String> {
    let root = common_root(files.keys());
    files
        .keys()
        .map(|f| {
            let base = f
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let name = root
                .as_ref()
                .and_then(|r| f.strip_prefix(r).ok())
                .map(|rel| rel.to_string_lossy().replace('\\', "/"))
                .filter(|rel| !rel.is_empty() && rel != "." && !rel.starts_with(".."))
                .unwrap_or(base);
            (f.clone(), name)
        })
        .collect()
}

fn common_root<'a>(files: impl Iterator<Item = &'a PathBuf>) -> Option<PathBuf> {
    let dirs: Vec<PathBuf> = files
        .map(|f| {
            absolute(f)
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_default()
        })
        .collect();
    if dirs.len() < 2 {
        return None;
    }
    let mut root = dirs[0].clone();
    for d in &dirs[1..] {
        while !d.starts_with(&root) {
            if !root.pop() {
                return None;
            }
        }
    }
    Some(root)
}

/// Build the final `files`/`adapters` maps: request name → digest.
pub fn named(files: &BTreeMap<PathBuf, String>) -> Map<String, Value> {
    let names = request_file_names(files);
    files
        .iter()
        .map(|(p, d)| (names[p].clone(), Value::String(d.clone())))
        .collect()
}

#[cfg(test)]
mod tests;
