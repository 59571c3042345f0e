//! [`OllamaUpstream`]: a backend that is a real Ollama server somewhere else.
//!
//! Two paths lead here. When it is the only backend, the server calls [`Backend::forward`] for
//! every request and ollmlx is a transparent reverse proxy: status, headers (minus hop-by-hop)
//! and body bytes pass unchanged, chunk by chunk, in both directions. When it sits behind the
//! router next to other backends, the typed methods translate to Ollama's native routes.

mod convert;

use std::sync::Arc;
use std::time::Instant;

use futures::{StreamExt, TryStreamExt};
use http::{HeaderMap, Method, StatusCode};
use ollmlx_infer::{
    Backend, BackendError, BackendFuture, EmbedRequest, EmbedResponse, Event, EventStream, Input,
    ManageRequest, ProgressStream, RawBody, RawRequest, RawResponse, Request,
};
use ollmlx_wire::ollama as wire;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::client::{
    empty_body, forwardable_request_headers, headers_to_pairs, json_body, json_headers,
    stream_body, strip_hop_by_hop, UpstreamClient,
};
use crate::config::{ConfigError, OllamaUpstreamConfig};
use crate::framing::ndjson;
use crate::nanos;

pub use convert::{chat_request, generate_request};

/// A backend forwarding to an upstream Ollama (transparently, or through the typed API).
#[derive(Debug, Clone)]
pub struct OllamaUpstream {
    name: String,
    client: Arc<UpstreamClient>,
}

// === impl OllamaUpstream ===

impl OllamaUpstream {
    /// A backend for the Ollama at `config.url`, named `ollama`.
    pub fn new(config: &OllamaUpstreamConfig) -> Result<Self, ConfigError> {
        let client = UpstreamClient::new(
            "ollama",
            &config.url,
            &config.client_config()?,
            HeaderMap::new(),
        )?;
        Ok(OllamaUpstream {
            name: "ollama".into(),
            client: Arc::new(client),
        })
    }

    /// Use `name` in logs and `/api/ps` (the `name` of the router's `[[backends]]` entry).
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The HTTP client (for health checks and tests).
    pub fn client(&self) -> &UpstreamClient {
        &self.client
    }

    async fn post_ok<B: Serialize>(&self, path: &str, body: &B) -> Result<(), BackendError> {
        let resp = self.client.post_json(path, body).await?;
        self.client.read_body(resp.into_body(), 1024 * 1024).await?;
        Ok(())
    }

    async fn post_read<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, BackendError> {
        let resp = self.client.post_json(path, body).await?;
        self.client.read_json(path, resp).await
    }

    /// POST a streaming request and decode its NDJSON objects as `T`.
    async fn post_ndjson<B: Serialize, T: DeserializeOwned + Send + 'static>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<futures::stream::BoxStream<'static, Result<T, BackendError>>, BackendError> {
        let resp = self.client.post_json(path, body).await?;
        let label = self.client.label().to_string();
        let lines = ndjson(self.client.body_stream(resp.into_body()));
        Ok(lines
            .and_then(move |line| futures::future::ready(convert::decode_line::<T>(&label, &line)))
            .boxed())
    }

    async fn generate_impl(&self, req: Request) -> Result<EventStream, BackendError> {
        let label = self.client.label().to_string();
        let events = match &req.input {
            Input::Chat(chat) => {
                let body = chat_request(&req, chat);
                let objs = self
                    .post_ndjson::<_, wire::ChatResponse>("/api/chat", &body)
                    .await?;
                until_done(objs, convert::chat_events, label)
            }
            Input::Generate(g) => {
                let body = generate_request(&req, g);
                let objs = self
                    .post_ndjson::<_, wire::GenerateResponse>("/api/generate", &body)
                    .await?;
                until_done(objs, convert::generate_events, label)
            }
        };
        Ok(events)
    }

    async fn embed_impl(&self, req: EmbedRequest) -> Result<EmbedResponse, BackendError> {
        let options = req.options.to_map();
        let options = (!options.is_empty()).then_some(options);
        let keep_alive = req.keep_alive.as_ref().map(convert::keep_alive_value);
        if !req.normalize {
            // Legacy `/api/embeddings`: one unnormalized vector per call.
            let started = Instant::now();
            let mut embeddings = Vec::with_capacity(req.input.len());
            for prompt in &req.input {
                let body = wire::EmbeddingRequest {
                    model: req.model.clone(),
                    prompt: prompt.clone(),
                    keep_alive: keep_alive.clone(),
                    options: options.clone(),
                };
                let r: wire::EmbeddingResponse = self.post_read("/api/embeddings", &body).await?;
                embeddings.push(r.embedding.into_iter().map(|f| f as f32).collect());
            }
            return Ok(EmbedResponse {
                embeddings,
                total_duration: nanos(started.elapsed()),
                ..Default::default()
            });
        }
        let body = wire::EmbedRequest {
            model: req.model.clone(),
            input: serde_json::Value::from(req.input.clone()),
            keep_alive,
            truncate: req.truncate,
            dimensions: req
                .dimensions
                .and_then(|d| i64::try_from(d).ok())
                .unwrap_or(0),
            options,
        };
        let r: wire::EmbedResponse = self.post_read("/api/embed", &body).await?;
        Ok(EmbedResponse {
            embeddings: r.embeddings,
            prompt_eval_count: r.prompt_eval_count,
            load_duration: r.load_duration,
            total_duration: r.total_duration,
        })
    }

    async fn has_model_impl(&self, model: String) -> Result<bool, BackendError> {
        let req = wire::ShowRequest {
            model,
            ..Default::default()
        };
        let resp = self
            .client
            .send(Method::POST, "/api/show", json_headers(), json_body(&req)?)
            .await?;
        match resp.status() {
            s if s.is_success() => Ok(true),
            // 400 is upstream's answer to a name it cannot parse: not a model it serves.
            StatusCode::NOT_FOUND | StatusCode::BAD_REQUEST => Ok(false),
            _ => Err(self.client.error_from(resp).await),
        }
    }

    async fn manage_impl(&self, req: ManageRequest) -> Result<ProgressStream, BackendError> {
        match req {
            ManageRequest::Pull(mut r) => {
                r.stream = Some(true);
                self.post_ndjson("/api/pull", &r).await
            }
            ManageRequest::Push(mut r) => {
                r.stream = Some(true);
                self.post_ndjson("/api/push", &r).await
            }
            ManageRequest::Create(mut r) => {
                r.stream = Some(true);
                self.post_ndjson("/api/create", &r).await
            }
        }
    }

    async fn blob_exists_impl(&self, digest: String) -> Result<bool, BackendError> {
        let path = blob_path(&digest)?;
        let resp = self
            .client
            .send(Method::HEAD, &path, HeaderMap::new(), empty_body())
            .await?;
        match resp.status() {
            StatusCode::OK => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(self.client.error_from(resp).await),
        }
    }

    async fn blob_put_impl(&self, digest: String, body: RawBody) -> Result<bool, BackendError> {
        let path = blob_path(&digest)?;
        let body = stream_body(body).await?;
        let resp = self
            .client
            .send_ok(Method::POST, &path, HeaderMap::new(), body)
            .await?;
        Ok(resp.status() == StatusCode::CREATED)
    }

    async fn forward_impl(&self, req: RawRequest) -> Result<RawResponse, BackendError> {
        let method = Method::from_bytes(req.method.as_bytes()).map_err(|_| {
            BackendError::InvalidRequest(format!("invalid HTTP method {:?}", req.method))
        })?;
        let headers = forwardable_request_headers(req.headers);
        let body = stream_body(req.body).await?;
        let resp = self
            .client
            .send(method, &req.path_and_query, headers, body)
            .await?;
        let (mut parts, body) = resp.into_parts();
        strip_hop_by_hop(&mut parts.headers);
        Ok(RawResponse {
            status: parts.status.as_u16(),
            headers: headers_to_pairs(&parts.headers),
            body: self.client.body_stream(body),
        })
    }
}

/// `/api/blobs/<digest>`, refusing digests that would escape the path.
fn blob_path(digest: &str) -> Result<String, BackendError> {
    if digest.is_empty()
        || !digest
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b':' || b == b'-')
    {
        return Err(BackendError::InvalidRequest("invalid digest format".into()));
    }
    Ok(format!("/api/blobs/{digest}"))
}

/// Turn decoded objects into events, ending after the `done` object; a stream that ends before
/// it is an error (the upstream went away mid-generation).
fn until_done<T: Send + 'static>(
    objs: futures::stream::BoxStream<'static, Result<T, BackendError>>,
    to_events: fn(T, &mut Vec<Event>) -> bool,
    label: String,
) -> EventStream {
    futures::stream::unfold(Some(objs), move |state| {
        let label = label.clone();
        async move {
            let mut objs = state?;
            match objs.next().await {
                Some(Ok(obj)) => {
                    let mut out = Vec::new();
                    let done = to_events(obj, &mut out);
                    let batch: Vec<Result<Event, BackendError>> = out.into_iter().map(Ok).collect();
                    Some((batch, (!done).then_some(objs)))
                }
                Some(Err(e)) => Some((vec![Err(e)], None)),
                None => Some((
                    vec![Err(BackendError::Unavailable(format!(
                        "{label} ended the stream before the final object"
                    )))],
                    None,
                )),
            }
        }
    })
    .flat_map(futures::stream::iter)
    .boxed()
}

impl Backend for OllamaUpstream {
    fn name(&self) -> &str {
        &self.name
    }

    fn has_model(&self, model: &str) -> BackendFuture<bool> {
        let this = self.clone();
        let model = model.to_string();
        Box::pin(async move { this.has_model_impl(model).await })
    }

    fn generate(&self, req: Request) -> BackendFuture<EventStream> {
        let this = self.clone();
        Box::pin(async move { this.generate_impl(req).await })
    }

    fn embed(&self, req: EmbedRequest) -> BackendFuture<EmbedResponse> {
        let this = self.clone();
        Box::pin(async move { this.embed_impl(req).await })
    }

    fn list_models(&self) -> BackendFuture<Vec<wire::ListModel>> {
        let this = self.clone();
        Box::pin(async move {
            let r: wire::ListResponse = this.client.get_json("/api/tags").await?;
            Ok(r.models)
        })
    }

    fn loaded(&self) -> BackendFuture<Vec<wire::ProcessModel>> {
        let this = self.clone();
        Box::pin(async move {
            let r: wire::ProcessResponse = this.client.get_json("/api/ps").await?;
            Ok(r.models)
        })
    }

    fn show(&self, req: wire::ShowRequest) -> BackendFuture<wire::ShowResponse> {
        let this = self.clone();
        Box::pin(async move { this.post_read("/api/show", &req).await })
    }

    fn manage(&self, req: ManageRequest) -> BackendFuture<ProgressStream> {
        let this = self.clone();
        Box::pin(async move { this.manage_impl(req).await })
    }

    fn copy(&self, req: wire::CopyRequest) -> BackendFuture<()> {
        let this = self.clone();
        Box::pin(async move { this.post_ok("/api/copy", &req).await })
    }

    fn delete(&self, model: String) -> BackendFuture<()> {
        let this = self.clone();
        Box::pin(async move {
            let req = wire::DeleteRequest {
                model,
                ..Default::default()
            };
            let resp = this
                .client
                .send_ok(
                    Method::DELETE,
                    "/api/delete",
                    json_headers(),
                    json_body(&req)?,
                )
                .await?;
            this.client.read_body(resp.into_body(), 1024 * 1024).await?;
            Ok(())
        })
    }

    fn blob_exists(&self, digest: String) -> BackendFuture<bool> {
        let this = self.clone();
        Box::pin(async move { this.blob_exists_impl(digest).await })
    }

    fn blob_put(&self, digest: String, body: RawBody) -> BackendFuture<bool> {
        let this = self.clone();
        Box::pin(async move { this.blob_put_impl(digest, body).await })
    }

    fn forward(&self, req: RawRequest) -> Option<BackendFuture<RawResponse>> {
        let this = self.clone();
        Some(Box::pin(async move { this.forward_impl(req).await }))
    }

    fn is_transparent(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests;
