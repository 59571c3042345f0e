//! Runs against live servers: `record` (the scenario suite against a real Ollama, written as
//! cassettes) and `diff` (the suite against a reference and a target, side by side).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::cassette::{Cassette, Meta, Tier};
use crate::compare::{diff as compare, Mode};
use crate::error::Error;
use crate::http::Client;
use crate::normalize::Normalizer;
use crate::report::{CaseResult, Outcome, Report};
use crate::scenarios::{suite, ModelSet};

/// `GET /api/version` of a server, or an error naming the URL when it cannot be reached.
pub async fn version(client: &Client) -> Result<String, Error> {
    let r = client
        .send(&crate::cassette::Request {
            method: "GET".into(),
            path: "/api/version".into(),
            ..Default::default()
        })
        .await?;
    Ok(serde_json::from_str::<Value>(&r.body_text())
        .ok()
        .and_then(|v| v.get("version").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_default())
}

/// Record the scenario suite from `upstream` into `out` (one cassette per scenario).
pub async fn record(
    upstream: &str,
    out: &Path,
    models: &ModelSet,
    timeout: Duration,
) -> Result<Vec<PathBuf>, Error> {
    let client = Client::new(upstream, timeout)?;
    let ver = version(&client).await?;
    let mut written = Vec::new();
    for s in suite(models) {
        let resp = client.send(&s.request).await?;
        let model = serde_json::from_str::<Value>(&s.request.body)
            .ok()
            .and_then(|v| v.get("model").and_then(Value::as_str).map(str::to_string))
            .unwrap_or_default();
        let meta = Meta {
            source: format!("scenario {} @ {}", s.name, client.base()),
            upstream_version: ver.clone(),
            model,
            tier: Tier::Wire,
            ..Meta::default()
        };
        let c = Cassette::new(s.name, meta, s.request, resp);
        written.push(c.save(out)?);
    }
    Ok(written)
}

/// Run the suite against `reference` and `target` and compare them case by case.
pub async fn diff(
    reference: &str,
    target: &str,
    models: &ModelSet,
    model_map: &[(String, String)],
    timeout: Duration,
) -> Result<Report, Error> {
    let rc = Client::new(reference, timeout)?;
    let tc = Client::new(target, timeout)?;
    // Fail early and clearly when either side is down.
    version(&rc).await?;
    version(&tc).await?;
    let norm_t = Normalizer::with_model_map(model_map);
    let norm_r = Normalizer::default();
    let mut report = Report::default();
    for s in suite(models) {
        let request = format!("{} {}", s.request.method, s.request.path);
        let treq = crate::replay::map_request(&s.request, model_map);
        let (r, t) = tokio::join!(rc.send(&s.request), tc.send(&treq));
        let case = match (r, t) {
            (Ok(r), Ok(t)) => {
                let e = norm_r.response(&r);
                let a = norm_t.response(&t);
                let diffs = compare(&e, &a, Mode::Exact);
                CaseResult {
                    name: s.name.to_string(),
                    request,
                    outcome: if diffs.is_empty() {
                        Outcome::Pass
                    } else {
                        Outcome::Fail
                    },
                    diffs,
                    expected: e,
                    actual: a,
                }
            }
            (r, t) => CaseResult {
                name: s.name.to_string(),
                request,
                outcome: Outcome::Error(
                    [
                        r.err().map(|e| format!("reference: {e}")),
                        t.err().map(|e| format!("target: {e}")),
                    ]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join("; "),
                ),
                diffs: Vec::new(),
                expected: Value::Null,
                actual: Value::Null,
            },
        };
        report.cases.push(case);
    }
    Ok(report)
}
