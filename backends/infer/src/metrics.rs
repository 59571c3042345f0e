//! Engine telemetry a backend can expose to the server's `/metrics` endpoint (an ollmlx
//! extension, not part of Ollama's API).
//!
//! The server measures everything it can see from the event stream itself (TTFT, inter-token
//! latency, token counts, in-flight generations). What only the backend knows — prefix-cache
//! hits, the current decode batch size, queue depth inside the engine — comes from
//! [`crate::Backend::metrics`] as a flat list of [`BackendMetric`] samples, read on every scrape.
//! The call must be cheap and must not block (read atomics; never wait for an engine thread).

/// Whether a sample only grows (a counter) or can go up and down (a gauge).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    /// Monotonically increasing since the backend started (Prometheus `counter`).
    Counter,
    /// A current value (Prometheus `gauge`).
    Gauge,
}

/// One sample reported by a backend.
///
/// The server exposes it as `ollmlx_backend_<name>{backend="<Backend::name()>",<labels>}`.
/// Samples sharing a `name` must share `help` and `kind` (one family, several label sets).
#[derive(Debug, Clone, PartialEq)]
pub struct BackendMetric {
    /// Snake-case name without prefix, e.g. `prefix_cache_hits_total`; characters outside
    /// `[a-zA-Z0-9_]` are replaced by `_` when exposed.
    pub name: String,
    /// One-line description (the `# HELP` text).
    pub help: String,
    /// Counter or gauge.
    pub kind: MetricKind,
    /// Extra labels, e.g. `[("model", "smollm2:135m")]`.
    pub labels: Vec<(String, String)>,
    /// The value.
    pub value: f64,
}

impl BackendMetric {
    /// A counter sample without labels.
    pub fn counter(name: impl Into<String>, help: impl Into<String>, value: f64) -> Self {
        BackendMetric {
            name: name.into(),
            help: help.into(),
            kind: MetricKind::Counter,
            labels: Vec::new(),
            value,
        }
    }

    /// A gauge sample without labels.
    pub fn gauge(name: impl Into<String>, help: impl Into<String>, value: f64) -> Self {
        BackendMetric {
            kind: MetricKind::Gauge,
            ..BackendMetric::counter(name, help, value)
        }
    }

    /// The same sample with one more label.
    pub fn with_label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.push((key.into(), value.into()));
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builders_set_kind_and_labels() {
        let m = BackendMetric::gauge("batch_size", "Sequences in the decode batch", 3.0)
            .with_label("model", "m:latest");
        assert_eq!(m.kind, MetricKind::Gauge);
        assert_eq!(m.labels, vec![("model".into(), "m:latest".into())]);
        assert_eq!(
            BackendMetric::counter("hits_total", "h", 1.0).kind,
            MetricKind::Counter
        );
    }
}
