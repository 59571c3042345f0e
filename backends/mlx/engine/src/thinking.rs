//! Reasoning ("thinking") output: models whose chat template mentions `<think>`/`</think>` (or
//! `enable_thinking`) emit `<think>...</think>` before their answer. [`ThinkingParser`] splits the
//! streamed text into thinking and content incrementally, holding back partial tags that straddle
//! token boundaries.

/// Opening tag of a reasoning block.
pub const OPEN: &str = "<think>";
/// Closing tag of a reasoning block.
pub const CLOSE: &str = "</think>";

/// Whether a chat template supports thinking (upstream's heuristic plus `enable_thinking`).
pub fn template_thinks(template: &str) -> bool {
    (template.contains(OPEN) && template.contains(CLOSE))
        || template.contains("enable_thinking")
        || ((template.contains("content.split('</think>')")
            || template.contains("content.split(\"</think>\")"))
            && !template.contains("reasoning_content"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Nothing but whitespace seen: the output may still open with `<think>`.
    LookingForOpen,
    /// Inside the reasoning block.
    Thinking,
    /// Right after `</think>`: leading whitespace of the answer is dropped.
    AfterClose,
    /// Plain content from here on.
    Content,
}

/// Text split into reasoning and visible content.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Split {
    /// Reasoning text.
    pub thinking: String,
    /// Visible content.
    pub content: String,
}

/// Incremental `<think>...</think>` splitter.
#[derive(Debug, Clone)]
pub struct ThinkingParser {
    state: State,
    pending: String,
}

impl ThinkingParser {
    /// A parser for output that may start with `<think>`; `prompt_opened` when the rendered
    /// prompt already ends with `<think>` (the model starts inside the reasoning block).
    pub fn new(prompt_opened: bool) -> Self {
        ThinkingParser {
            state: if prompt_opened {
                State::Thinking
            } else {
                State::LookingForOpen
            },
            pending: String::new(),
        }
    }

    /// Feed newly generated text; returns what can be emitted now.
    pub fn push(&mut self, text: &str) -> Split {
        self.pending.push_str(text);
        let mut out = Split::default();
        loop {
            match self.state {
                State::LookingForOpen => {
                    let trimmed = self.pending.trim_start();
                    if let Some(rest) = trimmed.strip_prefix(OPEN) {
                        self.pending = rest.trim_start().to_string();
                        self.state = State::Thinking;
                    } else if !trimmed.is_empty() && !OPEN.starts_with(trimmed) {
                        self.state = State::Content;
                    } else {
                        return out;
                    }
                }
                State::Thinking => {
                    if let Some(pos) = self.pending.find(CLOSE) {
                        out.thinking.push_str(self.pending[..pos].trim_end());
                        self.pending.drain(..pos + CLOSE.len());
                        self.state = State::AfterClose;
                    } else {
                        let hold = partial_suffix(&self.pending, CLOSE);
                        let cut = self.pending.len() - hold;
                        out.thinking.push_str(&self.pending[..cut]);
                        self.pending.drain(..cut);
                        return out;
                    }
                }
                State::AfterClose => {
                    let trimmed = self.pending.trim_start();
                    if trimmed.is_empty() {
                        self.pending.clear();
                        return out;
                    }
                    self.pending = trimmed.to_string();
                    self.state = State::Content;
                }
                State::Content => {
                    out.content.push_str(&self.pending);
                    self.pending.clear();
                    return out;
                }
            }
        }
    }

    /// End of generation: whatever is still held back.
    pub fn flush(&mut self) -> Split {
        let rest = std::mem::take(&mut self.pending);
        match self.state {
            State::Thinking => Split {
                thinking: rest,
                content: String::new(),
            },
            State::AfterClose => Split::default(),
            State::LookingForOpen | State::Content => Split {
                thinking: String::new(),
                content: rest,
            },
        }
    }
}

/// Length of the longest suffix of `text` that is a proper prefix of `tag`.
pub(crate) fn partial_suffix(text: &str, tag: &str) -> usize {
    let max = text.len().min(tag.len().saturating_sub(1));
    (1..=max)
        .rev()
        .find(|&n| {
            text.is_char_boundary(text.len() - n)
                && tag
                    .as_bytes()
                    .starts_with(&text.as_bytes()[text.len() - n..])
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(p: &mut ThinkingParser, pieces: &[&str]) -> Split {
        let mut all = Split::default();
        for piece in pieces {
            let s = p.push(piece);
            all.thinking += &s.thinking;
            all.content += &s.content;
        }
        let s = p.flush();
        all.thinking += &s.thinking;
        all.content += &s.content;
        all
    }

    #[test]
    fn tags_split_across_tokens_separate_thinking_from_content() {
        let mut p = ThinkingParser::new(false);
        let s = run(
            &mut p,
            &[
                "<", "thi", "nk>", "let me", " see</", "thi", "nk>", "\n\n", "Paris",
            ],
        );
        assert_eq!(s.thinking, "let me see");
        assert_eq!(s.content, "Paris");
    }

    #[test]
    fn partial_closing_tag_is_held_back_until_resolved() {
        let mut p = ThinkingParser::new(true);
        assert_eq!(p.push("a </th").thinking, "a ");
        assert_eq!(p.push("ought").thinking, "</thought");
    }

    #[test]
    fn output_without_think_tag_is_all_content() {
        let mut p = ThinkingParser::new(false);
        let s = run(&mut p, &["  ", "<b>", "hi"]);
        assert_eq!(s.content, "  <b>hi");
        assert_eq!(s.thinking, "");
    }

    #[test]
    fn prompt_that_opens_the_block_starts_in_thinking() {
        let mut p = ThinkingParser::new(true);
        let s = run(&mut p, &["hmm", "</think>", "ok"]);
        assert_eq!(s.thinking, "hmm");
        assert_eq!(s.content, "ok");
    }

    #[test]
    fn unterminated_thinking_is_flushed_as_thinking() {
        let mut p = ThinkingParser::new(false);
        let s = run(&mut p, &["<think>", "still </thi"]);
        assert_eq!(s.thinking, "still </thi");
        assert_eq!(s.content, "");
    }

    #[test]
    fn template_detection_matches_tags_and_enable_thinking() {
        assert!(template_thinks("{{ '<think>' }}x{{ '</think>' }}"));
        assert!(template_thinks("{% if enable_thinking %}{% endif %}"));
        assert!(!template_thinks("<|im_start|>"));
    }
}
