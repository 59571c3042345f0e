//! The post-processing chain between the detokenizer/stop matcher and the reply channel:
//! `<think>` splitting (thinking models), then tool-call extraction (requests with tools).

use crate::engine::EngineEvent;
use crate::thinking::ThinkingParser;

/// Turns generated text into [`EngineEvent`]s.
#[derive(Debug)]
pub struct OutputPipeline {
    /// The splitter and whether its thinking text is sent (false = stripped).
    thinking: Option<(ThinkingParser, bool)>,
}

impl OutputPipeline {
    /// A pipeline; `thinking` = `Some((parser, keep))` for thinking models.
    pub fn new(thinking: Option<(ThinkingParser, bool)>) -> Self {
        OutputPipeline { thinking }
    }

    /// Feed text; returns the events to send now (possibly none).
    pub fn push(&mut self, text: &str) -> Vec<EngineEvent> {
        if text.is_empty() {
            return Vec::new();
        }
        match &mut self.thinking {
            Some((p, keep)) => {
                let s = p.push(text);
                let keep = *keep;
                self.events(s.thinking, s.content, keep)
            }
            None => self.content(text.to_string()),
        }
    }

    /// End of generation: everything still held back.
    pub fn flush(&mut self) -> Vec<EngineEvent> {
        match &mut self.thinking {
            Some((p, keep)) => {
                let s = p.flush();
                let keep = *keep;
                self.events(s.thinking, s.content, keep)
            }
            None => Vec::new(),
        }
    }

    fn events(&mut self, thinking: String, content: String, keep: bool) -> Vec<EngineEvent> {
        let mut out = Vec::new();
        if keep && !thinking.is_empty() {
            out.push(EngineEvent::Thinking(thinking));
        }
        out.extend(self.content(content));
        out
    }

    fn content(&mut self, text: String) -> Vec<EngineEvent> {
        if text.is_empty() {
            Vec::new()
        } else {
            vec![EngineEvent::Text(text)]
        }
    }
}
