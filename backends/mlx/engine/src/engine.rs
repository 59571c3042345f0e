//! The engine thread: one OS thread owns every MLX object (MLX streams are thread-local), fed by
//! a bounded queue. Each request carries its own reply channel; dropping the receiver cancels it.
//! Loaded models stay resident until their keep-alive expires.
//!
//! The thread is a scheduler loop: queued jobs start in arrival order; generations for the
//! model already decoding join its [`Batch`] between steps (up to `OLLAMA_NUM_PARALLEL` rows,
//! continuous batching), anything needing another model waits until the batch drains.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use mlx_rs::{Device, DeviceType};
use ollmlx_models::{KvQuant, LoadOptions};
use tokio::sync::mpsc::Sender;

use crate::batch::{Batch, Left};
use crate::embed::{EmbedJob, EmbedOutput};
use crate::error::EngineError;
use crate::generate::{self, GenerateRequest};
use crate::lookup::LookupPolicy;
use crate::outbox::Outbox;
use crate::prefix_cache::{PrefixCacheStats, PrefixCounters};
pub(crate) use crate::resident::Resident;
use crate::resident::{disk_size, load_draft, load_resident, start_lookup, ResidentSettings};
use crate::sequence::{self, Started};

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

type EmbedReply = tokio::sync::oneshot::Sender<Result<EmbedOutput, EngineError>>;

enum Command {
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

fn init_device(choice: DeviceChoice) -> Result<String, EngineError> {
    let gpu = match choice {
        DeviceChoice::Cpu => false,
        DeviceChoice::Gpu => true,
        DeviceChoice::Auto => matches!(Device::try_default()?.get_type()?, DeviceType::Gpu),
    };
    let device = if gpu { Device::gpu() } else { Device::cpu() };
    Device::set_default(&device);
    Ok(if gpu { "gpu" } else { "cpu" }.to_string())
}

struct EngineThread {
    config: EngineConfig,
    device: String,
    models: HashMap<String, Resident>,
    status: Arc<Mutex<Vec<LoadedInfo>>>,
    prefix_counters: Arc<PrefixCounters>,
    batch_counters: Arc<BatchCounters>,
}

/// Scheduler telemetry, written by the engine thread, read by anyone.
#[derive(Default)]
struct BatchCounters {
    running: AtomicUsize,
    queued: AtomicUsize,
    peak: AtomicUsize,
    steps: AtomicU64,
    rows: AtomicU64,
    draft_proposed: AtomicU64,
    draft_accepted: AtomicU64,
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
}

/// Queued work, in arrival order.
enum Job {
    Generate(Box<GenerateRequest>, Sender<EngineEvent>, Instant),
    Embed(Box<EmbedJob>, EmbedReply),
    Unload(String, Sender<EngineEvent>),
}

const INTERNAL_ERROR: &str = "internal error in the MLX engine; the model was unloaded";

impl EngineThread {
    /// The scheduler loop: take commands (blocking only when idle), admit queued jobs in
    /// arrival order between decode steps, step the running batch, expire idle models.
    fn run(mut self, rx: mpsc::Receiver<Command>) {
        let mut waiting: VecDeque<Job> = VecDeque::new();
        let mut batch: Option<Batch> = None;
        let mut stopping = false;
        loop {
            let busy = batch.is_some() || !waiting.is_empty();
            if stopping && !busy {
                break;
            }
            let mut next = if busy || stopping {
                rx.try_recv().ok()
            } else {
                match rx.recv_timeout(self.idle_wait()) {
                    Ok(cmd) => Some(cmd),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => break,
                }
            };
            while let Some(cmd) = next {
                match cmd {
                    Command::Generate(req, reply) => {
                        waiting.push_back(Job::Generate(req, reply, Instant::now()))
                    }
                    Command::Embed(job, reply) => waiting.push_back(Job::Embed(job, reply)),
                    Command::Unload(name, reply) => waiting.push_back(Job::Unload(name, reply)),
                    // Work queued before the shutdown still runs to the end.
                    Command::Shutdown => stopping = true,
                }
                next = rx.try_recv().ok();
            }
            self.dispatch(&mut waiting, &mut batch);
            if let Some(b) = batch.as_mut() {
                self.step(b);
                if b.is_empty() {
                    batch = None;
                }
            }
            self.expire(batch.as_ref().map(|b| b.model.as_str()));
            let running = batch.as_ref().map_or(0, Batch::decoding);
            let c = &self.batch_counters;
            c.running.store(running, Ordering::Relaxed);
            c.queued.store(waiting.len(), Ordering::Relaxed);
            c.peak.fetch_max(running, Ordering::Relaxed);
        }
    }

    /// How long to wait for a command when idle: until the next keep-alive expiry.
    fn idle_wait(&self) -> Duration {
        self.models
            .values()
            .filter_map(|m| m.expires)
            .min()
            .map_or(Duration::from_secs(3600), |t| {
                t.saturating_duration_since(Instant::now())
            })
            .max(Duration::from_millis(10))
    }

    /// Unload models whose keep-alive ran out (never the one decoding).
    fn expire(&mut self, running: Option<&str>) {
        let now = Instant::now();
        let before = self.models.len();
        self.models.retain(|name, m| {
            Some(name.as_str()) == running || !matches!(m.expires, Some(t) if t <= now)
        });
        if self.models.len() != before {
            self.publish();
        }
    }

    /// Start queued jobs in arrival order while they can run now: anything when no batch is
    /// running; otherwise a generation joins the batch when it is for the same model (no
    /// reload), the model batches and a slot is free (`OLLAMA_NUM_PARALLEL`). The first job that
    /// must wait holds back the ones behind it.
    fn dispatch(&mut self, waiting: &mut VecDeque<Job>, batch: &mut Option<Batch>) {
        while let Some(job) = waiting.front() {
            let runnable = match (job, batch.as_ref()) {
                (_, None) => true,
                (Job::Generate(req, ..), Some(b)) => {
                    req.model.name == b.model
                        && b.can_admit()
                        && b.len() < self.config.num_parallel.max(1)
                        && !self.needs_reload(&req.model, Some(req.num_ctx))
                        && self
                            .models
                            .get(&b.model)
                            .is_some_and(|m| m.model.supports_batch())
                }
                (Job::Embed(job, _), Some(b)) => {
                    job.model.name == b.model && !self.needs_reload(&job.model, job.num_ctx)
                }
                (Job::Unload(name, _), Some(b)) => *name != b.model,
            };
            if !runnable {
                break;
            }
            let Some(job) = waiting.pop_front() else {
                break;
            };
            match job {
                Job::Generate(req, reply, t0) => self.admit(req, reply, t0, batch),
                Job::Embed(job, reply) => {
                    let run = std::panic::AssertUnwindSafe(|| self.embed(*job));
                    let out = std::panic::catch_unwind(run).unwrap_or_else(|_| {
                        self.panicked(batch);
                        Err(EngineError::Model(INTERNAL_ERROR.into()))
                    });
                    let _ = reply.send(out);
                }
                Job::Unload(name, reply) => {
                    self.models.remove(&name);
                    self.publish();
                    let _ = reply.blocking_send(EngineEvent::Done(generate::Done::unloaded()));
                }
            }
        }
    }

    /// Dtype/quantization policy for loading weights on this device.
    fn load_options(&self) -> LoadOptions {
        self.config
            .load
            .unwrap_or_else(|| LoadOptions::for_device(self.device == "cpu"))
    }

    /// Whether serving `model` with `num_ctx` would (re)load it.
    fn needs_reload(&self, model: &ModelRef, num_ctx: Option<usize>) -> bool {
        let same = self
            .models
            .get(&model.name)
            .filter(|m| m.info.path == model.path)
            .map(|m| m.info.context_length);
        let ctx = num_ctx.map(|n| n as u64);
        !(same.is_some() && (ctx.is_none() || same == ctx))
    }

    /// Load the model if needed and add the request to the batch, where its prompt is
    /// evaluated and it joins the decoding rows (or finish it right away: load-only, failed).
    fn admit(
        &mut self,
        mut req: Box<GenerateRequest>,
        reply: Sender<EngineEvent>,
        t0: Instant,
        batch: &mut Option<Batch>,
    ) {
        if reply.is_closed() {
            return; // the client hung up while queued: nothing to load, render or prefill
        }
        let load_start = Instant::now();
        if let Err(e) = self.ensure_loaded(&req.model, Some(req.num_ctx)) {
            let _ = reply.blocking_send(EngineEvent::Error(e));
            return;
        }
        let keep_alive = req.keep_alive.unwrap_or(self.config.default_keep_alive);
        let name = req.model.name.clone();
        let opts = self.load_options();
        let Some(m) = self.models.get_mut(&name) else {
            return;
        };
        if m.model.as_encoder().is_some() {
            let msg = format!("\"{name}\" does not support generate");
            let _ = reply.blocking_send(EngineEvent::Error(EngineError::InvalidRequest(msg)));
            return;
        }
        if let Some(d) = &req.draft {
            if let Err(e) = load_draft(m, d, opts, req.draft_num_predict) {
                let _ = reply.blocking_send(EngineEvent::Error(e));
                return;
            }
        } else if self.config.prompt_lookup.applies(&req.sampler) {
            req.prompt_lookup = true;
            start_lookup(m, req.draft_num_predict);
        }
        let load = load_start.elapsed(); // the target and, when asked for, the draft
        let r = reply.clone();
        let run = std::panic::AssertUnwindSafe(|| sequence::start(m, req, r, load, t0));
        let last = match std::panic::catch_unwind(run) {
            Err(_) => {
                self.panicked(batch);
                Some(EngineEvent::Error(EngineError::Model(
                    INTERNAL_ERROR.into(),
                )))
            }
            Ok(Ok(Started::Prefilling(p))) => {
                batch.get_or_insert_with(|| Batch::new(&name)).admit(p);
                return;
            }
            Ok(Ok(Started::Done(done))) => Some(EngineEvent::Done(done)),
            Ok(Ok(Started::Rendered(text))) => Some(EngineEvent::Rendered(text)),
            Ok(Err(e)) => Some(EngineEvent::Error(e)),
        };
        self.request_done(&name, keep_alive, batch.as_ref(), last, Outbox::new(reply));
    }

    /// One decode step of the batch; rows that left get their final event.
    fn step(&mut self, batch: &mut Batch) {
        let Some(m) = self.models.get_mut(&batch.model) else {
            let mut gone = Some(std::mem::replace(batch, Batch::new("")));
            self.fail_batch(
                &mut gone,
                EngineError::Model("the model was unloaded".into()),
            );
            return;
        };
        let run = std::panic::AssertUnwindSafe(|| batch.step(m));
        let result = std::panic::catch_unwind(run);
        let rows = batch.last_rows;
        if rows > 0 {
            let c = &self.batch_counters;
            c.peak.fetch_max(rows, Ordering::Relaxed);
            c.steps.fetch_add(1, Ordering::Relaxed);
            c.rows.fetch_add(rows as u64, Ordering::Relaxed);
            let (proposed, accepted) = batch.last_drafts;
            c.draft_proposed.fetch_add(proposed, Ordering::Relaxed);
            c.draft_accepted.fetch_add(accepted, Ordering::Relaxed);
        }
        match result {
            Ok(Ok(left)) => {
                for row in left {
                    self.leave(row, batch);
                }
            }
            Ok(Err(e)) => {
                if let Some(m) = self.models.get_mut(&batch.model) {
                    m.caches.clear();
                    m.cached_tokens.clear();
                }
                let mut b = Some(std::mem::replace(batch, Batch::new("")));
                self.fail_batch(&mut b, e);
            }
            Err(_) => {
                let mut b = Some(std::mem::replace(batch, Batch::new("")));
                self.panicked(&mut b);
            }
        }
    }

    /// A row left the batch: keep its KV state for prefix reuse (unless it failed), flush and
    /// send its final event, apply its keep-alive.
    fn leave(&mut self, row: Left, batch: &Batch) {
        let Left {
            mut seq,
            outcome,
            caches,
        } = row;
        let keep_alive = seq.req.keep_alive.unwrap_or(self.config.default_keep_alive);
        let Some(m) = self.models.get_mut(&batch.model) else {
            return;
        };
        let last = match outcome {
            Ok(reason) => {
                m.remember(std::mem::take(&mut seq.cached), caches);
                reason.and_then(|r| seq.finish(m, r)).map(EngineEvent::Done)
            }
            Err(e) => Some(EngineEvent::Error(e)),
        };
        self.request_done(&batch.model, keep_alive, Some(batch), last, seq.reply);
    }

    /// After a request: apply its keep-alive (an unload waits for the batch's other rows),
    /// publish the new state, then send its final event (so a client that saw `Done` sees
    /// the state it left).
    fn request_done(
        &mut self,
        name: &str,
        keep_alive: KeepAlive,
        batch: Option<&Batch>,
        last: Option<EngineEvent>,
        reply: Outbox,
    ) {
        let busy = batch.is_some_and(|b| b.model == name && !b.is_empty());
        let now = Instant::now();
        if let Some(m) = self.models.get_mut(name) {
            m.last_used = now;
            match keep_alive {
                KeepAlive::Forever => m.expires = None,
                KeepAlive::For(d) if d.is_zero() && busy => m.expires = Some(now),
                KeepAlive::For(d) if d.is_zero() => {
                    self.models.remove(name);
                }
                KeepAlive::For(d) => m.expires = Some(now + d),
            }
        }
        self.publish();
        reply.finish(last);
    }

    /// The batch failed as a whole: every row gets `err`.
    fn fail_batch(&mut self, batch: &mut Option<Batch>, err: EngineError) {
        if let Some(mut b) = batch.take() {
            let name = b.model.clone();
            for seq in b.drain() {
                let keep_alive = seq.req.keep_alive.unwrap_or(self.config.default_keep_alive);
                let ev = Some(EngineEvent::Error(err.clone()));
                self.request_done(&name, keep_alive, None, ev, seq.reply);
            }
        }
    }

    /// A bug (or an MLX exception surfacing as a panic) must not take the engine down: drop
    /// the possibly inconsistent models and fail what was running.
    fn panicked(&mut self, batch: &mut Option<Batch>) {
        self.models.clear();
        self.publish();
        self.fail_batch(batch, EngineError::Model(INTERNAL_ERROR.into()));
    }

    fn embed(&mut self, job: EmbedJob) -> Result<EmbedOutput, EngineError> {
        let t0 = Instant::now();
        self.ensure_loaded(&job.model, job.num_ctx)?;
        let load = t0.elapsed();
        let keep_alive = job.keep_alive.unwrap_or(self.config.default_keep_alive);
        let name = job.model.name.clone();
        let m = self
            .models
            .get_mut(&name)
            .ok_or_else(|| EngineError::Model(format!("{name} is not loaded")))?;
        let result = crate::embed::run(m, &job);
        m.last_used = Instant::now();
        match keep_alive {
            KeepAlive::Forever => m.expires = None,
            KeepAlive::For(d) if d.is_zero() => {
                self.models.remove(&name);
            }
            KeepAlive::For(d) => m.expires = Some(Instant::now() + d),
        }
        self.publish();
        let (embeddings, prompt_eval_count) = result?;
        Ok(EmbedOutput {
            embeddings,
            prompt_eval_count,
            load,
            total: t0.elapsed(),
        })
    }

    /// Make `model` resident for `num_ctx` tokens, evicting idle models per the memory budget
    /// and `max_loaded` (decisions in [`crate::budget`]).
    fn ensure_loaded(
        &mut self,
        model: &ModelRef,
        num_ctx: Option<usize>,
    ) -> Result<(), EngineError> {
        let same = self
            .models
            .get(&model.name)
            .filter(|m| m.info.path == model.path)
            .map(|m| m.info.context_length);
        let ctx = num_ctx.map(|n| n as u64);
        if same.is_some() && (ctx.is_none() || same == ctx) {
            return Ok(());
        }
        let opts = self.load_options();
        let need = crate::budget::estimate(
            &model.path,
            opts,
            ctx.unwrap_or(0),
            self.config.num_parallel as u64,
        )
        .map_or_else(|_| disk_size(&model.path), |f| f.total());
        let others: Vec<_> = self
            .models
            .iter()
            .filter(|(k, _)| *k != &model.name)
            .map(|(k, m)| crate::budget::Candidate {
                name: k.clone(),
                bytes: m.info.size,
                last_used: m.last_used,
                busy: false, // one request at a time: nothing else is in flight here
            })
            .collect();
        let budget = crate::budget::memory_budget(self.config.memory_limit, self.device != "cpu");
        let evict = crate::budget::plan(need, budget, self.config.max_loaded, &others)?;
        if !evict.is_empty() {
            for name in evict {
                self.models.remove(&name);
            }
            // Hand the evicted models' buffers back instead of keeping them in MLX's cache.
            let _ = mlx_rs::memory::clear_cache();
        }
        if same.is_none() {
            self.models.remove(&model.name);
            let resident = load_resident(model, opts, &self.resident_settings())?;
            self.models.insert(model.name.clone(), resident);
        }
        if let Some(m) = self.models.get_mut(&model.name) {
            m.info.size = need;
            m.info.context_length = ctx.unwrap_or(m.info.context_length);
        }
        self.publish();
        Ok(())
    }

    fn publish(&self) {
        let now_i = Instant::now();
        let now_s = SystemTime::now();
        let list = self
            .models
            .values()
            .map(|m| LoadedInfo {
                expires_at: m
                    .expires
                    .map(|t| now_s + t.saturating_duration_since(now_i)),
                ..m.info.clone()
            })
            .collect();
        if let Ok(mut s) = self.status.lock() {
            *s = list;
        }
    }
}

impl EngineThread {
    fn resident_settings(&self) -> ResidentSettings {
        let kv_quant = KvQuant::from_ollama_type(&self.config.kv_cache_type).unwrap_or(None);
        ResidentSettings {
            prefill_chunk: self.config.prefill_chunk.max(1),
            kv_quant,
            kv_type: match kv_quant {
                Some(q) => format!("q{}_0", q.bits),
                None => "f16".into(),
            },
            prefix_cache_bytes: self.config.prefix_cache_bytes,
            counters: self.prefix_counters.clone(),
        }
    }
}
