//! A resident model: what the engine keeps loaded per model (weights, tokenizer, templates,
//! the live KV cache, the prefix cache, an optional draft model) and how it is loaded.
//! Sits under [`crate::engine`], which decides when to load and evict.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use ollmlx_models::{KvCache, KvQuant, LoadOptions, Model};

use crate::engine::{LoadedInfo, ModelRef};
use crate::error::EngineError;
use crate::prefix_cache::{PrefixCache, PrefixCounters, PrefixKey};
use crate::template::{ChatTemplate, FALLBACK_TEMPLATE};
use crate::tokenizer::Tokenizer;

/// A resident model and its reusable state.
pub(crate) struct Resident {
    pub(crate) info: LoadedInfo,
    pub(crate) model: Box<dyn Model>,
    pub(crate) tokenizer: Tokenizer,
    pub(crate) template: ChatTemplate,
    /// Whether the chat template supports `<think>` reasoning.
    pub(crate) thinks: bool,
    /// How the chat template's model writes tool calls, if it renders tools.
    pub(crate) tool_format: Option<crate::tools::ToolFormat>,
    /// Caches and the tokens whose keys/values they hold (prompt-prefix reuse).
    pub(crate) caches: Vec<KvCache>,
    pub(crate) cached_tokens: Vec<u32>,
    /// KV snapshots of earlier requests/conversations of this model, and their key.
    pub(crate) prefix: PrefixCache,
    pub(crate) prefix_key: PrefixKey,
    pub(crate) prefix_counters: Arc<PrefixCounters>,
    /// Prefill chunk (tokens).
    pub(crate) prefill_chunk: usize,
    /// KV-cache quantization.
    pub(crate) kv_quant: Option<KvQuant>,
    /// The draft model for speculative decoding last asked for, by weights path.
    pub(crate) draft: Option<(PathBuf, crate::speculative::Draft)>,
    /// The prompt-lookup draft of requests that name no draft model, when the engine has
    /// prompt lookup on (`EngineConfig::prompt_lookup`).
    pub(crate) lookup: Option<crate::speculative::Draft>,
    pub(crate) last_used: Instant,
    pub(crate) expires: Option<Instant>,
}

impl Resident {
    /// Empty caches with the configured KV quantization.
    pub(crate) fn fresh_caches(&self) -> Vec<KvCache> {
        let mut caches = self.model.new_caches();
        if self.kv_quant.is_some() {
            caches.iter_mut().for_each(|c| c.set_quant(self.kv_quant));
        }
        caches
    }

    /// A finished request's KV state becomes the live cache (the next request of this model
    /// continues from it) and a prefix snapshot (a cheap copy-on-write clone).
    pub(crate) fn remember(&mut self, cached: Vec<u32>, caches: Vec<KvCache>) {
        if !cached.is_empty() && !caches.is_empty() {
            self.prefix
                .insert(self.prefix_key.clone(), cached.clone(), caches.clone());
        }
        self.caches = caches;
        self.cached_tokens = cached;
    }
}

/// What a new resident model takes from the engine's configuration.
pub(crate) struct ResidentSettings {
    pub(crate) prefill_chunk: usize,
    pub(crate) kv_quant: Option<KvQuant>,
    pub(crate) kv_type: String,
    pub(crate) prefix_cache_bytes: u64,
    pub(crate) counters: Arc<PrefixCounters>,
}

pub(crate) fn load_resident(
    model: &ModelRef,
    opts: LoadOptions,
    settings: &ResidentSettings,
) -> Result<Resident, EngineError> {
    let loaded = ollmlx_models::load(&model.path, opts)?;
    let (tokenizer, template_src) = match &loaded.gguf {
        Some(file) => {
            let meta = ollmlx_models::GgufMeta::new(file);
            (
                Tokenizer::from_gguf(&meta)?,
                meta.string("tokenizer.chat_template")?,
            )
        }
        None => {
            let tok = Tokenizer::from_dir(&model.path, loaded.hf_config.as_ref())?;
            (tok, hf_chat_template(&model.path))
        }
    };
    drop(loaded.gguf);
    let template_src = template_src.as_deref().unwrap_or(FALLBACK_TEMPLATE);
    let template = ChatTemplate::new(template_src)?;
    let template_hash = {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        template_src.hash(&mut h);
        h.finish()
    };
    let thinks = crate::thinking::template_thinks(template_src);
    let tool_format = crate::tools::ToolFormat::detect(template_src);
    let model_box = loaded.model;
    let info = LoadedInfo {
        name: model.name.clone(),
        path: model.path.clone(),
        size: disk_size(&model.path),
        expires_at: None,
        context_length: model_box.info().context_length.max(0) as u64,
        architecture: model_box.info().architecture.clone(),
    };
    let prefix_key = PrefixKey {
        model: format!("{}:{}", model.path.display(), disk_size(&model.path)),
        adapter: None,
        template: template_hash,
        kv_type: settings.kv_type.clone(),
    };
    let mut caches = model_box.new_caches();
    caches
        .iter_mut()
        .for_each(|c| c.set_quant(settings.kv_quant));
    Ok(Resident {
        info,
        caches,
        prefix: PrefixCache::new(settings.prefix_cache_bytes, settings.counters.clone()),
        prefix_key,
        prefix_counters: settings.counters.clone(),
        prefill_chunk: settings.prefill_chunk,
        kv_quant: settings.kv_quant,
        model: model_box,
        tokenizer,
        template,
        thinks,
        tool_format,
        cached_tokens: Vec::new(),
        draft: None,
        lookup: None,
        last_used: Instant::now(),
        expires: None,
    })
}

/// Make `d` the draft model of `m` (loaded once, kept until another draft is asked for).
/// Each request starts the draft afresh (empty cache, first-round draft length), so a seeded
/// request draws the same random numbers whatever ran before it.
/// `max_k` bounds the draft length (`draft_num_predict`).
pub(crate) fn load_draft(
    m: &mut Resident,
    d: &ModelRef,
    opts: LoadOptions,
    max_k: Option<usize>,
) -> Result<(), EngineError> {
    let bound = crate::speculative::draft_bound(max_k);
    if let Some((path, draft)) = m.draft.as_mut() {
        if *path == d.path {
            draft.max_k = bound;
            draft.restart();
            return Ok(());
        }
    }
    m.draft = None;
    let loaded = ollmlx_models::load(&d.path, opts)?;
    if loaded.model.as_encoder().is_some() {
        return Err(EngineError::InvalidRequest(format!(
            "draft model \"{}\" is an embedding model",
            d.name
        )));
    }
    let draft = crate::speculative::Draft::new(loaded.model, m.model.info())?.with_max_k(bound);
    m.draft = Some((d.path.clone(), draft));
    Ok(())
}

/// Start `m`'s prompt-lookup draft afresh for a request that names no draft model (made on
/// first use); `max_k` bounds its length (`draft_num_predict`).
pub(crate) fn start_lookup(m: &mut Resident, max_k: Option<usize>) {
    let bound = crate::speculative::draft_bound(max_k);
    let draft = m
        .lookup
        .get_or_insert_with(crate::speculative::Draft::prompt_lookup);
    draft.max_k = bound;
    draft.restart();
}

/// `chat_template` from `tokenizer_config.json`, or a separate `chat_template.jinja`.
pub(crate) fn hf_chat_template(dir: &Path) -> Option<String> {
    if let Ok(s) = std::fs::read_to_string(dir.join("chat_template.jinja")) {
        return Some(s);
    }
    let tc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("tokenizer_config.json")).ok()?)
            .ok()?;
    match &tc["chat_template"] {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Array(list) => list
            .iter()
            .find(|t| t["name"] == "default")
            .and_then(|t| t["template"].as_str())
            .map(str::to_string),
        _ => None,
    }
}

/// Bytes of a model's weights on disk: the file, or the files directly in the directory (0 when
/// unreadable). What `/api/ps` and the engine's load report as the model's size on disk.
pub fn disk_size(path: &Path) -> u64 {
    if path.is_dir() {
        std::fs::read_dir(path)
            .map(|rd| {
                rd.filter_map(|e| e.ok()?.metadata().ok())
                    .map(|m| m.len())
                    .sum()
            })
            .unwrap_or(0)
    } else {
        std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
    }
}
