//! Translation between `ollmlx_infer` types and the engine's: requests → [`GenerateRequest`],
//! engine events → [`Event`]s, engine errors → [`BackendError`].

use std::time::Duration;

use ollmlx_engine::{
    ChatMessage, Done, EngineError, EngineEvent, FinishReason, FormatSpec, GenerateRequest,
    KeepAlive as EngineKeepAlive, ModelRef, Prompt, SamplerConfig,
};
use ollmlx_infer::{
    BackendError, DoneReason, Event, Format, Input, KeepAlive, Logprob, Request, Stats,
    TokenLogprob,
};

/// Ollama's default context window.
pub const DEFAULT_NUM_CTX: usize = 4096;

/// What a request asks the engine to do.
pub enum Plan {
    /// Generate (or load-only, via [`Prompt::LoadOnly`]).
    Generate(Box<GenerateRequest>),
    /// Empty prompt with `keep_alive: 0`: unload the model.
    Unload,
}

/// Build the engine request for `req`, served by the weights at `model`. `capabilities` are the
/// model's (from the store) when known; without them the engine checks after loading.
pub fn plan(
    req: &Request,
    model: ModelRef,
    capabilities: Option<&[String]>,
) -> Result<Plan, BackendError> {
    let has = |c: &str| capabilities.is_none_or(|caps| caps.iter().any(|x| x == c));
    if req.think.as_ref().is_some_and(|t| t.enabled()) && !req.relax_thinking && !has("thinking") {
        return Err(BackendError::Unsupported(format!(
            "\"{}\" does not support thinking",
            req.model
        )));
    }
    let keep_alive = req.keep_alive.map(|k| match k {
        KeepAlive::For(d) => EngineKeepAlive::For(d),
        KeepAlive::Forever => EngineKeepAlive::Forever,
    });
    let (prompt, return_context) = match &req.input {
        Input::Chat(c) if c.messages.is_empty() => (Prompt::LoadOnly, false),
        Input::Chat(c) => (
            Prompt::Chat {
                messages: c.messages.iter().map(message).collect(),
                tools: c.tools.clone(),
            },
            false,
        ),
        Input::Generate(g) if g.prompt.is_empty() && g.system.is_empty() => {
            (Prompt::LoadOnly, false)
        }
        Input::Generate(g) => (
            Prompt::Text {
                prompt: g.prompt.clone(),
                system: g.system.clone(),
                raw: g.raw,
            },
            true,
        ),
    };
    if prompt == Prompt::LoadOnly && req.keep_alive.is_some_and(|k| k.is_zero()) {
        return Ok(Plan::Unload);
    }
    let o = &req.options;
    let num_ctx = o
        .num_ctx
        .filter(|&n| n > 0)
        .map_or(DEFAULT_NUM_CTX, |n| n as usize);
    let d = SamplerConfig::default();
    let sampler = SamplerConfig {
        temperature: o.temperature.unwrap_or(d.temperature),
        top_k: o.top_k.map_or(d.top_k, |k| k.max(0) as usize),
        top_p: o.top_p.unwrap_or(d.top_p),
        min_p: o.min_p.unwrap_or(d.min_p),
        typical_p: o.typical_p.unwrap_or(d.typical_p),
        repeat_last_n: match o.repeat_last_n {
            Some(n) if n < 0 => num_ctx,
            Some(n) => n as usize,
            None => d.repeat_last_n,
        },
        repeat_penalty: o.repeat_penalty.unwrap_or(d.repeat_penalty),
        presence_penalty: o.presence_penalty.unwrap_or(d.presence_penalty),
        frequency_penalty: o.frequency_penalty.unwrap_or(d.frequency_penalty),
        seed: o.seed.filter(|&s| s >= 0).map(|s| s as u64),
    };
    let mut g = GenerateRequest::new(model, prompt);
    g.sampler = sampler;
    g.num_predict = o.num_predict.filter(|&n| n >= 0).map(|n| n as usize);
    g.num_ctx = num_ctx;
    g.num_batch = o.num_batch.filter(|&n| n > 0).map_or(512, |n| n as usize);
    g.stop = o.stop.clone().unwrap_or_default();
    g.truncate = req.truncate.unwrap_or(true);
    g.shift = req.shift.unwrap_or(true);
    g.num_keep = o.num_keep.map_or(4, |n| n.max(0) as usize);
    g.keep_alive = keep_alive;
    g.return_context = return_context;
    g.think = req.think.as_ref().map(|t| t.enabled());
    g.relax_thinking = req.relax_thinking;
    g.format = req.format.as_ref().map(|f| match f {
        Format::Json => FormatSpec::Json,
        Format::Schema(s) => FormatSpec::Schema(s.clone()),
    });
    g.logprobs = req.logprobs.then_some(req.top_logprobs as usize);
    // `_debug_render_only` on a Jinja-templated model: the engine renders and answers with the
    // prompt (Go templates are rendered before the plan, in `gotemplate`).
    g.render_only = req.debug_render_only;
    g.draft_num_predict = req
        .options
        .draft_num_predict
        .map(|n| usize::try_from(n).unwrap_or(0));
    Ok(Plan::Generate(Box::new(g)))
}

/// Ollama's capability check for what a request needs beyond completion: `tools` for chat
/// requests with tools, `insert` for generate requests with a `suffix`. `full_name` is the
/// fully-qualified model name (`registry.ollama.ai/library/x:latest`), as upstream prints it:
/// `<name> does not support tools` (several missing capabilities are joined by newlines).
pub fn check_capabilities(
    req: &Request,
    full_name: &str,
    capabilities: &[String],
) -> Result<(), BackendError> {
    let mut want = Vec::new();
    match &req.input {
        Input::Chat(c) if !c.tools.is_empty() => want.push("tools"),
        Input::Generate(g) if !g.suffix.is_empty() => want.push("insert"),
        _ => {}
    }
    let missing: Vec<&str> = want
        .into_iter()
        .filter(|w| !capabilities.iter().any(|c| c == w))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(BackendError::Unsupported(format!(
        "{full_name} does not support {}",
        missing.join("\n")
    )))
}

fn message(m: &ollmlx_infer::Message) -> ChatMessage {
    ChatMessage {
        role: m.role.clone(),
        content: m.content.clone(),
        tool_calls: m
            .tool_calls
            .iter()
            .map(|c| {
                serde_json::json!({"type": "function", "function": {"name": c.name, "arguments": c.arguments}})
            })
            .collect(),
        name: (!m.tool_name.is_empty()).then(|| m.tool_name.clone()),
    }
}

fn ns(d: Duration) -> u64 {
    d.as_nanos().min(u64::MAX as u128) as u64
}

/// The final event for an engine `Done`.
pub fn done_event(d: Done) -> Event {
    let reason = match d.reason {
        FinishReason::Stop => DoneReason::Stop,
        FinishReason::Length => DoneReason::Length,
        FinishReason::Load => DoneReason::Load,
        FinishReason::Unload => DoneReason::Unload,
    };
    let s = d.stats;
    Event::Done {
        reason,
        stats: Stats {
            total_duration: ns(s.total),
            load_duration: ns(s.load),
            prompt_eval_count: s.prompt_eval_count,
            prompt_eval_duration: ns(s.prompt_eval),
            eval_count: s.eval_count,
            eval_duration: ns(s.eval),
        },
        context: d.context.map(|c| c.into_iter().map(i64::from).collect()),
    }
}

/// Turns engine events into `Event`s. Logprobs arrive one token at a time ahead of the text
/// that contains the token (the detokenizer, stop matcher and parsers may hold text back); they
/// are attached to the next text delta, and any left at the end go out in one delta before
/// `Done`, so every streamed chunk carries the logprobs of its own tokens.
#[derive(Debug, Default)]
pub struct EventMapper {
    logprobs: Vec<Logprob>,
    image_count: usize,
}

impl EventMapper {
    /// A mapper for one request.
    pub fn new() -> Self {
        Self::default()
    }

    /// The request carries `n` images (reported with a rendered prompt).
    pub fn with_images(mut self, n: usize) -> Self {
        self.image_count = n;
        self
    }

    /// The events for `e` (none while logprobs wait for their text); `Err` ends the stream.
    pub fn map(&mut self, e: EngineEvent) -> Result<Vec<Event>, BackendError> {
        Ok(match e {
            EngineEvent::Logprobs(l) => {
                self.logprobs.push(logprob(l));
                Vec::new()
            }
            EngineEvent::Text(content) => vec![Event::Delta {
                content,
                thinking: String::new(),
                logprobs: std::mem::take(&mut self.logprobs),
            }],
            EngineEvent::Thinking(thinking) => vec![Event::Delta {
                content: String::new(),
                thinking,
                logprobs: std::mem::take(&mut self.logprobs),
            }],
            EngineEvent::ToolCalls(calls) => vec![tool_calls_event(calls)],
            EngineEvent::Done(d) => {
                let mut out = Vec::new();
                if !self.logprobs.is_empty() {
                    out.push(Event::Delta {
                        content: String::new(),
                        thinking: String::new(),
                        logprobs: std::mem::take(&mut self.logprobs),
                    });
                }
                out.push(done_event(d));
                out
            }
            EngineEvent::Rendered(prompt) => vec![Event::Rendered {
                prompt,
                image_count: self.image_count,
            }],
            EngineEvent::Error(e) => return Err(error(e)),
        })
    }
}

fn token_logprob(t: ollmlx_engine::logprobs::TokenLogprob) -> TokenLogprob {
    TokenLogprob {
        token: t.token,
        logprob: t.logprob,
        bytes: t.bytes,
    }
}

fn logprob(l: ollmlx_engine::logprobs::Logprob) -> Logprob {
    let c = token_logprob(l.chosen);
    Logprob {
        token: c.token,
        logprob: c.logprob,
        bytes: c.bytes,
        top_logprobs: l.top.into_iter().map(token_logprob).collect(),
    }
}

/// The event for tool calls the engine parsed.
pub fn tool_calls_event(calls: Vec<ollmlx_engine::tools::ToolCall>) -> Event {
    Event::ToolCalls(
        calls
            .into_iter()
            .map(|c| ollmlx_infer::ToolCall {
                id: c.id,
                index: c.index,
                name: c.name,
                arguments: c.arguments,
            })
            .collect(),
    )
}

/// Map an engine failure onto the error the router understands.
pub fn error(e: EngineError) -> BackendError {
    match e {
        EngineError::Overloaded => BackendError::Overloaded,
        EngineError::InvalidRequest(m) => BackendError::InvalidRequest(m),
        EngineError::ContextLength(m) => BackendError::ContextLengthExceeded(m),
        EngineError::Unsupported(m) => BackendError::Unsupported(m),
        other => BackendError::Internal(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ollmlx_infer::{ChatInput, GenerateInput, Message, Options, Think};
    use std::path::PathBuf;

    fn mref() -> ModelRef {
        ModelRef {
            name: "m".into(),
            path: PathBuf::from("/x.gguf"),
        }
    }

    fn chat(content: &str) -> Request {
        Request {
            model: "m".into(),
            input: Input::Chat(ChatInput {
                messages: vec![Message {
                    role: "user".into(),
                    content: content.into(),
                    ..Default::default()
                }],
                tools: vec![],
            }),
            ..Default::default()
        }
    }

    #[test]
    fn options_map_onto_sampler_and_limits() {
        let mut r = chat("hi");
        r.options = Options {
            temperature: Some(0.0),
            seed: Some(42),
            num_predict: Some(5),
            repeat_last_n: Some(-1),
            num_ctx: Some(1024),
            stop: Some(vec!["x".into()]),
            ..Default::default()
        };
        let Plan::Generate(g) = plan(&r, mref(), None).unwrap() else {
            panic!("expected generate")
        };
        assert_eq!(g.sampler.temperature, 0.0);
        assert_eq!(g.sampler.seed, Some(42));
        assert_eq!(g.sampler.repeat_last_n, 1024);
        assert_eq!(g.num_predict, Some(5));
        assert_eq!(g.stop, vec!["x".to_string()]);
    }

    #[test]
    fn negative_seed_and_num_predict_mean_unset() {
        let mut r = chat("hi");
        r.options = Options {
            seed: Some(-1),
            num_predict: Some(-1),
            ..Default::default()
        };
        let Plan::Generate(g) = plan(&r, mref(), None).unwrap() else {
            panic!("expected generate")
        };
        assert_eq!(g.sampler.seed, None);
        assert_eq!(g.num_predict, None);
    }

    #[test]
    fn empty_prompt_loads_and_keep_alive_zero_unloads() {
        let r = Request {
            model: "m".into(),
            input: Input::Generate(GenerateInput::default()),
            ..Default::default()
        };
        assert!(
            matches!(plan(&r, mref(), None).unwrap(), Plan::Generate(g) if g.prompt == Prompt::LoadOnly)
        );
        let r = Request {
            keep_alive: Some(KeepAlive::For(Duration::ZERO)),
            ..r
        };
        assert!(matches!(plan(&r, mref(), None).unwrap(), Plan::Unload));
    }

    #[test]
    fn thinking_is_refused_like_upstream_for_models_without_it() {
        let mut r = chat("hi");
        r.think = Some(Think::Bool(true));
        let caps = ["completion".to_string()];
        let e = plan(&r, mref(), Some(&caps)).err().unwrap();
        assert_eq!(
            e,
            BackendError::Unsupported("\"m\" does not support thinking".into())
        );
    }

    #[test]
    fn thinking_passes_through_for_thinking_models_and_relaxed_requests() {
        let mut r = chat("hi");
        r.think = Some(Think::Level("high".into()));
        let caps = ["completion".to_string(), "thinking".to_string()];
        let Plan::Generate(g) = plan(&r, mref(), Some(&caps)).unwrap() else {
            panic!("expected generate")
        };
        assert_eq!(g.think, Some(true));
        r.relax_thinking = true;
        assert!(plan(&r, mref(), Some(&caps[..1])).is_ok());
        // Without capabilities the engine decides after loading.
        r.relax_thinking = false;
        assert!(plan(&r, mref(), None).is_ok());
    }

    #[test]
    fn format_and_logprobs_map_onto_the_engine_request() {
        let mut r = chat("hi");
        r.format = Some(Format::Schema(serde_json::json!({"type": "object"})));
        r.logprobs = true;
        r.top_logprobs = 3;
        let Plan::Generate(g) = plan(&r, mref(), None).unwrap() else {
            panic!("expected generate")
        };
        assert_eq!(
            g.format,
            Some(FormatSpec::Schema(serde_json::json!({"type": "object"})))
        );
        assert_eq!(g.logprobs, Some(3));
        r.format = Some(Format::Json);
        r.logprobs = false;
        let Plan::Generate(g) = plan(&r, mref(), None).unwrap() else {
            panic!("expected generate")
        };
        assert_eq!(g.format, Some(FormatSpec::Json));
        assert_eq!(g.logprobs, None, "top_logprobs alone asks for nothing");
    }

    #[test]
    fn draft_num_predict_and_render_only_map_onto_the_engine_request() {
        let mut r = chat("hi");
        let Plan::Generate(g) = plan(&r, mref(), None).unwrap() else {
            panic!("expected generate")
        };
        assert_eq!((g.draft_num_predict, g.render_only), (None, false));
        r.options.draft_num_predict = Some(2);
        r.debug_render_only = true;
        let Plan::Generate(g) = plan(&r, mref(), None).unwrap() else {
            panic!("expected generate")
        };
        assert_eq!((g.draft_num_predict, g.render_only), (Some(2), true));
        r.options.draft_num_predict = Some(-1);
        let Plan::Generate(g) = plan(&r, mref(), None).unwrap() else {
            panic!("expected generate")
        };
        assert_eq!(g.draft_num_predict, Some(0), "negative: no speculation");
    }

    #[test]
    fn shift_defaults_on_and_num_keep_and_typical_p_map_from_options() {
        let mut r = chat("hi");
        let Plan::Generate(g) = plan(&r, mref(), None).unwrap() else {
            panic!("expected generate")
        };
        assert!(g.shift);
        assert_eq!(g.num_keep, 4);
        assert_eq!(g.sampler.typical_p, 1.0);
        r.shift = Some(false);
        r.options.num_keep = Some(-3);
        r.options.typical_p = Some(0.7);
        let Plan::Generate(g) = plan(&r, mref(), None).unwrap() else {
            panic!("expected generate")
        };
        assert!(!g.shift);
        assert_eq!(g.num_keep, 0);
        assert_eq!(g.sampler.typical_p, 0.7);
    }

    #[test]
    fn tools_and_suffix_need_their_capabilities_with_upstreams_full_name_message() {
        let full = "registry.ollama.ai/library/smollm2:latest";
        let mut r = chat("hi");
        r.input = Input::Chat(ChatInput {
            messages: vec![],
            tools: vec![serde_json::json!({"type": "function", "function": {"name": "f"}})],
        });
        let caps = ["completion".to_string()];
        assert_eq!(
            check_capabilities(&r, full, &caps).unwrap_err(),
            BackendError::Unsupported(format!("{full} does not support tools"))
        );
        let with_tools = ["completion".to_string(), "tools".to_string()];
        assert!(check_capabilities(&r, full, &with_tools).is_ok());
        r.input = Input::Generate(GenerateInput {
            prompt: "def f(".into(),
            suffix: "return x".into(),
            ..Default::default()
        });
        assert_eq!(
            check_capabilities(&r, full, &caps).unwrap_err(),
            BackendError::Unsupported(format!("{full} does not support insert"))
        );
        assert!(check_capabilities(&chat("plain"), full, &caps).is_ok());
    }

    fn lp(token: &str, logprob: f64) -> ollmlx_engine::logprobs::Logprob {
        let t = ollmlx_engine::logprobs::TokenLogprob {
            id: 1,
            token: token.into(),
            bytes: token.as_bytes().to_vec(),
            logprob,
        };
        ollmlx_engine::logprobs::Logprob {
            chosen: t.clone(),
            top: vec![t],
        }
    }

    #[test]
    fn logprobs_ride_on_the_next_text_delta_and_leftovers_precede_done() {
        let mut m = EventMapper::new();
        assert!(m
            .map(EngineEvent::Logprobs(lp("Par", -0.1)))
            .unwrap()
            .is_empty());
        assert!(m
            .map(EngineEvent::Logprobs(lp("is", -0.2)))
            .unwrap()
            .is_empty());
        let evs = m.map(EngineEvent::Text("Paris".into())).unwrap();
        let [Event::Delta {
            content, logprobs, ..
        }] = &evs[..]
        else {
            panic!("{evs:?}")
        };
        assert_eq!(content, "Paris");
        assert_eq!(logprobs.len(), 2);
        assert_eq!(logprobs[0].token, "Par");
        assert_eq!(logprobs[0].bytes, b"Par");
        assert_eq!(logprobs[1].top_logprobs[0].logprob, -0.2);
        // A token whose text is still held back (e.g. a partial stop string) at the end.
        m.map(EngineEvent::Logprobs(lp(".", -0.3))).unwrap();
        let evs = m
            .map(EngineEvent::Done(Done {
                reason: FinishReason::Stop,
                stats: Default::default(),
                context: None,
            }))
            .unwrap();
        assert!(
            matches!(&evs[0], Event::Delta { content, logprobs, .. } if content.is_empty() && logprobs.len() == 1)
        );
        assert!(matches!(evs[1], Event::Done { .. }));
        let e = m
            .map(EngineEvent::Error(EngineError::Overloaded))
            .unwrap_err();
        assert_eq!(e, BackendError::Overloaded);
    }
}
