//! The engine thread's scheduler loop (spawned by [`crate::engine::Engine::start`]): it owns
//! every MLX object (MLX streams are thread-local) and the resident models, takes commands from
//! the handles' bounded queue, starts queued jobs in arrival order, lets generations for the
//! model already decoding join its [`Batch`] between steps (up to `OLLAMA_NUM_PARALLEL` rows,
//! continuous batching), makes anything needing another model wait until the batch drains, and
//! expires idle models when their keep-alive runs out.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use mlx_rs::{Device, DeviceType};
use ollmlx_models::{KvQuant, LoadOptions};
use tokio::sync::mpsc::Sender;

use crate::batch::{Batch, Left};
use crate::embed::{EmbedJob, EmbedOutput};
use crate::engine::{
    Command, DeviceChoice, EmbedReply, EngineConfig, EngineEvent, KeepAlive, LoadedInfo, ModelRef,
};
use crate::error::EngineError;
use crate::generate::{self, GenerateRequest};
use crate::outbox::Outbox;
use crate::prefix_cache::PrefixCounters;
use crate::resident::{
    disk_size, load_draft, load_resident, start_lookup, Resident, ResidentSettings,
};
use crate::sequence::{self, Started};

pub(crate) fn init_device(choice: DeviceChoice) -> Result<String, EngineError> {
    let gpu = match choice {
        DeviceChoice::Cpu => false,
        DeviceChoice::Gpu => true,
        DeviceChoice::Auto => matches!(Device::try_default()?.get_type()?, DeviceType::Gpu),
    };
    let device = if gpu { Device::gpu() } else { Device::cpu() };
    Device::set_default(&device);
    Ok(if gpu { "gpu" } else { "cpu" }.to_string())
}

/// The engine thread's state: what it owns and what it publishes to the handles.
pub(crate) struct EngineThread {
    pub(crate) config: EngineConfig,
    pub(crate) device: String,
    pub(crate) models: HashMap<String, Resident>,
    pub(crate) status: Arc<Mutex<Vec<LoadedInfo>>>,
    pub(crate) prefix_counters: Arc<PrefixCounters>,
    pub(crate) batch_counters: Arc<BatchCounters>,
}

/// Scheduler telemetry, written by the engine thread, read by anyone.
#[derive(Default)]
pub(crate) struct BatchCounters {
    pub(crate) running: AtomicUsize,
    pub(crate) queued: AtomicUsize,
    pub(crate) peak: AtomicUsize,
    pub(crate) steps: AtomicU64,
    pub(crate) rows: AtomicU64,
    pub(crate) draft_proposed: AtomicU64,
    pub(crate) draft_accepted: AtomicU64,
    pub(crate) prefill_groups: AtomicU64,
    pub(crate) grouped_rows: AtomicU64,
}

/// Queued work, in arrival order.
enum Job {
    Generate(Box<GenerateRequest>, Sender<EngineEvent>, Instant),
    Embed(Box<EmbedJob>, EmbedReply),
    Unload(String, Sender<EngineEvent>),
}

const INTERNAL_ERROR: &str = "internal error in the MLX engine; the model was unloaded";

/// Queue a command as a job (or note the shutdown: work queued before it still runs).
fn intake(cmd: Command, waiting: &mut VecDeque<Job>, stopping: &mut bool) {
    match cmd {
        Command::Generate(req, reply) => {
            waiting.push_back(Job::Generate(req, reply, Instant::now()))
        }
        Command::Embed(job, reply) => waiting.push_back(Job::Embed(job, reply)),
        Command::Unload(name, reply) => waiting.push_back(Job::Unload(name, reply)),
        Command::Shutdown => *stopping = true,
    }
}

impl EngineThread {
    /// The scheduler loop: take commands (blocking only when idle), admit queued jobs in
    /// arrival order between decode steps, step the running batch, expire idle models.
    pub(crate) fn run(mut self, rx: mpsc::Receiver<Command>) {
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
                intake(cmd, &mut waiting, &mut stopping);
                next = rx.try_recv().ok();
            }
            if !busy && !stopping {
                self.gather_burst(&rx, &mut waiting, &mut stopping);
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

    /// An idle engine that batches and was just handed a generation waits up to
    /// `admit_window` for the rest of a burst (clients that send together arrive a few
    /// milliseconds apart), so that their prompts are prefilled as one group
    /// ([`crate::prefill_group`]) instead of the first one alone. Stops early once a batch's
    /// worth is waiting.
    fn gather_burst(
        &self,
        rx: &mpsc::Receiver<Command>,
        waiting: &mut VecDeque<Job>,
        stopping: &mut bool,
    ) {
        let parallel = self.config.num_parallel;
        let window = self.config.admit_window;
        if parallel < 2 || window.is_zero() {
            return;
        }
        let generations =
            |w: &VecDeque<Job>| w.iter().filter(|j| matches!(j, Job::Generate(..))).count();
        if generations(waiting) == 0 {
            return;
        }
        let until = Instant::now() + window;
        while generations(waiting) < parallel && !*stopping {
            let Some(left) = until.checked_duration_since(Instant::now()) else {
                break;
            };
            match rx.recv_timeout(left) {
                Ok(cmd) => intake(cmd, waiting, stopping),
                Err(_) => break,
            }
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

    /// The context length `model` is loaded with, when these same weights are resident.
    fn loaded_context(&self, model: &ModelRef) -> Option<u64> {
        self.models
            .get(&model.name)
            .filter(|m| m.info.path == model.path)
            .map(|m| m.info.context_length)
    }

    /// Whether serving `model` with `num_ctx` would (re)load it.
    fn needs_reload(&self, model: &ModelRef, num_ctx: Option<usize>) -> bool {
        let same = self.loaded_context(model);
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
        }
        req.prompt_lookup = req.draft.is_none() && self.config.prompt_lookup.applies(&req.sampler);
        if req.prompt_lookup {
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
        if batch.last_group > 0 {
            let c = &self.batch_counters;
            c.prefill_groups.fetch_add(1, Ordering::Relaxed);
            c.grouped_rows
                .fetch_add(batch.last_group as u64, Ordering::Relaxed);
        }
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
        if !self.needs_reload(model, num_ctx) {
            return Ok(());
        }
        let same = self.loaded_context(model);
        let ctx = num_ctx.map(|n| n as u64);
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
