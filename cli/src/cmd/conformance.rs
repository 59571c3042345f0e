//! `ollmlx conformance record|replay|diff`: the drop-in checks against a real Ollama
//! (docs/conformance.md). Thin wrapper over the `ollmlx-conformance` library.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use ollmlx_conformance::replay::{parse_model_map, replay_dir, ReplayOptions};
use ollmlx_conformance::scenarios::ModelSet;

/// `ollmlx conformance ...`.
#[derive(Debug, Clone, Args)]
pub struct ConformanceArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: ConformanceCommand,
}

/// The conformance subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum ConformanceCommand {
    /// Run the scenario suite against a real Ollama and write cassettes
    Record(RecordArgs),
    /// Replay recorded cassettes against a running ollmlx and compare
    Replay(ReplayArgs),
    /// Run the scenario suite against two live servers and compare them
    Diff(DiffArgs),
}

/// Model selection shared by `record` and `diff`.
#[derive(Debug, Clone, Args)]
pub struct ModelArgs {
    /// Chat/completion model used by the scenarios
    #[arg(long, value_name = "NAME", default_value = "llama3.2")]
    pub model: String,
    /// Model with tool support (default: --model)
    #[arg(long, value_name = "NAME")]
    pub tools_model: Option<String>,
    /// Model with thinking support (default: --model)
    #[arg(long, value_name = "NAME")]
    pub think_model: Option<String>,
    /// Embedding model (default: --model)
    #[arg(long, value_name = "NAME")]
    pub embed_model: Option<String>,
}

impl ModelArgs {
    fn set(&self) -> ModelSet {
        let mut m = ModelSet::single(&self.model);
        if let Some(t) = &self.tools_model {
            m.tools = t.clone();
        }
        if let Some(t) = &self.think_model {
            m.think = t.clone();
        }
        if let Some(e) = &self.embed_model {
            m.embed = e.clone();
        }
        m
    }
}

/// `record --upstream URL --out DIR [--model NAME]`.
#[derive(Debug, Clone, Args)]
pub struct RecordArgs {
    /// The Ollama server to record from
    #[arg(long, value_name = "URL")]
    pub upstream: String,
    /// Folder to write the cassettes to
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Which models the scenarios use.
    #[command(flatten)]
    pub models: ModelArgs,
    /// Seconds allowed per request
    #[arg(long, value_name = "SECS", default_value_t = 120)]
    pub timeout: u64,
}

/// `replay --cassettes DIR --target URL [--model-map a=b]...`.
#[derive(Debug, Clone, Args)]
pub struct ReplayArgs {
    /// Folder of cassettes (any supported recording format)
    #[arg(long, value_name = "DIR")]
    pub cassettes: PathBuf,
    /// The ollmlx server to test
    #[arg(long, value_name = "URL")]
    pub target: String,
    /// Send RECORDED model requests to TARGET model (repeatable)
    #[arg(long = "model-map", value_name = "RECORDED=TARGET")]
    pub model_map: Vec<String>,
    /// Seconds allowed per request
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub timeout: u64,
    /// Also write a side-by-side HTML report
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
}

/// `diff --reference URL --target URL [--html FILE]`.
#[derive(Debug, Clone, Args)]
pub struct DiffArgs {
    /// The reference server (a real Ollama)
    #[arg(long, value_name = "URL")]
    pub reference: String,
    /// The server under test (ollmlx)
    #[arg(long, value_name = "URL")]
    pub target: String,
    /// Which models the scenarios use.
    #[command(flatten)]
    pub models: ModelArgs,
    /// Send REFERENCE model requests to TARGET model on the target (repeatable)
    #[arg(long = "model-map", value_name = "REFERENCE=TARGET")]
    pub model_map: Vec<String>,
    /// Write a side-by-side HTML report
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Seconds allowed per request
    #[arg(long, value_name = "SECS", default_value_t = 120)]
    pub timeout: u64,
}

/// Run a conformance subcommand. Exits the process with status 1 when cases fail.
pub fn run(args: ConformanceArgs) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let ok = rt.block_on(run_async(args))?;
    if !ok {
        std::process::exit(1);
    }
    Ok(())
}

/// Run and report; `Ok(false)` when any case failed.
pub async fn run_async(args: ConformanceArgs) -> anyhow::Result<bool> {
    match args.command {
        ConformanceCommand::Record(a) => {
            let written = ollmlx_conformance::live::record(
                &a.upstream,
                &a.out,
                &a.models.set(),
                Duration::from_secs(a.timeout),
            )
            .await?;
            println!(
                "recorded {} cassettes to {}",
                written.len(),
                a.out.display()
            );
            Ok(true)
        }
        ConformanceCommand::Replay(a) => {
            let opts = ReplayOptions {
                model_map: parse_model_map(&a.model_map).map_err(anyhow::Error::msg)?,
                timeout: Duration::from_secs(a.timeout),
            };
            let report = replay_dir(&a.cassettes, &a.target, &opts).await?;
            if let Some(p) = &a.html {
                let html = report.html("ollmlx conformance replay", "recorded", &a.target);
                std::fs::write(p, html).with_context(|| format!("writing {}", p.display()))?;
            }
            print!("{}", report.table());
            Ok(report.failed() == 0)
        }
        ConformanceCommand::Diff(a) => {
            let map = parse_model_map(&a.model_map).map_err(anyhow::Error::msg)?;
            let report = ollmlx_conformance::live::diff(
                &a.reference,
                &a.target,
                &a.models.set(),
                &map,
                Duration::from_secs(a.timeout),
            )
            .await?;
            if let Some(p) = &a.html {
                let html = report.html("ollmlx conformance diff", &a.reference, &a.target);
                std::fs::write(p, html).with_context(|| format!("writing {}", p.display()))?;
            }
            print!("{}", report.table());
            Ok(report.failed() == 0)
        }
    }
}
