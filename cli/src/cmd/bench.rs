//! `ollmlx bench MODEL`: load-test a running server over HTTP (default `OLLAMA_HOST`), like a
//! client would see it. Not an Ollama command.
//!
//! Workloads, in order: cold load (`load_duration` after an unload), single-stream prefill
//! (`--prefill-tokens`, one output token), single-stream decode (`--decode-tokens`,
//! temperature 0, fixed seed), a concurrency sweep (`--concurrency` streams at once), multi-turn
//! chat with growing history (TTFT per turn) and one long-context prompt. Prefill and decode
//! speeds are the server's own `prompt_eval_*`/`eval_*` figures; TTFT and inter-token latency
//! are measured here, from the arrival of each NDJSON line. Prompts start with a per-run tag so
//! a prefix-caching engine cannot skip the prefill (chat turns share history on purpose).

mod measure;
mod plot;
mod report;

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context as _;
use clap::Args;
use ollmlx_wire::ollama::Message;
use serde_json::json;

use crate::client::Client;
use measure::Sample;
pub use report::{Report, Row};

/// `bench MODEL`.
#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// Model to benchmark.
    #[arg(value_name = "MODEL")]
    pub model: String,
    /// Workloads to run, comma-separated: load, prefill, decode, concurrency, chat, long
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "load,prefill,decode,concurrency,chat,long"
    )]
    pub workloads: Vec<String>,
    /// Prompt lengths (tokens) for the prefill workload
    #[arg(long, value_delimiter = ',', default_value = "32,512")]
    pub prefill_tokens: Vec<usize>,
    /// Tokens to generate in the decode workload
    #[arg(long, default_value_t = 128)]
    pub decode_tokens: usize,
    /// Concurrent streams to sweep
    #[arg(long, value_delimiter = ',', default_value = "1,2,4,8")]
    pub concurrency: Vec<usize>,
    /// Tokens each stream generates in the concurrency sweep
    #[arg(long, default_value_t = 64)]
    pub stream_tokens: usize,
    /// Prompt length (tokens) of each stream in the concurrency sweep
    #[arg(long, default_value_t = 32)]
    pub stream_prompt_tokens: usize,
    /// Turns of the multi-turn chat workload
    #[arg(long, default_value_t = 4)]
    pub turns: usize,
    /// Tokens generated per chat turn
    #[arg(long, default_value_t = 32)]
    pub turn_tokens: usize,
    /// Prompt length (tokens) of the long-context workload
    #[arg(long, default_value_t = 2048)]
    pub long_tokens: usize,
    /// Measured runs per single-stream step (after one warm-up run)
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Sampling seed
    #[arg(long, default_value_t = 42)]
    pub seed: i64,
    /// Name recorded in the JSON report (e.g. the engine under test)
    #[arg(long, default_value = "ollmlx")]
    pub label: String,
    /// Write the report as JSON to this file
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Draw PNG charts into this directory
    #[arg(long, value_name = "DIR")]
    pub plot: Option<PathBuf>,
}

impl BenchArgs {
    fn wants(&self, w: &str) -> bool {
        self.workloads.iter().any(|x| x.trim() == w)
    }
}

const KNOWN: &[&str] = &["load", "prefill", "decode", "concurrency", "chat", "long"];

/// Run the benchmark, print the table, write JSON and plots as asked.
pub async fn run(client: &Client, args: BenchArgs) -> anyhow::Result<()> {
    let report = execute(client, &args, |line| eprintln!("{line}")).await?;
    print!("{}", report::table(&report));
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&report)?;
        std::fs::write(path, text + "\n").with_context(|| path.display().to_string())?;
    }
    if let Some(dir) = &args.plot {
        match plot::write(&report, dir) {
            Ok(files) => {
                for f in files {
                    eprintln!("wrote {}", f.display());
                }
            }
            Err(e) => anyhow::bail!("plotting: {e}"),
        }
    }
    Ok(())
}

/// Run the selected workloads against `client` and return the report. `progress` gets one
/// line per finished step.
pub async fn execute(
    client: &Client,
    args: &BenchArgs,
    mut progress: impl FnMut(String),
) -> anyhow::Result<Report> {
    if let Some(bad) = args.workloads.iter().find(|w| !KNOWN.contains(&w.trim())) {
        anyhow::bail!(
            "unknown workload {bad:?} (expected one of: {})",
            KNOWN.join(", ")
        );
    }
    if args.concurrency.contains(&0) || args.runs == 0 {
        anyhow::bail!("--concurrency and --runs must be at least 1");
    }
    let started_at = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let model = args.model.as_str();
    let mut tag = 0usize;
    let mut next_tag = || {
        tag += 1;
        tag
    };
    let mut rows = Vec::new();
    let mut cold_load_ms = None;

    if args.wants("load") {
        measure::unload(client, model).await?;
        let s = measure::generate(
            client,
            model,
            measure::prompt(8, next_tag()),
            opts(args, 1, None),
        )
        .await?;
        cold_load_ms = Some(s.stats.load_duration as f64 / 1e6);
        progress(format!(
            "load: {:.0} ms",
            s.stats.load_duration as f64 / 1e6
        ));
    } else {
        // Warm the model so the first measured step does not include a load.
        measure::generate(
            client,
            model,
            measure::prompt(8, next_tag()),
            opts(args, 1, None),
        )
        .await?;
    }

    if args.wants("prefill") {
        for &n in &args.prefill_tokens {
            let ctx = ctx_for(n, 1);
            let samples = repeat(args.runs, || {
                measure::generate(
                    client,
                    model,
                    measure::prompt(n, next_tag()),
                    opts(args, 1, ctx),
                )
            })
            .await?;
            rows.push(step(
                &mut progress,
                "prefill",
                &format!("prefill-{n}"),
                n as u64,
                samples,
            ));
        }
    }

    if args.wants("decode") {
        let n = args.decode_tokens;
        let samples = repeat(args.runs, || {
            measure::generate(
                client,
                model,
                measure::prompt(16, next_tag()),
                opts(args, n, None),
            )
        })
        .await?;
        rows.push(step(
            &mut progress,
            "decode",
            &format!("decode-{n}"),
            n as u64,
            samples,
        ));
    }

    if args.wants("concurrency") {
        for &c in &args.concurrency {
            let start = Instant::now();
            let mut set = tokio::task::JoinSet::new();
            for _ in 0..c {
                let client = client.clone();
                let model = model.to_string();
                let prompt = measure::prompt(args.stream_prompt_tokens, next_tag());
                let o = opts(args, args.stream_tokens, None);
                set.spawn(async move { measure::generate(&client, &model, prompt, o).await });
            }
            let mut samples = Vec::new();
            while let Some(r) = set.join_next().await {
                samples.push(r.context("benchmark stream panicked")??);
            }
            let wall = start.elapsed().as_secs_f64() * 1e3;
            let row = Row::from_samples(
                "concurrency",
                &format!("concurrency-{c}"),
                c as u64,
                &samples,
                wall,
            );
            progress(line(&row));
            rows.push(row);
        }
    }

    if args.wants("chat") {
        let mut history: Vec<Message> = Vec::new();
        let t = next_tag();
        for turn in 1..=args.turns {
            history.push(Message {
                role: "user".into(),
                content: format!(
                    "Conversation {t}, question {turn}: {}",
                    measure::prompt(24, t * 100 + turn)
                ),
                ..Default::default()
            });
            let start = Instant::now();
            let s = measure::chat(
                client,
                model,
                history.clone(),
                opts(args, args.turn_tokens, None),
            )
            .await?;
            let wall = start.elapsed().as_secs_f64() * 1e3;
            history.push(Message {
                role: "assistant".into(),
                content: s.text.clone(),
                ..Default::default()
            });
            let row = Row::from_samples(
                "chat",
                &format!("chat-turn-{turn}"),
                turn as u64,
                &[s],
                wall,
            );
            progress(line(&row));
            rows.push(row);
        }
    }

    if args.wants("long") {
        let n = args.long_tokens;
        let s = measure::generate(
            client,
            model,
            measure::prompt(n, next_tag()),
            opts(args, 8, ctx_for(n, 8)),
        )
        .await?;
        rows.push(step(
            &mut progress,
            "long",
            &format!("long-{n}"),
            n as u64,
            vec![s],
        ));
    }

    Ok(Report {
        schema: report::SCHEMA,
        label: args.label.clone(),
        host: client.base().to_string(),
        model: args.model.clone(),
        started_at,
        settings: json!({
            "workloads": args.workloads,
            "prefill_tokens": args.prefill_tokens,
            "decode_tokens": args.decode_tokens,
            "concurrency": args.concurrency,
            "stream_tokens": args.stream_tokens,
            "stream_prompt_tokens": args.stream_prompt_tokens,
            "turns": args.turns,
            "turn_tokens": args.turn_tokens,
            "long_tokens": args.long_tokens,
            "runs": args.runs,
            "seed": args.seed,
            "temperature": 0,
        }),
        cold_load_ms,
        rows,
    })
}

fn opts(
    args: &BenchArgs,
    num_predict: usize,
    num_ctx: Option<u64>,
) -> serde_json::Map<String, serde_json::Value> {
    measure::options(num_predict as i64, args.seed, num_ctx)
}

/// A context window that fits `prompt` tokens plus `out` (only raised above the default).
fn ctx_for(prompt: usize, out: usize) -> Option<u64> {
    let need = (prompt + out + 64) as u64;
    (need > 2048).then(|| need.next_power_of_two())
}

/// One warm-up run (discarded), then `runs` measured runs, one after another.
async fn repeat<F, Fut>(runs: usize, mut f: F) -> anyhow::Result<Vec<Sample>>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Sample>>,
{
    f().await?;
    let mut out = Vec::with_capacity(runs);
    for _ in 0..runs {
        out.push(f().await?);
    }
    Ok(out)
}

fn step(
    progress: &mut impl FnMut(String),
    workload: &str,
    name: &str,
    x: u64,
    samples: Vec<Sample>,
) -> Row {
    let wall = samples.iter().map(|s| s.wall.as_secs_f64() * 1e3).sum();
    let row = Row::from_samples(workload, name, x, &samples, wall);
    progress(line(&row));
    row
}

fn line(r: &Row) -> String {
    let f = |v: Option<f64>| v.map(|x| format!("{x:.1}")).unwrap_or_else(|| "-".into());
    format!(
        "{}: prompt {:.0} tok, prefill {} tok/s, decode {} tok/s, aggregate {} tok/s, TTFT p50 {} ms",
        r.name,
        r.prompt_tokens,
        f(r.prefill_tps),
        f(r.decode_tps),
        f(r.aggregate_tps),
        f(r.ttft_p50_ms)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_is_raised_only_for_long_prompts() {
        assert_eq!(ctx_for(512, 1), None);
        assert_eq!(ctx_for(2048, 8), Some(4096));
    }
}
