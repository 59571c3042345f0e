//! How `run` prints a streamed response: word wrap at the terminal width minus five,
//! `Thinking...` / `...done thinking.` markers, tool-call notices, the `--verbose` stats
//! block (stderr), and multimodal file attachment from the prompt text.

use std::io::Write;
use std::path::Path;

use base64::Engine;
use ollmlx_wire::ollama::{Metrics, ToolCall};
use unicode_width::UnicodeWidthChar;

use crate::duration::format_go_duration;
use crate::format::display_width;

const GREY: &str = "\x1b[38;5;245m";
const BOLD: &str = "\x1b[1m";
const DEFAULT: &str = "\x1b[0m";

fn stdout_width() -> usize {
    terminal_size::terminal_size_of(std::io::stdout())
        .map(|(w, _)| usize::from(w.0))
        .filter(|w| *w > 0)
        .unwrap_or(80)
}

/// Word-wrapping writer state for one response (upstream `displayResponseState`).
#[derive(Debug, Clone)]
pub struct Display {
    word_wrap: bool,
    width: usize,
    line_length: usize,
    word_buffer: String,
}

impl Display {
    /// A writer for stdout, wrapping when `word_wrap` is set.
    pub fn new(word_wrap: bool) -> Display {
        Display::with_width(word_wrap, stdout_width())
    }

    /// A writer that assumes a terminal `width` columns wide.
    pub fn with_width(word_wrap: bool, width: usize) -> Display {
        Display {
            word_wrap,
            width,
            line_length: 0,
            word_buffer: String::new(),
        }
    }

    /// Forget the current line (after the thinking block closes).
    pub fn reset(&mut self) {
        self.line_length = 0;
        self.word_buffer.clear();
    }

    /// What printing `content` emits: the text, with the last word moved to a new line
    /// (cursor back, clear to end of line) whenever it would pass `width - 5`.
    pub fn render(&mut self, content: &str) -> String {
        let mut out = String::new();
        let w = self.width;
        if !self.word_wrap || w < 10 {
            out.push_str(content);
            self.word_buffer.clear();
            return out;
        }
        for ch in content.chars() {
            let ch_width = UnicodeWidthChar::width(ch).unwrap_or(0);
            if self.line_length + 1 > w - 5 {
                let word = display_width(&self.word_buffer);
                if word > w - 10 {
                    // A single word longer than the line: just keep going.
                    out.push(ch);
                    self.word_buffer.clear();
                    self.line_length = 0;
                    continue;
                }
                if word > 0 {
                    out.push_str(&format!("\x1b[{word}D"));
                }
                out.push_str("\x1b[K\n");
                out.push_str(&self.word_buffer);
                out.push(ch);
                self.line_length = word + ch_width;
            } else {
                out.push(ch);
                self.line_length += ch_width;
                if ch_width >= 2 {
                    self.word_buffer.clear();
                    continue;
                }
                match ch {
                    ' ' | '\t' => self.word_buffer.clear(),
                    '\n' | '\r' => {
                        self.line_length = 0;
                        self.word_buffer.clear();
                    }
                    _ => self.word_buffer.push(ch),
                }
            }
        }
        out
    }

    /// Print `content` to stdout through the wrapper.
    pub fn write(&mut self, content: &str) {
        if content.is_empty() {
            return;
        }
        let s = self.render(content);
        self.raw(&s);
    }

    /// Print `s` to stdout as is.
    pub fn raw(&mut self, s: &str) {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(s.as_bytes());
        let _ = out.flush();
    }
}

/// Tracks the `Thinking...` block of one response.
#[derive(Debug, Clone, Default)]
pub struct Thinking {
    plain: bool,
    opened: bool,
    closed: bool,
    content: String,
}

impl Thinking {
    /// `plain` drops the grey/bold styling (stdout is not a terminal).
    pub fn new(plain: bool) -> Thinking {
        Thinking {
            plain,
            ..Default::default()
        }
    }

    /// Print `Thinking...` once.
    pub fn open(&mut self, d: &mut Display) {
        if self.opened {
            return;
        }
        self.opened = true;
        self.closed = false;
        let text = "Thinking...\n";
        if self.plain {
            d.raw(text);
        } else {
            d.raw(&format!("{GREY}{BOLD}{text}{DEFAULT}{GREY}"));
        }
    }

    /// Print a piece of thinking.
    pub fn push(&mut self, s: &str, d: &mut Display) {
        self.content.push_str(s);
        d.write(s);
    }

    /// Print `...done thinking.` (after a newline if needed) when the block is open.
    pub fn close(&mut self, d: &mut Display) {
        if !self.opened || self.closed {
            return;
        }
        if !self.content.ends_with('\n') {
            d.raw("\n");
        }
        let text = "...done thinking.\n\n";
        if self.plain {
            d.raw(text);
        } else {
            d.raw(&format!("{GREY}{BOLD}{text}{DEFAULT}"));
        }
        self.opened = false;
        self.closed = true;
        d.reset();
    }

    /// All thinking text so far.
    pub fn content(&self) -> &str {
        &self.content
    }
}

/// The `--verbose` block (upstream `Metrics.Summary`); each line only when its value is > 0.
pub fn summary(m: &Metrics) -> String {
    let mut out = String::new();
    let secs = |ns: u64| ns as f64 / 1e9;
    if m.total_duration > 0 {
        out.push_str(&format!(
            "total duration:       {}\n",
            format_go_duration(m.total_duration as i64)
        ));
    }
    if m.load_duration > 0 {
        out.push_str(&format!(
            "load duration:        {}\n",
            format_go_duration(m.load_duration as i64)
        ));
    }
    if m.prompt_eval_count > 0 {
        out.push_str(&format!(
            "prompt eval count:    {} token(s)\n",
            m.prompt_eval_count
        ));
    }
    if m.prompt_eval_duration > 0 {
        out.push_str(&format!(
            "prompt eval duration: {}\n",
            format_go_duration(m.prompt_eval_duration as i64)
        ));
        out.push_str(&format!(
            "prompt eval rate:     {:.2} tokens/s\n",
            m.prompt_eval_count as f64 / secs(m.prompt_eval_duration)
        ));
    }
    if m.eval_count > 0 {
        out.push_str(&format!(
            "eval count:           {} token(s)\n",
            m.eval_count
        ));
    }
    if m.eval_duration > 0 {
        out.push_str(&format!(
            "eval duration:        {}\n",
            format_go_duration(m.eval_duration as i64)
        ));
        out.push_str(&format!(
            "eval rate:            {:.2} tokens/s\n",
            m.eval_count as f64 / secs(m.eval_duration)
        ));
    }
    out
}

/// `  Model called a non-existent function '<name>()' with arguments: <json>` per call.
pub fn render_tool_calls(calls: &[ToolCall], plain: bool) -> String {
    let (expl, val) = if plain {
        (String::new(), String::new())
    } else {
        (format!("{GREY}{BOLD}"), DEFAULT.to_string())
    };
    let mut out = expl.clone();
    for (i, c) in calls.iter().enumerate() {
        let args = serde_json::to_string(&c.function.arguments).unwrap_or_default();
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&format!(
            "  Model called a non-existent function '{val}{}{expl}()' with arguments: {val}{args}{expl}",
            c.function.name
        ));
    }
    if !plain {
        out.push_str(DEFAULT);
    }
    out
}

/// Paths in the text that look like images or audio (upstream's pattern).
pub fn extract_file_names(input: &str) -> Vec<String> {
    let re =
        regex::Regex::new(r"(?:[a-zA-Z]:)?(?:\./|/|\\)[\S\\ ]+?\.(?i:jpg|jpeg|png|webp|wav)\b");
    match re {
        Ok(re) => re
            .find_iter(input)
            .map(|m| m.as_str().to_string())
            .collect(),
        Err(_) => Vec::new(),
    }
}

fn normalize_file_path(p: &str) -> String {
    let mut out = String::new();
    let mut chars = p.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(&n) = chars.peek() {
                if " ()[]{}$&;'\\*?~".contains(n) {
                    out.push(n);
                    chars.next();
                    continue;
                }
            }
        }
        out.push(c);
    }
    out
}

fn read_media(path: &Path) -> std::io::Result<Vec<u8>> {
    let data = std::fs::read(path)?;
    let head = &data[..data.len().min(512)];
    let ok = head.starts_with(&[0xFF, 0xD8, 0xFF])
        || head.starts_with(b"\x89PNG\r\n\x1a\n")
        || (head.len() >= 12 && &head[..4] == b"RIFF" && &head[8..12] == b"WEBP")
        || (head.len() >= 12 && &head[..4] == b"RIFF" && &head[8..12] == b"WAVE");
    if !ok {
        return Err(std::io::Error::other("invalid file type"));
    }
    if data.len() > 100 * 1024 * 1024 {
        return Err(std::io::Error::other(
            "file size exceeds maximum limit (100MB)",
        ));
    }
    Ok(data)
}

/// Attach existing image/audio files named in `input`: returns the text without them and
/// the base64 data, printing `Added image '<p>'` / `Added audio '<p>'` to stderr.
pub fn extract_file_data(input: &str) -> anyhow::Result<(String, Vec<String>)> {
    let mut text = input.to_string();
    let mut images = Vec::new();
    for fp in extract_file_names(input) {
        let nfp = normalize_file_path(&fp);
        let data = match read_media(Path::new(&nfp)) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                eprintln!(
                    "Couldn't process file: {}",
                    crate::duration::go_quote(&e.to_string())
                );
                return Err(e.into());
            }
        };
        if nfp.to_lowercase().ends_with(".wav") {
            eprintln!("Added audio '{nfp}'");
        } else {
            eprintln!("Added image '{nfp}'");
        }
        text = text.replace(&format!("'{nfp}'"), "");
        text = text.replace(&format!("'{fp}'"), "");
        text = text.replace(&fp, "");
        images.push(base64::engine::general_purpose::STANDARD.encode(data));
    }
    Ok((text.trim().to_string(), images))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_matches_upstream_layout() {
        let m = Metrics {
            total_duration: 1_234_567_890,
            load_duration: 5_000_000,
            prompt_eval_count: 10,
            prompt_eval_duration: 500_000_000,
            eval_count: 20,
            eval_duration: 1_000_000_000,
        };
        assert_eq!(
            summary(&m),
            "total duration:       1.23456789s\n\
             load duration:        5ms\n\
             prompt eval count:    10 token(s)\n\
             prompt eval duration: 500ms\n\
             prompt eval rate:     20.00 tokens/s\n\
             eval count:           20 token(s)\n\
             eval duration:        1s\n\
             eval rate:            20.00 tokens/s\n"
        );
        assert_eq!(summary(&Metrics::default()), "");
    }

    #[test]
    fn wraps_the_last_word_onto_a_new_line() {
        let mut d = Display::with_width(true, 20);
        let out = d.render("hello there general kenobi");
        assert_eq!(out, "hello there gen\x1b[3D\x1b[K\ngeneral kenobi");
    }

    #[test]
    fn no_wrap_passes_text_through() {
        let mut d = Display::with_width(false, 20);
        assert_eq!(
            d.render("hello there general kenobi"),
            "hello there general kenobi"
        );
    }

    #[test]
    fn newlines_reset_the_line_length() {
        let mut d = Display::with_width(true, 20);
        assert_eq!(d.render("abcdefghij\nabcdefghij"), "abcdefghij\nabcdefghij");
    }

    #[test]
    fn tool_calls_are_reported_as_non_existent_functions() {
        let call: ToolCall = serde_json::from_str(
            r#"{"function":{"name":"get_weather","arguments":{"city":"Paris"}}}"#,
        )
        .unwrap();
        assert_eq!(
            render_tool_calls(&[call], true),
            "  Model called a non-existent function 'get_weather()' with arguments: {\"city\":\"Paris\"}"
        );
    }

    #[test]
    fn finds_image_paths_in_prompts() {
        assert_eq!(
            extract_file_names("what is in /tmp/a b.png and ./c.JPG?"),
            vec!["/tmp/a b.png", "./c.JPG"]
        );
        assert!(extract_file_names("no files here").is_empty());
    }

    #[test]
    fn missing_files_are_left_in_the_prompt() {
        let (text, imgs) = extract_file_data("look at /nonexistent/x.png").unwrap();
        assert_eq!(text, "look at /nonexistent/x.png");
        assert!(imgs.is_empty());
    }

    #[test]
    fn attaches_existing_images() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pic.png");
        std::fs::write(&p, b"\x89PNG\r\n\x1a\nrest").unwrap();
        let (text, imgs) = extract_file_data(&format!("describe {}", p.display())).unwrap();
        assert_eq!(text, "describe");
        assert_eq!(imgs.len(), 1);
    }
}
