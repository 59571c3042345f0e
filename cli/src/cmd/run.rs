//! `ollmlx run MODEL [PROMPT]`: option handling, pull-on-404, embeddings, and the one-shot
//! `/api/generate` path. The interactive REPL lives in [`super::interactive`]; the
//! streaming display (word wrap, thinking markers, `--verbose` stats) in [`super::display`].

use std::io::{IsTerminal, Read, Write};

use ollmlx_wire::ollama::{EmbedRequest, GenerateRequest, Message, ShowRequest, ShowResponse};
use serde_json::{Map, Value};

use super::display::{self, Display};
use super::interactive;
use super::pull::pull_with_progress;
use super::RunArgs;
use crate::client::{ApiError, Client};
use crate::duration::{format_go_duration, parse_go_duration};
use crate::env::Env;
use crate::progress::Progress;

/// Everything a run session carries between requests (upstream `runOptions`).
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Model name.
    pub model: String,
    /// The model this one was created from (for `/save`).
    pub parent_model: String,
    /// Messages preset by the model (`MESSAGE` lines).
    pub loaded_messages: Vec<Message>,
    /// One-shot prompt.
    pub prompt: String,
    /// REPL conversation so far.
    pub messages: Vec<Message>,
    /// Wrap words at the terminal width.
    pub word_wrap: bool,
    /// `""` or `json`.
    pub format: String,
    /// System message set in the session.
    pub system: String,
    /// User-set options (`/set parameter`).
    pub options: Map<String, Value>,
    /// Model accepts images/audio.
    pub multimodal: bool,
    /// `keep_alive` to send (`"5m0s"` or `-1`).
    pub keep_alive: Option<Value>,
    /// `think` to send (`true`, `false` or a level).
    pub think: Option<Value>,
    /// Don't print thinking.
    pub hide_thinking: bool,
    /// Print the stats block after each response.
    pub verbose: bool,
    /// Token context carried between one-shot generate calls.
    pub context: Vec<i64>,
}

/// Parse `--think[=value]` (upstream's accepted values and error text).
pub fn parse_think(v: &str) -> anyhow::Result<Value> {
    match v {
        "" | "true" => Ok(Value::Bool(true)),
        "false" => Ok(Value::Bool(false)),
        "high" | "medium" | "low" | "max" => Ok(Value::String(v.into())),
        _ => anyhow::bail!(
            "invalid value for --think: {} (must be true, false, high, medium, low, or max)",
            crate::duration::go_quote(v)
        ),
    }
}

/// Parse `--keepalive` as a Go duration and encode it as upstream's client does.
pub fn parse_keep_alive(v: &str) -> anyhow::Result<Value> {
    let d = parse_go_duration(v).map_err(anyhow::Error::msg)?;
    Ok(keep_alive_value(d))
}

/// `api.Duration` JSON: `-1` when negative, else the Go duration string (`"5m0s"`).
pub fn keep_alive_value(nanos: i64) -> Value {
    if nanos < 0 {
        Value::from(-1)
    } else {
        Value::String(format_go_duration(nanos))
    }
}

/// Show `name`, pulling it first when the server says 404.
pub async fn show_or_pull(
    client: &Client,
    name: &str,
    insecure: bool,
) -> anyhow::Result<ShowResponse> {
    let req = ShowRequest {
        model: name.into(),
        ..Default::default()
    };
    match client.show(&req).await {
        Ok(info) => Ok(info),
        Err(ApiError::Status { code: 404, .. }) => {
            pull_with_progress(client, name, insecure).await?;
            Ok(client.show(&req).await?)
        }
        Err(e) => Err(e.into()),
    }
}

/// `Some(true)` for thinking-capable models unless the user chose (upstream `inferThinkingOption`).
pub fn infer_think(caps: &[String], explicit: Option<Value>, user_set: bool) -> Option<Value> {
    if user_set {
        return explicit;
    }
    caps.iter()
        .any(|c| c == "thinking")
        .then_some(Value::Bool(true))
}

/// Copy what `/api/show` says about the model into the session.
pub fn apply_show(opts: &mut RunOptions, info: &ShowResponse) {
    opts.parent_model = info.details.parent_model.clone();
    opts.loaded_messages = info.messages.clone();
}

/// Run `run`.
pub async fn run(client: &Client, env: &Env, a: RunArgs) -> anyhow::Result<()> {
    let mut interactive = true;
    let mut opts = RunOptions {
        model: a.model.clone(),
        format: a.format.clone().unwrap_or_default(),
        hide_thinking: a.hidethinking,
        verbose: a.verbose,
        ..Default::default()
    };
    let think_set = a.think.is_some();
    if let Some(t) = &a.think {
        opts.think = Some(parse_think(t)?);
    }
    if let Some(k) = a.keepalive.as_deref().filter(|k| !k.is_empty()) {
        opts.keep_alive = Some(parse_keep_alive(k)?);
    }
    let mut prompts = a.prompt.clone();
    if !std::io::stdin().is_terminal() {
        let mut input = Vec::new();
        std::io::stdin().read_to_end(&mut input)?;
        let input = String::from_utf8_lossy(&input).into_owned();
        if !input.is_empty() {
            prompts.insert(0, input);
        }
        interactive = false;
    }
    opts.prompt = prompts.join(" ");
    if !prompts.is_empty() || !std::io::stdout().is_terminal() {
        interactive = false;
    }
    opts.word_wrap = !a.nowordwrap;

    let info = show_or_pull(client, &a.model, a.insecure).await?;
    opts.think = infer_think(&info.capabilities, opts.think.take(), think_set);
    opts.multimodal = info
        .capabilities
        .iter()
        .any(|c| c == "vision" || c == "audio")
        || info.projector_info.as_ref().is_some_and(|p| !p.is_empty())
        || info.model_info.keys().any(|k| k.contains(".vision."));
    apply_show(&mut opts, &info);

    if info.capabilities.iter().any(|c| c == "embedding") {
        if opts.prompt.is_empty() {
            anyhow::bail!(
                "embedding models require input text. Usage: ollmlx run {} \"your text here\"",
                a.model
            );
        }
        return embed(client, &opts, a.truncate, a.dimensions).await;
    }
    if info.capabilities.iter().any(|c| c == "image") {
        anyhow::bail!("image generation models are not currently supported");
    }

    if interactive {
        super::stop::load_or_unload(
            client,
            &opts.model,
            opts.keep_alive.clone(),
            opts.think.clone(),
        )
        .await?;
        for m in &info.messages {
            match m.role.as_str() {
                "user" => println!(">>> {}", m.content),
                "assistant" => {
                    let mut d = Display::new(opts.word_wrap);
                    d.write(&m.content);
                    println!("\n");
                }
                _ => {}
            }
        }
        return interactive::repl(client, env, opts, think_set).await;
    }
    generate(client, &mut opts).await
}

async fn embed(
    client: &Client,
    opts: &RunOptions,
    truncate: Option<bool>,
    dimensions: i64,
) -> anyhow::Result<()> {
    let req = EmbedRequest {
        model: opts.model.clone(),
        input: Value::String(opts.prompt.clone()),
        keep_alive: opts.keep_alive.clone(),
        truncate,
        dimensions: dimensions.max(0),
        options: None,
    };
    let resp = client.embed(&req).await?;
    let Some(first) = resp.embeddings.first() else {
        anyhow::bail!("no embeddings returned");
    };
    println!("{}", serde_json::to_string(first)?);
    Ok(())
}

/// One-shot generation: stream `/api/generate` to stdout (upstream `generate`).
pub async fn generate(client: &Client, opts: &mut RunOptions) -> anyhow::Result<()> {
    let mut progress = Progress::new();
    progress.add_spinner("");
    let plain = !std::io::stdout().is_terminal();
    let mut d = Display::new(opts.word_wrap);
    let mut thinking = display::Thinking::new(plain);
    let mut latest = None;

    let mut images = Vec::new();
    if opts.multimodal {
        let (prompt, imgs) = display::extract_file_data(&opts.prompt)?;
        opts.prompt = prompt;
        images = imgs;
    }
    let req = GenerateRequest {
        model: opts.model.clone(),
        prompt: opts.prompt.clone(),
        context: opts.context.clone(),
        images: (!images.is_empty()).then(|| Value::from(images)),
        format: (!opts.format.is_empty()).then(|| Value::String(opts.format.clone())),
        system: opts.system.clone(),
        options: Some(opts.options.clone()),
        keep_alive: opts.keep_alive.clone(),
        think: opts.think.clone(),
        ..Default::default()
    };
    let hide = opts.hide_thinking;
    let stream = client.generate(&req, |r| {
        if !r.response.is_empty() || !hide {
            progress.stop_and_clear();
        }
        if !r.thinking.is_empty() && !hide {
            thinking.open(&mut d);
            thinking.push(&r.thinking, &mut d);
        }
        if !r.response.is_empty() || !r.tool_calls.is_empty() {
            thinking.close(&mut d);
        }
        d.write(&r.response);
        if !r.tool_calls.is_empty() {
            d.raw(&display::render_tool_calls(&r.tool_calls, plain));
        }
        latest = Some(r);
        Ok(())
    });
    let result = tokio::select! {
        r = stream => r,
        _ = tokio::signal::ctrl_c() => Ok(()),
    };
    progress.stop_and_clear();
    result?;
    if !opts.prompt.is_empty() {
        println!("\n");
    }
    let _ = std::io::stdout().flush();
    let Some(latest) = latest.filter(|l| l.done) else {
        return Ok(());
    };
    if opts.verbose {
        eprint!("{}", display::summary(&latest.metrics));
    }
    opts.context = latest.context;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn think_values_match_upstream() {
        assert_eq!(parse_think("").unwrap(), Value::Bool(true));
        assert_eq!(parse_think("false").unwrap(), Value::Bool(false));
        assert_eq!(parse_think("max").unwrap(), Value::from("max"));
        assert_eq!(
            parse_think("x").unwrap_err().to_string(),
            "invalid value for --think: \"x\" (must be true, false, high, medium, low, or max)"
        );
    }

    #[test]
    fn keep_alive_is_sent_as_go_duration() {
        assert_eq!(parse_keep_alive("5m").unwrap(), Value::from("5m0s"));
        assert_eq!(parse_keep_alive("0").unwrap(), Value::from("0s"));
        assert_eq!(parse_keep_alive("-1m").unwrap(), Value::from(-1));
        assert_eq!(
            parse_keep_alive("forever").unwrap_err().to_string(),
            "time: invalid duration \"forever\""
        );
    }

    #[test]
    fn thinking_is_inferred_from_capabilities() {
        let caps = vec!["completion".to_string(), "thinking".to_string()];
        assert_eq!(infer_think(&caps, None, false), Some(Value::Bool(true)));
        assert_eq!(infer_think(&caps[..1], None, false), None);
        assert_eq!(
            infer_think(&caps, Some(Value::Bool(false)), true),
            Some(Value::Bool(false))
        );
    }
}
