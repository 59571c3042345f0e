//! ollmlx-mlx: the in-process MLX backend.
//!
//! Request path: HTTP server → dialect → router → **this crate** ([`MlxBackend`], an
//! `ollmlx_infer::Backend`) → `ollmlx-engine` (the MLX thread) → `ollmlx-models` → `mlx-rs` →
//! `mlx-sys` → libmlx. Model names are resolved to weight files by a [`ModelResolver`] (the
//! store plugs in here; [`StaticModels`] is a fixed list), generation streams `Event`s, and
//! dropping the stream cancels the request on the engine thread. Behind the store's
//! `StoreBackend`, use [`MlxRunner`] (an `ollmlx_store::Runner`) instead.
#![forbid(unsafe_code)]

pub mod adapter;
pub mod convert;
pub mod embed;
mod gotemplate;
mod metrics;
pub mod runner;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::stream::StreamExt;
use ollmlx_engine::{Engine, EngineEvent, ModelRef};
use ollmlx_infer::{
    Backend, BackendError, BackendFuture, EmbedRequest, EmbedResponse, EventStream, Request,
};
use ollmlx_wire::ollama as wire;
use ollmlx_wire::time::Timestamp;

pub use ollmlx_engine::budget;
pub use ollmlx_engine::{DeviceChoice, EngineConfig, KeepAlive, LookupPolicy};
pub use runner::MlxRunner;

/// A model name and the weights that serve it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelSource {
    /// Name as clients address it (`smollm2:135m`).
    pub name: String,
    /// A `.gguf` file or an MLX/Hugging Face safetensors directory.
    pub path: PathBuf,
}

/// Resolves model names to weights (implemented by the store).
pub trait ModelResolver: Send + Sync + 'static {
    /// The weights for `name`, if this resolver knows it.
    fn resolve(&self, name: &str) -> Option<ModelSource>;
    /// Every model it knows (for `/api/tags`).
    fn list(&self) -> Vec<ModelSource>;
}

/// A fixed list of models; `name` and `name:latest` are the same model.
#[derive(Debug, Clone, Default)]
pub struct StaticModels(pub Vec<ModelSource>);

impl ModelResolver for StaticModels {
    fn resolve(&self, name: &str) -> Option<ModelSource> {
        let norm = |s: &str| s.strip_suffix(":latest").unwrap_or(s).to_string();
        self.0.iter().find(|m| norm(&m.name) == norm(name)).cloned()
    }

    fn list(&self) -> Vec<ModelSource> {
        self.0.clone()
    }
}

/// The MLX backend.
pub struct MlxBackend {
    engine: Engine,
    resolver: Arc<dyn ModelResolver>,
}

impl MlxBackend {
    /// Start the engine thread (device chosen per `config.device`) and serve the models
    /// `resolver` knows.
    pub fn new(
        resolver: Arc<dyn ModelResolver>,
        config: EngineConfig,
    ) -> Result<Self, BackendError> {
        let engine = Engine::start(config).map_err(convert::error)?;
        Ok(MlxBackend { engine, resolver })
    }

    /// The MLX device in use (`cpu` or `gpu`), for the start-up log line.
    pub fn device(&self) -> &str {
        self.engine.device()
    }

    fn source(&self, name: &str) -> Result<ModelSource, BackendError> {
        self.resolver
            .resolve(name)
            .ok_or_else(|| BackendError::ModelNotFound {
                model: name.to_string(),
            })
    }
}

fn details(path: &std::path::Path, family: &str) -> wire::ModelDetails {
    let format = if path.is_dir() { "safetensors" } else { "gguf" };
    wire::ModelDetails {
        format: format.into(),
        family: family.into(),
        families: (!family.is_empty()).then(|| vec![family.to_string()]),
        ..Default::default()
    }
}

fn modified(path: &std::path::Path) -> Timestamp {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .map_or_else(|_| Timestamp::now_utc(), Timestamp::from_system)
}

/// Engine events buffered per request before the engine waits for the client.
const EVENT_BUFFER: usize = 4096;

/// Run `req` on the engine with the weights of `model`, as a stream of events.
pub(crate) fn generate_on(
    engine: Engine,
    req: Request,
    model: ModelRef,
    draft: Option<ModelRef>,
    capabilities: Option<&[String]>,
    go_template: Option<&str>,
) -> BackendFuture<EventStream> {
    if req.debug_render_only {
        // Ollama's `_debug_render_only`: answer with the rendered prompt, generate nothing.
        // Go templates render here; Jinja-templated models are rendered by the engine
        // (`GenerateRequest::render_only`).
        match gotemplate::render(&req, go_template) {
            Ok(Some(prompt)) => {
                let image_count = gotemplate::image_count(&req);
                return Box::pin(async move {
                    Ok(futures::stream::iter([Ok(ollmlx_infer::Event::Rendered {
                        prompt,
                        image_count,
                    })])
                    .boxed())
                });
            }
            Ok(None) => {}
            Err(e) => return Box::pin(async move { Err(e) }),
        }
    }
    // The engine knows models by the resolved name (`smollm2:latest`), not as the client typed
    // it (`smollm2`): unload by that name.
    let name = model.name.clone();
    let planned = convert::plan(&req, model, capabilities).and_then(|p| match p {
        convert::Plan::Generate(mut g) if g.prompt != ollmlx_engine::Prompt::LoadOnly => {
            g.rendered = gotemplate::render(&req, go_template)?;
            if g.rendered.is_some() {
                g.tool_template = go_template.map(str::to_string);
            }
            g.draft = draft;
            Ok(convert::Plan::Generate(g))
        }
        other => Ok(other),
    });
    Box::pin(async move {
        // Requests decoding in one batch share the engine thread, which blocks on a full
        // channel: room for a few thousand events keeps a client that stops reading from
        // stalling its batch neighbours (tokio allocates the buffer in small blocks as used).
        let (tx, rx) = tokio::sync::mpsc::channel(EVENT_BUFFER);
        match planned? {
            convert::Plan::Generate(g) => engine.generate(*g, tx).map_err(convert::error)?,
            convert::Plan::Unload => engine.unload(&name, tx).map_err(convert::error)?,
        }
        // Engine events → `Event`s (logprobs ride on the next text delta: convert::EventMapper).
        let mapper = convert::EventMapper::new().with_images(gotemplate::image_count(&req));
        let state = Some((rx, mapper));
        let stream = futures::stream::unfold(state, |state| async move {
            let (mut rx, mut mapper) = state?;
            let Some(e) = rx.recv().await else {
                let lost = BackendError::Internal("the MLX engine stopped".into());
                return Some((vec![Err(lost)], None));
            };
            let last = matches!(
                e,
                EngineEvent::Done(_) | EngineEvent::Error(_) | EngineEvent::Rendered(_)
            );
            let events = match mapper.map(e) {
                Ok(evs) => evs.into_iter().map(Ok).collect(),
                Err(err) => vec![Err(err)],
            };
            Some((events, (!last).then_some((rx, mapper))))
        })
        .flat_map(futures::stream::iter);
        Ok(stream.boxed())
    })
}

/// Upstream's expiry for a negative keep-alive: now + `math.MaxInt64` nanoseconds (~292 years).
pub(crate) fn forever() -> SystemTime {
    SystemTime::now() + Duration::from_nanos(i64::MAX as u64)
}

/// `/api/ps` entries for the models resident in `engine`: `size` is the engine's estimate of
/// the resident bytes (weights + KV cache + overhead), `size_vram` the same on a GPU (unified
/// memory) and 0 on the CPU (upstream's "100% CPU"), `context_length` the `num_ctx` the model
/// was loaded for.
pub(crate) fn process_models(engine: &Engine) -> Vec<wire::ProcessModel> {
    let on_gpu = engine.device() != "cpu";
    engine
        .loaded()
        .into_iter()
        .map(|m| wire::ProcessModel {
            name: m.name.clone(),
            model: m.name,
            size: m.size,
            digest: String::new(),
            details: details(&m.path, &m.architecture),
            // Ollama shows "100% CPU" when size_vram is 0.
            size_vram: if on_gpu { m.size } else { 0 },
            expires_at: Timestamp::from_system(m.expires_at.unwrap_or_else(forever)),
            context_length: m.context_length,
        })
        .collect()
}

impl Backend for MlxBackend {
    fn name(&self) -> &str {
        "mlx"
    }

    fn metrics(&self) -> Vec<ollmlx_infer::BackendMetric> {
        metrics::engine_metrics(&self.engine)
    }

    fn has_model(&self, model: &str) -> BackendFuture<bool> {
        let found = self.resolver.resolve(model).is_some();
        Box::pin(async move { Ok(found) })
    }

    fn generate(&self, req: Request) -> BackendFuture<EventStream> {
        // `options.draft` names another model of this resolver (unknown: 404 before generating).
        let draft = match req.options.draft.as_deref().filter(|d| !d.is_empty()) {
            Some(d) => match self.source(d) {
                Ok(src) => Some(ModelRef {
                    name: src.name,
                    path: src.path,
                }),
                Err(e) => return Box::pin(async move { Err(e) }),
            },
            None => None,
        };
        match self.source(&req.model) {
            Ok(src) => generate_on(
                self.engine.clone(),
                req,
                ModelRef {
                    name: src.name,
                    path: src.path,
                },
                draft,
                None,
                None,
            ),
            Err(e) => Box::pin(async move { Err(e) }),
        }
    }

    fn embed(&self, req: EmbedRequest) -> BackendFuture<EmbedResponse> {
        match self.source(&req.model) {
            Ok(src) => embed::embed_on(
                self.engine.clone(),
                req,
                ModelRef {
                    name: src.name,
                    path: src.path,
                },
            ),
            Err(e) => Box::pin(async move { Err(e) }),
        }
    }

    fn list_models(&self) -> BackendFuture<Vec<wire::ListModel>> {
        let list = self
            .resolver
            .list()
            .into_iter()
            .map(|m| wire::ListModel {
                name: m.name.clone(),
                model: m.name,
                remote_model: String::new(),
                remote_host: String::new(),
                modified_at: modified(&m.path),
                size: ollmlx_engine::disk_size(&m.path),
                digest: String::new(),
                details: details(&m.path, ""),
                capabilities: embed::capabilities(&m.path),
            })
            .collect();
        Box::pin(async move { Ok(list) })
    }

    fn loaded(&self) -> BackendFuture<Vec<wire::ProcessModel>> {
        let list = process_models(&self.engine);
        Box::pin(async move { Ok(list) })
    }

    fn show(&self, req: wire::ShowRequest) -> BackendFuture<wire::ShowResponse> {
        let src = self.source(req.model_name());
        Box::pin(async move {
            let src = src?;
            Ok(wire::ShowResponse {
                license: String::new(),
                modelfile: String::new(),
                parameters: String::new(),
                template: String::new(),
                system: String::new(),
                renderer: String::new(),
                parser: String::new(),
                details: details(&src.path, ""),
                messages: Vec::new(),
                remote_model: String::new(),
                remote_host: String::new(),
                model_info: Default::default(),
                projector_info: None,
                tensors: Vec::new(),
                capabilities: embed::capabilities(&src.path),
                modified_at: modified(&src.path),
                requires: String::new(),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn forever_is_now_plus_go_max_duration_like_upstream() {
        let t = ollmlx_wire::time::Timestamp::from_system(super::forever());
        let years = (t.unix() - ollmlx_wire::time::Timestamp::now_utc().unix()) / (365 * 86400);
        assert!((291..=293).contains(&years), "{years}");
        assert!(
            t.to_rfc3339_nano().starts_with("23"),
            "{}",
            t.to_rfc3339_nano()
        );
    }
}
