//! The `run` REPL: `>>> ` prompt, `"""` multi-line input, slash commands with upstream's
//! messages, and `/api/chat` with the accumulated conversation.

use std::io::Write;
use std::sync::{Arc, Mutex};

use ollmlx_wire::ollama::{ChatRequest, CreateRequest, Message, ShowRequest};
use rustyline::error::ReadlineError;
use serde_json::Value;

use super::display::{self, Display, Thinking};
use super::run::{apply_show, infer_think, RunOptions};
use super::show::show_info;
use crate::client::Client;
use crate::env::Env;
use crate::params::go_value;
use crate::progress::Progress;
use ollmlx_infer::options::format_param;
use ollmlx_store::name::Name;

/// Which multi-line block is being collected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Multiline {
    None,
    Prompt,
    System,
}

/// What the loop does after a line.
#[derive(Debug, PartialEq, Eq)]
pub enum Flow {
    /// Read the next line.
    Continue,
    /// Leave the REPL.
    Exit,
}

/// A cloneable text sink (stdout/stderr in the REPL, a buffer in tests).
#[derive(Clone)]
pub enum Sink {
    /// The process's stdout.
    Stdout,
    /// The process's stderr.
    Stderr,
    /// A shared buffer.
    Buffer(Arc<Mutex<Vec<u8>>>),
}

impl Sink {
    fn put(&self, s: &str) {
        match self {
            Sink::Stdout => {
                let mut o = std::io::stdout().lock();
                let _ = o.write_all(s.as_bytes());
                let _ = o.flush();
            }
            Sink::Stderr => {
                let _ = std::io::stderr().write_all(s.as_bytes());
            }
            Sink::Buffer(b) => b
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .extend_from_slice(s.as_bytes()),
        }
    }

    fn line(&self, s: &str) {
        self.put(&format!("{s}\n"));
    }
}

/// REPL state: the session options plus the line being assembled.
pub struct Repl {
    /// The session.
    pub opts: RunOptions,
    think_set: bool,
    sb: String,
    multiline: Multiline,
    /// Use the `... ` continuation prompt.
    pub use_alt: bool,
    /// Readline history on.
    pub history: bool,
    out: Sink,
    err: Sink,
}

const USAGE: &[&str] = &[
    "Available Commands:",
    "  /set            Set session variables",
    "  /show           Show model information",
    "  /load <model>   Load a session or model",
    "  /save <model>   Save your current session",
    "  /clear          Clear session context",
    "  /bye            Exit",
    "  /?, /help       Help for a command",
    "  /? shortcuts    Help for keyboard shortcuts",
    "",
    "Use \"\"\" to begin a multi-line message.",
];

const USAGE_SET: &[&str] = &[
    "Available Commands:",
    "  /set parameter ...     Set a parameter",
    "  /set system <string>   Set system message",
    "  /set history           Enable history",
    "  /set nohistory         Disable history",
    "  /set wordwrap          Enable wordwrap",
    "  /set nowordwrap        Disable wordwrap",
    "  /set format json       Enable JSON mode",
    "  /set noformat          Disable formatting",
    "  /set verbose           Show LLM stats",
    "  /set quiet             Disable LLM stats",
    "  /set think             Enable thinking",
    "  /set nothink           Disable thinking",
    "",
];

const USAGE_SHORTCUTS: &[&str] = &[
    "Available keyboard shortcuts:",
    "  Ctrl + a            Move to the beginning of the line (Home)",
    "  Ctrl + e            Move to the end of the line (End)",
    "   Alt + b            Move back (left) one word",
    "   Alt + f            Move forward (right) one word",
    "  Ctrl + k            Delete the sentence after the cursor",
    "  Ctrl + u            Delete the sentence before the cursor",
    "  Ctrl + w            Delete the word before the cursor",
    "",
    "  Ctrl + l            Clear the screen",
    "  Ctrl + c            Stop the model from responding",
    "  Ctrl + d            Exit ollmlx (/bye)",
    "",
];

const USAGE_SHOW: &[&str] = &[
    "Available Commands:",
    "  /show info         Show details for this model",
    "  /show license      Show model license",
    "  /show modelfile    Show Modelfile for this model",
    "  /show parameters   Show parameters for this model",
    "  /show system       Show system message",
    "  /show template     Show prompt template",
    "",
];

const USAGE_PARAMETERS: &[&str] = &[
    "Available Parameters:",
    "  /set parameter seed <int>             Random number seed",
    "  /set parameter num_predict <int>      Max number of tokens to predict",
    "  /set parameter top_k <int>            Pick from top k num of tokens",
    "  /set parameter top_p <float>          Pick token based on sum of probabilities",
    "  /set parameter min_p <float>          Pick token based on top token probability * min_p",
    "  /set parameter num_ctx <int>          Set the context size",
    "  /set parameter temperature <float>    Set creativity level",
    "  /set parameter repeat_penalty <float> How strongly to penalize repetitions",
    "  /set parameter repeat_last_n <int>    Set how far back to look for repetitions",
    "  /set parameter num_gpu <int>          The number of layers to send to the GPU",
    "  /set parameter stop <string> <string> ...   Set the stop parameters",
    "",
];

/// The `/save` request (upstream `NewCreateRequest`).
pub fn new_create_request(name: &str, opts: &RunOptions) -> CreateRequest {
    let parent = if Name::parse(&opts.parent_model).is_valid() && !opts.parent_model.is_empty() {
        opts.parent_model.clone()
    } else {
        String::new()
    };
    let mut messages = opts.loaded_messages.clone();
    messages.extend(opts.messages.iter().cloned());
    CreateRequest {
        model: name.into(),
        from: if parent.is_empty() {
            opts.model.clone()
        } else {
            parent
        },
        system: opts.system.clone(),
        parameters: opts.options.clone(),
        messages,
        ..Default::default()
    }
}

impl Repl {
    /// A REPL over `opts`, printing to `out`/`err`.
    pub fn new(opts: RunOptions, think_set: bool, out: Sink, err: Sink) -> Repl {
        Repl {
            opts,
            think_set,
            sb: String::new(),
            multiline: Multiline::None,
            use_alt: false,
            history: true,
            out,
            err,
        }
    }

    fn lines(&self, sink: &Sink, lines: &[&str]) {
        for l in lines {
            sink.line(l);
        }
    }

    fn usage(&self) {
        self.lines(&self.err, USAGE);
        if self.opts.multimodal {
            self.err.line(
                "Use /path/to/file to include .jpg, .png, .webp images, or .wav audio files.",
            );
        }
        self.err.line("");
    }

    /// Ctrl+C at the prompt: drop the pending input.
    pub fn interrupt(&mut self) {
        self.out.line("\nUse Ctrl + d or /bye to exit.");
        self.use_alt = false;
        self.sb.clear();
    }

    /// Handle one input line.
    pub async fn handle(&mut self, client: &Client, line: &str) -> anyhow::Result<Flow> {
        if self.multiline != Multiline::None {
            let (before, done) = match line.strip_suffix("\"\"\"") {
                Some(b) => (b, true),
                None => (line, false),
            };
            self.sb.push_str(before);
            if !done {
                self.sb.push('\n');
                self.use_alt = true;
                return Ok(Flow::Continue);
            }
            if self.multiline == Multiline::System {
                self.opts.system = self.sb.clone();
                self.opts.messages.push(Message {
                    role: "system".into(),
                    content: self.opts.system.clone(),
                    ..Default::default()
                });
                self.out.line("Set system message.");
                self.sb.clear();
            }
            self.multiline = Multiline::None;
            self.use_alt = false;
        } else if let Some(rest) = line.strip_prefix("\"\"\"") {
            match rest.strip_suffix("\"\"\"") {
                Some(inner) => self.sb.push_str(inner),
                None => {
                    self.sb.push_str(rest);
                    self.sb.push('\n');
                    self.multiline = Multiline::Prompt;
                    self.use_alt = true;
                }
            }
        } else if line.starts_with("/list") {
            let args: Vec<&str> = line.split_whitespace().collect();
            let resp = client.list().await?;
            self.out
                .put(&super::list::render(&resp.models, args.get(1).copied()));
        } else if line.starts_with("/load") {
            self.load(client, line).await?;
            return Ok(Flow::Continue);
        } else if line.starts_with("/save") {
            self.save(client, line).await?;
            return Ok(Flow::Continue);
        } else if line.starts_with("/clear") {
            self.opts.messages.clear();
            if !self.opts.system.is_empty() {
                self.opts.messages.push(Message {
                    role: "system".into(),
                    content: self.opts.system.clone(),
                    ..Default::default()
                });
            }
            self.out.line("Cleared session context");
            return Ok(Flow::Continue);
        } else if line.starts_with("/set") {
            return self.set(client, line).await;
        } else if line.starts_with("/show") {
            self.show(client, line).await?;
        } else if line.starts_with("/help") || line.starts_with("/?") {
            let args: Vec<&str> = line.split_whitespace().collect();
            match args.get(1) {
                None => self.usage(),
                Some(&("set" | "/set")) => self.lines(&self.err, USAGE_SET),
                Some(&("show" | "/show")) => self.lines(&self.err, USAGE_SHOW),
                Some(&("shortcut" | "shortcuts")) => self.lines(&self.err, USAGE_SHORTCUTS),
                Some(_) => {}
            }
        } else if line.starts_with("/exit") || line.starts_with("/bye") {
            return Ok(Flow::Exit);
        } else if line.starts_with('/') {
            let first = line.split_whitespace().next().unwrap_or(line);
            let is_file = self.opts.multimodal
                && display::extract_file_names(line)
                    .iter()
                    .any(|f| f.starts_with(first));
            if !is_file {
                self.out
                    .line(&format!("Unknown command '{first}'. Type /? for help"));
                return Ok(Flow::Continue);
            }
            self.sb.push_str(line);
        } else {
            self.sb.push_str(line);
        }

        if !self.sb.is_empty() && self.multiline == Multiline::None {
            let mut msg = Message {
                role: "user".into(),
                content: self.sb.clone(),
                ..Default::default()
            };
            if self.opts.multimodal {
                let (text, images) = display::extract_file_data(&self.sb)?;
                msg.content = text;
                msg.images = images;
            }
            self.opts.messages.push(msg);
            match chat(client, &self.opts).await {
                Ok(Some(assistant)) => self.opts.messages.push(assistant),
                Ok(None) => {}
                Err(e) => {
                    let s = e.to_string();
                    if s.contains("does not support thinking") || s.contains("invalid think value")
                    {
                        self.out.line(&format!("error: {s}"));
                    } else {
                        return Err(e);
                    }
                }
            }
            self.sb.clear();
        }
        Ok(Flow::Continue)
    }

    async fn load(&mut self, client: &Client, line: &str) -> anyhow::Result<()> {
        let args: Vec<&str> = line.split_whitespace().collect();
        if args.len() != 2 {
            self.out.line("Usage:\n  /load <modelname>");
            return Ok(());
        }
        let orig = self.opts.clone();
        self.opts.model = args[1].to_string();
        self.opts.messages.clear();
        self.opts.loaded_messages.clear();
        self.out
            .line(&format!("Loading model '{}'", self.opts.model));
        let info = match client
            .show(&ShowRequest {
                model: self.opts.model.clone(),
                ..Default::default()
            })
            .await
        {
            Ok(i) => i,
            Err(e) if e.to_string().contains("not found") => {
                self.out
                    .line(&format!("Couldn't find model '{}'", self.opts.model));
                self.opts = orig;
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        };
        apply_show(&mut self.opts, &info);
        self.opts.think = infer_think(&info.capabilities, self.opts.think.take(), self.think_set);
        let loaded = super::stop::load_or_unload(
            client,
            &self.opts.model,
            self.opts.keep_alive.clone(),
            self.opts.think.clone(),
        )
        .await;
        match loaded {
            Err(e) if e.to_string().contains("not found") => {
                self.out
                    .line(&format!("Couldn't find model '{}'", self.opts.model));
                self.opts = orig;
            }
            Err(e) if e.to_string().contains("does not support thinking") => {
                self.out.line(&format!("error: {e}"));
            }
            other => other?,
        }
        Ok(())
    }

    async fn save(&mut self, client: &Client, line: &str) -> anyhow::Result<()> {
        let args: Vec<&str> = line.split_whitespace().collect();
        if args.len() != 2 {
            self.out.line("Usage:\n  /save <modelname>");
            return Ok(());
        }
        let req = new_create_request(args[1], &self.opts);
        match client.create(&req, |_| Ok(())).await {
            Err(e) if e.to_string().contains("invalid model name") => {
                self.out
                    .line(&format!("error: The model name '{}' is invalid", args[1]));
            }
            Err(e) => return Err(e),
            Ok(()) => self.out.line(&format!("Created new model '{}'", args[1])),
        }
        Ok(())
    }

    async fn warn_if_no_thinking(&self, client: &Client) {
        let req = ShowRequest {
            model: self.opts.model.clone(),
            ..Default::default()
        };
        if let Ok(info) = client.show(&req).await {
            if !info.capabilities.iter().any(|c| c == "thinking") {
                self.err.line(&format!(
                    "warning: model {} does not support thinking output",
                    crate::duration::go_quote(&self.opts.model)
                ));
            }
        }
    }
}

/// Send the conversation to `/api/chat`, streaming the reply to stdout; returns the
/// assistant message (`None` when cancelled with Ctrl+C).
pub async fn chat(client: &Client, opts: &RunOptions) -> anyhow::Result<Option<Message>> {
    let mut progress = Progress::new();
    progress.add_spinner("");
    let mut d = Display::new(opts.word_wrap);
    let mut thinking = Thinking::new(false);
    let mut full = String::new();
    let mut role = "assistant".to_string();
    let mut latest = None;
    let req = ChatRequest {
        model: opts.model.clone(),
        messages: opts.messages.clone(),
        format: (!opts.format.is_empty()).then(|| Value::String(opts.format.clone())),
        options: Some(opts.options.clone()),
        think: opts.think.clone(),
        keep_alive: opts.keep_alive.clone(),
        ..Default::default()
    };
    let hide = opts.hide_thinking;
    let stream = client.chat(&req, |r| {
        if !r.message.content.is_empty() || !hide {
            progress.stop_and_clear();
        }
        role = r.message.role.clone();
        if !r.message.thinking.is_empty() && !hide {
            thinking.open(&mut d);
            thinking.push(&r.message.thinking, &mut d);
        }
        if !r.message.content.is_empty() || !r.message.tool_calls.is_empty() {
            thinking.close(&mut d);
        }
        full.push_str(&r.message.content);
        if !r.message.tool_calls.is_empty() {
            d.raw(&display::render_tool_calls(&r.message.tool_calls, false));
        }
        d.write(&r.message.content);
        latest = Some(r);
        Ok(())
    });
    let result = tokio::select! {
        r = stream => Some(r),
        _ = tokio::signal::ctrl_c() => None,
    };
    progress.stop_and_clear();
    let Some(result) = result else {
        return Ok(None);
    };
    if let Err(e) = result {
        if e.to_string().contains("upstream error") {
            println!("An error occurred while processing your message. Please try again.\n");
            return Ok(None);
        }
        return Err(e);
    }
    if !opts.messages.is_empty() {
        println!("\n");
    }
    if opts.verbose {
        if let Some(l) = &latest {
            eprint!("{}", display::summary(&l.metrics));
        }
    }
    Ok(Some(Message {
        role,
        thinking: thinking.content().to_string(),
        content: full,
        ..Default::default()
    }))
}

/// Run the REPL until `/bye` or Ctrl+D.
pub async fn repl(
    client: &Client,
    env: &Env,
    opts: RunOptions,
    think_set: bool,
) -> anyhow::Result<()> {
    let mut ed = rustyline::DefaultEditor::new()?;
    let history_file = env.home_dir().map(|h| h.join(".ollama").join("history"));
    let mut repl = Repl::new(opts, think_set, Sink::Stdout, Sink::Stderr);
    repl.history = !env.no_history();
    if let Some(h) = &history_file {
        let _ = ed.load_history(h);
    }
    loop {
        let prompt = if repl.use_alt { "... " } else { ">>> " };
        let read = tokio::task::block_in_place(|| ed.readline(prompt));
        let line = match read {
            Ok(l) => l,
            Err(ReadlineError::Eof) => {
                println!();
                return Ok(());
            }
            Err(ReadlineError::Interrupted) => {
                repl.interrupt();
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        if repl.history && !line.trim().is_empty() {
            let _ = ed.add_history_entry(line.as_str());
            if let Some(h) = &history_file {
                if let Some(dir) = h.parent() {
                    let _ = std::fs::create_dir_all(dir);
                }
                let _ = ed.save_history(h);
            }
        }
        if repl.handle(client, &line).await? == Flow::Exit {
            return Ok(());
        }
    }
}

mod settings;

#[cfg(test)]
mod tests;
