//! The engine's public face: its configuration, events and the [`Engine`] handle. One OS thread
//! owns every MLX object (MLX streams are thread-local), fed by a bounded queue; its scheduler
//! loop is [`crate::scheduler`]. Each request carries its own reply channel; dropping the
//! receiver cancels it. Loaded models stay resident until their keep-alive expires.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use ollmlx_models::LoadOptions;
use tokio::sync::mpsc::Sender;

use crate::embed::{EmbedJob, EmbedOutput};
use crate::error::EngineError;
use crate::generate::{self, GenerateRequest};
use crate::lookup::LookupPolicy;
use crate::prefix_cache::{PrefixCacheStats, PrefixCounters};
pub(crate) use crate::resident::Resident;
use crate::scheduler::{init_device, BatchCounters, EngineThread};

/// Which MLX device to compute on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceChoice {
    /// MLX's default: the GPU (Metal/CUDA) when the library has one, else the CPU.
    #[default]
    Auto,
    /// Force the CPU device.
    Cpu,
    /// Force the GPU device.
    Gpu,
}

/// Engine settings.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Requests that may wait in the queue before `Overloaded` is returned.
    pub queue_capacity: usize,
    /// Device to use.
    pub device: DeviceChoice,
    /// Dtype/quantization policy; `None` picks per device ([`LoadOptions::for_device`]).
    pub load: Option<LoadOptions>,
    /// Models kept resident at once (least recently used is evicted).
    pub max_loaded: usize,
    /// Keep-alive when a request does not say (Ollama: 5 minutes).
    pub default_keep_alive: KeepAlive,
    /// Prefill chunk in tokens (a request's larger `num_batch` wins). Default 2048.
    pub prefill_chunk: usize,
    /// KV-cache type, Ollama's `OLLAMA_KV_CACHE_TYPE`: `f16` (default, unquantized: the compute
    /// dtype), `q8_0` (8-bit) or `q4_0` (4-bit) MLX affine quantization. Unknown values fall
    /// back to unquantized, as Ollama does.
    pub kv_cache_type: String,
    /// Byte budget of each resident model's prefix cache (KV snapshots); 0 disables it.
    pub prefix_cache_bytes: u64,
    /// Parallel sequences per model (`OLLAMA_NUM_PARALLEL`, default 1): sizes the KV estimate.
    pub num_parallel: usize,
    /// Memory budget in bytes (`OLLMLX_MEMORY_LIMIT`); `None` = the device's (see
    /// [`crate::budget::memory_budget`]).
    pub memory_limit: Option<u64>,
    /// Which requests that name no draft model speculate with prompt-lookup drafts
    /// ([`crate::lookup`]; `OLLMLX_PROMPT_LOOKUP`). Off by default here; `ollmlx serve` uses
    /// [`LookupPolicy::Greedy`] unless told otherwise.
    pub prompt_lookup: LookupPolicy,
    /// How long an idle engine that batches (`num_parallel` > 1) waits, after a generation
    /// arrives, for more of the same burst, so that their prompts are prefilled as one group
    /// (`OLLMLX_BATCH_WINDOW_MS`). Zero by default here; see `ollmlx serve` for its default.
    pub admit_window: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            queue_capacity: 32,
            device: DeviceChoice::Auto,
            load: None,
            max_loaded: 1,
            default_keep_alive: KeepAlive::For(Duration::from_secs(300)),
            prefill_chunk: 2048,
            kv_cache_type: String::new(),
            prefix_cache_bytes: 1 << 30,
            num_parallel: 1,
            memory_limit: None,
            prompt_lookup: LookupPolicy::Off,
            admit_window: Duration::ZERO,
        }
    }
}

/// How long a model stays loaded after its last request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeepAlive {
    /// This long (zero unloads right after the request).
    For(Duration),
    /// Until unloaded explicitly.
    Forever,
}

/// A model as the engine addresses it: a name and where its weights are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelRef {
    /// Name clients use.
    pub name: String,
    /// A `.gguf` file or an MLX/Hugging Face safetensors directory.
    pub path: PathBuf,
}

/// What a generation stream delivers.
#[derive(Debug, Clone, PartialEq)]
pub enum EngineEvent {
    /// Newly generated visible text.
    Text(String),
    /// Newly generated reasoning text (thinking models).
    Thinking(String),
    /// Complete tool calls parsed from the output.
    ToolCalls(Vec<crate::tools::ToolCall>),
    /// Log probabilities of the next generated token (requests with logprobs); sent before
    /// the text that contains it.
    Logprobs(crate::logprobs::Logprob),
    /// The rendered prompt of a `render_only` request (terminal).
    Rendered(String),
    /// Finished.
    Done(generate::Done),
    /// Failed (terminal).
    Error(EngineError),
}

/// A resident model, as `/api/ps` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedInfo {
    /// Model name.
    pub name: String,
    /// Weights path.
    pub path: PathBuf,
    /// Estimated resident bytes (weights + KV cache + overhead, [`crate::budget::Footprint`]).
    pub size: u64,
    /// `None` = never expires.
    pub expires_at: Option<SystemTime>,
    /// Context window it was loaded for (the request's `num_ctx`).
    pub context_length: u64,
    /// Architecture string.
    pub architecture: String,
}

pub(crate) type EmbedReply = tokio::sync::oneshot::Sender<Result<EmbedOutput, EngineError>>;

/// What the handles send to the engine thread ([`crate::scheduler`]).
pub(crate) enum Command {
    Generate(Box<GenerateRequest>, Sender<EngineEvent>),
    Unload(String, Sender<EngineEvent>),
    Embed(Box<EmbedJob>, EmbedReply),
    Shutdown,
}

/// Handle to the engine thread (cheap to clone; the thread stops when the last handle drops).
#[derive(Clone)]
pub struct Engine {
    tx: SyncSender<Command>,
    status: Arc<Mutex<Vec<LoadedInfo>>>,
    device: Arc<str>,
    prefix_counters: Arc<PrefixCounters>,
    batch_counters: Arc<BatchCounters>,
    _guard: Arc<ShutdownGuard>,
}

/// Stops the engine thread when the last [`Engine`] handle drops, and waits for it: MLX state
/// must be released on its own thread before the process tears down MLX's globals (exiting with
/// the thread still running corrupted the heap at exit).
struct ShutdownGuard {
    tx: SyncSender<Command>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Drop for ShutdownGuard {
    fn drop(&mut self) {
        // Blocking send: queued work ahead of it finishes (or is cancelled) first; an error
        // means the thread is already gone.
        let _ = self.tx.send(Command::Shutdown);
        let handle = self.thread.lock().ok().and_then(|mut h| h.take());
        if let Some(h) = handle {
            if h.thread().id() != std::thread::current().id() {
                let _ = h.join();
            }
        }
    }
}

impl Engine {
    /// Spawn the engine thread and pick the device.
    pub fn start(config: EngineConfig) -> Result<Engine, EngineError> {
        let (tx, rx) = mpsc::sync_channel(config.queue_capacity.max(1));
        let status = Arc::new(Mutex::new(Vec::new()));
        let (ready_tx, ready_rx) = mpsc::channel();
        let st = status.clone();
        let counters = Arc::new(PrefixCounters::default());
        let pc = counters.clone();
        let batch_counters = Arc::new(BatchCounters::default());
        let bc = batch_counters.clone();
        let thread = std::thread::Builder::new()
            .name("ollmlx-mlx-engine".into())
            .spawn(move || {
                let device = match init_device(config.device) {
                    Ok(d) => d,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(device.clone()));
                EngineThread {
                    config,
                    device,
                    models: HashMap::new(),
                    status: st,
                    prefix_counters: pc,
                    batch_counters: bc,
                }
                .run(rx);
            })
            .map_err(|e| EngineError::Model(format!("spawning the engine thread: {e}")))?;
        let device = ready_rx.recv().map_err(|_| EngineError::Stopped)??;
        Ok(Engine {
            tx: tx.clone(),
            status,
            device: device.into(),
            prefix_counters: counters,
            batch_counters,
            _guard: Arc::new(ShutdownGuard {
                tx,
                thread: Mutex::new(Some(thread)),
            }),
        })
    }

    /// The device in use (`cpu` or `gpu`).
    pub fn device(&self) -> &str {
        &self.device
    }

    /// Queue a generation; events arrive on `reply`. Fails fast when the queue is full.
    pub fn generate(
        &self,
        req: GenerateRequest,
        reply: Sender<EngineEvent>,
    ) -> Result<(), EngineError> {
        self.send(Command::Generate(Box::new(req), reply))
    }

    /// Queue an embedding request; the result arrives on `reply`. Fails fast when the queue is
    /// full.
    pub fn embed(&self, job: EmbedJob, reply: EmbedReply) -> Result<(), EngineError> {
        self.send(Command::Embed(Box::new(job), reply))
    }

    /// Unload a model (a `Done` with reason `Unload` arrives on `reply`).
    pub fn unload(&self, name: &str, reply: Sender<EngineEvent>) -> Result<(), EngineError> {
        self.send(Command::Unload(name.to_string(), reply))
    }

    /// Prefix-cache counters over all models (hits, misses, reused/prefilled tokens,
    /// evictions, bytes and snapshots held), for telemetry.
    pub fn prefix_cache_stats(&self) -> PrefixCacheStats {
        self.prefix_counters.snapshot()
    }

    /// The scheduler's batch and queue, for telemetry.
    pub fn batch_stats(&self) -> BatchStats {
        let c = &self.batch_counters;
        BatchStats {
            running: c.running.load(Ordering::Relaxed),
            queued: c.queued.load(Ordering::Relaxed),
            peak: c.peak.load(Ordering::Relaxed),
            steps: c.steps.load(Ordering::Relaxed),
            rows: c.rows.load(Ordering::Relaxed),
            draft_proposed: c.draft_proposed.load(Ordering::Relaxed),
            draft_accepted: c.draft_accepted.load(Ordering::Relaxed),
            prefill_groups: c.prefill_groups.load(Ordering::Relaxed),
            grouped_rows: c.grouped_rows.load(Ordering::Relaxed),
        }
    }

    /// Models currently resident.
    pub fn loaded(&self) -> Vec<LoadedInfo> {
        self.status.lock().map(|s| s.clone()).unwrap_or_default()
    }

    fn send(&self, cmd: Command) -> Result<(), EngineError> {
        self.tx.try_send(cmd).map_err(|e| match e {
            TrySendError::Full(_) => EngineError::Overloaded,
            TrySendError::Disconnected(_) => EngineError::Stopped,
        })
    }
}

/// What the scheduler is doing (see [`Engine::batch_stats`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchStats {
    /// Requests decoding in the current batch.
    pub running: usize,
    /// Jobs queued behind it.
    pub queued: usize,
    /// Largest batch seen since start.
    pub peak: usize,
    /// Decode steps run.
    pub steps: u64,
    /// Rows over all decode steps (`rows / steps` = mean batch size).
    pub rows: u64,
    /// Draft tokens proposed by speculative rounds (draft models and prompt lookup).
    pub draft_proposed: u64,
    /// Of those, accepted by the target.
    pub draft_accepted: u64,
    /// Grouped prefills: several requests' prompts evaluated in one forward pass.
    pub prefill_groups: u64,
    /// Requests prefilled in those groups.
    pub grouped_rows: u64,
}
