//! Chat templates: the Jinja template shipped with the model (GGUF `tokenizer.chat_template` or
//! `tokenizer_config.json`), rendered with minijinja plus Python-compatible string methods.

use minijinja::{Environment, Error, ErrorKind, Value};
use serde::Serialize;

use crate::error::EngineError;

/// One message as templates expect it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ChatMessage {
    /// `system`, `user`, `assistant`, `tool`.
    pub role: String,
    /// Text.
    pub content: String,
    /// Tool calls of an assistant turn (OpenAI shape), if any.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<serde_json::Value>,
    /// For tool results: the tool's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// A compiled chat template.
pub struct ChatTemplate {
    env: Environment<'static>,
}

/// Used when the model ships no template (ChatML, which most small instruct models know).
pub const FALLBACK_TEMPLATE: &str =
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] \
    + '\n' + message['content'] + '<|im_end|>' + '\n' }}{% endfor %}{% if add_generation_prompt %}\
    {{ '<|im_start|>assistant\n' }}{% endif %}";

impl ChatTemplate {
    /// Compile `source`.
    pub fn new(source: &str) -> Result<Self, EngineError> {
        let mut env = Environment::new();
        minijinja_contrib::add_to_environment(&mut env);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", |msg: String| -> Result<Value, Error> {
            Err(Error::new(ErrorKind::InvalidOperation, msg))
        });
        env.add_function("strftime_now", |fmt: String| -> String {
            // Templates use it for "today's date" lines; a fixed, valid rendering is enough here.
            fmt.replace("%Y", "2025")
                .replace("%m", "01")
                .replace("%d", "01")
                .replace("%B", "January")
                .replace("%b", "Jan")
        });
        env.add_template_owned("chat", source.to_string())
            .map_err(|e| EngineError::Template(e.to_string()))?;
        Ok(ChatTemplate { env })
    }

    /// Render a conversation, ending with the assistant prompt when `add_generation_prompt`.
    pub fn render(
        &self,
        messages: &[ChatMessage],
        tools: &[serde_json::Value],
        bos_token: &str,
        eos_token: &str,
        add_generation_prompt: bool,
    ) -> Result<String, EngineError> {
        self.render_with(
            messages,
            tools,
            bos_token,
            eos_token,
            add_generation_prompt,
            None,
        )
    }

    /// [`ChatTemplate::render`] plus `enable_thinking` (left undefined when `None`).
    pub fn render_with(
        &self,
        messages: &[ChatMessage],
        tools: &[serde_json::Value],
        bos_token: &str,
        eos_token: &str,
        add_generation_prompt: bool,
        enable_thinking: Option<bool>,
    ) -> Result<String, EngineError> {
        let tmpl = self
            .env
            .get_template("chat")
            .map_err(|e| EngineError::Template(e.to_string()))?;
        let tools = (!tools.is_empty()).then_some(tools);
        tmpl.render(minijinja::context! {
            messages => messages,
            tools => tools,
            bos_token => bos_token,
            eos_token => eos_token,
            add_generation_prompt => add_generation_prompt,
            enable_thinking => enable_thinking.map_or(Value::UNDEFINED, Value::from),
        })
        .map_err(|e| EngineError::Template(format!("{e:#}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(role: &str, content: &str) -> ChatMessage {
        ChatMessage {
            role: role.into(),
            content: content.into(),
            ..Default::default()
        }
    }

    #[test]
    fn chatml_fallback_renders_turns_and_generation_prompt() {
        let t = ChatTemplate::new(FALLBACK_TEMPLATE).unwrap();
        let out = t.render(&[msg("user", "Hi")], &[], "", "", true).unwrap();
        assert_eq!(
            out,
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
        );
    }

    #[test]
    fn python_string_methods_and_raise_exception_work() {
        let t = ChatTemplate::new(
            "{% if messages[0]['role'] == 'bad' %}{{ raise_exception('nope') }}{% endif %}{{ messages[0]['content'].strip().upper() }}",
        )
        .unwrap();
        assert_eq!(
            t.render(&[msg("user", "  hi ")], &[], "", "", false)
                .unwrap(),
            "HI"
        );
        let err = t
            .render(&[msg("bad", "x")], &[], "", "", false)
            .unwrap_err();
        assert!(err.to_string().contains("nope"), "{err}");
    }
}
