//! What the store knows about one model: its layers resolved to paths and texts
//! ([`ModelRecord`], upstream's `server.Model`), and the `/api/tags` / `/api/show` answers built
//! from it (details, capabilities, `model_info`, `parameters`, generated Modelfile).

use std::path::PathBuf;

use ollmlx_wire::ollama as wire;
use ollmlx_wire::time::Timestamp;
use serde_json::{Map, Value};

use crate::error::{Result, StoreError};
use crate::gguf::{human_number, GgufFile};
use crate::gofmt::{go_sharp_v, go_v};
use crate::manifest::*;
use crate::modelfile::{Command, Modelfile};
use crate::safetensors;
use crate::store::{Store, StoredManifest};

/// Upstream's default template when a model has no TEMPLATE layer.
pub const DEFAULT_TEMPLATE: &str = "{{ .Prompt }}";

/// A stored model with its layers resolved (no weights loaded).
#[derive(Debug, Clone)]
pub struct ModelRecord {
    /// The manifest as read.
    pub stored: StoredManifest,
    /// The config blob.
    pub config: ConfigV2,
    /// GGUF weights (`.model` layer).
    pub model_path: Option<PathBuf>,
    /// `from` of the model layer.
    pub parent_model: String,
    /// Adapter blobs.
    pub adapter_paths: Vec<PathBuf>,
    /// Projector blobs.
    pub projector_paths: Vec<PathBuf>,
    /// Draft model blob.
    pub draft_path: Option<PathBuf>,
    /// MLX tensor blobs: `(file name, path)`.
    pub tensor_files: Vec<(String, PathBuf)>,
    /// MLX config files (`config.json`, `tokenizer.json`, ...): `(file name, path)`.
    pub json_files: Vec<(String, PathBuf)>,
    /// TEMPLATE layer text, when there is one.
    pub template: Option<String>,
    /// SYSTEM layer text.
    pub system: String,
    /// LICENSE layers.
    pub license: Vec<String>,
    /// PARAMS layer, as stored (keys sorted by Go's encoder).
    pub options: Map<String, Value>,
    /// MESSAGES layer.
    pub messages: Vec<wire::Message>,
    /// Header of the GGUF weights (arrays skipped), when readable.
    pub gguf: Option<GgufFile>,
}

impl ModelRecord {
    /// Resolve every layer of `stored` (upstream's `GetModel`).
    pub fn load(store: &Store, stored: StoredManifest) -> Result<Self> {
        let config = store.read_config(&stored.manifest)?;
        let blobs = store.blobs();
        let mut r = ModelRecord {
            config,
            model_path: None,
            parent_model: String::new(),
            adapter_paths: vec![],
            projector_paths: vec![],
            draft_path: None,
            tensor_files: vec![],
            json_files: vec![],
            template: None,
            system: String::new(),
            license: vec![],
            options: Map::new(),
            messages: vec![],
            gguf: None,
            stored: stored.clone(),
        };
        let text = |d: &str| -> Result<String> {
            Ok(String::from_utf8_lossy(&blobs.read(d)?).into_owned())
        };
        for l in &stored.manifest.layers {
            let path = blobs.path(&l.digest)?;
            match l.media_type.as_str() {
                MEDIA_TYPE_MODEL => {
                    r.model_path = Some(path);
                    r.parent_model = l.from.clone();
                }
                MEDIA_TYPE_DRAFT => r.draft_path = Some(path),
                MEDIA_TYPE_ADAPTER => r.adapter_paths.push(path),
                MEDIA_TYPE_PROJECTOR => r.projector_paths.push(path),
                MEDIA_TYPE_TENSOR => r.tensor_files.push((l.name.clone(), path)),
                MEDIA_TYPE_JSON => r.json_files.push((l.name.clone(), path)),
                MEDIA_TYPE_TEMPLATE | MEDIA_TYPE_PROMPT => r.template = Some(text(&l.digest)?),
                MEDIA_TYPE_SYSTEM => r.system = text(&l.digest)?,
                MEDIA_TYPE_LICENSE => r.license.push(text(&l.digest)?),
                MEDIA_TYPE_PARAMS => {
                    r.options = serde_json::from_slice(&blobs.read(&l.digest)?)
                        .map_err(|e| StoreError::json("params layer", e))?;
                }
                MEDIA_TYPE_MESSAGES => {
                    r.messages = serde_json::from_slice(&blobs.read(&l.digest)?)
                        .map_err(|e| StoreError::json("messages layer", e))?;
                }
                _ => {}
            }
        }
        if r.is_gguf() {
            if let Some(p) = &r.model_path {
                match GgufFile::open(p, Some(0)) {
                    Ok(g) => r.gguf = Some(g),
                    Err(e) => {
                        tracing::warn!(path = %p.display(), error = %e, "couldn't open model file")
                    }
                }
            }
        }
        Ok(r)
    }

    /// `model_format` is `gguf` or empty.
    pub fn is_gguf(&self) -> bool {
        matches!(self.config.model_format.as_str(), "" | "gguf")
    }

    /// `model_format` is `safetensors` (an MLX model).
    pub fn is_mlx(&self) -> bool {
        self.config.is_mlx()
    }

    /// The GGUF chat template, if any.
    pub fn chat_template(&self) -> &str {
        self.gguf.as_ref().map_or("", GgufFile::chat_template)
    }

    /// Whether rendering goes through Ollama (renderer/parser/Go TEMPLATE) rather than the
    /// model's own chat template (upstream's `usesOllamaRenderedChat`, harmony aside).
    pub fn uses_ollama_rendered_chat(&self) -> bool {
        !self.config.renderer.is_empty()
            || !self.config.parser.is_empty()
            || self.template.is_some()
    }

    /// The template `/api/show` reports.
    pub fn show_template(&self) -> String {
        if !self.is_mlx() && !self.uses_ollama_rendered_chat() && !self.chat_template().is_empty() {
            return self.chat_template().to_string();
        }
        self.template
            .clone()
            .unwrap_or_else(|| DEFAULT_TEMPLATE.to_string())
    }

    /// Capabilities as `/api/show` and generation checks see them.
    pub fn capabilities(&self) -> Vec<String> {
        let mut caps: Vec<String> = Vec::new();
        let mut add = |c: &str| {
            if !c.is_empty() && !caps.iter().any(|x| x == c) {
                caps.push(c.to_string());
            }
        };
        for c in &self.config.capabilities {
            add(c);
        }
        if let (Some(g), true) = (&self.gguf, self.is_gguf()) {
            if !self.uses_ollama_rendered_chat() {
                let ct = g.chat_template();
                if ct.contains("tools") || ct.contains("tool_call") {
                    add("tools");
                }
                if chat_template_thinks(ct) {
                    add("thinking");
                }
            }
            if g.arch_get("pooling_type").is_some() {
                add("embedding");
            } else {
                add("completion");
            }
            if g.arch_get("vision.block_count").is_some() {
                add("vision");
            }
            if g.arch_get("audio.block_count").is_some() {
                add("audio");
            }
        }
        if !self.projector_paths.is_empty() {
            add("vision");
        }
        if let Some(t) = &self.template {
            for c in go_template_capabilities(t) {
                add(c);
            }
        }
        if matches!(self.config.model_family.as_str(), "gptoss" | "gpt-oss") {
            add("thinking");
        }
        caps
    }

    /// Details as `/api/show` reports them (no context/embedding length there).
    pub fn details(&self) -> wire::ModelDetails {
        let mut d = wire::ModelDetails {
            parent_model: self.parent_model.clone(),
            format: self.config.model_format.clone(),
            family: self.config.model_family.clone(),
            families: self.config.model_families.clone(),
            parameter_size: self.config.model_type.clone(),
            quantization_level: self.config.file_type.clone(),
            context_length: 0,
            embedding_length: 0,
        };
        if let Some(g) = &self.gguf {
            if is_unknown_quant(&d.quantization_level) && !is_unknown_quant(g.file_type()) {
                d.quantization_level = g.file_type().to_string();
            }
        }
        d
    }

    /// The generated Modelfile body (upstream's `Model.String`), `options` merged in.
    pub fn modelfile_commands(&self, system: &str, options: &Map<String, Value>) -> Modelfile {
        let p = |p: &PathBuf| p.display().to_string();
        let mut c = vec![Command::new(
            "model",
            self.model_path.as_ref().map(p).unwrap_or_default(),
        )];
        c.extend(
            self.adapter_paths
                .iter()
                .map(|a| Command::new("adapter", p(a))),
        );
        if let Some(d) = &self.draft_path {
            c.push(Command::new("draft", p(d)));
        }
        c.extend(
            self.projector_paths
                .iter()
                .map(|a| Command::new("model", p(a))),
        );
        c.push(Command::new(
            "template",
            self.template.as_deref().unwrap_or(DEFAULT_TEMPLATE),
        ));
        if !system.is_empty() {
            c.push(Command::new("system", system));
        }
        if !self.config.renderer.is_empty() {
            c.push(Command::new("renderer", &self.config.renderer));
        }
        if !self.config.parser.is_empty() {
            c.push(Command::new("parser", &self.config.parser));
        }
        for (k, v) in options {
            match v {
                Value::Array(items) => c.extend(items.iter().map(|i| Command::new(k, go_v(i)))),
                v => c.push(Command::new(k, go_v(v))),
            }
        }
        c.extend(self.license.iter().map(|l| Command::new("license", l)));
        c.extend(
            self.messages
                .iter()
                .map(|m| Command::new("message", format!("{}: {}", m.role, m.content))),
        );
        Modelfile { commands: c }
    }

    /// The `/api/show` response (`req.model` already resolved to this record).
    pub fn show(&self, req: &wire::ShowRequest) -> Result<wire::ShowResponse> {
        let short = self.stored.name.display_shortest();
        let system = if req.system.is_empty() {
            self.system.clone()
        } else {
            req.system.clone()
        };
        let parameters = parameters_text(&self.options);
        let mut options = self.options.clone();
        if let Some(o) = &req.options {
            for (k, v) in o {
                options.insert(k.clone(), v.clone());
            }
        }
        let body = self.modelfile_commands(&system, &options).to_string();
        let mut modelfile = String::from("# Modelfile generated by \"ollama show\"\n");
        if self.is_mlx() {
            modelfile.push_str(&format!("FROM {short}\n"));
            if let Some((_, rest)) = body.split_once('\n') {
                modelfile.push_str(rest);
            }
        } else {
            modelfile.push_str("# To build a new Modelfile based on this, replace FROM with:\n");
            modelfile.push_str(&format!("# FROM {short}\n\n"));
            modelfile.push_str(&body);
        }
        let capabilities = self.capabilities();
        let mut resp = wire::ShowResponse {
            license: self.license.join("\n"),
            modelfile,
            parameters,
            template: self
                .template
                .clone()
                .unwrap_or_else(|| DEFAULT_TEMPLATE.into()),
            system,
            renderer: String::new(),
            parser: String::new(),
            details: self.details(),
            messages: self
                .messages
                .iter()
                .map(|m| wire::Message {
                    role: m.role.clone(),
                    content: m.content.clone(),
                    ..Default::default()
                })
                .collect(),
            remote_model: self.config.remote_model.clone(),
            remote_host: self.config.remote_host.clone(),
            model_info: Map::new(),
            projector_info: None,
            tensors: vec![],
            capabilities: capabilities.clone(),
            modified_at: Timestamp::from_system(self.stored.modified),
            requires: self.config.requires.clone(),
        };
        if !self.config.remote_host.is_empty() {
            let fam = &self.config.model_family;
            if !fam.is_empty() {
                let mut mi = Map::new();
                mi.insert("general.architecture".into(), fam.clone().into());
                if !self.config.base_name.is_empty() {
                    mi.insert(
                        "general.basename".into(),
                        self.config.base_name.clone().into(),
                    );
                }
                if self.config.context_length > 0 {
                    mi.insert(
                        format!("{fam}.context_length"),
                        self.config.context_length.into(),
                    );
                }
                if self.config.embedding_length > 0 {
                    mi.insert(
                        format!("{fam}.embedding_length"),
                        self.config.embedding_length.into(),
                    );
                }
                resp.model_info = safetensors::sort_map(mi);
            }
            if !self.config.remote_model.is_empty() {
                return Ok(resp);
            }
        }
        if self.is_mlx() && capabilities.iter().any(|c| c == "completion") {
            if let Some(mi) = self.safetensors_model_info() {
                if let Some(a) = mi.get("general.architecture").and_then(Value::as_str) {
                    if !a.is_empty() {
                        resp.details.family = a.to_string();
                    }
                }
                if let Some(n) = mi.get("general.parameter_count").and_then(Value::as_u64) {
                    if n > 0 {
                        resp.details.parameter_size = human_number(n);
                    }
                }
                resp.model_info = mi;
            }
            if req.verbose {
                resp.tensors = self.safetensors_tensors();
            }
            return Ok(resp);
        }
        if self.is_mlx() || capabilities.iter().any(|c| c == "image") {
            if req.verbose {
                resp.tensors = self.safetensors_tensors();
            }
            return Ok(resp);
        }
        let Some(path) = &self.model_path else {
            return Err(StoreError::io(
                "open model",
                std::io::Error::from(std::io::ErrorKind::NotFound),
            ));
        };
        let max = if req.verbose { None } else { Some(0) };
        let g = GgufFile::open(path, max)?;
        resp.template = self.show_template();
        if is_unknown_quant(&resp.details.quantization_level) && !is_unknown_quant(g.file_type()) {
            resp.details.quantization_level = g.file_type().to_string();
        }
        resp.model_info = g.model_info();
        resp.tensors = g
            .tensors
            .iter()
            .map(|t| wire::Tensor {
                name: t.name.clone(),
                kind: t.type_name().to_string(),
                shape: t.shape.clone(),
            })
            .collect();
        if let Some(p) = self.projector_paths.first() {
            resp.projector_info = Some(GgufFile::open(p, max)?.model_info());
        }
        Ok(resp)
    }

    fn safetensors_tensors(&self) -> Vec<wire::Tensor> {
        let mut v: Vec<wire::Tensor> = self
            .tensor_files
            .iter()
            .filter_map(|(n, p)| safetensors::read_tensor_headers(p, n))
            .flatten()
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    fn safetensors_model_info(&self) -> Option<Map<String, Value>> {
        let (_, p) = self.json_files.iter().find(|(n, _)| n == "config.json")?;
        let cfg: Value = serde_json::from_slice(&std::fs::read(p).ok()?).ok()?;
        let tensor_layers: Vec<&Layer> =
            self.stored.manifest.layers_of(MEDIA_TYPE_TENSOR).collect();
        let total: i64 = tensor_layers.iter().map(|l| l.size).sum();
        let exact: u64 = self
            .safetensors_tensors()
            .iter()
            .map(|t| t.shape.iter().product::<u64>())
            .sum();
        Some(safetensors::model_info_from_config(
            &cfg,
            total,
            tensor_layers.len() as i64,
            exact,
        ))
    }

    /// The `/api/tags` entry (upstream's `buildModelListSummary`).
    pub fn list_entry(&self) -> wire::ListModel {
        let short = self.stored.name.display_shortest();
        let mut details = wire::ModelDetails {
            parent_model: self.parent_model.clone(),
            format: self.config.model_format.clone(),
            family: self.config.model_family.clone(),
            families: self.config.model_families.clone(),
            parameter_size: self.config.model_type.clone(),
            quantization_level: self.config.file_type.clone(),
            context_length: u64::try_from(self.config.context_length).unwrap_or(0),
            embedding_length: u64::try_from(self.config.embedding_length).unwrap_or(0),
        };
        let mut caps: Vec<String> = Vec::new();
        let add = |caps: &mut Vec<String>, c: &str| {
            if !c.is_empty() && !caps.iter().any(|x| x == c) {
                caps.push(c.to_string());
            }
        };
        let remote = !self.config.remote_host.is_empty() || !self.config.remote_model.is_empty();
        if let (Some(g), false) = (&self.gguf, remote) {
            if g.arch_get("vision.block_count").is_some() {
                add(&mut caps, "vision");
            }
            if g.arch_get("audio.block_count").is_some() {
                add(&mut caps, "audio");
            }
            add(
                &mut caps,
                if g.arch_get("pooling_type").is_some() {
                    "embedding"
                } else {
                    "completion"
                },
            );
            if details.context_length == 0 {
                details.context_length = g.context_length();
            }
            if details.embedding_length == 0 {
                details.embedding_length = g.embedding_length();
            }
            if is_unknown_quant(&details.quantization_level) && !is_unknown_quant(g.file_type()) {
                details.quantization_level = g.file_type().to_string();
            }
        }
        for c in &self.config.capabilities {
            add(&mut caps, c);
        }
        let t = self.template.as_deref().unwrap_or(DEFAULT_TEMPLATE);
        let tcaps = go_template_capabilities(t);
        for c in tcaps.iter().filter(|c| **c != "thinking") {
            add(&mut caps, c);
        }
        if tcaps.contains(&"thinking")
            || matches!(self.config.model_family.as_str(), "gptoss" | "gpt-oss")
        {
            add(&mut caps, "thinking");
        }
        if !self.projector_paths.is_empty() {
            add(&mut caps, "vision");
        }
        wire::ListModel {
            name: short.clone(),
            model: short,
            remote_model: self.config.remote_model.clone(),
            remote_host: self.config.remote_host.clone(),
            modified_at: Timestamp::from_system(self.stored.modified),
            size: u64::try_from(self.stored.manifest.total_size()).unwrap_or(0),
            digest: self.stored.digest.clone(),
            details,
            capabilities: caps,
        }
    }
}

/// `quantization_level` that should be filled from the weights.
pub fn is_unknown_quant(q: &str) -> bool {
    q.is_empty() || q == "unknown"
}

/// Upstream's chat-template thinking heuristic.
pub fn chat_template_thinks(t: &str) -> bool {
    if t.contains("<think>") && t.contains("</think>") {
        return true;
    }
    (t.contains("content.split('</think>')") || t.contains("content.split(\"</think>\")"))
        && !t.contains("reasoning_content")
        && !t.contains("<SPECIAL_12>")
}

/// Capabilities a Go TEMPLATE implies: `.Tools` -> tools, `.Suffix` -> insert, `.Thinking`
/// inside a `range .Messages` -> thinking (an approximation of upstream's `InferTags`).
pub fn go_template_capabilities(t: &str) -> Vec<&'static str> {
    let mut fields: Vec<&str> = Vec::new();
    let mut rest = t;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let end = after.find("}}").unwrap_or(after.len());
        let action = &after[..end];
        let b = action.as_bytes();
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'.' {
                let s = i + 1;
                let mut e = s;
                while e < b.len() && (b[e].is_ascii_alphanumeric() || b[e] == b'_') {
                    e += 1;
                }
                if e > s {
                    fields.push(&action[s..e]);
                }
                i = e.max(i + 1);
            } else {
                i += 1;
            }
        }
        rest = &after[end..];
    }
    let has = |f: &str| fields.iter().any(|x| x.eq_ignore_ascii_case(f));
    let mut caps = Vec::new();
    if has("tools") {
        caps.push("tools");
    }
    if has("suffix") {
        caps.push("insert");
    }
    if has("thinking") && has("messages") {
        caps.push("thinking");
    }
    caps
}

/// The `parameters` text block: `%-30s %#v` per option, one line per list element.
pub fn parameters_text(options: &Map<String, Value>) -> String {
    let mut lines = Vec::new();
    for (k, v) in options {
        match v {
            Value::Array(items) => {
                lines.extend(items.iter().map(|i| format!("{k:<30} {}", go_sharp_v(i))))
            }
            v => lines.push(format!("{k:<30} {}", go_sharp_v(v))),
        }
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parameters_text_pads_keys_and_uses_go_syntax() {
        let o: Map<String, Value> = serde_json::from_value(json!({
            "num_ctx": 4096, "stop": ["<|im_end|>", "x"], "temperature": 0.7
        }))
        .unwrap();
        assert_eq!(
            parameters_text(&o),
            "num_ctx                        4096\n\
             stop                           \"<|im_end|>\"\n\
             stop                           \"x\"\n\
             temperature                    0.7"
        );
    }

    #[test]
    fn go_template_capabilities_from_fields() {
        assert_eq!(
            go_template_capabilities("{{ .Prompt }}"),
            Vec::<&str>::new()
        );
        assert_eq!(
            go_template_capabilities("{{ if .Tools }}x{{ end }}{{ .Suffix }}"),
            vec!["tools", "insert"]
        );
        assert_eq!(
            go_template_capabilities(
                "{{ range .Messages }}<think>{{ .Thinking }}</think>{{ end }}"
            ),
            vec!["thinking"]
        );
        assert_eq!(
            go_template_capabilities("Tools: .Tools outside actions"),
            Vec::<&str>::new()
        );
    }

    #[test]
    fn chat_template_thinking_heuristic() {
        assert!(chat_template_thinks("<think>\n</think>"));
        assert!(chat_template_thinks("{{ content.split('</think>')[-1] }}"));
        assert!(!chat_template_thinks(
            "{{ content.split('</think>') }} reasoning_content"
        ));
        assert!(!chat_template_thinks("plain"));
    }
}
