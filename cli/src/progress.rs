//! Terminal progress: bars and spinners redrawn in place on stderr every 100 ms.
//!
//! This reproduces upstream's `progress` package: a [`Progress`] owns a list of states (bars
//! and spinners) and redraws all of them (synchronized output, cursor hidden, each line
//! cleared to the end) from a background thread; [`Progress::stop`] draws a final frame and
//! ends the line, [`Progress::stop_and_clear`] erases what was drawn. A [`Bar`] reads
//! `pulling 0a1b2c3d4e5f:  42% ▕████      ▏ 1.2 GB/2.9 GB   25 MB/s   1m8s`.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::format::human_bytes;

const DEFAULT_TERM_WIDTH: usize = 80;
const DEFAULT_TERM_HEIGHT: usize = 24;
const SPINNER_FRAMES: [&str; 10] = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn term_size() -> (usize, usize) {
    terminal_size::terminal_size_of(std::io::stderr())
        .map(|(w, h)| (usize::from(w.0), usize::from(h.0)))
        .unwrap_or((DEFAULT_TERM_WIDTH, DEFAULT_TERM_HEIGHT))
}

/// A spinner with a message (`gathering model components ⠙ `).
#[derive(Debug)]
pub struct Spinner {
    inner: Mutex<SpinnerState>,
}

#[derive(Debug)]
struct SpinnerState {
    message: String,
    frame: usize,
    stopped: bool,
}

impl Spinner {
    fn new(message: &str) -> Spinner {
        Spinner {
            inner: Mutex::new(SpinnerState {
                message: message.to_string(),
                frame: 0,
                stopped: false,
            }),
        }
    }

    /// Replace the message.
    pub fn set_message(&self, message: impl Into<String>) {
        lock(&self.inner).message = message.into();
    }

    /// Stop animating; the message stays, the spinner glyph disappears.
    pub fn stop(&self) {
        lock(&self.inner).stopped = true;
    }

    fn tick(&self) {
        let mut s = lock(&self.inner);
        s.frame = (s.frame + 1) % SPINNER_FRAMES.len();
    }

    /// The current line.
    pub fn render(&self) -> String {
        let s = lock(&self.inner);
        let mut out = String::new();
        if !s.message.is_empty() {
            out.push_str(s.message.trim());
            out.push(' ');
        }
        if !s.stopped {
            out.push_str(SPINNER_FRAMES[s.frame]);
            out.push(' ');
        }
        out
    }
}

/// A byte-progress bar with percentage, sizes, rate and time remaining.
#[derive(Debug)]
pub struct Bar {
    inner: Mutex<BarState>,
}

#[derive(Debug)]
struct BarState {
    message: String,
    max: i64,
    initial: i64,
    current: i64,
    started: Instant,
    stopped: Option<Instant>,
    buckets: Vec<(Instant, i64)>,
}

impl Bar {
    /// A bar at `initial` of `max` bytes.
    pub fn new(message: &str, max: i64, initial: i64) -> Bar {
        let now = Instant::now();
        Bar {
            inner: Mutex::new(BarState {
                message: message.to_string(),
                max,
                initial,
                current: initial,
                started: now,
                stopped: (initial >= max).then_some(now),
                buckets: Vec::new(),
            }),
        }
    }

    /// Move the bar to `value` bytes.
    pub fn set(&self, value: i64) {
        let mut b = lock(&self.inner);
        let value = value.min(b.max);
        b.current = value;
        if b.current >= b.max {
            b.stopped = Some(Instant::now());
        }
        let stale = b
            .buckets
            .last()
            .is_none_or(|(t, _)| t.elapsed() > Duration::from_secs(1));
        if stale {
            b.buckets.push((Instant::now(), value));
            if b.buckets.len() > 10 {
                b.buckets.remove(0);
            }
        }
    }

    /// The current line for a terminal `width` columns wide.
    pub fn render_width(&self, width: usize) -> String {
        let b = lock(&self.inner);
        let percent = if b.max > 0 {
            b.current as f64 / b.max as f64 * 100.0
        } else {
            0.0
        };
        let mut pre = String::new();
        if !b.message.is_empty() {
            pre.push_str(b.message.trim());
            pre.push(' ');
        }
        pre.push_str(&format!("{percent:3.0}%"));

        let pad6 = |s: String| format!("{}{s}", " ".repeat(6usize.saturating_sub(s.len())));
        let mut suf = String::new();
        if b.stopped.is_none() {
            suf.push_str(&pad6(human_bytes(b.current)));
            suf.push('/');
            suf.push_str(&pad6(human_bytes(b.max)));
        } else {
            suf.push_str(&pad6(human_bytes(b.max)));
            suf.push_str(&" ".repeat(7));
        }
        let rate = b.rate();
        if b.stopped.is_none() && rate > 0.0 {
            suf.push_str("  ");
            suf.push_str(&pad6(human_bytes(rate as i64)));
            suf.push_str("/s");
            suf.push_str("  ");
            let remaining = ((b.max - b.current) as f64 / rate) as i64;
            suf.push_str(&pad6(format_remaining(remaining)));
        } else {
            suf.push_str(&" ".repeat(18));
        }

        let fill = width as i64 - pre.chars().count() as i64 - suf.chars().count() as i64 - 5;
        let n = (fill as f64 * percent / 100.0) as i64;
        let mut mid = String::from(" ▕");
        if n > 0 {
            mid.push_str(&"█".repeat(n as usize));
        }
        if fill - n > 0 {
            mid.push_str(&" ".repeat((fill - n) as usize));
        }
        mid.push_str("▏ ");
        format!("{pre}{mid}{suf}")
    }
}

impl BarState {
    fn rate(&self) -> f64 {
        let round_secs = |d: Duration| d.as_secs_f64().round();
        let (num, den) = if let Some(stopped) = self.stopped {
            (
                (self.current - self.initial) as f64,
                round_secs(stopped.duration_since(self.started)),
            )
        } else {
            match self.buckets.as_slice() {
                [] => (0.0, 0.0),
                [(t, v)] => (
                    (v - self.initial) as f64,
                    round_secs(t.duration_since(self.started)),
                ),
                [(t0, v0), .., (t1, v1)] => ((v1 - v0) as f64, round_secs(t1.duration_since(*t0))),
            }
        };
        if den != 0.0 {
            num / den
        } else {
            0.0
        }
    }
}

/// Upstream's two-unit duration for "time remaining" (`59m59s`, `1h5m`, `99h+`).
fn format_remaining(secs: i64) -> String {
    if secs >= 100 * 3600 {
        "99h+".into()
    } else if secs >= 3600 {
        format!("{}h{}m", secs / 3600, (secs / 60) % 60)
    } else {
        crate::duration::format_go_duration(secs * crate::duration::SECOND)
    }
}

#[derive(Clone)]
enum State {
    Bar(Arc<Bar>),
    Spinner(Arc<Spinner>),
}

impl State {
    fn render(&self, width: usize) -> String {
        match self {
            State::Bar(b) => b.render_width(width),
            State::Spinner(s) => s.render(),
        }
    }
}

struct Shared {
    states: Vec<State>,
    pos: usize,
}

/// A set of progress lines redrawn on stderr until stopped.
pub struct Progress {
    shared: Arc<Mutex<Shared>>,
    done: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Default for Progress {
    fn default() -> Self {
        Progress::new()
    }
}

impl Progress {
    /// Start redrawing (every 100 ms) on stderr.
    pub fn new() -> Progress {
        let shared = Arc::new(Mutex::new(Shared {
            states: Vec::new(),
            pos: 0,
        }));
        let done = Arc::new(AtomicBool::new(false));
        let (s, d) = (shared.clone(), done.clone());
        let thread = std::thread::spawn(move || loop {
            std::thread::sleep(Duration::from_millis(100));
            let mut sh = lock(&s);
            if d.load(Ordering::SeqCst) {
                return;
            }
            for st in &sh.states {
                if let State::Spinner(sp) = st {
                    sp.tick();
                }
            }
            render(&mut sh);
        });
        Progress {
            shared,
            done,
            thread: Some(thread),
        }
    }

    /// Add a spinner line.
    pub fn add_spinner(&self, message: &str) -> Arc<Spinner> {
        let s = Arc::new(Spinner::new(message));
        lock(&self.shared).states.push(State::Spinner(s.clone()));
        s
    }

    /// Add a bar line.
    pub fn add_bar(&self, message: &str, max: i64, initial: i64) -> Arc<Bar> {
        let b = Arc::new(Bar::new(message, max, initial));
        lock(&self.shared).states.push(State::Bar(b.clone()));
        b
    }

    /// Stop the render loop and draw a final frame; returns lines drawn, or `None` when
    /// already stopped.
    fn halt(&mut self) -> Option<usize> {
        if self.done.swap(true, Ordering::SeqCst) {
            return None;
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let mut sh = lock(&self.shared);
        for st in &sh.states {
            if let State::Spinner(sp) = st {
                sp.stop();
            }
        }
        render(&mut sh);
        Some(sh.pos)
    }

    /// Draw the final frame and end the line. Returns false when already stopped.
    pub fn stop(&mut self) -> bool {
        if self.halt().is_none() {
            return false;
        }
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(b"\n");
        let _ = err.flush();
        true
    }

    /// Erase everything drawn. Returns false when already stopped.
    pub fn stop_and_clear(&mut self) -> bool {
        if self.done.load(Ordering::SeqCst) {
            return false;
        }
        let mut out = String::from("\x1b[?25l");
        let _ = std::io::stderr().write_all(out.as_bytes());
        out.clear();
        let Some(pos) = self.halt() else {
            return false;
        };
        for i in 0..pos {
            if i > 0 {
                out.push_str("\x1b[A");
            }
            out.push_str("\x1b[2K\x1b[1G");
        }
        out.push_str("\x1b[?25h");
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(out.as_bytes());
        let _ = err.flush();
        true
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.stop();
    }
}

fn render(sh: &mut Shared) {
    let (width, height) = term_size();
    let mut out = String::from("\x1b[?2026h\x1b[?25l");
    for _ in 1..sh.pos {
        out.push_str("\x1b[A");
    }
    out.push_str("\x1b[1G");
    let n = sh.states.len();
    let first = n - n.min(height);
    for i in first..n {
        out.push_str(&sh.states[i].render(width));
        out.push_str("\x1b[K");
        if i + 1 < n {
            out.push('\n');
        }
    }
    out.push_str("\x1b[?25h\x1b[?2026l");
    sh.pos = n;
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(out.as_bytes());
    let _ = err.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bar_line_has_label_percent_and_sizes() {
        let b = Bar::new("pulling 0123456789ab:", 2_000_000_000, 0);
        b.set(1_000_000_000);
        let line = b.render_width(100);
        assert!(line.starts_with("pulling 0123456789ab:  50% ▕"), "{line}");
        assert!(line.contains("▏   1 GB/  2 GB"), "{line}");
        assert_eq!(line.chars().count(), 99, "{line}");
    }

    #[test]
    fn finished_bar_shows_total_only() {
        let b = Bar::new("pulling abc:", 1000, 1000);
        let line = b.render_width(80);
        assert!(line.starts_with("pulling abc: 100% ▕████"), "{line}");
        assert!(
            line.ends_with(&format!("▏   1 KB{}", " ".repeat(25))),
            "{line:?}"
        );
    }

    #[test]
    fn spinner_drops_glyph_when_stopped() {
        let s = Spinner::new("pulling manifest");
        assert_eq!(s.render(), "pulling manifest ⠋ ");
        s.stop();
        assert_eq!(s.render(), "pulling manifest ");
        assert_eq!(Spinner::new("").render(), "⠋ ");
    }

    #[test]
    fn remaining_time_uses_two_units() {
        assert_eq!(format_remaining(0), "0s");
        assert_eq!(format_remaining(68), "1m8s");
        assert_eq!(format_remaining(3900), "1h5m");
        assert_eq!(format_remaining(400_000), "99h+");
    }
}
