//! Replay: send each recorded request to a target and compare the normalized answer with the
//! normalized recording.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::cassette::{Cassette, Request, Tier};
use crate::compare::{diff, Mode};
use crate::error::Error;
use crate::formats;
use crate::http::Client;
use crate::known::{self, Verdict};
use crate::normalize::Normalizer;
use crate::report::{CaseResult, Outcome, Report};

/// Replay settings.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    /// `(recorded, target)` model names: requests name the target model, answers are mapped back.
    pub model_map: Vec<(String, String)>,
    /// Bound for each request.
    pub timeout: Duration,
}

impl Default for ReplayOptions {
    fn default() -> Self {
        ReplayOptions {
            model_map: Vec::new(),
            timeout: crate::http::DEFAULT_TIMEOUT,
        }
    }
}

/// Parse `a=b` model-map arguments.
pub fn parse_model_map(args: &[String]) -> Result<Vec<(String, String)>, String> {
    args.iter()
        .map(|a| {
            a.split_once('=')
                .filter(|(x, y)| !x.is_empty() && !y.is_empty())
                .map(|(x, y)| (x.to_string(), y.to_string()))
                .ok_or_else(|| format!("--model-map expects RECORDED=TARGET, got {a:?}"))
        })
        .collect()
}

/// The request with its `model` renamed per the map (the body is re-serialized only then).
pub fn map_request(req: &Request, map: &[(String, String)]) -> Request {
    let mut out = req.clone();
    let Ok(mut v) = serde_json::from_str::<Value>(&req.body) else {
        return out;
    };
    let Some(m) = v.get("model").and_then(Value::as_str) else {
        return out;
    };
    if let Some((_, t)) = map.iter().find(|(r, _)| r == m) {
        v["model"] = Value::String(t.clone());
        out.body = v.to_string();
    }
    out
}

/// Compare a recording with an actual answer (both normalized) and judge the case.
pub fn judge(c: &Cassette, expected: Value, actual: Value) -> CaseResult {
    let mode = if c.meta.tier == Tier::Docs {
        Mode::Fields
    } else {
        Mode::Exact
    };
    let diffs = diff(&expected, &actual, mode);
    let outcome = if diffs.is_empty() {
        Outcome::Pass
    } else {
        let mut deliberate: Vec<String> = Vec::new();
        let mut open: Vec<String> = Vec::new();
        let mut all = true;
        for d in &diffs {
            let (list, r) = match known::classify(c, d) {
                Some(Verdict::Deliberate(r)) => (&mut deliberate, r),
                Some(Verdict::Open(r)) => (&mut open, r),
                None => {
                    all = false;
                    continue;
                }
            };
            if !list.iter().any(|x| x == r) {
                list.push(r.to_string());
            }
        }
        match (all, open.is_empty()) {
            (false, _) => Outcome::Fail,
            (true, false) => Outcome::Open(open),
            (true, true) => Outcome::Known(deliberate),
        }
    };
    CaseResult {
        name: c.name.clone(),
        request: format!("{} {}", c.request.method, c.request.path),
        outcome,
        diffs,
        expected,
        actual,
    }
}

/// Replay one cassette against `client`.
pub async fn replay_case(client: &Client, c: &Cassette, opts: &ReplayOptions) -> CaseResult {
    let norm = Normalizer::with_model_map(&opts.model_map);
    let expected = Normalizer::default().response(&c.response);
    let req = map_request(&c.request, &opts.model_map);
    match client.send(&req).await {
        Ok(resp) => judge(c, expected, norm.response(&resp)),
        Err(e) => CaseResult {
            name: c.name.clone(),
            request: format!("{} {}", c.request.method, c.request.path),
            outcome: Outcome::Error(e.to_string()),
            diffs: Vec::new(),
            expected,
            actual: Value::Null,
        },
    }
}

/// Replay every cassette under `dir` against `target`. Unreadable files are listed in the
/// report; an unreachable target stops the run with an error.
pub async fn replay_dir(dir: &Path, target: &str, opts: &ReplayOptions) -> Result<Report, Error> {
    let client = Client::new(target, opts.timeout)?;
    // An unreachable target is one clear error, not a table of identical failures.
    if let Err(e @ Error::Unreachable { .. }) = crate::live::version(&client).await {
        return Err(e);
    }
    let mut report = Report::default();
    for file in formats::read_dir(dir)? {
        match file.result {
            Ok(cs) => {
                for c in cs {
                    report.cases.push(replay_case(&client, &c, opts).await);
                }
            }
            Err(e) => report.load_errors.push(e.to_string()),
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_map_arguments_and_request_rewriting() {
        let map = parse_model_map(&["llama3=mock".into()]).unwrap();
        assert!(parse_model_map(&["nope".into()]).is_err());
        let req = Request {
            method: "POST".into(),
            path: "/api/chat".into(),
            headers: vec![],
            body: "{\"model\": \"llama3\", \"stream\": false}".into(),
        };
        assert_eq!(
            map_request(&req, &map).body,
            "{\"model\":\"mock\",\"stream\":false}"
        );
        let other = Request {
            body: "{\"model\": \"x\"}".into(),
            ..req
        };
        assert_eq!(map_request(&other, &map).body, "{\"model\": \"x\"}");
    }
}
