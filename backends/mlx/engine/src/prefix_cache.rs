//! Prefix cache: snapshots of per-layer KV caches indexed by the token sequence they hold, shared
//! by every request and conversation of one resident model.
//!
//! Request path: `generate::run` asks [`PrefixCache::lookup`] for the longest stored token
//! prefix of the new prompt before prefill, restores that snapshot (only the tokens after the
//! common prefix are prefilled) and, when the request ends, [`PrefixCache::insert`]s the live
//! cache back. Snapshots are cheap clones of MLX arrays (copy-on-write), so storing one costs no
//! copy; its bytes are the capacity of the buffers it keeps alive.
//!
//! The index is a token trie in flattened form: every entry is a root-to-leaf path and any entry
//! below a trie node holds the keys/values of that node's whole prefix, so the best state for a
//! prompt is the entry with the longest common prefix. An entry whose tokens are a prefix of a
//! newer one is subsumed by it and dropped (turn N+1 of a chat supersedes turn N). Eviction is
//! least-recently-used under a byte budget; a branch point shared by several conversations
//! survives while any entry below it does. Entries carry a [`PrefixKey`] (model identity,
//! adapter, template, KV quantization) and a lookup never returns state stored under another key.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use ollmlx_models::KvCache;

/// What the cached keys/values depend on besides the tokens.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PrefixKey {
    /// Model identity (weights path and size).
    pub model: String,
    /// LoRA adapter identity, if any.
    pub adapter: Option<String>,
    /// Hash of the chat template source.
    pub template: u64,
    /// KV-cache quantization (`"f16"`, `"q8_0"`, `"q4_0"`).
    pub kv_type: String,
}

/// Hit/miss counters, shared with [`crate::Engine::prefix_cache_stats`] (telemetry).
#[derive(Debug, Default)]
pub struct PrefixCounters {
    /// Requests that reused at least one cached token.
    pub hits: AtomicU64,
    /// Requests that prefilled from scratch.
    pub misses: AtomicU64,
    /// Prompt tokens served from the cache (not prefilled).
    pub reused_tokens: AtomicU64,
    /// Prompt tokens prefilled.
    pub prefilled_tokens: AtomicU64,
    /// Snapshots evicted for the byte budget.
    pub evictions: AtomicU64,
    /// Bytes held by snapshots right now (all models).
    pub bytes: AtomicU64,
    /// Snapshots held right now (all models).
    pub entries: AtomicU64,
}

/// A point-in-time copy of [`PrefixCounters`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PrefixCacheStats {
    /// Requests that reused at least one cached token.
    pub hits: u64,
    /// Requests that prefilled from scratch.
    pub misses: u64,
    /// Prompt tokens served from the cache.
    pub reused_tokens: u64,
    /// Prompt tokens prefilled.
    pub prefilled_tokens: u64,
    /// Snapshots evicted for the byte budget.
    pub evictions: u64,
    /// Bytes held by snapshots.
    pub bytes: u64,
    /// Snapshots held.
    pub entries: u64,
}

impl PrefixCounters {
    /// Read every counter.
    pub fn snapshot(&self) -> PrefixCacheStats {
        let r = |a: &AtomicU64| a.load(Ordering::Relaxed);
        PrefixCacheStats {
            hits: r(&self.hits),
            misses: r(&self.misses),
            reused_tokens: r(&self.reused_tokens),
            prefilled_tokens: r(&self.prefilled_tokens),
            evictions: r(&self.evictions),
            bytes: r(&self.bytes),
            entries: r(&self.entries),
        }
    }

    /// Count one request that reused `reused` tokens and prefilled `prefilled`.
    pub fn record(&self, reused: usize, prefilled: usize) {
        let c = if reused > 0 { &self.hits } else { &self.misses };
        c.fetch_add(1, Ordering::Relaxed);
        self.reused_tokens
            .fetch_add(reused as u64, Ordering::Relaxed);
        self.prefilled_tokens
            .fetch_add(prefilled as u64, Ordering::Relaxed);
    }
}

struct Entry {
    key: PrefixKey,
    tokens: Vec<u32>,
    caches: Vec<KvCache>,
    bytes: u64,
    last_used: u64,
}

/// The snapshots of one resident model.
pub struct PrefixCache {
    entries: Vec<Entry>,
    budget: u64,
    used: u64,
    counted: u64,
    tick: u64,
    counters: Arc<PrefixCounters>,
}

/// A lookup result: the snapshot to restore and how many of its tokens match.
pub struct PrefixHit {
    /// Matching tokens (restore the caches, then truncate them to this).
    pub common: usize,
    /// The cached per-layer state (a cheap clone).
    pub caches: Vec<KvCache>,
}

impl PrefixCache {
    /// A cache holding at most `budget` bytes of snapshots (0 disables it).
    pub fn new(budget: u64, counters: Arc<PrefixCounters>) -> Self {
        PrefixCache {
            entries: Vec::new(),
            budget,
            used: 0,
            counted: 0,
            tick: 0,
            counters,
        }
    }

    /// Bytes held.
    pub fn bytes(&self) -> u64 {
        self.used
    }

    /// Number of snapshots held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The snapshot under `key` sharing the longest prefix with `tokens` (at least `min_len`
    /// tokens; ties go to the most recently used). Marks it used.
    pub fn lookup(&mut self, key: &PrefixKey, tokens: &[u32], min_len: usize) -> Option<PrefixHit> {
        let mut best: Option<(usize, usize)> = None;
        for (i, e) in self.entries.iter().enumerate() {
            if &e.key != key {
                continue;
            }
            let common = common_prefix(&e.tokens, tokens);
            let better = match best {
                None => true,
                Some((bi, bc)) => {
                    common > bc || (common == bc && e.last_used > self.entries[bi].last_used)
                }
            };
            if common >= min_len.max(1) && better {
                best = Some((i, common));
            }
        }
        let (i, common) = best?;
        self.tick += 1;
        let e = &mut self.entries[i];
        e.last_used = self.tick;
        Some(PrefixHit {
            common,
            caches: e.caches.clone(),
        })
    }

    /// Store `caches` holding exactly `tokens` under `key`. Entries it subsumes (same key, their
    /// tokens a prefix of `tokens`) are dropped; then least-recently-used entries go until the
    /// budget holds. A snapshot larger than the whole budget is not stored.
    pub fn insert(&mut self, key: PrefixKey, tokens: Vec<u32>, caches: Vec<KvCache>) {
        if tokens.is_empty() || self.budget == 0 {
            return;
        }
        self.tick += 1;
        if let Some(e) = self.entries.iter_mut().find(|e| {
            e.key == key && e.tokens.len() >= tokens.len() && e.tokens.starts_with(&tokens)
        }) {
            // Already covered by a longer (or equal) entry.
            e.last_used = self.tick;
            return;
        }
        let bytes: u64 = caches.iter().map(|c| c.nbytes() as u64).sum();
        if bytes > self.budget {
            return;
        }
        self.entries
            .retain(|e| !(e.key == key && tokens.starts_with(&e.tokens)));
        self.entries.push(Entry {
            key,
            tokens,
            caches,
            bytes,
            last_used: self.tick,
        });
        self.sync();
        while self.used > self.budget {
            let Some(oldest) = self
                .entries
                .iter()
                .enumerate()
                .min_by_key(|(_, e)| e.last_used)
                .map(|(i, _)| i)
            else {
                break;
            };
            self.entries.swap_remove(oldest);
            self.counters.evictions.fetch_add(1, Ordering::Relaxed);
            self.sync();
        }
    }

    /// Drop every snapshot.
    pub fn clear(&mut self) {
        self.entries.clear();
        self.sync();
    }

    /// Recompute `used` and move the shared gauges by this cache's change (several models
    /// share one set of counters).
    fn sync(&mut self) {
        let bytes: u64 = self.entries.iter().map(|e| e.bytes).sum();
        let n = self.entries.len() as u64;
        let c = &self.counters;
        c.bytes.fetch_add(bytes, Ordering::Relaxed);
        c.bytes.fetch_sub(self.used, Ordering::Relaxed);
        c.entries.fetch_add(n, Ordering::Relaxed);
        c.entries.fetch_sub(self.counted, Ordering::Relaxed);
        self.used = bytes;
        self.counted = n;
    }
}

impl Drop for PrefixCache {
    fn drop(&mut self) {
        self.clear();
    }
}

/// Number of equal leading tokens.
pub fn common_prefix(a: &[u32], b: &[u32]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use mlx_rs::Array;

    fn key(model: &str) -> PrefixKey {
        PrefixKey {
            model: model.into(),
            adapter: None,
            template: 1,
            kv_type: "f16".into(),
        }
    }

    /// One layer holding one value per token (the token id), so restored state is checkable.
    fn caches_for(tokens: &[u32]) -> Vec<KvCache> {
        let mut c = KvCache::new();
        let v: Vec<f32> = tokens.iter().map(|&t| t as f32).collect();
        let a = Array::from_slice(&v, &[1, 1, v.len() as i32, 1]);
        c.update(&a, &a).unwrap();
        vec![c]
    }

    fn restored(hit: &PrefixHit) -> Vec<f32> {
        let mut c = hit.caches[0].clone();
        c.truncate(hit.common as i32);
        let e = Array::from_slice(&[-1.0f32], &[1, 1, 1, 1]);
        let (k, _) = c.update(&e, &e).unwrap();
        let v = k.as_slice::<f32>().to_vec();
        v[..v.len() - 1].to_vec()
    }

    fn cache(budget: u64) -> (PrefixCache, Arc<PrefixCounters>) {
        let c = Arc::new(PrefixCounters::default());
        (PrefixCache::new(budget, c.clone()), c)
    }

    #[test]
    fn lookup_returns_the_longest_common_prefix_across_conversations() {
        let (mut pc, _) = cache(1 << 20);
        pc.insert(key("m"), vec![1, 2, 3, 4, 5], caches_for(&[1, 2, 3, 4, 5]));
        pc.insert(key("m"), vec![1, 2, 9, 9], caches_for(&[1, 2, 9, 9]));
        let hit = pc.lookup(&key("m"), &[1, 2, 3, 4, 7, 8], 1).unwrap();
        assert_eq!(hit.common, 4);
        assert_eq!(restored(&hit), vec![1.0, 2.0, 3.0, 4.0]);
        let hit = pc.lookup(&key("m"), &[1, 2, 9, 9, 9], 1).unwrap();
        assert_eq!(hit.common, 4);
        assert_eq!(restored(&hit), vec![1.0, 2.0, 9.0, 9.0]);
        assert!(pc.lookup(&key("m"), &[5, 5], 1).is_none());
    }

    #[test]
    fn state_of_another_model_adapter_template_or_kv_type_is_never_returned() {
        let (mut pc, _) = cache(1 << 20);
        pc.insert(key("a"), vec![1, 2, 3], caches_for(&[1, 2, 3]));
        let toks = [1, 2, 3, 4];
        assert!(pc.lookup(&key("b"), &toks, 1).is_none());
        let mut k = key("a");
        k.adapter = Some("lora".into());
        assert!(pc.lookup(&k, &toks, 1).is_none());
        let mut k = key("a");
        k.template = 2;
        assert!(pc.lookup(&k, &toks, 1).is_none());
        let mut k = key("a");
        k.kv_type = "q8_0".into();
        assert!(pc.lookup(&k, &toks, 1).is_none());
        assert_eq!(pc.lookup(&key("a"), &toks, 1).unwrap().common, 3);
    }

    #[test]
    fn a_longer_turn_subsumes_its_prefix_and_lru_eviction_keeps_the_budget() {
        let (mut pc, counters) = cache(1 << 20);
        pc.insert(key("m"), vec![1, 2], caches_for(&[1, 2]));
        pc.insert(key("m"), vec![1, 2, 3], caches_for(&[1, 2, 3]));
        assert_eq!(pc.len(), 1, "turn 2 supersedes turn 1");
        pc.insert(key("m"), vec![1, 2], caches_for(&[1, 2]));
        assert_eq!(pc.len(), 1, "a prefix of a stored entry adds nothing");
        // Each one-layer snapshot is 2 buffers x 256 positions x 4 bytes = 2 KiB.
        let one = pc.bytes();
        assert_eq!(one, 2048);
        let (mut pc, counters2) = cache(2 * one);
        pc.insert(key("m"), vec![1, 1], caches_for(&[1, 1]));
        pc.insert(key("m"), vec![2, 2], caches_for(&[2, 2]));
        pc.lookup(&key("m"), &[1, 1, 5], 1).unwrap(); // [1,1] is now the most recent
        pc.insert(key("m"), vec![3, 3], caches_for(&[3, 3]));
        assert_eq!(pc.len(), 2);
        assert!(pc.bytes() <= 2 * one);
        assert!(
            pc.lookup(&key("m"), &[2, 2], 1).is_none(),
            "LRU entry evicted"
        );
        assert!(pc.lookup(&key("m"), &[1, 1], 1).is_some());
        assert_eq!(counters2.snapshot().evictions, 1);
        assert_eq!(counters2.snapshot().bytes, 2 * one);
        assert_eq!(counters2.snapshot().entries, 2);
        drop(pc);
        assert_eq!(counters2.snapshot().bytes, 0, "gauges drop with the cache");
        assert_eq!(counters.snapshot().entries, 1);
    }

    #[test]
    fn counters_separate_hits_and_misses() {
        let c = PrefixCounters::default();
        c.record(0, 10);
        c.record(8, 2);
        let s = c.snapshot();
        assert_eq!((s.hits, s.misses), (1, 1));
        assert_eq!((s.reused_tokens, s.prefilled_tokens), (8, 12));
    }

    #[test]
    fn a_zero_budget_disables_the_cache() {
        let (mut pc, _) = cache(0);
        pc.insert(key("m"), vec![1, 2], caches_for(&[1, 2]));
        assert!(pc.is_empty());
    }
}
