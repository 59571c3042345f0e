//! Engine telemetry for the server's `/metrics` (an ollmlx extension): the prefix cache's
//! counters, read from the engine's atomics on every scrape (never waits for the engine thread).

use ollmlx_engine::{Engine, PrefixCacheStats};
use ollmlx_infer::BackendMetric;

/// Samples for `engine`'s current prefix-cache state.
pub(crate) fn engine_metrics(engine: &Engine) -> Vec<BackendMetric> {
    samples(&engine.prefix_cache_stats())
}

fn samples(s: &PrefixCacheStats) -> Vec<BackendMetric> {
    vec![
        BackendMetric::counter(
            "prefix_cache_hits_total",
            "Generations that reused cached KV state for part of their prompt",
            s.hits as f64,
        ),
        BackendMetric::counter(
            "prefix_cache_misses_total",
            "Generations that prefilled their whole prompt",
            s.misses as f64,
        ),
        BackendMetric::counter(
            "prefix_cache_reused_tokens_total",
            "Prompt tokens served from the prefix cache instead of prefilled",
            s.reused_tokens as f64,
        ),
        BackendMetric::counter(
            "prefix_cache_prefilled_tokens_total",
            "Prompt tokens prefilled by the engine",
            s.prefilled_tokens as f64,
        ),
        BackendMetric::counter(
            "prefix_cache_evictions_total",
            "KV snapshots evicted to stay within the prefix-cache byte budget",
            s.evictions as f64,
        ),
        BackendMetric::gauge(
            "prefix_cache_bytes",
            "Bytes held by prefix-cache KV snapshots",
            s.bytes as f64,
        ),
        BackendMetric::gauge(
            "prefix_cache_entries",
            "KV snapshots held by the prefix cache",
            s.entries as f64,
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_cache_counters_become_named_samples() {
        let s = PrefixCacheStats {
            hits: 3,
            misses: 1,
            reused_tokens: 900,
            prefilled_tokens: 120,
            evictions: 2,
            bytes: 4096,
            entries: 5,
        };
        let m = samples(&s);
        let get = |n: &str| m.iter().find(|x| x.name == n).map(|x| x.value);
        assert_eq!(get("prefix_cache_hits_total"), Some(3.0));
        assert_eq!(get("prefix_cache_reused_tokens_total"), Some(900.0));
        assert_eq!(get("prefix_cache_bytes"), Some(4096.0));
        let mut names: Vec<_> = m.iter().map(|x| x.name.as_str()).collect();
        names.dedup();
        assert_eq!(names.len(), 7);
    }
}
