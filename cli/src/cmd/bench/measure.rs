//! One measured request for `ollmlx bench`: sends a streamed `/api/generate` or `/api/chat`
//! to the server under test, timestamps every NDJSON line as it arrives (client-side TTFT and
//! inter-token gaps), and keeps the server's own counts and durations from the final line.

use std::time::{Duration, Instant};

use ollmlx_wire::ollama::{ChatRequest, GenerateRequest, Message, Metrics};
use serde_json::{json, Map, Value};

use crate::client::Client;

/// What one request measured.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    /// Client-side time from sending the request to the first line carrying text.
    pub ttft: Option<Duration>,
    /// Gaps between consecutive lines carrying text.
    pub gaps: Vec<Duration>,
    /// Client-side time of the whole request.
    pub wall: Duration,
    /// The server's counts and durations (final line).
    pub stats: Metrics,
    /// The generated text (for multi-turn chat history).
    pub text: String,
}

impl Sample {
    /// Server-reported prompt processing speed (tokens/s), if measurable.
    pub fn prefill_tps(&self) -> Option<f64> {
        rate(
            self.stats.prompt_eval_count,
            self.stats.prompt_eval_duration,
        )
    }

    /// Server-reported generation speed (tokens/s), if measurable: needs at least two
    /// generated tokens (a single token's `eval_duration` is bookkeeping, not decoding).
    pub fn decode_tps(&self) -> Option<f64> {
        if self.stats.eval_count < 2 {
            return None;
        }
        rate(self.stats.eval_count, self.stats.eval_duration)
    }
}

fn rate(count: u64, ns: u64) -> Option<f64> {
    (count > 0 && ns > 0).then(|| count as f64 / (ns as f64 / 1e9))
}

/// Sampling options every workload uses: greedy, fixed seed, bounded output.
pub fn options(num_predict: i64, seed: i64, num_ctx: Option<u64>) -> Map<String, Value> {
    let mut o = Map::new();
    o.insert("temperature".into(), json!(0));
    o.insert("seed".into(), json!(seed));
    o.insert("num_predict".into(), json!(num_predict));
    if let Some(n) = num_ctx {
        o.insert("num_ctx".into(), json!(n));
    }
    o
}

const WORDS: &[&str] = &[
    "the", "quick", "brown", "fox", "jumps", "over", "a", "lazy", "dog", "while", "birds", "sing",
    "in", "green", "trees", "and", "rivers", "run", "to", "sea", "under", "blue", "sky", "at",
    "noon", "people", "walk", "home", "from", "work", "with", "friends",
];

/// A prompt of about `tokens` tokens (one common English word each). `tag` goes first so that
/// two runs never share a prefix, which would let a prefix-caching engine skip the prefill.
pub fn prompt(tokens: usize, tag: usize) -> String {
    let mut s = format!("{tag}.");
    for i in 0..tokens.saturating_sub(2) {
        s.push(' ');
        s.push_str(WORDS[(i * 7 + tag) % WORDS.len()]);
    }
    s
}

/// Run one `/api/generate` request (raw prompt, no template) and measure it.
pub async fn generate(
    client: &Client,
    model: &str,
    prompt: String,
    options: Map<String, Value>,
) -> anyhow::Result<Sample> {
    let req = GenerateRequest {
        model: model.to_string(),
        prompt,
        raw: true,
        stream: Some(true),
        options: Some(options),
        ..Default::default()
    };
    let mut t = Timer::new();
    client
        .generate(&req, |r| {
            t.line(&r.response, r.done, &r.metrics);
            Ok(())
        })
        .await?;
    Ok(t.finish())
}

/// Run one streamed `/api/chat` request and measure it.
pub async fn chat(
    client: &Client,
    model: &str,
    messages: Vec<Message>,
    options: Map<String, Value>,
) -> anyhow::Result<Sample> {
    let req = ChatRequest {
        model: model.to_string(),
        messages,
        stream: Some(true),
        options: Some(options),
        ..Default::default()
    };
    let mut t = Timer::new();
    client
        .chat(&req, |r| {
            t.line(&r.message.content, r.done, &r.metrics);
            Ok(())
        })
        .await?;
    Ok(t.finish())
}

/// Unload `model` (empty prompt, `keep_alive: 0`) so the next request measures a cold load.
/// The name is sent with its tag (`:latest` when none): the MLX store backend only unloads
/// the fully tagged name (an untagged unload answers `unload` but leaves the model loaded).
pub async fn unload(client: &Client, model: &str) -> anyhow::Result<()> {
    let req = GenerateRequest {
        model: with_tag(model),
        keep_alive: Some(json!(0)),
        ..Default::default()
    };
    client.generate(&req, |_| Ok(())).await
}

/// `name` with Ollama's default tag when it has none (`m` → `m:latest`, `h:1/ns/m` →
/// `h:1/ns/m:latest`).
pub fn with_tag(name: &str) -> String {
    let last = name.rsplit('/').next().unwrap_or(name);
    if last.contains(':') {
        name.to_string()
    } else {
        format!("{name}:latest")
    }
}

struct Timer {
    start: Instant,
    last: Option<Instant>,
    sample: Sample,
}

impl Timer {
    fn new() -> Self {
        Timer {
            start: Instant::now(),
            last: None,
            sample: Sample::default(),
        }
    }

    fn line(&mut self, text: &str, done: bool, metrics: &Metrics) {
        let now = Instant::now();
        if !text.is_empty() {
            match self.last {
                None => self.sample.ttft = Some(now - self.start),
                Some(prev) => self.sample.gaps.push(now - prev),
            }
            self.last = Some(now);
            self.sample.text.push_str(text);
        }
        if done {
            self.sample.stats = metrics.clone();
            if self.sample.ttft.is_none() {
                self.sample.ttft = Some(now - self.start);
            }
        }
    }

    fn finish(mut self) -> Sample {
        self.sample.wall = self.start.elapsed();
        self.sample
    }
}

/// The `p`-th percentile (0..=100, nearest rank) of `xs`; `None` when empty.
pub fn percentile(xs: &[f64], p: f64) -> Option<f64> {
    if xs.is_empty() {
        return None;
    }
    let mut v: Vec<f64> = xs.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    Some(v[rank.clamp(1, v.len()) - 1])
}

/// Arithmetic mean; `None` when empty.
pub fn mean(xs: &[f64]) -> Option<f64> {
    (!xs.is_empty()).then(|| xs.iter().sum::<f64>() / xs.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_is_nearest_rank() {
        let xs = [5.0, 1.0, 4.0, 2.0, 3.0];
        assert_eq!(percentile(&xs, 50.0), Some(3.0));
        assert_eq!(percentile(&xs, 95.0), Some(5.0));
        assert_eq!(percentile(&xs, 0.0), Some(1.0));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn prompts_have_the_requested_word_count_and_distinct_first_words() {
        let a = prompt(32, 1);
        assert_eq!(a.split(' ').count(), 31);
        assert_ne!(a.split(' ').next(), prompt(32, 2).split(' ').next());
    }

    #[test]
    fn unload_names_get_the_default_tag() {
        assert_eq!(with_tag("smollm2"), "smollm2:latest");
        assert_eq!(with_tag("smollm2:135m"), "smollm2:135m");
        assert_eq!(
            with_tag("localhost:5000/ns/m"),
            "localhost:5000/ns/m:latest"
        );
    }

    #[test]
    fn rates_need_both_count_and_time() {
        let mut s = Sample::default();
        assert_eq!(s.decode_tps(), None);
        s.stats.eval_count = 1;
        s.stats.eval_duration = 1_000;
        assert_eq!(s.decode_tps(), None, "one token is not a decode rate");
        s.stats.eval_count = 10;
        s.stats.eval_duration = 500_000_000;
        assert_eq!(s.decode_tps(), Some(20.0));
    }
}
