//! Go prompt templates on the MLX path.
//!
//! Request path: `MlxRunner::generate` → **here** (when the model has a Go TEMPLATE from its
//! Modelfile or registry manifest, or a `/api/generate` request carries `template`) → the engine
//! receives the finished prompt text and skips its Jinja chat template. This is how Ollama's
//! server renders prompts before its runner tokenizes them; models without a Go template keep the
//! Jinja template shipped with their weights.

use ollmlx_gotmpl::{Message as TMessage, Template, ToolCall as TCall, Values};
use ollmlx_infer::{BackendError, Input, Request, Think};

/// The prompt `req` renders to through a Go template: the request's own `template` (generate
/// only) or `model_template`. `None` when nothing is to be rendered here (raw prompts, load-only
/// requests, no Go template).
pub(crate) fn render(
    req: &Request,
    model_template: Option<&str>,
) -> Result<Option<String>, BackendError> {
    let (source, from_request) = match &req.input {
        Input::Generate(g) if !g.template.is_empty() => (g.template.as_str(), true),
        _ => match model_template.filter(|t| !t.is_empty()) {
            Some(t) => (t, false),
            None => return Ok(None),
        },
    };
    let mut values = Values::default();
    match &req.think {
        Some(Think::Bool(b)) => {
            values.think = *b;
            values.is_think_set = true;
        }
        Some(Think::Level(l)) => {
            values.think = true;
            values.think_level = l.clone();
            values.is_think_set = true;
        }
        None => {}
    }
    match &req.input {
        Input::Chat(c) if c.messages.is_empty() => return Ok(None),
        Input::Chat(c) => {
            values.messages = c.messages.iter().map(message).collect();
            values.tools = c.tools.clone();
        }
        Input::Generate(g) if g.raw => return Ok(None),
        Input::Generate(g) if g.prompt.is_empty() && g.system.is_empty() => return Ok(None),
        Input::Generate(g) if !g.suffix.is_empty() => {
            values.prompt = g.prompt.clone();
            values.suffix = g.suffix.clone();
        }
        Input::Generate(g) => {
            if !g.system.is_empty() {
                values.messages.push(TMessage {
                    role: "system".into(),
                    content: g.system.clone(),
                    ..TMessage::default()
                });
            }
            values.messages.push(TMessage {
                role: "user".into(),
                content: g.prompt.clone(),
                images: g.images.len(),
                ..TMessage::default()
            });
        }
    }
    let parsed = Template::parse(source).map_err(|e| {
        if from_request {
            BackendError::InvalidRequest(e.to_string())
        } else {
            BackendError::Internal(e.to_string())
        }
    })?;
    parsed
        .render(&values)
        .map(Some)
        .map_err(|e| BackendError::Internal(e.to_string()))
}

/// Images the request carries (what `_debug_render_only` reports).
pub(crate) fn image_count(req: &Request) -> usize {
    match &req.input {
        Input::Chat(c) => c.messages.iter().map(|m| m.images.len()).sum(),
        Input::Generate(g) => g.images.len(),
    }
}

fn message(m: &ollmlx_infer::Message) -> TMessage {
    TMessage {
        role: m.role.clone(),
        content: m.content.clone(),
        thinking: m.thinking.clone(),
        images: m.images.len(),
        tool_calls: m
            .tool_calls
            .iter()
            .map(|c| TCall {
                id: c.id.clone(),
                index: c.index as i64,
                name: c.name.clone(),
                arguments: c.arguments.clone(),
            })
            .collect(),
        tool_name: m.tool_name.clone(),
        tool_call_id: m.tool_call_id.clone(),
    }
}

#[cfg(test)]
mod tests {
    use ollmlx_infer::{ChatInput, GenerateInput, Message};

    use super::*;

    fn req(input: Input) -> Request {
        Request {
            model: "m".into(),
            input,
            ..Request::default()
        }
    }

    fn chat(msgs: &[(&str, &str)]) -> Request {
        let mut r = req(Input::Chat(ChatInput {
            messages: msgs
                .iter()
                .map(|(r, c)| Message {
                    role: r.to_string(),
                    content: c.to_string(),
                    ..Message::default()
                })
                .collect(),
            ..ChatInput::default()
        }));
        r.think = Some(Think::Bool(false));
        r
    }

    const T: &str = "{{ range .Messages }}<{{ .Role }}>{{ .Content }}{{ end }}<assistant>{{ if .IsThinkSet }}{{ .Think }}{{ end }}";

    #[test]
    fn chat_requests_render_through_the_model_go_template() {
        let r = chat(&[("system", "S"), ("user", "hi")]);
        assert_eq!(
            render(&r, Some(T)).unwrap().as_deref(),
            Some("<system>S<user>hi<assistant>false")
        );
    }

    #[test]
    fn models_without_a_go_template_are_left_to_the_engine() {
        assert_eq!(render(&chat(&[("user", "hi")]), None).unwrap(), None);
        assert_eq!(render(&chat(&[]), Some(T)).unwrap(), None);
    }

    #[test]
    fn generate_uses_the_request_template_and_respects_raw() {
        let mut g = GenerateInput {
            prompt: "2+2?".into(),
            system: "Be terse.".into(),
            template: "{{ .System }}|{{ .Prompt }}|".into(),
            ..GenerateInput::default()
        };
        let r = req(Input::Generate(g.clone()));
        assert_eq!(
            render(&r, Some(T)).unwrap().as_deref(),
            Some("Be terse.|2+2?|")
        );
        g.raw = true;
        let r = req(Input::Generate(g));
        assert_eq!(render(&r, Some(T)).unwrap(), None);
    }

    #[test]
    fn fill_in_the_middle_gets_prompt_and_suffix() {
        let g = GenerateInput {
            prompt: "a".into(),
            suffix: "c".into(),
            ..GenerateInput::default()
        };
        let r = req(Input::Generate(g));
        let t = "<PRE>{{ .Prompt }}<SUF>{{ .Suffix }}<MID>";
        assert_eq!(
            render(&r, Some(t)).unwrap().as_deref(),
            Some("<PRE>a<SUF>c<MID>")
        );
    }

    #[test]
    fn a_broken_request_template_is_a_bad_request() {
        let g = GenerateInput {
            prompt: "a".into(),
            template: "{{ if }}".into(),
            ..GenerateInput::default()
        };
        let r = req(Input::Generate(g));
        assert!(matches!(
            render(&r, None),
            Err(BackendError::InvalidRequest(_))
        ));
    }
}
