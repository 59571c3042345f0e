//! `create`'s side of a Modelfile (upstream `Modelfile.CreateRequest`): the grammar, parameter
//! typing and validation are [`ollmlx_store::modelfile`]'s; this resolves the local files that
//! `FROM`, `ADAPTER` and `DRAFT` point at relative to the Modelfile, digests them, and builds
//! the `/api/create` request whose `files`/`adapters` are filled once they are uploaded.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use ollmlx_store::modelfile::Modelfile;
use ollmlx_wire::ollama::{CreateRequest, Message};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

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

/// Convert a parsed Modelfile into a [`Plan`]; relative paths resolve against `dir`.
pub fn plan(modelfile: &Modelfile, dir: &Path) -> Result<Plan, String> {
    let r = modelfile.to_request().map_err(|e| e.to_string())?;
    let mut p = Plan::default();
    let mut model_paths: Vec<PathBuf> = Vec::new();
    for from in &r.from {
        let path = expand_path(from, dir)?;
        if !path.exists() {
            p.req.from = from.clone();
            continue;
        }
        p.files.extend(file_digests(&path)?);
        model_paths.push(path);
    }
    let mut draft_name = None;
    for draft in &r.drafts {
        let path = expand_path(draft, dir)?;
        if !path.exists() {
            // ollmlx: `DRAFT <model name>` (no such file) names an installed model, stored as
            // the `draft` parameter and resolved when generating.
            draft_name = Some(draft.clone());
            continue;
        }
        let digests = file_digests(&path)?;
        reject_same_path(&path, &model_paths)?;
        p.draft_files.extend(digests);
    }
    for adapter in &r.adapters {
        p.adapters = file_digests(&expand_path(adapter, dir)?)?;
    }
    p.req.template = r.template.unwrap_or_default();
    p.req.system = r.system.unwrap_or_default();
    p.req.renderer = r.renderer.unwrap_or_default();
    p.req.parser = r.parser.unwrap_or_default();
    p.req.requires = r.requires.unwrap_or_default();
    if !r.license.is_empty() {
        p.req.license = Some(Value::Array(
            r.license.into_iter().map(Value::String).collect(),
        ));
    }
    p.req.messages = r
        .messages
        .into_iter()
        .map(|(role, content)| Message {
            role,
            content,
            ..Default::default()
        })
        .collect();
    p.req.parameters = r.parameters;
    if let Some(name) = draft_name {
        p.req.parameters.insert("draft".into(), Value::String(name));
    }
    p.warnings = r
        .deprecated
        .iter()
        .map(|name| format!("warning: parameter {name} is deprecated"))
        .collect();
    Ok(p)
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
    } else if let Some(m) = Some(glob(dir, "adapters.safetensors")).filter(|m| !m.is_empty()) {
        // An mlx-lm LoRA adapter directory (ADAPTER): its adapter_config.json comes with the
        // *.json files below. (ollmlx addition: the MLX engine applies these adapters.)
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
