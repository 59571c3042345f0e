//! Engine telemetry for the server's `/metrics` (an ollmlx extension): the prefix cache's
//! counters and the scheduler's batch, read from the engine's atomics on every scrape (never
//! waits for the engine thread).

use ollmlx_engine::{BatchStats, Engine, PrefixCacheStats};
use ollmlx_infer::BackendMetric;

/// Samples for `engine`'s current prefix-cache and batch state.
pub(crate) fn engine_metrics(engine: &Engine) -> Vec<BackendMetric> {
    let mut all = samples(&engine.prefix_cache_stats());
    all.extend(batch_samples(&engine.batch_stats()));
    all
}

fn batch_samples(b: &BatchStats) -> Vec<BackendMetric> {
    vec![
        BackendMetric::gauge(
            "batch_size",
            "Requests decoding together in the engine's current batch",
            b.running as f64,
        ),
        BackendMetric::gauge(
            "engine_queue_depth",
            "Jobs queued on the engine behind the current batch",
            b.queued as f64,
        ),
        BackendMetric::gauge(
            "batch_size_peak",
            "Largest decode batch since start",
            b.peak as f64,
        ),
        BackendMetric::counter(
            "decode_steps_total",
            "Batched decode steps run",
            b.steps as f64,
        ),
        BackendMetric::counter(
            "decode_rows_total",
            "Rows over all decode steps (divided by decode_steps_total: mean batch size)",
            b.rows as f64,
        ),
        BackendMetric::counter(
            "prefill_groups_total",
            "Grouped prefills: prompts of requests waiting together evaluated in one forward pass",
            b.prefill_groups as f64,
        ),
        BackendMetric::counter(
            "prefill_grouped_requests_total",
            "Requests whose prompts were evaluated in a grouped prefill",
            b.grouped_rows as f64,
        ),
        BackendMetric::counter(
            "speculative_draft_tokens_total",
            "Draft tokens proposed by speculative decoding (draft models and prompt lookup)",
            b.draft_proposed as f64,
        ),
        BackendMetric::counter(
            "speculative_accepted_tokens_total",
            "Draft tokens the model accepted (divided by the proposed: acceptance rate)",
            b.draft_accepted as f64,
        ),
    ]
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
    fn batch_stats_become_named_samples() {
        let s = batch_samples(&BatchStats {
            running: 3,
            queued: 2,
            peak: 4,
            steps: 10,
            rows: 25,
            draft_proposed: 40,
            draft_accepted: 30,
            prefill_groups: 2,
            grouped_rows: 7,
        });
        let find = |n: &str| s.iter().find(|m| m.name == n).map(|m| m.value);
        assert_eq!(find("batch_size"), Some(3.0));
        assert_eq!(find("engine_queue_depth"), Some(2.0));
        assert_eq!(find("batch_size_peak"), Some(4.0));
        assert_eq!(find("decode_rows_total"), Some(25.0));
        assert_eq!(find("speculative_draft_tokens_total"), Some(40.0));
        assert_eq!(find("speculative_accepted_tokens_total"), Some(30.0));
        assert_eq!(find("prefill_groups_total"), Some(2.0));
        assert_eq!(find("prefill_grouped_requests_total"), Some(7.0));
    }

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
