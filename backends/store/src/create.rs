//! `POST /api/create`: build a manifest from uploaded GGUF blobs (`files`) or an existing model
//! (`from`), plus template/system/parameters/messages/license layers, reporting upstream's
//! progress statuses (`parsing GGUF`, `using existing layer sha256:…`, `creating new layer
//! sha256:…`, `writing manifest`, `success`).
//!
//! Called by [`crate::StoreBackend::manage`] on the blocking pool. [`validate`] runs before the
//! stream starts (its errors are plain HTTP 400s); [`create`] reports through a callback, and its
//! errors travel mid-stream. Safetensors/MLX imports (with optional quantization) live in
//! [`safetensors`]; GGUF import conversion (K-quants) and quantization in [`gguf`]. Not done
//! here (yet): split GGUF merging, chat-template autodetection, pulling a missing `from` model.

use std::collections::BTreeMap;
use std::io::Read;

use ollmlx_wire::ollama::{CreateRequest, ProgressResponse};
use serde_json::{Map, Value};

use crate::error::{Result, StoreError};
use crate::gguf::{human_number, GgufFile};
use crate::info::ModelRecord;
use crate::manifest::*;
use crate::name::Name;
use crate::store::Store;

pub mod adapter;
pub mod gguf;
pub mod safetensors;

fn bad(msg: impl Into<String>) -> StoreError {
    StoreError::BadRequest(msg.into())
}

/// Go's `io/fs.ValidPath`: relative, slash-separated, no empty, `.` or `..` elements.
pub fn valid_fs_path(p: &str) -> bool {
    if p == "." {
        return true;
    }
    !p.is_empty() && p.split('/').all(|e| !e.is_empty() && e != "." && e != "..")
}

fn digest_map(m: &Map<String, Value>) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for (k, v) in m {
        if !valid_fs_path(k) {
            return Err(bad("file path must be relative"));
        }
        let d = v.as_str().unwrap_or("");
        if d.is_empty() {
            return Err(StoreError::InvalidDigest);
        }
        out.insert(k.clone(), d.to_string());
    }
    Ok(out)
}

/// Checks upstream makes before streaming; returns the (canonicalized) target name.
pub fn validate(store: &Store, r: &CreateRequest) -> Result<Name> {
    digest_map(&r.files)?;
    digest_map(&r.draft_files)?;
    if !r.draft_quantize.is_empty() && r.draft_files.is_empty() {
        return Err(bad("--draft-quantize requires a DRAFT model"));
    }
    for v in r.adapters.values() {
        if v.as_str().unwrap_or("").is_empty() {
            return Err(StoreError::InvalidDigest);
        }
    }
    store
        .resolve(r.model_name())
        .ok_or_else(|| bad("invalid model name"))
}

/// A layer being assembled, with the status line create reports for it.
struct NewLayer {
    layer: Layer,
    status: String,
    gguf: Option<GgufFile>,
}

fn existing_layer(store: &Store, digest: &str, media_type: &str, from: &str) -> Result<NewLayer> {
    let size = store.blobs().size(digest)?;
    crate::blobs::touch(&store.blobs().path(digest)?);
    Ok(NewLayer {
        layer: Layer {
            media_type: media_type.into(),
            digest: digest.into(),
            size: size as i64,
            from: from.into(),
            name: String::new(),
        },
        status: format!("using existing layer {digest}"),
        gguf: None,
    })
}

fn bytes_layer(store: &Store, data: &[u8], media_type: &str) -> Result<NewLayer> {
    let (digest, created) = store.blobs().put_bytes(data)?;
    let verb = if created {
        "creating new layer"
    } else {
        "using existing layer"
    };
    Ok(NewLayer {
        status: format!("{verb} {digest}"),
        layer: Layer {
            media_type: media_type.into(),
            digest,
            size: data.len() as i64,
            ..Default::default()
        },
        gguf: None,
    })
}

fn sniff_gguf(store: &Store, digest: &str) -> bool {
    let Ok(p) = store.blobs().path(digest) else {
        return false;
    };
    let mut b = [0u8; 4];
    std::fs::File::open(p)
        .and_then(|mut f| f.read_exact(&mut b))
        .is_ok()
        && GgufFile::is_gguf(&b)
}

/// Layers for uploaded files (upstream's `convertModelFromFiles`, GGUF only).
fn layers_from_files(
    store: &Store,
    files: &BTreeMap<String, String>,
    is_adapter: bool,
    forced_media_type: Option<&str>,
    progress: &mut dyn FnMut(ProgressResponse),
) -> Result<Vec<NewLayer>> {
    let kind = files.iter().find_map(|(f, d)| {
        if f.ends_with(".safetensors") {
            Some("safetensors")
        } else if f.ends_with(".gguf") || sniff_gguf(store, d) {
            Some("gguf")
        } else {
            None
        }
    });
    match kind {
        Some("safetensors") => Err(StoreError::Unsupported(
            "importing safetensors models is not supported yet".into(),
        )),
        Some(_) => {
            if files.is_empty() {
                return Err(bad("no files provided to convert"));
            }
            if files.len() > 1 && is_adapter {
                return Err(bad("only one adapter is currently supported"));
            }
            let mut out = Vec::new();
            for (file, digest) in files {
                progress(ProgressResponse::status("parsing GGUF"));
                let path = store.blobs().path(digest)?;
                if !sniff_gguf(store, digest) {
                    if !path.is_file() {
                        return Err(StoreError::io(
                            format!("open {}", path.display()),
                            std::io::Error::from(std::io::ErrorKind::NotFound),
                        ));
                    }
                    return Err(bad("supplied file was not in GGUF format"));
                }
                let g = GgufFile::open(&path, Some(0))?;
                let mt = match forced_media_type {
                    Some(m) => m,
                    None if g.kind() == "adapter" => MEDIA_TYPE_ADAPTER,
                    None if g.is_projector() => MEDIA_TYPE_PROJECTOR,
                    None => MEDIA_TYPE_MODEL,
                };
                let mut l = existing_layer(store, digest, mt, file)?;
                l.gguf = Some(g);
                out.push(l);
            }
            Ok(out)
        }
        None => Err(bad("unknown type")),
    }
}

/// Layers inherited from an existing model (upstream's `parseFromModel`): every layer,
/// `from` set to the base model's short name.
fn layers_from_model(store: &Store, from: &Name) -> Result<(Vec<NewLayer>, ConfigV2)> {
    let stored = store
        .read_manifest(from)?
        .ok_or_else(|| StoreError::ModelNotFound(from.display_shortest()))?;
    let rec = ModelRecord::load(store, stored)?;
    let short = from.display_shortest();
    let mut out = Vec::new();
    for src in &rec.stored.manifest.layers {
        let mut l = existing_layer(store, &src.digest, &src.media_type, &short)?;
        l.layer.name = src.name.clone();
        if matches!(
            src.media_type.as_str(),
            MEDIA_TYPE_MODEL | MEDIA_TYPE_PROJECTOR | MEDIA_TYPE_ADAPTER | MEDIA_TYPE_DRAFT
        ) {
            l.gguf = GgufFile::open(&store.blobs().path(&src.digest)?, Some(0)).ok();
        }
        out.push(l);
    }
    Ok((out, rec.config))
}

fn read_params(store: &Store, layers: &[NewLayer]) -> Result<Map<String, Value>> {
    let mut merged = Map::new();
    for l in layers
        .iter()
        .filter(|l| l.layer.media_type == MEDIA_TYPE_PARAMS)
    {
        let m: Map<String, Value> = serde_json::from_slice(&store.blobs().read(&l.layer.digest)?)
            .map_err(|e| StoreError::json("params layer", e))?;
        for (k, v) in m {
            merged.entry(k).or_insert(v);
        }
    }
    Ok(merged)
}

fn info_str(info: &Map<String, Value>, k: &str) -> Result<String> {
    match info.get(k) {
        None => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(bad(format!("info field {k:?} must be a string"))),
    }
}

fn info_int(info: &Map<String, Value>, k: &str) -> Result<i64> {
    match info.get(k) {
        None => Ok(0),
        Some(Value::Number(n)) => {
            let f = n.as_f64().unwrap_or(-1.0);
            if f < 0.0 || f.trunc() != f || f > i64::MAX as f64 {
                return Err(bad(format!(
                    "info field {k:?} must be a non-negative integer"
                )));
            }
            Ok(f as i64)
        }
        Some(_) => Err(bad(format!("info field {k:?} must be a number"))),
    }
}

fn check_template(t: &str) -> Result<()> {
    let opens = t.matches("{{").count();
    let closes = t.matches("}}").count();
    if opens > closes {
        return Err(bad("template error: template: :1: unclosed action"));
    }
    Ok(())
}

/// Run a create. `name` comes from [`validate`]; progress objects go to `progress`, ending
/// with `success`.
pub fn create(
    store: &Store,
    r: &CreateRequest,
    name: &Name,
    progress: &mut dyn FnMut(ProgressResponse),
) -> Result<()> {
    let mut config = ConfigV2::new();
    config.renderer = r.renderer.clone();
    config.parser = r.parser.clone();
    config.requires = r.requires.clone();

    let quantize = if r.quantize.is_empty() {
        &r.quantization
    } else {
        &r.quantize
    }
    .to_uppercase();
    let mut layers: Vec<NewLayer> = Vec::new();
    let mut remote = false;
    if !r.from.is_empty() {
        let from = Name::parse(&r.from);
        if !from.is_valid() {
            return Err(bad("invalid model name"));
        }
        if !r.remote_host.is_empty() {
            config.remote_model = r.from.clone();
            config.remote_host = r.remote_host.clone();
            remote = true;
        } else {
            let from = store.canonicalize(&from);
            let (base, base_cfg) = layers_from_model(store, &from)?;
            layers = base;
            for (mine, theirs) in [
                (&mut config.renderer, base_cfg.renderer),
                (&mut config.parser, base_cfg.parser),
                (&mut config.requires, base_cfg.requires),
                (&mut config.model_format, base_cfg.model_format),
            ] {
                if mine.is_empty() {
                    *mine = theirs;
                }
            }
            if config.capabilities.is_empty() {
                config.capabilities = base_cfg.capabilities;
            }
        }
    } else if !r.files.is_empty() {
        let files = digest_map(&r.files)?;
        if files.keys().any(|f| f.ends_with(".safetensors")) {
            let (st, st_cfg) =
                safetensors::layers_from_safetensors(store, &files, &quantize, progress)?;
            layers = st;
            let (renderer, parser, requires) = (
                std::mem::take(&mut config.renderer),
                std::mem::take(&mut config.parser),
                std::mem::take(&mut config.requires),
            );
            config = st_cfg;
            for (mine, req) in [
                (&mut config.renderer, renderer),
                (&mut config.parser, parser),
                (&mut config.requires, requires),
            ] {
                if !req.is_empty() {
                    *mine = req;
                }
            }
        } else {
            layers = layers_from_files(store, &files, false, None, progress)?;
        }
    } else {
        return Err(bad("neither 'from' or 'files' was specified"));
    }
    if remote && !r.draft_files.is_empty() {
        return Err(bad("DRAFT cannot be used with remote models"));
    }
    if !remote && !r.draft_files.is_empty() {
        let draft = digest_map(&r.draft_files)?;
        layers.extend(layers_from_files(
            store,
            &draft,
            false,
            Some(MEDIA_TYPE_DRAFT),
            progress,
        )?);
    }
    if !remote && !r.adapters.is_empty() {
        let adapters = digest_map(&r.adapters)?;
        if adapter::is_mlx_adapter(&adapters) {
            layers.extend(adapter::layers(store, &adapters, progress)?);
        } else {
            layers.extend(layers_from_files(store, &adapters, true, None, progress)?);
        }
    }

    if !r.info.is_empty() {
        if let Some(Value::Array(caps)) = r.info.get("capabilities") {
            config
                .capabilities
                .extend(caps.iter().map(|c| c.as_str().unwrap_or("").to_string()));
        }
        config.model_family = info_str(&r.info, "model_family")?;
        if !config.model_family.is_empty() {
            config.model_families = Some(vec![config.model_family.clone()]);
        }
        config.base_name = info_str(&r.info, "base_name")?;
        config.file_type = info_str(&r.info, "quantization_level")?;
        config.model_type = info_str(&r.info, "parameter_size")?;
        config.context_length = info_int(&r.info, "context_length")?;
        config.embedding_length = info_int(&r.info, "embedding_length")?;
    }

    let mut parameters = r.parameters.clone();
    for l in &mut layers {
        if l.layer.media_type == MEDIA_TYPE_MODEL {
            gguf::convert_model_layer(store, l, &quantize, progress)?;
        }
        let Some(g) = &l.gguf else { continue };
        match l.layer.media_type.as_str() {
            MEDIA_TYPE_MODEL => {
                let arch = g.architecture().to_string();
                if config.model_format.is_empty() {
                    config.model_format = "gguf".into();
                }
                if config.model_family.is_empty() {
                    config.model_family = arch.clone();
                }
                if config.model_type.is_empty() {
                    config.model_type = human_number(g.parameter_count());
                }
                if config.file_type.is_empty() {
                    config.file_type = g.file_type().into();
                }
                config
                    .model_families
                    .get_or_insert_with(Vec::new)
                    .push(arch.clone());
                auto_renderer(&mut config, &arch, &mut parameters);
            }
            MEDIA_TYPE_DRAFT => {
                config.draft = Some(Draft {
                    model_format: "gguf".into(),
                    architecture: g.architecture().into(),
                    ..Default::default()
                });
            }
            _ => {}
        }
    }

    if !r.template.is_empty() {
        check_template(&r.template)?;
        layers.retain(|l| l.layer.media_type != MEDIA_TYPE_TEMPLATE);
        layers.push(bytes_layer(
            store,
            r.template.as_bytes(),
            MEDIA_TYPE_TEMPLATE,
        )?);
    }
    if !r.system.is_empty() {
        layers.retain(|l| l.layer.media_type != MEDIA_TYPE_SYSTEM);
        layers.push(bytes_layer(store, r.system.as_bytes(), MEDIA_TYPE_SYSTEM)?);
    }
    match &r.license {
        None => {}
        Some(Value::String(s)) if s.is_empty() => {}
        Some(Value::String(s)) => {
            layers.push(bytes_layer(store, s.as_bytes(), MEDIA_TYPE_LICENSE)?)
        }
        Some(Value::Array(items)) => {
            for it in items {
                let s = it.as_str().ok_or_else(|| {
                    StoreError::Internal(
                        "json: cannot unmarshal license into Go value of type []string".into(),
                    )
                })?;
                layers.push(bytes_layer(store, s.as_bytes(), MEDIA_TYPE_LICENSE)?);
            }
        }
        Some(Value::Null) => {}
        Some(other) => {
            return Err(StoreError::Internal(format!(
                "json: cannot unmarshal {} into Go value of type []string",
                json_type_name(other)
            )))
        }
    }

    // parameters: request keys win over the inherited params layer; keys sorted like Go's encoder
    for (k, v) in read_params(store, &layers)? {
        parameters.entry(k).or_insert(v);
    }
    if !parameters.is_empty() {
        layers.retain(|l| l.layer.media_type != MEDIA_TYPE_PARAMS);
        let sorted: BTreeMap<&String, &Value> = parameters.iter().collect();
        let bytes = ollmlx_wire::json::to_line(&sorted);
        layers.push(bytes_layer(store, &bytes, MEDIA_TYPE_PARAMS)?);
    }
    if !r.messages.is_empty() {
        layers.retain(|l| l.layer.media_type != MEDIA_TYPE_MESSAGES);
        let bytes = ollmlx_wire::json::to_line(&r.messages);
        layers.push(bytes_layer(store, &bytes, MEDIA_TYPE_MESSAGES)?);
    }

    let config_bytes = config.to_bytes();
    let cfg = bytes_layer(store, &config_bytes, MEDIA_TYPE_CONFIG)?;
    for l in &layers {
        if !l.status.is_empty() {
            progress(ProgressResponse::status(l.status.clone()));
        }
    }
    progress(ProgressResponse::status("writing manifest"));
    let manifest = Manifest::new(cfg.layer, layers.into_iter().map(|l| l.layer).collect());
    {
        let _g = store.lock();
        let old = store.read_manifest(name)?;
        store.write_manifest(name, &manifest)?;
        if let Some(old) = old {
            if std::env::var_os("OLLAMA_NOPRUNE").is_none() {
                store.remove_unused_layers_locked(&old.manifest)?;
            }
        }
    }
    progress(ProgressResponse::status("success"));
    Ok(())
}

fn json_type_name(v: &Value) -> &'static str {
    match v {
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::Object(_) => "object",
        _ => "string",
    }
}

/// Renderer/parser/stop defaults upstream derives from a GGUF architecture.
fn auto_renderer(config: &mut ConfigV2, arch: &str, params: &mut Map<String, Value>) {
    if !config.renderer.is_empty() && !config.parser.is_empty() {
        return;
    }
    let (renderer, parser) = match arch {
        "gemma4" => {
            if !params.contains_key("stop") {
                params.insert("stop".into(), serde_json::json!(["<turn|>"]));
            }
            ("gemma4", "gemma4")
        }
        "laguna" => ("laguna", "laguna"),
        "nemotron_h" | "nemotron_h_moe" | "nemotron_h_omni" => {
            ("nemotron-3-nano", "nemotron-3-nano")
        }
        _ => return,
    };
    if config.renderer.is_empty() {
        config.renderer = renderer.into();
    }
    if config.parser.is_empty() {
        config.parser = parser.into();
    }
}

#[cfg(test)]
mod tests;
