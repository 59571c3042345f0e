//! [`OpenAiUpstream`]: a backend that is any OpenAI-compatible server (vLLM, llama.cpp server,
//! mlx_lm.server, LM Studio), presented to clients through the full Ollama API.
//!
//! It sits behind the router like the MLX backend: generation requests are translated to a
//! streaming `/v1/chat/completions` (or `/v1/completions`) call, the SSE answer is turned back into
//! events with timings measured here, and model listings are synthesized from `/v1/models`.
//! Upstream errors keep their status and message.

mod digest;
mod models;
mod request;
mod stream;
mod types;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use http::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use http::HeaderMap;
use ollmlx_infer::{
    Backend, BackendError, BackendFuture, DoneReason, EmbedRequest, EmbedResponse, Event,
    EventStream, Input, Request, Stats, Think,
};
use ollmlx_wire::ollama as wire;
use ollmlx_wire::time::Timestamp;

use crate::client::UpstreamClient;
use crate::config::{ConfigError, OpenAiUpstreamConfig};
use crate::framing::sse_data;
use crate::nanos;

use models::ModelFacts;
use stream::{Step, StreamState};

pub use digest::sha256_hex;
pub use request::{completion_request, Endpoint};

/// How long a fetched `/v1/models` list is reused for `has_model` and name resolution.
const MODEL_CACHE_TTL: Duration = Duration::from_secs(10);

/// A backend forwarding to an OpenAI-compatible server.
#[derive(Debug, Clone)]
pub struct OpenAiUpstream {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    name: String,
    client: UpstreamClient,
    config: OpenAiUpstreamConfig,
    started: Timestamp,
    cache: Mutex<Option<(Instant, Vec<types::Model>)>>,
}

// === impl OpenAiUpstream ===

impl OpenAiUpstream {
    /// A backend for the server at `config.url`, named `openai`.
    pub fn new(config: OpenAiUpstreamConfig) -> Result<Self, ConfigError> {
        let mut headers = HeaderMap::new();
        if let Some(key) = config.resolved_api_key()? {
            let mut v = HeaderValue::from_str(&format!("Bearer {key}")).map_err(|_| {
                ConfigError::InvalidApiKey("it contains characters not allowed in a header".into())
            })?;
            v.set_sensitive(true);
            headers.insert(AUTHORIZATION, v);
        }
        let url = config.url.trim().trim_end_matches('/');
        let url = url.strip_suffix("/v1").unwrap_or(url);
        let client = UpstreamClient::new("openai", url, &config.client_config()?, headers)?;
        Ok(OpenAiUpstream {
            inner: Arc::new(Inner {
                name: "openai".into(),
                client,
                config,
                started: Timestamp::now_utc(),
                cache: Mutex::new(None),
            }),
        })
    }

    /// Use `name` in logs and `/api/ps` (the `name` of the router's `[[backends]]` entry).
    pub fn with_name(self, name: impl Into<String>) -> Self {
        let inner = &self.inner;
        OpenAiUpstream {
            inner: Arc::new(Inner {
                name: name.into(),
                client: inner.client.clone(),
                config: inner.config.clone(),
                started: inner.started,
                cache: Mutex::new(None),
            }),
        }
    }

    /// The HTTP client (for health checks and tests).
    pub fn client(&self) -> &UpstreamClient {
        &self.inner.client
    }
}

// === impl Inner ===

impl Inner {
    /// `/v1/models`, cached for [`MODEL_CACHE_TTL`].
    async fn upstream_models(&self) -> Result<Vec<types::Model>, BackendError> {
        if let Ok(cache) = self.cache.lock() {
            if let Some((at, models)) = cache.as_ref() {
                if at.elapsed() < MODEL_CACHE_TTL {
                    return Ok(models.clone());
                }
            }
        }
        let list: types::ModelList = self.client.get_json("/v1/models").await?;
        if let Ok(mut cache) = self.cache.lock() {
            *cache = Some((Instant::now(), list.data.clone()));
        }
        Ok(list.data)
    }

    fn configured(&self, name: &str) -> bool {
        self.config.models.iter().any(|m| same_model(m, name))
            || self.config.aliases.keys().any(|m| same_model(m, name))
    }

    async fn has_model(&self, name: &str) -> Result<bool, BackendError> {
        if self.configured(name) {
            return Ok(true);
        }
        let models = self.upstream_models().await?;
        Ok(models.iter().any(|m| same_model(&m.id, name)))
    }

    /// The upstream id for a client-facing name: an alias target, else the upstream id that
    /// matches with or without `:latest`, else the name unchanged.
    async fn resolve(&self, name: &str) -> String {
        if let Some((_, target)) = self
            .config
            .aliases
            .iter()
            .find(|(k, _)| same_model(k, name))
        {
            return target.clone();
        }
        let ids: Vec<String> = match self.upstream_models().await {
            Ok(m) => m.into_iter().map(|m| m.id).collect(),
            Err(_) => Vec::new(),
        };
        if ids.iter().any(|id| id == name) {
            return name.to_string();
        }
        ids.into_iter()
            .find(|id| same_model(id, name))
            .unwrap_or_else(|| name.to_string())
    }

    async fn generate(&self, req: Request) -> Result<EventStream, BackendError> {
        if req.debug_render_only {
            return Err(BackendError::NotImplemented(format!(
                "the {} backend cannot render prompts: the upstream applies its own template",
                self.name
            )));
        }
        let empty = match &req.input {
            Input::Chat(c) => c.messages.is_empty(),
            Input::Generate(g) => g.prompt.is_empty() && g.suffix.is_empty(),
        };
        if empty {
            return self.load_only(&req).await;
        }
        let model_id = self.resolve(&req.model).await;
        let (endpoint, body) = completion_request(&req, &model_id, self.config.generate_via_chat);
        let started = Instant::now();
        let resp = self.client.post_json(endpoint.path(), &body).await?;
        let is_json = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("application/json"));
        if is_json {
            return Err(BackendError::Unavailable(format!(
                "{} answered {} with a single JSON body instead of an event stream; it must support \"stream\": true",
                self.client.label(),
                endpoint.path()
            )));
        }
        let drop_thinking = matches!(req.think, Some(Think::Bool(false)));
        let state = StreamState::new(self.client.label(), started, drop_thinking);
        let data = sse_data(self.client.body_stream(resp.into_body()));
        Ok(events(data, state))
    }

    /// An empty prompt only loads (or, with `keep_alive: 0`, unloads) a model in Ollama; an
    /// OpenAI upstream manages its own models, so answer at once for models it serves.
    async fn load_only(&self, req: &Request) -> Result<EventStream, BackendError> {
        let started = Instant::now();
        if !self.has_model(&req.model).await? {
            return Err(BackendError::ModelNotFound {
                model: req.model.clone(),
            });
        }
        let reason = if req.keep_alive.is_some_and(|k| k.is_zero()) {
            DoneReason::Unload
        } else {
            DoneReason::Load
        };
        let done = Event::Done {
            reason,
            stats: Stats {
                total_duration: nanos(started.elapsed()),
                ..Default::default()
            },
            context: None,
        };
        Ok(futures::stream::iter(vec![Ok(done)]).boxed())
    }

    async fn embed(&self, req: EmbedRequest) -> Result<EmbedResponse, BackendError> {
        let started = Instant::now();
        if req.input.is_empty() {
            if !self.has_model(&req.model).await? {
                return Err(BackendError::ModelNotFound { model: req.model });
            }
            return Ok(EmbedResponse {
                total_duration: nanos(started.elapsed()),
                ..Default::default()
            });
        }
        let body = types::EmbeddingsRequest {
            model: self.resolve(&req.model).await,
            input: req.input.clone(),
            encoding_format: "float",
            dimensions: req.dimensions,
        };
        let resp = self.client.post_json("/v1/embeddings", &body).await?;
        let mut r: types::EmbeddingsResponse =
            self.client.read_json("/v1/embeddings", resp).await?;
        if r.data.len() != req.input.len() {
            return Err(BackendError::Unavailable(format!(
                "{} returned {} embeddings for {} inputs",
                self.client.label(),
                r.data.len(),
                req.input.len()
            )));
        }
        r.data.sort_by_key(|d| d.index);
        let embeddings = r
            .data
            .into_iter()
            .map(|d| shape_vector(d.embedding, req.dimensions, req.normalize))
            .collect();
        Ok(EmbedResponse {
            embeddings,
            prompt_eval_count: r.usage.map_or(0, |u| u.prompt_tokens),
            load_duration: 0,
            total_duration: nanos(started.elapsed()),
        })
    }

    /// Static models, alias names, then upstream ids, each name once.
    async fn list_facts(&self) -> Result<Vec<ModelFacts>, BackendError> {
        let upstream = match self.upstream_models().await {
            Ok(m) => m,
            Err(e) if !self.config.models.is_empty() || !self.config.aliases.is_empty() => {
                tracing::warn!(backend = %self.name, error = %e, "listing only configured models");
                Vec::new()
            }
            Err(e) => return Err(e),
        };
        let lookup = |id: &str| upstream.iter().find(|m| same_model(&m.id, id));
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        let configured = self
            .config
            .models
            .iter()
            .map(|m| (m.clone(), m.clone()))
            .chain(
                self.config
                    .aliases
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone())),
            );
        for (name, target) in configured {
            if seen.insert(name.clone()) {
                let m = lookup(&target);
                out.push(ModelFacts {
                    name,
                    created: m.and_then(|m| m.created),
                    context_length: m.and_then(|m| m.max_model_len),
                });
            }
        }
        for m in &upstream {
            if seen.insert(m.id.clone()) {
                out.push(ModelFacts {
                    name: m.id.clone(),
                    created: m.created,
                    context_length: m.max_model_len,
                });
            }
        }
        Ok(out)
    }

    async fn show(&self, req: wire::ShowRequest) -> Result<wire::ShowResponse, BackendError> {
        let name = req.model_name().to_string();
        if !self.has_model(&name).await? {
            return Err(BackendError::ModelNotFound { model: name });
        }
        let id = self.resolve(&name).await;
        let known = self.upstream_models().await.unwrap_or_default();
        let m = known.iter().find(|m| m.id == id);
        let facts = ModelFacts {
            name,
            created: m.and_then(|m| m.created),
            context_length: m.and_then(|m| m.max_model_len),
        };
        Ok(models::show_response(&facts, &id, self.started))
    }
}

/// Names match exactly, or when one is the other plus `:latest` (Ollama's default tag).
fn same_model(a: &str, b: &str) -> bool {
    a == b || a.strip_suffix(":latest") == Some(b) || b.strip_suffix(":latest") == Some(a)
}

/// Truncate to `dims` (when the upstream ignored `dimensions`) and L2-normalize if asked.
fn shape_vector(mut v: Vec<f32>, dims: Option<usize>, normalize: bool) -> Vec<f32> {
    let truncated = match dims {
        Some(d) if d > 0 && d < v.len() => {
            v.truncate(d);
            true
        }
        _ => false,
    };
    if normalize || truncated {
        let norm = v
            .iter()
            .map(|x| f64::from(*x) * f64::from(*x))
            .sum::<f64>()
            .sqrt();
        if norm > 0.0 {
            for x in &mut v {
                *x = (f64::from(*x) / norm) as f32;
            }
        }
    }
    v
}

/// Drive a [`StreamState`] over SSE payloads.
fn events(
    data: futures::stream::BoxStream<'static, Result<String, BackendError>>,
    state: StreamState,
) -> EventStream {
    type Batch = Vec<Result<Event, BackendError>>;
    fn ok(ev: Vec<Event>) -> Batch {
        ev.into_iter().map(Ok).collect()
    }
    futures::stream::unfold(Some((data, state)), |st| async move {
        let (mut data, mut state) = st?;
        loop {
            let next: (Batch, bool) = match data.next().await {
                Some(Ok(payload)) => match state.push(&payload, Instant::now()) {
                    Ok(Step::Events(ev)) if ev.is_empty() => continue,
                    Ok(Step::Events(ev)) => (ok(ev), true),
                    Ok(Step::Done(ev)) => (ok(ev), false),
                    Err(e) => (vec![Err(e)], false),
                },
                Some(Err(e)) => (vec![Err(e)], false),
                None => match state.end_of_body(Instant::now()) {
                    Ok(ev) => (ok(ev), false),
                    Err(e) => (vec![Err(e)], false),
                },
            };
            let (batch, more) = next;
            return Some((batch, more.then_some((data, state))));
        }
    })
    .flat_map(futures::stream::iter)
    .boxed()
}

impl Backend for OpenAiUpstream {
    fn name(&self) -> &str {
        &self.inner.name
    }

    fn has_model(&self, model: &str) -> BackendFuture<bool> {
        let inner = self.inner.clone();
        let model = model.to_string();
        Box::pin(async move { inner.has_model(&model).await })
    }

    fn generate(&self, req: Request) -> BackendFuture<EventStream> {
        let inner = self.inner.clone();
        Box::pin(async move { inner.generate(req).await })
    }

    fn embed(&self, req: EmbedRequest) -> BackendFuture<EmbedResponse> {
        let inner = self.inner.clone();
        Box::pin(async move { inner.embed(req).await })
    }

    fn list_models(&self) -> BackendFuture<Vec<wire::ListModel>> {
        let inner = self.inner.clone();
        Box::pin(async move {
            let facts = inner.list_facts().await?;
            Ok(facts
                .iter()
                .map(|f| models::list_entry(f, inner.started))
                .collect())
        })
    }

    fn loaded(&self) -> BackendFuture<Vec<wire::ProcessModel>> {
        Box::pin(async { Ok(Vec::new()) })
    }

    fn show(&self, req: wire::ShowRequest) -> BackendFuture<wire::ShowResponse> {
        let inner = self.inner.clone();
        Box::pin(async move { inner.show(req).await })
    }
}

#[cfg(test)]
mod tests;
