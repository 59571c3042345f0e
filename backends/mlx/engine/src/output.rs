//! The post-processing chain between the detokenizer/stop matcher and the reply channel:
//! `<think>` splitting (thinking models), then tool-call extraction (requests with tools).

use crate::engine::EngineEvent;
use crate::thinking::ThinkingParser;
use crate::tools::ToolParser;

/// Turns generated text into [`EngineEvent`]s.
#[derive(Debug)]
pub struct OutputPipeline {
    /// The splitter and whether its thinking text is sent (false = stripped).
    thinking: Option<(ThinkingParser, bool)>,
    /// Tool-call extraction (requests with tools on models with a known format).
    tools: Option<ToolParser>,
}

impl OutputPipeline {
    /// A pipeline; `thinking` = `Some((parser, keep))` for thinking models.
    pub fn new(thinking: Option<(ThinkingParser, bool)>, tools: Option<ToolParser>) -> Self {
        OutputPipeline { thinking, tools }
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
        let mut out = match &mut self.thinking {
            Some((p, keep)) => {
                let s = p.flush();
                let keep = *keep;
                self.events(s.thinking, s.content, keep)
            }
            None => Vec::new(),
        };
        if let Some(t) = &mut self.tools {
            out.extend(to_events(t.flush()));
        }
        out
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
        if let (Some(t), false) = (&mut self.tools, text.is_empty()) {
            return to_events(t.push(&text));
        }
        if text.is_empty() {
            Vec::new()
        } else {
            vec![EngineEvent::Text(text)]
        }
    }
}

fn to_events(p: crate::tools::Parsed) -> Vec<EngineEvent> {
    let mut out = Vec::new();
    if !p.content.is_empty() {
        out.push(EngineEvent::Text(p.content));
    }
    if !p.calls.is_empty() {
        out.push(EngineEvent::ToolCalls(p.calls));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::ToolFormat;

    #[test]
    fn thinking_then_tool_call_become_thinking_and_tool_call_events() {
        let mut p = OutputPipeline::new(
            Some((ThinkingParser::new(false), true)),
            Some(ToolParser::new(ToolFormat::Hermes)),
        );
        let mut evs = p.push("<think>weather?</think>\n<tool_call>{\"name\":\"w\",");
        evs.extend(p.push("\"arguments\":{}}</tool_call>"));
        evs.extend(p.flush());
        assert_eq!(evs[0], EngineEvent::Thinking("weather?".into()));
        assert!(
            matches!(&evs[1], EngineEvent::ToolCalls(c) if c[0].name == "w" && c[0].index == 0)
        );
        assert_eq!(evs.len(), 2);
    }

    #[test]
    fn stripped_thinking_is_not_sent() {
        let mut p = OutputPipeline::new(Some((ThinkingParser::new(false), false)), None);
        let mut evs = p.push("<think>x</think>y");
        evs.extend(p.flush());
        assert_eq!(evs, vec![EngineEvent::Text("y".into())]);
    }
}
