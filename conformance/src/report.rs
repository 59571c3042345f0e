//! Per-case results, the terminal table with its `N passed, M failed` summary line, and the
//! side-by-side HTML report.

use std::fmt::Write as _;

use serde_json::Value;

use crate::compare::Difference;

/// How one case ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Identical after normalization.
    Pass,
    /// Differences remain, every one of them documented as deliberate (the reasons).
    Known(Vec<String>),
    /// Only known, tracked incompatibilities (the notes); counts as a failure.
    Open(Vec<String>),
    /// Undocumented differences.
    Fail,
    /// The case could not be run (unreachable server, timeout, unreadable cassette).
    Error(String),
}

/// One row of a report.
#[derive(Debug, Clone)]
pub struct CaseResult {
    /// Case name.
    pub name: String,
    /// `METHOD /path`.
    pub request: String,
    /// Result.
    pub outcome: Outcome,
    /// Every difference found (including documented ones).
    pub diffs: Vec<Difference>,
    /// Normalized expected side (recording or reference), for the HTML report.
    pub expected: Value,
    /// Normalized actual side (target).
    pub actual: Value,
}

impl CaseResult {
    /// Passed, with or without documented differences.
    pub fn passed(&self) -> bool {
        matches!(self.outcome, Outcome::Pass | Outcome::Known(_))
    }
}

/// A whole run.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Rows in run order.
    pub cases: Vec<CaseResult>,
    /// Files (or other inputs) that could not be read, with why.
    pub load_errors: Vec<String>,
}

impl Report {
    /// Passed cases (documented differences count as passes).
    pub fn passed(&self) -> usize {
        self.cases.iter().filter(|c| c.passed()).count()
    }

    /// Failed cases (differences or errors) plus unreadable inputs.
    pub fn failed(&self) -> usize {
        self.cases.len() - self.passed() + self.load_errors.len()
    }

    /// `N passed, M failed`.
    pub fn summary(&self) -> String {
        format!("{} passed, {} failed", self.passed(), self.failed())
    }

    /// The terminal table, details of failures, and the summary line last.
    pub fn table(&self) -> String {
        let w = self
            .cases
            .iter()
            .map(|c| c.name.len())
            .max()
            .unwrap_or(4)
            .clamp(4, 60);
        let rw = self
            .cases
            .iter()
            .map(|c| c.request.len())
            .max()
            .unwrap_or(7)
            .clamp(7, 40);
        let mut s = String::new();
        let _ = writeln!(s, "{:<w$}  {:<rw$}  RESULT", "CASE", "REQUEST");
        for c in &self.cases {
            let (tag, detail) = match &c.outcome {
                Outcome::Pass => ("pass", String::new()),
                Outcome::Known(r) => ("pass*", r.join("; ")),
                Outcome::Open(r) => ("FAIL", r.join("; ")),
                Outcome::Fail => (
                    "FAIL",
                    c.diffs.first().map(ToString::to_string).unwrap_or_default(),
                ),
                Outcome::Error(e) => ("ERROR", e.clone()),
            };
            let _ = writeln!(s, "{:<w$}  {:<rw$}  {tag:<5}  {detail}", c.name, c.request);
        }
        for e in &self.load_errors {
            let _ = writeln!(s, "UNREADABLE  {e}");
        }
        let failing: Vec<&CaseResult> = self
            .cases
            .iter()
            .filter(|c| c.outcome == Outcome::Fail)
            .collect();
        if !failing.is_empty() {
            let _ = writeln!(s, "\nDifferences:");
            for c in failing {
                let _ = writeln!(s, "  {}:", c.name);
                for d in c.diffs.iter().take(20) {
                    let _ = writeln!(s, "    {d}");
                }
                if c.diffs.len() > 20 {
                    let _ = writeln!(s, "    ... {} more", c.diffs.len() - 20);
                }
            }
        }
        let known = self
            .cases
            .iter()
            .filter(|c| matches!(c.outcome, Outcome::Known(_)))
            .count();
        if known > 0 {
            let _ = writeln!(
                s,
                "\n{known} pass* = passed with documented differences (docs/conformance.md)"
            );
        }
        let _ = writeln!(s, "{}", self.summary());
        s
    }

    /// A self-contained HTML page: one row per case, expected and actual side by side.
    pub fn html(&self, title: &str, left: &str, right: &str) -> String {
        let mut s = String::new();
        let _ = write!(
            s,
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>{t}</title><style>\
             body{{font-family:sans-serif}}pre{{font-size:11px;white-space:pre-wrap;margin:0}}\
             td{{vertical-align:top;border-top:1px solid #ccc;padding:4px}}\
             .pass{{background:#e6ffe6}}.known{{background:#fff8dc}}.fail{{background:#ffe6e6}}\
             </style></head><body><h1>{t}</h1><p>{sum}</p><table><tr><th>case</th><th>result</th>\
             <th>{l}</th><th>{r}</th></tr>",
            t = esc(title),
            sum = esc(&self.summary()),
            l = esc(left),
            r = esc(right)
        );
        for c in &self.cases {
            let (class, label) = match &c.outcome {
                Outcome::Pass => ("pass", "pass".to_string()),
                Outcome::Known(r) => ("known", format!("documented: {}", r.join("; "))),
                Outcome::Open(r) => ("fail", format!("FAIL (known issue): {}", r.join("; "))),
                Outcome::Fail => ("fail", "FAIL".to_string()),
                Outcome::Error(e) => ("fail", format!("ERROR: {e}")),
            };
            let diffs: String = c
                .diffs
                .iter()
                .map(|d| format!("<li>{}</li>", esc(&d.to_string())))
                .collect();
            let pretty = |v: &Value| serde_json::to_string_pretty(v).unwrap_or_default();
            let _ = write!(
                s,
                "<tr class=\"{class}\"><td>{n}<br><code>{rq}</code></td><td>{lab}<ul>{diffs}</ul></td>\
                 <td><pre>{e}</pre></td><td><pre>{a}</pre></td></tr>",
                n = esc(&c.name),
                rq = esc(&c.request),
                lab = esc(&label),
                e = esc(&pretty(&c.expected)),
                a = esc(&pretty(&c.actual)),
            );
        }
        for e in &self.load_errors {
            let _ = write!(
                s,
                "<tr class=\"fail\"><td colspan=4>UNREADABLE {}</td></tr>",
                esc(e)
            );
        }
        s.push_str("</table></body></html>\n");
        s
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, outcome: Outcome) -> CaseResult {
        CaseResult {
            name: name.into(),
            request: "GET /".into(),
            outcome,
            diffs: vec![],
            expected: Value::Null,
            actual: Value::Null,
        }
    }

    #[test]
    fn the_summary_line_comes_last_and_counts_documented_differences_as_passes() {
        let r = Report {
            cases: vec![
                row("a", Outcome::Pass),
                row("b", Outcome::Known(vec!["why".into()])),
                row("c", Outcome::Fail),
            ],
            load_errors: vec!["x.json: malformed".into()],
        };
        let t = r.table();
        assert_eq!(t.lines().last(), Some("2 passed, 2 failed"));
        assert!(r.html("t", "l", "r").contains("<td>a<br>"));
    }
}
