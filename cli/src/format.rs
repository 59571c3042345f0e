//! Human-readable numbers and the borderless tables `list`, `ps` and `show` print.
//!
//! [`human_bytes`], [`human_time`] and [`human_number`] follow upstream's `format` package
//! byte for byte; [`Table`] reproduces the output of the Go `tablewriter` configuration the
//! upstream CLI uses (no borders, no header line, left aligned, four-space cell padding,
//! trailing padding kept, the last header cell followed by a single space, and cells wider
//! than the column limit word-wrapped with minimum raggedness).

use time::OffsetDateTime;
use unicode_width::UnicodeWidthStr;

/// SI byte sizes: `999 B`, `1.5 KB`, `12 MB`, `2.0 TB` (upstream `format.HumanBytes`).
pub fn human_bytes(b: i64) -> String {
    const K: f64 = 1000.0;
    let (value, unit) = if b >= 1_000_000_000_000 {
        (b as f64 / (K * K * K * K), "TB")
    } else if b >= 1_000_000_000 {
        (b as f64 / (K * K * K), "GB")
    } else if b >= 1_000_000 {
        (b as f64 / (K * K), "MB")
    } else if b >= 1_000 {
        (b as f64 / K, "KB")
    } else {
        return format!("{b} B");
    };
    if value >= 10.0 {
        format!("{} {unit}", value as i64)
    } else if value != value.trunc() {
        format!("{value:.1} {unit}")
    } else {
        format!("{} {unit}", value as i64)
    }
}

/// Binary byte sizes with one decimal: `1.5 KiB`, `2.0 GiB` (upstream `format.HumanBytes2`).
pub fn human_bytes2(b: u64) -> String {
    const KI: f64 = 1024.0;
    if b >= 1 << 30 {
        format!("{:.1} GiB", b as f64 / (KI * KI * KI))
    } else if b >= 1 << 20 {
        format!("{:.1} MiB", b as f64 / (KI * KI))
    } else if b >= 1 << 10 {
        format!("{:.1} KiB", b as f64 / KI)
    } else {
        format!("{b} B")
    }
}

/// Parameter counts: `999`, `1K`, `500.55M`, `2.8B` (upstream `format.HumanNumber`).
pub fn human_number(b: u64) -> String {
    if b >= 1_000_000_000 {
        let n = b as f64 / 1e9;
        if n == n.floor() {
            format!("{n:.0}B")
        } else {
            format!("{n:.1}B")
        }
    } else if b >= 1_000_000 {
        let n = b as f64 / 1e6;
        if n == n.floor() {
            format!("{n:.0}M")
        } else {
            format!("{n:.2}M")
        }
    } else if b >= 1_000 {
        format!("{:.0}K", b as f64 / 1e3)
    } else {
        b.to_string()
    }
}

/// Go's zero `time.Time` (`0001-01-01T00:00:00Z`).
fn is_go_zero(t: OffsetDateTime) -> bool {
    t.year() == 1 && t.ordinal() == 1 && t.hour() == 0 && t.minute() == 0 && t.second() == 0
}

/// `2 days ago`, `4 minutes from now`, `Forever`, or `zero` for Go's zero time
/// (upstream `format.HumanTime`), relative to the current time.
pub fn human_time(t: OffsetDateTime, zero: &str) -> String {
    human_time_at(t, OffsetDateTime::now_utc(), zero)
}

/// [`human_time`] relative to an explicit `now` (for tests).
pub fn human_time_at(t: OffsetDateTime, now: OffsetDateTime, zero: &str) -> String {
    if is_go_zero(t) {
        return zero.to_string();
    }
    let delta = go_sub(now, t);
    let hours = delta / 3_600_000_000_000;
    if hours / 24 / 365 < -20 {
        "Forever".into()
    } else if delta < 0 {
        format!("{} from now", human_duration(delta.saturating_neg()))
    } else {
        format!("{} ago", human_duration(delta))
    }
}

/// `a - b` in nanoseconds, saturating like Go's `Time.Sub`.
fn go_sub(a: OffsetDateTime, b: OffsetDateTime) -> i64 {
    let n = (a - b).whole_nanoseconds();
    n.clamp(i64::MIN as i128, i64::MAX as i128) as i64
}

/// Upstream's `humanDuration`: `Less than a second`, `About a minute`, `3 hours`, `2 weeks`.
fn human_duration(d: i64) -> String {
    let seconds = d / 1_000_000_000;
    if seconds < 1 {
        return "Less than a second".into();
    } else if seconds == 1 {
        return "1 second".into();
    } else if seconds < 60 {
        return format!("{seconds} seconds");
    }
    let minutes = d / 60_000_000_000;
    if minutes == 1 {
        return "About a minute".into();
    } else if minutes < 60 {
        return format!("{minutes} minutes");
    }
    let hours = (d as f64 / 3.6e12).round() as i64;
    if hours == 1 {
        "About an hour".into()
    } else if hours < 48 {
        format!("{hours} hours")
    } else if hours < 24 * 7 * 2 {
        format!("{} days", hours / 24)
    } else if hours < 24 * 30 * 2 {
        format!("{} weeks", hours / 24 / 7)
    } else if hours < 24 * 365 * 2 {
        format!("{} months", hours / 24 / 30)
    } else {
        format!("{} years", d / 3_600_000_000_000 / 24 / 365)
    }
}

/// Terminal display width of a string, ignoring ANSI escape sequences.
pub fn display_width(s: &str) -> usize {
    if !s.contains('\x1b') {
        return UnicodeWidthStr::width(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' && chars.peek() == Some(&'[') {
            chars.next();
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    UnicodeWidthStr::width(out.as_str())
}

/// A borderless, left-aligned table configured like upstream's CLI tables.
#[derive(Debug, Clone)]
pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<Vec<String>>>,
    widths: Vec<usize>,
    max_width: usize,
    padding: String,
}

impl Default for Table {
    fn default() -> Self {
        Table::new()
    }
}

impl Table {
    /// An empty table with upstream's defaults (column limit 30, padding four spaces).
    pub fn new() -> Table {
        Table {
            headers: Vec::new(),
            rows: Vec::new(),
            widths: Vec::new(),
            max_width: 30,
            padding: "    ".into(),
        }
    }

    /// Set the column width above which cells are word-wrapped (upstream `SetColWidth`).
    /// Call before adding rows.
    pub fn col_width(mut self, w: usize) -> Table {
        self.max_width = w;
        self
    }

    /// Set the header row.
    pub fn header<S: AsRef<str>>(mut self, headers: &[S]) -> Table {
        for (i, h) in headers.iter().enumerate() {
            self.measure(h.as_ref(), i);
            self.headers.push(h.as_ref().to_string());
        }
        self
    }

    /// Append a data row.
    pub fn row<S: AsRef<str>>(&mut self, cells: &[S]) {
        let row = cells
            .iter()
            .enumerate()
            .map(|(i, c)| self.measure(c.as_ref(), i))
            .collect();
        self.rows.push(row);
    }

    /// Record a cell's width and return its wrapped lines.
    fn measure(&mut self, cell: &str, col: usize) -> Vec<String> {
        let paragraph = cell
            .split('\n')
            .map(|l| l.trim_end_matches('\r'))
            .collect::<Vec<_>>();
        let mut width = paragraph
            .iter()
            .map(|l| display_width(l))
            .max()
            .unwrap_or(0);
        width = width.min(self.max_width);
        let lines = wrap_string(&paragraph.join(" "), width);
        let width = lines
            .iter()
            .map(|l| display_width(l))
            .max()
            .unwrap_or(0)
            .max(width);
        if self.widths.len() <= col {
            self.widths.resize(col + 1, 0);
        }
        if self.widths[col] < width {
            self.widths[col] = width;
        }
        lines
    }

    /// Render the whole table.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if !self.headers.is_empty() {
            let end = self.widths.len().saturating_sub(1);
            for (i, w) in self.widths.iter().enumerate() {
                let h = self
                    .headers
                    .get(i)
                    .map(|h| h.replace('_', " ").trim().to_uppercase())
                    .unwrap_or_default();
                out.push_str(&pad_right(&h, *w));
                out.push_str(if i == end { " " } else { &self.padding });
            }
            out.push('\n');
        }
        for row in &self.rows {
            let height = row.iter().map(Vec::len).max().unwrap_or(0);
            for x in 0..height {
                for (y, lines) in row.iter().enumerate() {
                    let cell = lines.get(x).map(String::as_str).unwrap_or("  ");
                    out.push_str(&pad_right(cell, self.widths[y]));
                    out.push_str(&self.padding);
                }
                out.push('\n');
            }
        }
        out
    }
}

fn pad_right(s: &str, width: usize) -> String {
    let w = display_width(s);
    if w >= width {
        s.to_string()
    } else {
        format!("{s}{}", " ".repeat(width - w))
    }
}

/// Wrap text at `limit` columns on single spaces, minimizing raggedness (the algorithm the
/// Go tablewriter uses); a word longer than the limit raises the limit.
fn wrap_string(s: &str, limit: usize) -> Vec<String> {
    let words: Vec<&str> = s.split(' ').collect();
    let limit = words
        .iter()
        .map(|w| display_width(w))
        .fold(limit, usize::max);
    let n = words.len();
    let widths: Vec<i64> = words.iter().map(|w| display_width(w) as i64).collect();
    // line_len(i, j): width of words[i..=j] joined by single spaces.
    let line_len =
        |i: usize, j: usize| -> i64 { widths[i..=j].iter().sum::<i64>() + (j - i) as i64 };
    const PENALTY: i64 = 100_000;
    let lim = limit as i64;
    let mut cost = vec![i64::from(i32::MAX); n];
    let mut brk = vec![n; n];
    for i in (0..n).rev() {
        if line_len(i, n - 1) <= lim {
            cost[i] = 0;
            brk[i] = n;
            continue;
        }
        for j in i + 1..n {
            let len = line_len(i, j - 1);
            let d = lim - len;
            let mut c = d * d + cost[j];
            if len > lim {
                c += PENALTY;
            }
            if c < cost[i] {
                cost[i] = c;
                brk[i] = j;
            }
        }
    }
    let mut lines = Vec::new();
    let mut i = 0;
    while i < n {
        let j = brk[i].max(i + 1);
        lines.push(words[i..j].join(" "));
        i = j;
    }
    if lines.is_empty() {
        lines.push(String::new());
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::Duration;

    #[test]
    fn human_bytes_matches_upstream_table() {
        for (input, want) in [
            (0, "0 B"),
            (1, "1 B"),
            (999, "999 B"),
            (1000, "1 KB"),
            (1500, "1.5 KB"),
            (999999, "999 KB"),
            (1000000, "1 MB"),
            (1500000, "1.5 MB"),
            (999999999, "999 MB"),
            (1000000000, "1 GB"),
            (1500000000, "1.5 GB"),
            (999999999999, "999 GB"),
            (1000000000000, "1 TB"),
            (1500000000000, "1.5 TB"),
            (1999999999999, "2.0 TB"),
            (1234, "1.2 KB"),
            (1234567, "1.2 MB"),
            (1234567890, "1.2 GB"),
        ] {
            assert_eq!(human_bytes(input), want, "{input}");
        }
    }

    #[test]
    fn human_bytes2_uses_binary_units() {
        for (input, want) in [
            (0, "0 B"),
            (1023, "1023 B"),
            (1024, "1.0 KiB"),
            (1536, "1.5 KiB"),
            (1048575, "1024.0 KiB"),
            (1048576, "1.0 MiB"),
            (1073741824, "1.0 GiB"),
            (2147483648, "2.0 GiB"),
        ] {
            assert_eq!(human_bytes2(input), want, "{input}");
        }
    }

    #[test]
    fn human_number_matches_upstream_table() {
        for (input, want) in [
            (0, "0"),
            (999, "999"),
            (1000, "1K"),
            (1001, "1K"),
            (1000000, "1M"),
            (125000000, "125M"),
            (500500000, "500.50M"),
            (500550000, "500.55M"),
            (1000000000, "1B"),
            (2800000000, "2.8B"),
            (2850000000, "2.9B"),
            (1000000000000, "1000B"),
        ] {
            assert_eq!(human_number(input), want, "{input}");
        }
    }

    #[test]
    fn human_time_matches_upstream_cases() {
        let now = OffsetDateTime::now_utc();
        let zero = ollmlx_wire::time::Timestamp::zero().0;
        assert_eq!(human_time_at(zero, now, "never"), "never");
        assert_eq!(
            human_time_at(now + Duration::hours(48), now, ""),
            "2 days from now"
        );
        assert_eq!(
            human_time_at(now - Duration::hours(48), now, ""),
            "2 days ago"
        );
        assert_eq!(
            human_time_at(now + Duration::milliseconds(800), now, ""),
            "Less than a second from now"
        );
        assert_eq!(
            human_time_at(now + Duration::days(365 * 200), now, ""),
            "Forever"
        );
    }

    #[test]
    fn human_time_covers_every_bucket() {
        let now = OffsetDateTime::now_utc();
        let ago = |d: Duration| human_time_at(now - d, now, "");
        assert_eq!(ago(Duration::seconds(1)), "1 second ago");
        assert_eq!(ago(Duration::seconds(30)), "30 seconds ago");
        assert_eq!(ago(Duration::seconds(90)), "About a minute ago");
        assert_eq!(ago(Duration::minutes(4)), "4 minutes ago");
        assert_eq!(ago(Duration::minutes(61)), "About an hour ago");
        assert_eq!(ago(Duration::hours(24)), "24 hours ago");
        assert_eq!(ago(Duration::days(20)), "2 weeks ago");
        assert_eq!(ago(Duration::days(90)), "3 months ago");
        assert_eq!(ago(Duration::days(365 * 3)), "3 years ago");
        assert_eq!(
            human_time_at(now + Duration::minutes(4) + Duration::seconds(30), now, ""),
            "4 minutes from now"
        );
    }

    #[test]
    fn list_table_matches_upstream_list_handler_output() {
        let mut t = Table::new().header(&["NAME", "ID", "SIZE", "MODIFIED"]);
        t.row(&["model1", "sha256:abc12", "1.0 KB", "24 hours ago"]);
        t.row(&["model2", "sha256:def45", "2.0 KB", "2 days ago"]);
        assert_eq!(
            t.render(),
            "NAME      ID              SIZE      MODIFIED     \n\
             model1    sha256:abc12    1.0 KB    24 hours ago    \n\
             model2    sha256:def45    2.0 KB    2 days ago      \n"
        );
    }

    #[test]
    fn headerless_table_indents_with_empty_first_column() {
        let mut t = Table::new();
        t.row(&["", "architecture", "test"]);
        t.row(&["", "parameters", "7B"]);
        assert_eq!(
            t.render(),
            "    architecture    test    \n    parameters      7B      \n"
        );
    }

    #[test]
    fn long_cells_wrap_at_the_column_limit() {
        let mut t = Table::new();
        t.row(&["", "aaaa bbbb cccc dddd eeee ffff gggg"]);
        assert_eq!(
            t.render(),
            "    aaaa bbbb cccc dddd eeee ffff     \n      gggg                              \n"
        );
        let mut wide = Table::new().col_width(100);
        wide.row(&["", "aaaa bbbb cccc dddd eeee ffff gggg"]);
        assert_eq!(
            wide.render(),
            "    aaaa bbbb cccc dddd eeee ffff gggg    \n"
        );
    }

    #[test]
    fn empty_table_with_header_prints_only_the_header() {
        let t = Table::new().header(&["NAME", "ID"]);
        assert_eq!(t.render(), "NAME    ID \n");
    }
}
