//! ollmlx-mock: a scripted, deterministic [`Backend`] for protocol tests.
//!
//! It stands where the MLX engine or an upstream would, so that server, dialect and client tests
//! exercise the whole HTTP stack with known answers. Each model has a script: the events to stream
//! (or an error before or during the stream), with an optional delay between events so tests can
//! disconnect mid-stream and observe the cancellation.

#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use ollmlx_infer::{
    Backend, BackendError, BackendFuture, DoneReason, EmbedRequest, EmbedResponse, Event,
    EventStream, Input, Request, Stats,
};
use ollmlx_wire::ollama as wire;
use ollmlx_wire::time::Timestamp;
use tokio::sync::mpsc;

/// What a scripted model does when asked to generate.
#[derive(Debug, Clone)]
pub enum Script {
    /// Stream these events, then end.
    Events(Vec<Event>),
    /// Fail before the stream starts.
    FailBefore(BackendError),
    /// Stream these events, then fail.
    FailAfter(Vec<Event>, BackendError),
    /// Echo the last user message (or prompt) word by word, then `Done(stop)`.
    Echo,
}

/// A scripted model.
#[derive(Debug, Clone)]
pub struct MockModel {
    /// Display name with tag, e.g. `mock:latest`.
    pub name: String,
    /// What generation does.
    pub script: Script,
    /// Embedding width (0 = not an embedding model).
    pub embedding_dim: usize,
    /// Capabilities reported by show/tags.
    pub capabilities: Vec<String>,
}

impl MockModel {
    /// An echoing chat model.
    pub fn echo(name: &str) -> Self {
        MockModel {
            name: name.to_string(),
            script: Script::Echo,
            embedding_dim: 4,
            capabilities: vec!["completion".into(), "tools".into()],
        }
    }

    /// A model that streams exactly `events`.
    pub fn scripted(name: &str, events: Vec<Event>) -> Self {
        MockModel {
            script: Script::Events(events),
            ..MockModel::echo(name)
        }
    }
}

/// Observable counters, shared with the test.
#[derive(Debug, Default)]
pub struct Counters {
    /// Generations started.
    pub started: AtomicUsize,
    /// Generations that ran to completion.
    pub completed: AtomicUsize,
    /// Generations abandoned because the receiver was dropped (client disconnect).
    pub cancelled: AtomicUsize,
    /// `has_model` questions answered.
    pub lookups: AtomicUsize,
}

/// The scripted backend.
#[derive(Clone)]
pub struct MockBackend {
    models: Arc<Mutex<BTreeMap<String, MockModel>>>,
    delay: Duration,
    /// Counters for assertions.
    pub counters: Arc<Counters>,
}

impl MockBackend {
    /// A backend serving `models`, streaming without delay.
    pub fn new(models: Vec<MockModel>) -> Self {
        let map = models.into_iter().map(|m| (m.name.clone(), m)).collect();
        MockBackend {
            models: Arc::new(Mutex::new(map)),
            delay: Duration::ZERO,
            counters: Arc::default(),
        }
    }

    /// Wait this long before each event (for disconnect tests).
    pub fn with_delay(mut self, d: Duration) -> Self {
        self.delay = d;
        self
    }

    fn lookup(&self, model: &str) -> Option<MockModel> {
        let full = if model.contains(':') {
            model.to_string()
        } else {
            format!("{model}:latest")
        };
        let models = self.models.lock().ok()?;
        models.get(&full).or_else(|| models.get(model)).cloned()
    }

    fn details() -> wire::ModelDetails {
        wire::ModelDetails {
            parent_model: String::new(),
            format: "gguf".into(),
            family: "mock".into(),
            families: Some(vec!["mock".into()]),
            parameter_size: "1M".into(),
            quantization_level: "F32".into(),
            context_length: 0,
            embedding_length: 0,
        }
    }
}

fn echo_events(req: &Request) -> Vec<Event> {
    let text = match &req.input {
        Input::Chat(c) => c
            .messages
            .iter()
            .rev()
            .find(|m| m.role == "user")
            .map(|m| m.content.clone())
            .unwrap_or_default(),
        Input::Generate(g) => g.prompt.clone(),
    };
    let mut events: Vec<Event> = Vec::new();
    let mut count = 0;
    for (i, w) in text.split(' ').enumerate() {
        count += 1;
        events.push(Event::content(if i == 0 {
            w.to_string()
        } else {
            format!(" {w}")
        }));
    }
    let limit = req
        .options
        .num_predict
        .filter(|n| *n >= 0)
        .map(|n| n as usize);
    let mut reason = DoneReason::Stop;
    if let Some(n) = limit {
        if n < events.len() {
            events.truncate(n);
            count = n;
            reason = DoneReason::Length;
        }
    }
    events.push(Event::Done {
        reason,
        stats: Stats {
            total_duration: 1_000_000,
            load_duration: 1000,
            prompt_eval_count: text.split(' ').count() as u64,
            prompt_eval_duration: 2000,
            eval_count: count as u64,
            eval_duration: 3000,
        },
        context: matches!(req.input, Input::Generate(_)).then(|| vec![1, 2, 3]),
    });
    events
}

fn is_empty_prompt(req: &Request) -> bool {
    match &req.input {
        Input::Chat(c) => c.messages.is_empty(),
        Input::Generate(g) => g.prompt.is_empty(),
    }
}

impl Backend for MockBackend {
    fn name(&self) -> &str {
        "mock"
    }

    fn has_model(&self, model: &str) -> BackendFuture<bool> {
        self.counters.lookups.fetch_add(1, Ordering::SeqCst);
        let found = self.lookup(model).is_some();
        Box::pin(async move { Ok(found) })
    }

    fn generate(&self, req: Request) -> BackendFuture<EventStream> {
        let model = self.lookup(&req.model);
        let delay = self.delay;
        let counters = self.counters.clone();
        Box::pin(async move {
            let model = model.ok_or_else(|| BackendError::ModelNotFound {
                model: req.model.clone(),
            })?;
            if is_empty_prompt(&req) {
                let reason = if req.keep_alive.is_some_and(|k| k.is_zero()) {
                    DoneReason::Unload
                } else {
                    DoneReason::Load
                };
                let ev = Event::Done {
                    reason,
                    stats: Stats::default(),
                    context: None,
                };
                return Ok(futures::stream::iter(vec![Ok(ev)]).boxed());
            }
            let (events, tail_err) = match model.script {
                Script::Events(e) => (e, None),
                Script::FailBefore(e) => return Err(e),
                Script::FailAfter(e, err) => (e, Some(err)),
                Script::Echo => (echo_events(&req), None),
            };
            counters.started.fetch_add(1, Ordering::SeqCst);
            let (tx, rx) = mpsc::channel::<Result<Event, BackendError>>(64);
            tokio::spawn(async move {
                for ev in events {
                    if !delay.is_zero() {
                        tokio::time::sleep(delay).await;
                    }
                    if tx.send(Ok(ev)).await.is_err() {
                        counters.cancelled.fetch_add(1, Ordering::SeqCst);
                        return;
                    }
                }
                if let Some(err) = tail_err {
                    let _ = tx.send(Err(err)).await;
                }
                counters.completed.fetch_add(1, Ordering::SeqCst);
            });
            Ok(tokio_stream_from(rx))
        })
    }

    fn embed(&self, req: EmbedRequest) -> BackendFuture<EmbedResponse> {
        let model = self.lookup(&req.model);
        Box::pin(async move {
            let model = model.ok_or_else(|| BackendError::ModelNotFound {
                model: req.model.clone(),
            })?;
            let dim = model.embedding_dim.max(1);
            let embeddings = req
                .input
                .iter()
                .map(|s| {
                    // Deterministic vector from the text's bytes.
                    let mut v = vec![0f32; dim];
                    for (i, b) in s.bytes().enumerate() {
                        v[i % dim] += b as f32;
                    }
                    v
                })
                .collect();
            Ok(EmbedResponse {
                embeddings,
                prompt_eval_count: req.input.iter().map(|s| s.split(' ').count() as u64).sum(),
                load_duration: 1000,
                total_duration: 2000,
            })
        })
    }

    fn list_models(&self) -> BackendFuture<Vec<wire::ListModel>> {
        let models: Vec<MockModel> = self
            .models
            .lock()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default();
        Box::pin(async move {
            Ok(models
                .into_iter()
                .map(|m| wire::ListModel {
                    name: m.name.clone(),
                    model: m.name.clone(),
                    remote_model: String::new(),
                    remote_host: String::new(),
                    modified_at: Timestamp::zero(),
                    size: 1024,
                    digest: format!("{:064x}", m.name.len()),
                    details: MockBackend::details(),
                    capabilities: m.capabilities,
                })
                .collect())
        })
    }

    fn loaded(&self) -> BackendFuture<Vec<wire::ProcessModel>> {
        Box::pin(async { Ok(Vec::new()) })
    }

    fn show(&self, req: wire::ShowRequest) -> BackendFuture<wire::ShowResponse> {
        let name = req.model_name().to_string();
        let model = self.lookup(&name);
        Box::pin(async move {
            let m = model.ok_or(BackendError::ModelNotFound { model: name })?;
            let mut info = serde_json::Map::new();
            info.insert("general.architecture".into(), "mock".into());
            info.insert("mock.context_length".into(), 4096.into());
            Ok(wire::ShowResponse {
                license: String::new(),
                modelfile: format!("FROM {}\n", m.name),
                parameters: String::new(),
                template: "{{ .Prompt }}".into(),
                system: String::new(),
                renderer: String::new(),
                parser: String::new(),
                details: MockBackend::details(),
                messages: vec![],
                remote_model: String::new(),
                remote_host: String::new(),
                model_info: info,
                projector_info: None,
                tensors: vec![],
                capabilities: m.capabilities,
                modified_at: Timestamp::zero(),
                requires: String::new(),
            })
        })
    }

    fn copy(&self, req: wire::CopyRequest) -> BackendFuture<()> {
        let src = self.lookup(&req.source);
        let models = self.models.clone();
        Box::pin(async move {
            let mut m = src.ok_or(BackendError::ModelNotFound {
                model: req.source.clone(),
            })?;
            m.name = if req.destination.contains(':') {
                req.destination
            } else {
                format!("{}:latest", req.destination)
            };
            if let Ok(mut all) = models.lock() {
                all.insert(m.name.clone(), m);
            }
            Ok(())
        })
    }

    fn delete(&self, model: String) -> BackendFuture<()> {
        let found = self.lookup(&model);
        let models = self.models.clone();
        Box::pin(async move {
            let m = found.ok_or(BackendError::ModelNotFound { model })?;
            if let Ok(mut all) = models.lock() {
                all.remove(&m.name);
            }
            Ok(())
        })
    }
}

fn tokio_stream_from(mut rx: mpsc::Receiver<Result<Event, BackendError>>) -> EventStream {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx)).boxed()
}
