//! The command tree (clap derive) and dispatch: every upstream command, alias, flag and
//! short help text, with "Ollama" replaced by "ollmlx" where it names the product.
//!
//! Every command but `serve` first checks the server with `HEAD /`; a refused connection
//! becomes `could not connect to ollmlx server, run 'ollmlx serve' to start it`.

use clap::{Args, Parser, Subcommand};

use crate::client::Client;
use crate::env::{help_block, Env, CLIENT_HELP_VARS, RUN_HELP_VARS, SERVE_HELP_VARS};

pub mod bench;
pub mod conformance;
pub mod copy;
pub mod create;
pub mod display;
pub mod help;
pub mod interactive;
pub mod list;
pub mod ps;
pub mod pull;
pub mod push;
pub mod rm;
pub mod run;
pub mod serve;
pub mod show;
pub mod stop;
pub mod version;

/// The message printed when no server is listening.
pub const NOT_RUNNING: &str = "could not connect to ollmlx server, run 'ollmlx serve' to start it";

const HELP_TEMPLATE: &str = "{about-with-newline}\nUsage:\n  {usage}\n\n{all-args}{after-help}";

/// The `ollmlx` command line.
#[derive(Debug, Parser)]
#[command(
    name = "ollmlx",
    about = "Large language model runner",
    disable_version_flag = true,
    disable_help_subcommand = true,
    help_template = HELP_TEMPLATE,
    subcommand_value_name = "command",
    subcommand_help_heading = "Available Commands"
)]
pub struct Cli {
    /// Show version information
    #[arg(short = 'v', long = "version")]
    pub version: bool,
    /// Show timings for response
    #[arg(long)]
    pub verbose: bool,
    /// Don't wrap words to the next line automatically
    #[arg(long)]
    pub nowordwrap: bool,
    /// The command to run.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Arguments of `serve` (none; configuration comes from the environment).
#[derive(Debug, Clone, Default, Args)]
pub struct ServeArgs {
    /// Forward every request to this Ollama server unchanged (transparent proxy mode)
    #[arg(long, value_name = "URL")]
    pub upstream: Option<String>,
    /// Backend configuration file (default $OLLMLX_CONFIG, else ~/.ollmlx/config.toml)
    #[arg(long, value_name = "FILE")]
    pub config: Option<std::path::PathBuf>,
}

/// `create MODEL`.
#[derive(Debug, Clone, Args)]
pub struct CreateArgs {
    /// Name of the model to create.
    #[arg(value_name = "MODEL")]
    pub model: String,
    /// Name of the Modelfile (default "Modelfile")
    #[arg(short = 'f', long = "file", value_name = "string")]
    pub file: Option<String>,
    /// Quantize model to this level (e.g. q4_K_M)
    #[arg(short = 'q', long = "quantize", value_name = "string")]
    pub quantize: Option<String>,
    /// Quantize draft model to this level
    #[arg(long = "draft-quantize", value_name = "string")]
    pub draft_quantize: Option<String>,
    /// Enable experimental safetensors model creation
    #[arg(long)]
    pub experimental: bool,
}

/// `show MODEL`.
#[derive(Debug, Clone, Args)]
pub struct ShowArgs {
    /// Model to describe.
    #[arg(value_name = "MODEL")]
    pub model: String,
    /// Show license of a model
    #[arg(long)]
    pub license: bool,
    /// Show Modelfile of a model
    #[arg(long)]
    pub modelfile: bool,
    /// Show parameters of a model
    #[arg(long)]
    pub parameters: bool,
    /// Show template of a model
    #[arg(long)]
    pub template: bool,
    /// Show system message of a model
    #[arg(long)]
    pub system: bool,
    /// Show detailed model information
    #[arg(short = 'v', long)]
    pub verbose: bool,
}

/// `run MODEL [PROMPT]`.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Model to run.
    #[arg(value_name = "MODEL")]
    pub model: String,
    /// Prompt words (joined with spaces).
    #[arg(value_name = "PROMPT")]
    pub prompt: Vec<String>,
    /// Duration to keep a model loaded (e.g. 5m)
    #[arg(long, value_name = "string")]
    pub keepalive: Option<String>,
    /// Show timings for response
    #[arg(long)]
    pub verbose: bool,
    /// Use an insecure registry
    #[arg(long)]
    pub insecure: bool,
    /// Don't wrap words to the next line automatically
    #[arg(long)]
    pub nowordwrap: bool,
    /// Response format (e.g. json)
    #[arg(long, value_name = "string")]
    pub format: Option<String>,
    /// Enable thinking mode: true/false or high/medium/low for supported models
    #[arg(
        long,
        value_name = "string",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true"
    )]
    pub think: Option<String>,
    /// Hide thinking output (if provided)
    #[arg(long)]
    pub hidethinking: bool,
    /// For embedding models: truncate inputs exceeding context length (default: true). Set --truncate=false to error instead
    #[arg(
        long,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub truncate: Option<bool>,
    /// Truncate output embeddings to specified dimension (embedding models only)
    #[arg(long, value_name = "int", default_value_t = 0)]
    pub dimensions: i64,
}

/// A command that takes one model and an `--insecure` flag (`pull`, `push`).
#[derive(Debug, Clone, Args)]
pub struct RegistryArgs {
    /// Model name.
    #[arg(value_name = "MODEL")]
    pub model: String,
    /// Use an insecure registry
    #[arg(long)]
    pub insecure: bool,
}

/// Every subcommand.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start ollmlx
    #[command(visible_alias = "start", after_help = help_block(SERVE_HELP_VARS))]
    Serve(ServeArgs),
    /// Check drop-in compatibility with Ollama (record, replay, diff)
    Conformance(conformance::ConformanceArgs),
    /// Benchmark a running server (prefill, decode, concurrency, chat, long context)
    #[command(after_help = help_block(CLIENT_HELP_VARS))]
    Bench(bench::BenchArgs),
    /// Create a model
    #[command(after_help = help_block(CLIENT_HELP_VARS))]
    Create(CreateArgs),
    /// Show information for a model
    #[command(after_help = help_block(CLIENT_HELP_VARS))]
    Show(ShowArgs),
    /// Run a model
    #[command(after_help = help_block(RUN_HELP_VARS))]
    Run(RunArgs),
    /// Stop a running model
    #[command(after_help = help_block(CLIENT_HELP_VARS))]
    Stop {
        /// Model to stop.
        #[arg(value_name = "MODEL")]
        model: String,
    },
    /// Pull a model from a registry
    #[command(after_help = help_block(CLIENT_HELP_VARS))]
    Pull(RegistryArgs),
    /// Push a model to a registry
    #[command(after_help = help_block(CLIENT_HELP_VARS))]
    Push(RegistryArgs),
    /// Sign in to ollama.com
    #[command(alias = "login")]
    Signin,
    /// Sign out from ollama.com
    #[command(alias = "logout")]
    Signout,
    /// List models
    #[command(visible_alias = "ls", after_help = help_block(CLIENT_HELP_VARS))]
    List {
        /// Only models whose name starts with this (case-insensitive).
        #[arg(value_name = "PREFIX")]
        args: Vec<String>,
    },
    /// List running models
    #[command(after_help = help_block(CLIENT_HELP_VARS))]
    Ps {
        /// Only models whose name starts with this.
        #[arg(value_name = "PREFIX")]
        args: Vec<String>,
    },
    /// Copy a model
    #[command(after_help = help_block(CLIENT_HELP_VARS))]
    Cp {
        /// Existing model.
        #[arg(value_name = "SOURCE")]
        source: String,
        /// New name.
        #[arg(value_name = "DESTINATION")]
        destination: String,
    },
    /// Remove a model
    #[command(after_help = help_block(CLIENT_HELP_VARS))]
    Rm {
        /// Models to remove.
        #[arg(value_name = "MODEL", required = true)]
        models: Vec<String>,
    },
}

/// Parse the command line, run the command, and return its result (`Error: <msg>` is printed
/// by `main`). Help and usage errors are printed here.
pub fn main() -> anyhow::Result<()> {
    use clap::CommandFactory;
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = Cli::command();
    match help::scan(&root, &args) {
        help::Scan::Help(sub) => {
            print!("{}", help::render(&root, sub.as_deref()));
            return Ok(());
        }
        help::Scan::Error(msg) => anyhow::bail!(msg),
        help::Scan::Parse => {}
    }
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind;
            let code = match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => 0,
                _ => 1,
            };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    let env = Env::from_process();
    match cli.command {
        Some(Command::Serve(args)) => serve::run(args),
        Some(Command::Conformance(args)) => conformance::run(args),
        None if !cli.version => {
            print!("{}", help::render(&root, None));
            Ok(())
        }
        command => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?;
            rt.block_on(dispatch(env, cli.version, command))
        }
    }
}

async fn dispatch(env: Env, version: bool, command: Option<Command>) -> anyhow::Result<()> {
    let client = Client::new(env.connectable_host());
    let Some(command) = command else {
        if version {
            version::run(&client).await;
        }
        return Ok(());
    };
    match &command {
        Command::Create(a) if a.experimental => {}
        _ => heartbeat(&client).await?,
    }
    match command {
        Command::Serve(_) | Command::Conformance(_) => Ok(()),
        Command::Create(a) => create::run(&client, a).await,
        Command::Bench(a) => bench::run(&client, a).await,
        Command::Show(a) => show::run(&client, a).await,
        Command::Run(a) => run::run(&client, &env, a).await,
        Command::Stop { model } => stop::run(&client, &model).await,
        Command::Pull(a) => pull::run(&client, &a.model, a.insecure).await,
        Command::Push(a) => push::run(&client, &a.model, a.insecure).await,
        Command::Signin | Command::Signout => {
            anyhow::bail!("signing in to ollama.com is not supported by ollmlx")
        }
        Command::List { args } => list::run(&client, args.first().map(String::as_str)).await,
        Command::Ps { args } => ps::run(&client, args.first().map(String::as_str)).await,
        Command::Cp {
            source,
            destination,
        } => copy::run(&client, &source, &destination).await,
        Command::Rm { models } => rm::run(&client, &models).await,
    }
}

/// `HEAD /`; a refused connection becomes the "run 'ollmlx serve'" error.
pub async fn heartbeat(client: &Client) -> anyhow::Result<()> {
    match client.heartbeat().await {
        Ok(()) => Ok(()),
        Err(e) if e.is_refused() || e.to_string().contains("could not connect") => {
            anyhow::bail!(NOT_RUNNING)
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_tree_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn short_help_texts_match_upstream() {
        let cmd = Cli::command();
        let about = |name: &str| {
            cmd.find_subcommand(name)
                .and_then(|c| c.get_about())
                .map(|a| a.to_string())
                .unwrap_or_default()
        };
        assert_eq!(about("serve"), "Start ollmlx");
        assert_eq!(about("create"), "Create a model");
        assert_eq!(about("show"), "Show information for a model");
        assert_eq!(about("run"), "Run a model");
        assert_eq!(about("stop"), "Stop a running model");
        assert_eq!(about("pull"), "Pull a model from a registry");
        assert_eq!(about("push"), "Push a model to a registry");
        assert_eq!(about("list"), "List models");
        assert_eq!(about("ps"), "List running models");
        assert_eq!(about("cp"), "Copy a model");
        assert_eq!(about("rm"), "Remove a model");
        assert_eq!(about("signin"), "Sign in to ollama.com");
        assert_eq!(about("signout"), "Sign out from ollama.com");
    }

    #[test]
    fn aliases_resolve() {
        for (argv, want) in [
            (vec!["ollmlx", "start"], "serve"),
            (vec!["ollmlx", "ls"], "list"),
            (vec!["ollmlx", "login"], "signin"),
        ] {
            let m = Cli::command().try_get_matches_from(argv).unwrap();
            assert_eq!(m.subcommand_name(), Some(want));
        }
    }

    #[test]
    fn think_flag_takes_optional_value_with_equals_only() {
        let cli = Cli::try_parse_from(["ollmlx", "run", "m", "--think", "hi"]).unwrap();
        let Some(Command::Run(a)) = cli.command else {
            panic!("not run")
        };
        assert_eq!(a.think.as_deref(), Some("true"));
        assert_eq!(a.prompt, vec!["hi"]);
        let cli = Cli::try_parse_from(["ollmlx", "run", "m", "--think=high"]).unwrap();
        let Some(Command::Run(a)) = cli.command else {
            panic!("not run")
        };
        assert_eq!(a.think.as_deref(), Some("high"));
    }

    #[test]
    fn truncate_accepts_false() {
        let cli = Cli::try_parse_from(["ollmlx", "run", "m", "--truncate=false"]).unwrap();
        let Some(Command::Run(a)) = cli.command else {
            panic!("not run")
        };
        assert_eq!(a.truncate, Some(false));
    }

    #[test]
    fn serve_help_lists_environment_variables() {
        let mut cmd = Cli::command();
        let serve = cmd.find_subcommand_mut("serve").unwrap();
        let help = serve.render_help().to_string();
        assert!(help.starts_with("Start ollmlx"), "{help}");
        assert!(
            help.contains("Environment Variables:\n      OLLAMA_DEBUG"),
            "{help}"
        );
        assert!(
            help.contains("      OLLAMA_LOAD_TIMEOUT           How long"),
            "{help}"
        );
    }
}
