//! [`StoreBackend`]: the `ollmlx_infer::Backend` over the local store, and the [`Runner`] seam
//! the inference engine plugs into.
//!
//! The server routes model management (`/api/tags`, `show`, `copy`, `delete`, `blobs`,
//! `create`) here; generation and embeddings resolve the model to a [`ResolvedModel`] (paths,
//! template, system, parameters from the manifest) and delegate to the runner. Store work is
//! blocking filesystem code and runs on tokio's blocking pool.

use std::path::PathBuf;
use std::sync::Arc;

use futures::stream;
use ollmlx_infer::{
    Backend, BackendError, BackendFuture, EmbedRequest, EmbedResponse, EventStream, ManageRequest,
    Options, ProgressStream, RawBody, Request,
};
use ollmlx_wire::ollama as wire;
use serde_json::{Map, Value};

use crate::blobs::blob_file_name;
use crate::create;
use crate::gofmt::go_quote;
use crate::info::ModelRecord;
use crate::manifest::ConfigV2;
use crate::name::Name;
use crate::store::Store;

/// Everything an engine needs to load and run a stored model, resolved from its manifest.
#[derive(Debug, Clone)]
pub struct ResolvedModel {
    /// The model name as the client sent it (echo it back in responses).
    pub requested: String,
    /// Canonical name, e.g. `registry.ollama.ai/library/llama3.2:latest`.
    pub name: Name,
    /// Short display name (`llama3.2:latest`), what `/api/ps` shows.
    pub display_name: String,
    /// Hex sha256 of the manifest (cache key: same digest, same model).
    pub digest: String,
    /// `gguf` or `safetensors`.
    pub format: String,
    /// GGUF weights, for GGUF models.
    pub model_path: Option<PathBuf>,
    /// Vision/audio projectors.
    pub projector_paths: Vec<PathBuf>,
    /// LoRA adapters.
    pub adapter_paths: Vec<PathBuf>,
    /// Draft model (an upstream `DRAFT <file>` layer).
    pub draft_path: Option<PathBuf>,
    /// Draft model named by `options.draft` (request) or the Modelfile's `DRAFT <name>` (params
    /// layer `draft`), resolved by [`StoreBackend`] before generation; takes precedence over
    /// `draft_path`.
    pub draft: Option<Box<ResolvedModel>>,
    /// MLX models: safetensors blobs as `(file name in the model dir, blob path)`.
    pub tensor_files: Vec<(String, PathBuf)>,
    /// MLX models: config files (`config.json`, `tokenizer.json`, `tokenizer_config.json`, ...)
    /// as `(file name, blob path)`.
    pub config_files: Vec<(String, PathBuf)>,
    /// Go TEMPLATE from the manifest, if any.
    pub template: Option<String>,
    /// GGUF `tokenizer.chat_template`, if any (Jinja).
    pub chat_template: Option<String>,
    /// SYSTEM from the manifest (empty when none).
    pub system: String,
    /// Default options from the params layer, typed (request options override these).
    pub options: Options,
    /// The params layer as stored.
    pub raw_options: Map<String, Value>,
    /// Preset MESSAGEs.
    pub messages: Vec<wire::Message>,
    /// Capabilities (`completion`, `tools`, `thinking`, `embedding`, `vision`, ...).
    pub capabilities: Vec<String>,
    /// Details for `/api/ps`.
    pub details: wire::ModelDetails,
    /// The config blob.
    pub config: ConfigV2,
    /// Sum of layer sizes.
    pub size: u64,
    /// Trained context length when known (0 otherwise).
    pub context_length: u64,
}

impl ResolvedModel {
    fn from_record(rec: &ModelRecord, requested: &str) -> Result<Self, BackendError> {
        let options = Options::from_map(&rec.options)
            .map_err(|e| BackendError::InvalidOption(e.to_string()))?;
        let list = rec.list_entry();
        let ct = rec.chat_template();
        Ok(ResolvedModel {
            requested: requested.to_string(),
            name: rec.stored.name.clone(),
            display_name: rec.stored.name.display_shortest(),
            digest: rec.stored.digest.clone(),
            format: if rec.config.model_format.is_empty() {
                "gguf".into()
            } else {
                rec.config.model_format.clone()
            },
            model_path: rec.model_path.clone(),
            projector_paths: rec.projector_paths.clone(),
            adapter_paths: rec.adapter_paths.clone(),
            draft_path: rec.draft_path.clone(),
            draft: None,
            tensor_files: rec.tensor_files.clone(),
            config_files: rec.json_files.clone(),
            template: rec.template.clone(),
            chat_template: (!ct.is_empty()).then(|| ct.to_string()),
            system: rec.system.clone(),
            options,
            raw_options: rec.options.clone(),
            messages: rec.messages.clone(),
            capabilities: rec.capabilities(),
            details: rec.details(),
            config: rec.config.clone(),
            size: list.size,
            context_length: list.details.context_length,
        })
    }
}

/// The inference engine behind a [`StoreBackend`] (the MLX engine implements this).
pub trait Runner: Send + Sync + 'static {
    /// Run a generation on a resolved model. `req.model` is the name as sent.
    fn generate(&self, model: ResolvedModel, req: Request) -> BackendFuture<EventStream>;
    /// Compute embeddings with a resolved model.
    fn embed(&self, model: ResolvedModel, req: EmbedRequest) -> BackendFuture<EmbedResponse>;
    /// Models currently loaded (`/api/ps`).
    fn loaded(&self) -> BackendFuture<Vec<wire::ProcessModel>>;
    /// Engine telemetry for `/metrics` (cheap, non-blocking); none by default.
    fn metrics(&self) -> Vec<ollmlx_infer::BackendMetric> {
        Vec::new()
    }
}

/// The local model store as a backend.
#[derive(Clone)]
pub struct StoreBackend {
    store: Store,
    runner: Option<Arc<dyn Runner>>,
    name: String,
}

impl StoreBackend {
    /// A backend over `store`, named `local`, without a runner.
    pub fn new(store: Store) -> Self {
        StoreBackend {
            store,
            runner: None,
            name: "local".into(),
        }
    }

    /// A backend over `$OLLAMA_MODELS` (default `~/.ollama/models`).
    pub fn from_env() -> Self {
        StoreBackend::new(Store::from_env())
    }

    /// Attach the inference engine.
    pub fn with_runner(mut self, runner: Arc<dyn Runner>) -> Self {
        self.runner = Some(runner);
        self
    }

    /// Set the name used in logs and config (`mlx`, ...).
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The underlying store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Resolve a client-supplied name to a stored model. `Ok(None)` when it is valid but absent;
    /// `InvalidRequest("invalid model name")` when it is not a valid name.
    pub async fn resolve(&self, requested: &str) -> Result<Option<ResolvedModel>, BackendError> {
        let store = self.store.clone();
        let requested = requested.to_string();
        blocking(move || {
            let Some(name) = store.resolve(&requested) else {
                return Err(BackendError::InvalidRequest("invalid model name".into()));
            };
            let Some(stored) = store.read_manifest(&name)? else {
                return Ok(None);
            };
            let rec = ModelRecord::load(&store, stored)?;
            ResolvedModel::from_record(&rec, &requested).map(Some)
        })
        .await
    }

    async fn resolve_for_inference(&self, model: &str) -> Result<ResolvedModel, BackendError> {
        if model.is_empty() {
            return Err(BackendError::ModelNotFound {
                model: String::new(),
            });
        }
        self.resolve(model)
            .await?
            .ok_or_else(|| BackendError::ModelNotFound {
                model: model.to_string(),
            })
    }

    fn no_runner(&self, model: &str) -> BackendError {
        BackendError::Unsupported(format!(
            "model '{model}' is installed, but the {} backend has no inference engine attached",
            self.name
        ))
    }
}

/// Accepts the create request boxed or not (the enum variant's payload type).
fn unbox(r: impl Into<Box<wire::CreateRequest>>) -> wire::CreateRequest {
    *r.into()
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, BackendError> + Send + 'static,
) -> Result<T, BackendError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| BackendError::Internal(format!("store task failed: {e}")))?
}

impl Backend for StoreBackend {
    fn name(&self) -> &str {
        &self.name
    }

    fn has_model(&self, model: &str) -> BackendFuture<bool> {
        let store = self.store.clone();
        let model = model.to_string();
        Box::pin(blocking(move || {
            Ok(match store.resolve(&model) {
                Some(n) => store.read_manifest(&n).ok().flatten().is_some(),
                None => false,
            })
        }))
    }

    fn generate(&self, req: Request) -> BackendFuture<EventStream> {
        let this = self.clone();
        Box::pin(async move {
            let mut model = this.resolve_for_inference(&req.model).await?;
            // Speculative decoding: the request's `options.draft` overrides the Modelfile's
            // `DRAFT <name>`; an unknown name is the same 404 as an unknown model.
            let draft = req
                .options
                .draft
                .as_ref()
                .or(model.options.draft.as_ref())
                .filter(|d| !d.is_empty())
                .cloned();
            if let Some(name) = draft {
                model.draft = Some(Box::new(this.resolve_for_inference(&name).await?));
            }
            match &this.runner {
                Some(r) => r.generate(model, req).await,
                None => Err(this.no_runner(&req.model)),
            }
        })
    }

    fn embed(&self, req: EmbedRequest) -> BackendFuture<EmbedResponse> {
        let this = self.clone();
        Box::pin(async move {
            let model = this.resolve_for_inference(&req.model).await?;
            match &this.runner {
                Some(r) => r.embed(model, req).await,
                None => Err(this.no_runner(&req.model)),
            }
        })
    }

    fn list_models(&self) -> BackendFuture<Vec<wire::ListModel>> {
        let store = self.store.clone();
        Box::pin(blocking(move || {
            let mut out: Vec<(std::time::SystemTime, wire::ListModel)> = store
                .list_manifests()
                .into_iter()
                .filter_map(|m| {
                    let modified = m.modified;
                    match ModelRecord::load(&store, m) {
                        Ok(rec) => Some((modified, rec.list_entry())),
                        Err(e) => {
                            tracing::warn!(error = %e, "skipping model in listing");
                            None
                        }
                    }
                })
                .collect();
            out.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.name.cmp(&b.1.name)));
            Ok(out.into_iter().map(|(_, m)| m).collect())
        }))
    }

    fn loaded(&self) -> BackendFuture<Vec<wire::ProcessModel>> {
        match &self.runner {
            Some(r) => r.loaded(),
            None => Box::pin(async { Ok(Vec::new()) }),
        }
    }

    fn metrics(&self) -> Vec<ollmlx_infer::BackendMetric> {
        self.runner
            .as_ref()
            .map(|r| r.metrics())
            .unwrap_or_default()
    }

    fn show(&self, req: wire::ShowRequest) -> BackendFuture<wire::ShowResponse> {
        let store = self.store.clone();
        Box::pin(blocking(move || {
            let raw = req.model_name().to_string();
            if raw.is_empty() {
                return Err(BackendError::InvalidRequest("model is required".into()));
            }
            let name = store
                .resolve(&raw)
                .ok_or_else(|| BackendError::InvalidRequest("invalid model name".into()))?;
            let Some(stored) = store.read_manifest(&name)? else {
                return Err(BackendError::ModelNotFound {
                    model: name.display_shortest(),
                });
            };
            let rec = ModelRecord::load(&store, stored)?;
            Ok(rec.show(&req)?)
        }))
    }

    fn manage(&self, req: ManageRequest) -> BackendFuture<ProgressStream> {
        let store = self.store.clone();
        Box::pin(async move {
            let r = match req {
                ManageRequest::Create(r) => unbox(r),
                ManageRequest::Pull(r) => {
                    return crate::pull::start(store, r, crate::pull::PullConfig::from_env()).await
                }
                ManageRequest::Push(r) => {
                    return crate::push::start(store, r, crate::pull::PullConfig::from_env()).await
                }
            };
            let (r, name) = {
                let store = store.clone();
                blocking(move || {
                    let name = create::validate(&store, &r)?;
                    Ok((r, name))
                })
                .await?
            };
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
            tokio::task::spawn_blocking(move || {
                let mut send = |p: wire::ProgressResponse| {
                    let _ = tx.send(Ok(p));
                };
                if let Err(e) = create::create(&store, &r, &name, &mut send) {
                    let _ = tx.send(Err(BackendError::from(e)));
                }
            });
            let s: ProgressStream = Box::pin(stream::poll_fn(move |cx| rx.poll_recv(cx)));
            Ok(s)
        })
    }

    fn copy(&self, req: wire::CopyRequest) -> BackendFuture<()> {
        let store = self.store.clone();
        Box::pin(blocking(move || {
            let src = Name::parse(&req.source);
            if !src.is_valid() {
                return Err(BackendError::InvalidRequest(format!(
                    "source {} is invalid",
                    go_quote(&req.source)
                )));
            }
            let dst = Name::parse(&req.destination);
            if !dst.is_valid() {
                return Err(BackendError::InvalidRequest(format!(
                    "destination {} is invalid",
                    go_quote(&req.destination)
                )));
            }
            let src = store.canonicalize(&src);
            let dst = store.canonicalize(&dst);
            store
                .copy(&src, &dst, &req.source)
                .map_err(BackendError::from)
        }))
    }

    fn delete(&self, model: String) -> BackendFuture<()> {
        let store = self.store.clone();
        Box::pin(blocking(move || {
            if model.is_empty() {
                return Err(BackendError::InvalidRequest("model is required".into()));
            }
            let Some(name) = store.resolve(&model) else {
                return Err(BackendError::InvalidRequest(format!(
                    "name {} is invalid",
                    go_quote(&model)
                )));
            };
            if store.delete(&name)? {
                Ok(())
            } else {
                Err(BackendError::ModelNotFound { model })
            }
        }))
    }

    fn blob_exists(&self, digest: String) -> BackendFuture<bool> {
        let store = self.store.clone();
        Box::pin(blocking(move || {
            blob_file_name(&digest)?;
            Ok(store.blobs().exists(&digest)?)
        }))
    }

    fn blob_put(&self, digest: String, body: RawBody) -> BackendFuture<bool> {
        let store = self.store.clone();
        Box::pin(async move {
            blob_file_name(&digest).map_err(BackendError::from)?;
            Ok(store.blobs().put_stream(&digest, body).await?)
        })
    }
}

#[cfg(test)]
mod tests;
