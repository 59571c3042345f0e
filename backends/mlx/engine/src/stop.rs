//! Stop strings across token boundaries: text that might still become a stop string is held
//! back until it either completes one (generation ends, the stop string is not emitted) or cannot.

/// Incremental stop-string matcher.
#[derive(Debug, Default)]
pub struct StopMatcher {
    stops: Vec<String>,
    pending: String,
    finished: bool,
}

/// Result of feeding text to a [`StopMatcher`].
#[derive(Debug, PartialEq, Eq)]
pub struct StopOutcome {
    /// Text that is safe to emit now.
    pub emit: String,
    /// Whether a stop string was hit (nothing after it is emitted).
    pub stopped: bool,
}

impl StopMatcher {
    /// Matcher for `stops` (empty strings are ignored).
    pub fn new(stops: &[String]) -> Self {
        StopMatcher {
            stops: stops.iter().filter(|s| !s.is_empty()).cloned().collect(),
            pending: String::new(),
            finished: false,
        }
    }

    /// Feed newly decoded text.
    pub fn push(&mut self, text: &str) -> StopOutcome {
        if self.finished {
            return StopOutcome {
                emit: String::new(),
                stopped: true,
            };
        }
        self.pending.push_str(text);
        if let Some(pos) = self
            .stops
            .iter()
            .filter_map(|s| self.pending.find(s.as_str()))
            .min()
        {
            let emit = self.pending[..pos].to_string();
            self.pending.clear();
            self.finished = true;
            return StopOutcome {
                emit,
                stopped: true,
            };
        }
        let hold = self
            .stops
            .iter()
            .map(|s| longest_suffix_prefix(&self.pending, s))
            .max()
            .unwrap_or(0);
        let cut = self.pending.len() - hold;
        let emit = self.pending[..cut].to_string();
        self.pending.drain(..cut);
        StopOutcome {
            emit,
            stopped: false,
        }
    }

    /// Whether a stop string has been hit.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Text still held back (emitted when generation ends for another reason).
    pub fn flush(&mut self) -> String {
        std::mem::take(&mut self.pending)
    }
}

/// Length of the longest suffix of `text` that is a proper prefix of `stop`.
fn longest_suffix_prefix(text: &str, stop: &str) -> usize {
    let max = text.len().min(stop.len().saturating_sub(1));
    (1..=max)
        .rev()
        .find(|&n| {
            text.is_char_boundary(text.len() - n)
                && stop
                    .as_bytes()
                    .starts_with(&text.as_bytes()[text.len() - n..])
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_string_split_across_tokens_is_held_back_then_dropped() {
        let mut m = StopMatcher::new(&["</end>".into()]);
        assert_eq!(
            m.push("hello </"),
            StopOutcome {
                emit: "hello ".into(),
                stopped: false
            }
        );
        assert_eq!(
            m.push("en"),
            StopOutcome {
                emit: "".into(),
                stopped: false
            }
        );
        assert_eq!(
            m.push("d> tail"),
            StopOutcome {
                emit: "".into(),
                stopped: true
            }
        );
    }

    #[test]
    fn held_text_is_released_when_it_stops_matching() {
        let mut m = StopMatcher::new(&["STOP".into()]);
        assert_eq!(m.push("ST").emit, "");
        assert_eq!(
            m.push("AR"),
            StopOutcome {
                emit: "STAR".into(),
                stopped: false
            }
        );
        assert_eq!(m.push("S").emit, "");
        assert_eq!(m.flush(), "S");
    }

    #[test]
    fn earliest_of_several_stop_strings_wins() {
        let mut m = StopMatcher::new(&["b".into(), "a".into()]);
        assert_eq!(
            m.push("xxab"),
            StopOutcome {
                emit: "xx".into(),
                stopped: true
            }
        );
    }

    #[test]
    fn no_stop_strings_passes_everything_through() {
        let mut m = StopMatcher::new(&[]);
        assert_eq!(m.push("abc").emit, "abc");
    }
}
