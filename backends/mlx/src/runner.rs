//! [`MlxRunner`]: the MLX engine behind the store's `StoreBackend` (`ollmlx_store::Runner`).
//!
//! The store resolves a name to a [`ResolvedModel`] (weights, Modelfile defaults); this runner
//! applies those defaults (options, SYSTEM, preset MESSAGEs), points the engine at the GGUF blob
//! or at a directory of symlinks re-assembling an MLX safetensors model, and streams events.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use ollmlx_engine::{Engine, EngineConfig, ModelRef};
use ollmlx_infer::{
    BackendError, BackendFuture, EmbedRequest, EmbedResponse, EventStream, Input, Message, Request,
};
use ollmlx_store::{ResolvedModel, Runner};
use ollmlx_wire::ollama as wire;

use crate::{generate_on, process_models};

/// The MLX engine as the store's runner.
#[derive(Clone)]
pub struct MlxRunner {
    engine: Engine,
    /// `/api/ps` facts the engine does not know, by display name.
    shown: Arc<Mutex<HashMap<String, (String, wire::ModelDetails)>>>,
    assembled: PathBuf,
}

impl MlxRunner {
    /// Start the engine thread. MLX safetensors models are re-assembled (as symlinks to their
    /// blobs) under `$OLLMLX_MLX_MODELS_DIR`, default `<tmp>/ollmlx-mlx-models`.
    pub fn new(config: EngineConfig) -> Result<Self, BackendError> {
        let engine = Engine::start(config).map_err(crate::convert::error)?;
        let assembled = std::env::var_os("OLLMLX_MLX_MODELS_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| std::env::temp_dir().join("ollmlx-mlx-models"));
        Ok(MlxRunner {
            engine,
            shown: Default::default(),
            assembled,
        })
    }

    /// The MLX device in use (`cpu` or `gpu`).
    pub fn device(&self) -> &str {
        self.engine.device()
    }

    /// The path the engine loads for `m`: its GGUF blob, or a directory assembled from its
    /// safetensors/config layers (plus `adapters/` when it has ADAPTER layers).
    pub fn weights(&self, m: &ResolvedModel) -> Result<PathBuf, BackendError> {
        if !m.adapter_paths.is_empty() {
            return self.with_adapter(m);
        }
        if let Some(p) = &m.model_path {
            return Ok(p.clone());
        }
        if m.tensor_files.is_empty() {
            return Err(BackendError::Unsupported(format!(
                "\"{}\" has no weights the MLX engine can load",
                m.requested
            )));
        }
        let dir = self.assembled.join(&m.digest);
        assemble(&dir, m.tensor_files.iter().chain(&m.config_files))
            .map_err(|e| BackendError::Internal(format!("assembling {}: {e}", dir.display())))?;
        Ok(dir)
    }
}

impl MlxRunner {
    /// The draft model for speculative decoding: the model named by `options.draft` / Modelfile
    /// `DRAFT <name>` (resolved by the store into `m.draft`; its weights located like any
    /// model's), else an upstream-style draft layer (`DRAFT <file>`) blob when it is a GGUF of
    /// an architecture the engine runs (upstream's MTP / block-diffusion drafts are not: those
    /// models decode without a draft rather than fail).
    pub fn draft(&self, m: &ResolvedModel) -> Result<Option<ModelRef>, BackendError> {
        if let Some(d) = &m.draft {
            return Ok(Some(ModelRef {
                name: d.display_name.clone(),
                path: self.weights(d)?,
            }));
        }
        let loadable = m.config.draft.as_ref().is_some_and(|d| {
            matches!(d.model_format.as_str(), "" | "gguf")
                && ollmlx_models::registry::family(&d.architecture)
                    .is_some_and(|f| !f.is_embedding())
        });
        Ok(m.draft_path
            .as_ref()
            .filter(|_| loadable)
            .map(|p| ModelRef {
                name: format!("{}/draft", m.display_name),
                path: p.clone(),
            }))
    }

    /// A model with `ADAPTER` layers: `<assembled>/<manifest digest>/` holding the base (its
    /// safetensors + config files, or `model.gguf` for a GGUF base) and `adapters/` with
    /// `adapters.safetensors` + `adapter_config.json` linked from the adapter blobs;
    /// `ollmlx_models::load` merges the LoRA at load (see `adapter::assemble_adapter`).
    fn with_adapter(&self, m: &ResolvedModel) -> Result<PathBuf, BackendError> {
        let dir = self.assembled.join(&m.digest);
        let internal = |e: std::io::Error| {
            BackendError::Internal(format!("assembling {}: {e}", dir.display()))
        };
        let base: Vec<(String, PathBuf)> = match &m.model_path {
            Some(p) => vec![(ollmlx_models::GGUF_IN_DIR.to_string(), p.clone())],
            None if m.tensor_files.is_empty() => {
                return Err(BackendError::Unsupported(format!(
                    "\"{}\" has no weights the MLX engine can load",
                    m.requested
                )))
            }
            None => m
                .tensor_files
                .iter()
                .chain(&m.config_files)
                .cloned()
                .collect(),
        };
        assemble(&dir, base.iter()).map_err(internal)?;
        crate::adapter::assemble_adapter(
            &dir.join(ollmlx_models::lora::ADAPTER_DIR),
            &m.adapter_paths,
        )
        .map_err(|e| match e {
            crate::adapter::AdapterFilesError::Io(e) => internal(e),
            e => BackendError::Unsupported(e.to_string()),
        })?;
        Ok(dir)
    }
}

/// Make `dir` contain `name -> blob` symlinks (idempotent, and safe when several requests load
/// the same model at once: each link is made under a unique temporary name and renamed into
/// place, so a concurrent assembler never sees `File exists` and a stale link is replaced
/// atomically).
pub(crate) fn assemble<'a>(
    dir: &Path,
    files: impl Iterator<Item = &'a (String, PathBuf)>,
) -> std::io::Result<()> {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    std::fs::create_dir_all(dir)?;
    for (name, blob) in files {
        if name.contains('/') || name.contains("..") {
            continue;
        }
        let link = dir.join(name);
        if std::fs::read_link(&link).is_ok_and(|t| &t == blob) {
            continue;
        }
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmp = dir.join(format!(".{name}.{}-{n}.tmp", std::process::id()));
        let _ = std::fs::remove_file(&tmp);
        #[cfg(unix)]
        std::os::unix::fs::symlink(blob, &tmp)?;
        #[cfg(not(unix))]
        std::fs::copy(blob, &tmp).map(|_| ())?;
        if let Err(e) = std::fs::rename(&tmp, &link) {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    }
    Ok(())
}

/// Apply the Modelfile defaults of `m` to `req`.
pub fn apply_model_defaults(m: &ResolvedModel, mut req: Request) -> Request {
    req.options = req.options.clone().merged_over(&m.options);
    match &mut req.input {
        Input::Chat(c) => {
            let mut msgs: Vec<Message> = Vec::new();
            if !m.system.is_empty() && !c.messages.iter().any(|x| x.role == "system") {
                msgs.push(Message {
                    role: "system".into(),
                    content: m.system.clone(),
                    ..Default::default()
                });
            }
            msgs.extend(m.messages.iter().map(|x| Message {
                role: x.role.clone(),
                content: x.content.clone(),
                ..Default::default()
            }));
            if !msgs.is_empty() && !c.messages.is_empty() {
                msgs.append(&mut c.messages);
                c.messages = msgs;
            }
        }
        Input::Generate(g) => {
            if g.system.is_empty() && !g.raw {
                g.system = m.system.clone();
            }
        }
    }
    req
}

/// Like Ollama, a context window larger than the model was trained for is cut to the trained
/// length (`requested context size too large for model`) instead of being allocated.
pub fn clamp_num_ctx(req: &mut Request, trained: u64) {
    let asked = req
        .options
        .num_ctx
        .filter(|&n| n > 0)
        .map_or(crate::convert::DEFAULT_NUM_CTX as u64, |n| n as u64);
    if trained > 0 && asked > trained {
        req.options.num_ctx = Some(trained as _);
    }
}

impl Runner for MlxRunner {
    fn generate(&self, model: ResolvedModel, req: Request) -> BackendFuture<EventStream> {
        let path = match self.weights(&model) {
            Ok(p) => p,
            Err(e) => return Box::pin(async move { Err(e) }),
        };
        // Ollama's `tools` / `insert` capability check (the store's capabilities are complete
        // for GGUF models; safetensors templates are only known to the engine).
        if model.format == "gguf" {
            let name = model.name.to_string();
            if let Err(e) = crate::convert::check_capabilities(&req, &name, &model.capabilities) {
                return Box::pin(async move { Err(e) });
            }
        }
        if let Ok(mut s) = self.shown.lock() {
            s.insert(
                model.display_name.clone(),
                (model.digest.clone(), model.details.clone()),
            );
        }
        let draft = match self.draft(&model) {
            Ok(d) => d,
            Err(e) => return Box::pin(async move { Err(e) }),
        };
        let mut req = apply_model_defaults(&model, req);
        clamp_num_ctx(&mut req, model.context_length);
        generate_on(
            self.engine.clone(),
            req,
            ModelRef {
                name: model.display_name.clone(),
                path,
            },
            draft,
            // The store derives `thinking` from GGUF templates; other formats are checked by the
            // engine once the template is loaded.
            (model.format == "gguf").then_some(&model.capabilities[..]),
            model.template.as_deref(),
        )
    }

    fn embed(&self, model: ResolvedModel, mut req: EmbedRequest) -> BackendFuture<EmbedResponse> {
        let path = match self.weights(&model) {
            Ok(p) => p,
            Err(e) => return Box::pin(async move { Err(e) }),
        };
        if let Ok(mut s) = self.shown.lock() {
            s.insert(
                model.display_name.clone(),
                (model.digest.clone(), model.details.clone()),
            );
        }
        req.options = req.options.clone().merged_over(&model.options);
        crate::embed::embed_on(
            self.engine.clone(),
            req,
            ModelRef {
                name: model.display_name.clone(),
                path,
            },
        )
    }

    fn metrics(&self) -> Vec<ollmlx_infer::BackendMetric> {
        crate::metrics::engine_metrics(&self.engine)
    }

    fn loaded(&self) -> BackendFuture<Vec<wire::ProcessModel>> {
        let mut list = process_models(&self.engine);
        if let Ok(shown) = self.shown.lock() {
            for p in &mut list {
                if let Some((digest, details)) = shown.get(&p.name) {
                    p.digest = digest.clone();
                    p.details = details.clone();
                }
            }
        }
        Box::pin(async move { Ok(list) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn num_ctx_beyond_the_trained_context_is_clamped() {
        let mut r = Request::default();
        r.options.num_ctx = Some(1_000_000);
        clamp_num_ctx(&mut r, 8192);
        assert_eq!(r.options.num_ctx, Some(8192));
        // The default (4096) is clamped too for models trained on less.
        let mut r = Request::default();
        clamp_num_ctx(&mut r, 2048);
        assert_eq!(r.options.num_ctx, Some(2048));
        // Smaller requests and unknown trained lengths are left alone.
        let mut r = Request::default();
        r.options.num_ctx = Some(512);
        clamp_num_ctx(&mut r, 8192);
        clamp_num_ctx(&mut r, 0);
        assert_eq!(r.options.num_ctx, Some(512));
    }

    #[test]
    fn assemble_links_blobs_under_their_file_names() {
        let tmp = std::env::temp_dir().join(format!("ollmlx-assemble-{}", std::process::id()));
        let blob = tmp.join("sha256-abc");
        std::fs::create_dir_all(&tmp).unwrap();
        std::fs::write(&blob, b"{}").unwrap();
        let files = [
            ("config.json".to_string(), blob.clone()),
            ("../evil".to_string(), blob.clone()),
        ];
        let dir = tmp.join("model");
        assemble(&dir, files.iter()).unwrap();
        assemble(&dir, files.iter()).unwrap();
        assert_eq!(std::fs::read(dir.join("config.json")).unwrap(), b"{}");
        assert!(!tmp.join("evil").exists());
        std::fs::remove_dir_all(&tmp).unwrap();
    }

    /// Found by the soak (scripts/soak): two requests loading the same safetensors model at
    /// once both saw the link missing and the second `symlink` failed with `File exists`, which
    /// reached the client as a 500.
    #[test]
    fn concurrent_assembles_of_one_model_all_succeed_and_replace_stale_links() {
        let tmp = std::env::temp_dir().join(format!("ollmlx-assemble-race-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp).unwrap();
        let files: Vec<(String, PathBuf)> = (0..32)
            .map(|i| {
                let blob = tmp.join(format!("sha256-{i}"));
                std::fs::write(&blob, format!("{i}")).unwrap();
                (format!("part-{i}.safetensors"), blob)
            })
            .collect();
        let dir = tmp.join("model");
        for _round in 0..50 {
            let _ = std::fs::remove_dir_all(&dir);
            let start = std::sync::Barrier::new(8);
            std::thread::scope(|s| {
                let handles: Vec<_> = (0..8)
                    .map(|_| {
                        s.spawn(|| {
                            start.wait();
                            assemble(&dir, files.iter())
                        })
                    })
                    .collect();
                for h in handles {
                    h.join().unwrap().unwrap();
                }
            });
        }
        for (i, (name, _)) in files.iter().enumerate() {
            assert_eq!(
                std::fs::read_to_string(dir.join(name)).unwrap(),
                format!("{i}")
            );
        }
        // Nothing but the links is left behind.
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), files.len());
        // A link to another blob (a re-created model) is replaced.
        let newer = tmp.join("sha256-new");
        std::fs::write(&newer, b"new").unwrap();
        let files = [("part-0.safetensors".to_string(), newer)];
        assemble(&dir, files.iter()).unwrap();
        assert_eq!(
            std::fs::read(dir.join("part-0.safetensors")).unwrap(),
            b"new"
        );
        std::fs::remove_dir_all(&tmp).unwrap();
    }
}
