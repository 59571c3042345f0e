//! `GET /metrics`: Prometheus telemetry (text exposition format 0.0.4), an ollmlx extension.
//!
//! Where it sits in the request path: `app.rs` counts every response by route and status
//! ([`Metrics::record_request`]); the generation handler wraps each backend event stream in
//! [`Metrics::meter`], which times the first `Delta` (TTFT) and the gaps between later ones
//! (inter-token latency) and adds the token counts of the final `Done`. Everything on the token
//! path is an atomic add, no lock. A scrape renders those, plus `Backend::loaded()` (models in
//! memory and their size) and whatever `Backend::metrics()` reports, for every backend.
//!
//! Ollama has no such route; no Ollama route's bytes depend on anything here.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::{Stream, StreamExt};
use http::{Response, StatusCode};
use ollmlx_infer::{BackendError, BackendMetric, Event, EventStream, MetricKind};

use crate::body::{with_type, BoxBody};
use crate::routes::Route;
use crate::state::AppState;

/// The Content-Type of the Prometheus text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Upper bounds (seconds) of the time-to-first-token buckets.
pub const TTFT_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];
/// Upper bounds (seconds) of the inter-token latency buckets.
pub const ITL_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];
/// Upper bounds (seconds) of the whole-generation duration buckets.
pub const DURATION_BUCKETS: &[f64] =
    &[0.01, 0.05, 0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0];

/// A fixed-bucket histogram of durations, updated with atomics only.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    /// Non-cumulative counts; the last slot is `+Inf`.
    counts: Vec<AtomicU64>,
    count: AtomicU64,
    sum_ns: AtomicU64,
}

impl Histogram {
    /// An empty histogram with these upper bounds (seconds, ascending).
    pub fn new(bounds: &'static [f64]) -> Self {
        Histogram {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum_ns: AtomicU64::new(0),
        }
    }

    /// Record one observation.
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let slot = self
            .bounds
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(self.bounds.len());
        self.counts[slot].fetch_add(1, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.sum_ns.fetch_add(ns, Ordering::Relaxed);
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        family(out, name, help, "histogram");
        let mut cumulative = 0u64;
        for (i, c) in self.counts.iter().enumerate() {
            cumulative += c.load(Ordering::Relaxed);
            let le = match self.bounds.get(i) {
                Some(b) => format_float(*b),
                None => "+Inf".to_string(),
            };
            let _ = writeln!(out, "{name}_bucket{{le=\"{le}\"}} {cumulative}");
        }
        let sum = self.sum_ns.load(Ordering::Relaxed) as f64 / 1e9;
        let _ = writeln!(out, "{name}_sum {}", format_float(sum));
        let _ = writeln!(out, "{name}_count {}", self.count());
    }
}

/// Server-side counters shared by every request (one per `AppState`).
#[derive(Debug)]
pub struct Metrics {
    started: Instant,
    /// (route label, status) → responses. Locked once per request, never per token.
    requests: Mutex<BTreeMap<(&'static str, u16), u64>>,
    in_flight: AtomicI64,
    waiting: AtomicI64,
    generations: AtomicU64,
    generation_errors: AtomicU64,
    prompt_tokens: AtomicU64,
    generated_tokens: AtomicU64,
    prompt_eval_ns: AtomicU64,
    eval_ns: AtomicU64,
    load_ns: AtomicU64,
    /// Time from request decode to the first `Delta`.
    pub ttft: Histogram,
    /// Time between consecutive `Delta`s of one generation.
    pub itl: Histogram,
    /// Time from request decode to the end of the event stream.
    pub duration: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Zeroed metrics.
    pub fn new() -> Self {
        Metrics {
            started: Instant::now(),
            requests: Mutex::new(BTreeMap::new()),
            in_flight: AtomicI64::new(0),
            waiting: AtomicI64::new(0),
            generations: AtomicU64::new(0),
            generation_errors: AtomicU64::new(0),
            prompt_tokens: AtomicU64::new(0),
            generated_tokens: AtomicU64::new(0),
            prompt_eval_ns: AtomicU64::new(0),
            eval_ns: AtomicU64::new(0),
            load_ns: AtomicU64::new(0),
            ttft: Histogram::new(TTFT_BUCKETS),
            itl: Histogram::new(ITL_BUCKETS),
            duration: Histogram::new(DURATION_BUCKETS),
        }
    }

    /// Count one response (called by the app service when the response head is ready).
    pub fn record_request(&self, route: &'static str, status: u16) {
        if let Ok(mut map) = self.requests.lock() {
            *map.entry((route, status)).or_insert(0) += 1;
        }
    }

    /// Responses counted so far for `route` with `status`.
    pub fn requests(&self, route: &str, status: u16) -> u64 {
        self.requests
            .lock()
            .map(|m| {
                m.iter()
                    .filter(|((r, s), _)| *r == route && *s == status)
                    .map(|(_, n)| *n)
                    .sum()
            })
            .unwrap_or(0)
    }

    /// Generations whose event stream is still open.
    pub fn in_flight(&self) -> i64 {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Start timing a generation (call right after the request is decoded). The returned guard
    /// counts it as in flight and waiting for its first token until [`Metrics::meter`] takes it.
    pub fn start(self: &Arc<Self>) -> Meter {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.waiting.fetch_add(1, Ordering::Relaxed);
        self.generations.fetch_add(1, Ordering::Relaxed);
        Meter {
            metrics: self.clone(),
            start: Instant::now(),
            last_delta: None,
            done: false,
        }
    }

    /// Wrap a backend event stream so that every event passing through is measured.
    pub fn meter(meter: Meter, events: EventStream) -> EventStream {
        MeteredStream {
            inner: events,
            meter,
        }
        .boxed()
    }

    /// Render the text exposition (server counters, loaded models, backend samples).
    pub async fn render(&self, state: &AppState) -> String {
        let mut out = String::with_capacity(4096);
        self.render_server(&mut out);
        render_backends(&mut out, state).await;
        out
    }

    fn render_server(&self, out: &mut String) {
        family(
            out,
            "ollmlx_http_requests_total",
            "HTTP responses by route and status code.",
            "counter",
        );
        if let Ok(map) = self.requests.lock() {
            for ((route, status), n) in map.iter() {
                let _ = writeln!(
                    out,
                    "ollmlx_http_requests_total{{route=\"{}\",status=\"{status}\"}} {n}",
                    escape(route)
                );
            }
        }
        let gauges: [(&str, &str, i64); 2] = [
            (
                "ollmlx_generations_in_flight",
                "Generations whose event stream is open (queued, prefilling or decoding).",
                self.in_flight.load(Ordering::Relaxed),
            ),
            (
                "ollmlx_generations_waiting",
                "Generations still waiting for their first token (queue depth plus prefill).",
                self.waiting.load(Ordering::Relaxed),
            ),
        ];
        for (name, help, v) in gauges {
            family(out, name, help, "gauge");
            let _ = writeln!(out, "{name} {v}");
        }
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let secs = |a: &AtomicU64| format_float(a.load(Ordering::Relaxed) as f64 / 1e9);
        let counters: [(&str, &str, String); 8] = [
            (
                "ollmlx_generations_total",
                "Generations started.",
                load(&self.generations).to_string(),
            ),
            (
                "ollmlx_generation_errors_total",
                "Generations that ended with a backend error.",
                load(&self.generation_errors).to_string(),
            ),
            (
                "ollmlx_prompt_tokens_total",
                "Prompt tokens evaluated (prompt_eval_count of finished generations).",
                load(&self.prompt_tokens).to_string(),
            ),
            (
                "ollmlx_generated_tokens_total",
                "Tokens generated (eval_count of finished generations).",
                load(&self.generated_tokens).to_string(),
            ),
            (
                "ollmlx_prompt_eval_seconds_total",
                "Time spent on prompts (prompt_eval_duration); prompt tokens/s = rate(tokens)/rate(this).",
                secs(&self.prompt_eval_ns),
            ),
            (
                "ollmlx_eval_seconds_total",
                "Time spent generating (eval_duration); decode tokens/s = rate(tokens)/rate(this).",
                secs(&self.eval_ns),
            ),
            (
                "ollmlx_load_seconds_total",
                "Time spent loading models (load_duration).",
                secs(&self.load_ns),
            ),
            (
                "ollmlx_uptime_seconds_total",
                "Seconds since the server started.",
                format_float(self.started.elapsed().as_secs_f64()),
            ),
        ];
        for (name, help, v) in counters {
            family(out, name, help, "counter");
            let _ = writeln!(out, "{name} {v}");
        }
        self.ttft.render(
            out,
            "ollmlx_time_to_first_token_seconds",
            "Time from request to the first generated text.",
        );
        self.itl.render(
            out,
            "ollmlx_inter_token_latency_seconds",
            "Time between consecutive streamed deltas of one generation.",
        );
        self.duration.render(
            out,
            "ollmlx_generation_duration_seconds",
            "Time from request to the end of the generation.",
        );
    }
}

/// Per-generation timing state, owned by the metered stream. Dropping it (client disconnect,
/// error, end of stream) leaves the in-flight gauges.
pub struct Meter {
    metrics: Arc<Metrics>,
    start: Instant,
    last_delta: Option<Instant>,
    done: bool,
}

impl Meter {
    fn observe(&mut self, item: &Result<Event, BackendError>) {
        let m = &*self.metrics;
        match item {
            Ok(Event::Delta { .. }) => {
                let now = Instant::now();
                match self.last_delta {
                    None => {
                        m.waiting.fetch_sub(1, Ordering::Relaxed);
                        m.ttft.observe(now - self.start);
                    }
                    Some(prev) => m.itl.observe(now - prev),
                }
                self.last_delta = Some(now);
            }
            Ok(Event::Done { stats, .. }) => {
                m.prompt_tokens
                    .fetch_add(stats.prompt_eval_count, Ordering::Relaxed);
                m.generated_tokens
                    .fetch_add(stats.eval_count, Ordering::Relaxed);
                m.prompt_eval_ns
                    .fetch_add(stats.prompt_eval_duration, Ordering::Relaxed);
                m.eval_ns.fetch_add(stats.eval_duration, Ordering::Relaxed);
                m.load_ns.fetch_add(stats.load_duration, Ordering::Relaxed);
            }
            Ok(_) => {}
            Err(_) => {
                m.generation_errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn finish(&mut self) {
        if self.done {
            return;
        }
        self.done = true;
        let m = &*self.metrics;
        if self.last_delta.is_none() {
            m.waiting.fetch_sub(1, Ordering::Relaxed);
        }
        m.in_flight.fetch_sub(1, Ordering::Relaxed);
        m.duration.observe(self.start.elapsed());
    }
}

impl Drop for Meter {
    fn drop(&mut self) {
        self.finish();
    }
}

struct MeteredStream {
    inner: EventStream,
    meter: Meter,
}

impl Stream for MeteredStream {
    type Item = Result<Event, BackendError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        match this.inner.poll_next_unpin(cx) {
            Poll::Ready(Some(item)) => {
                this.meter.observe(&item);
                Poll::Ready(Some(item))
            }
            Poll::Ready(None) => {
                this.meter.finish();
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

/// The `route` label of a matched route: its path pattern.
pub fn route_label(route: &Route) -> &'static str {
    match route {
        Route::Root => "/",
        Route::Version => "/api/version",
        Route::Status => "/api/status",
        Route::Pull => "/api/pull",
        Route::Push => "/api/push",
        Route::Tags => "/api/tags",
        Route::Show => "/api/show",
        Route::Delete => "/api/delete",
        Route::Create => "/api/create",
        Route::BlobPut(_) | Route::BlobHead(_) => "/api/blobs/:digest",
        Route::Copy => "/api/copy",
        Route::Ps => "/api/ps",
        Route::Generate => "/api/generate",
        Route::Chat => "/api/chat",
        Route::Embed => "/api/embed",
        Route::Embeddings => "/api/embeddings",
        Route::Me => "/api/me",
        Route::Signout => "/api/signout",
        Route::WebExperimental => "/api/experimental/web",
        Route::Recommendations => "/api/experimental/model-recommendations",
        Route::OpenAiChat => "/v1/chat/completions",
        Route::OpenAiCompletions => "/v1/completions",
        Route::OpenAiEmbeddings => "/v1/embeddings",
        Route::OpenAiModels => "/v1/models",
        Route::OpenAiModel(_) => "/v1/models/:model",
        Route::OpenAiResponses => "/v1/responses",
        Route::AnthropicMessages => "/v1/messages",
        Route::Metrics => "/metrics",
        Route::_Reserved => "other",
    }
}

/// `GET /metrics`.
pub async fn handle(state: &AppState) -> Response<BoxBody> {
    let text = state.metrics.render(state).await;
    with_type(StatusCode::OK, CONTENT_TYPE, text)
}

async fn render_backends(out: &mut String, state: &AppState) {
    let mut loaded = String::new();
    let mut size = String::new();
    let mut vram = String::new();
    let mut samples: BTreeMap<String, (String, MetricKind, Vec<String>)> = BTreeMap::new();
    for b in state.router.backends() {
        let backend = escape(b.name());
        if let Ok(models) = b.loaded().await {
            for m in models {
                let labels = format!("backend=\"{backend}\",model=\"{}\"", escape(&m.name));
                let _ = writeln!(loaded, "ollmlx_model_loaded{{{labels}}} 1");
                let _ = writeln!(size, "ollmlx_model_memory_bytes{{{labels}}} {}", m.size);
                let _ = writeln!(vram, "ollmlx_model_vram_bytes{{{labels}}} {}", m.size_vram);
            }
        }
        for s in b.metrics() {
            add_sample(&mut samples, &backend, s);
        }
    }
    family(
        out,
        "ollmlx_model_loaded",
        "Models in memory (1 per loaded model, as in /api/ps).",
        "gauge",
    );
    out.push_str(&loaded);
    family(
        out,
        "ollmlx_model_memory_bytes",
        "Memory a loaded model uses (/api/ps size).",
        "gauge",
    );
    out.push_str(&size);
    family(
        out,
        "ollmlx_model_vram_bytes",
        "Accelerator memory a loaded model uses (/api/ps size_vram).",
        "gauge",
    );
    out.push_str(&vram);
    for (name, (help, kind, lines)) in samples {
        let kind = match kind {
            MetricKind::Counter => "counter",
            MetricKind::Gauge => "gauge",
        };
        family(out, &name, &help, kind);
        for l in lines {
            out.push_str(&l);
        }
    }
}

fn add_sample(
    samples: &mut BTreeMap<String, (String, MetricKind, Vec<String>)>,
    backend: &str,
    s: BackendMetric,
) {
    let name = format!("ollmlx_backend_{}", sanitize(&s.name));
    let mut labels = format!("backend=\"{backend}\"");
    for (k, v) in &s.labels {
        let _ = write!(labels, ",{}=\"{}\"", sanitize(k), escape(v));
    }
    let line = format!("{name}{{{labels}}} {}\n", format_float(s.value));
    samples
        .entry(name)
        .or_insert_with(|| (s.help.replace('\n', " "), s.kind, Vec::new()))
        .2
        .push(line);
}

fn family(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Metric and label names: `[a-zA-Z0-9_]`, not starting with a digit.
fn sanitize(name: &str) -> String {
    let mut s: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if s.starts_with(|c: char| c.is_ascii_digit()) || s.is_empty() {
        s.insert(0, '_');
    }
    s
}

/// Label values: backslash, double quote and newline escaped.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Prometheus floats: integers without a fraction, `+Inf`/`NaN` spelled out.
fn format_float(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative_with_inf() {
        let h = Histogram::new(&[0.1, 1.0]);
        h.observe(Duration::from_millis(50));
        h.observe(Duration::from_millis(500));
        h.observe(Duration::from_secs(5));
        let mut out = String::new();
        h.render(&mut out, "x", "help");
        assert!(out.contains("x_bucket{le=\"0.1\"} 1\n"), "{out}");
        assert!(out.contains("x_bucket{le=\"1\"} 2\n"), "{out}");
        assert!(out.contains("x_bucket{le=\"+Inf\"} 3\n"), "{out}");
        assert!(out.contains("x_sum 5.55\n"), "{out}");
        assert!(out.contains("x_count 3\n"), "{out}");
    }

    #[test]
    fn names_are_sanitized_and_label_values_escaped() {
        assert_eq!(sanitize("prefix-cache.hits"), "prefix_cache_hits");
        assert_eq!(sanitize("9x"), "_9x");
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn backend_samples_group_into_one_family() {
        let mut samples = BTreeMap::new();
        add_sample(
            &mut samples,
            "mlx",
            BackendMetric::gauge("batch_size", "Decode batch", 2.0).with_label("model", "a"),
        );
        add_sample(
            &mut samples,
            "mlx",
            BackendMetric::gauge("batch_size", "Decode batch", 1.0).with_label("model", "b"),
        );
        let (_, kind, lines) = &samples["ollmlx_backend_batch_size"];
        assert_eq!(*kind, MetricKind::Gauge);
        assert_eq!(
            lines,
            &vec![
                "ollmlx_backend_batch_size{backend=\"mlx\",model=\"a\"} 2\n".to_string(),
                "ollmlx_backend_batch_size{backend=\"mlx\",model=\"b\"} 1\n".to_string(),
            ]
        );
    }
}
