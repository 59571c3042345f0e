//! Reader for VCR / vcrpy YAML cassettes (`interactions: [{request, response}]`).
//!
//! vcrpy keeps the exact body string but joins a streamed body into one string (chunk
//! boundaries are lost), so frames are re-split from the content type.

use serde::Deserialize;
use serde_yaml::Value as Yaml;

use crate::cassette::{
    relevant_headers, Cassette, Meta, Request, Response, Tier, REQUEST_HEADERS, RESPONSE_HEADERS,
};

#[derive(Deserialize)]
struct File {
    interactions: Vec<Interaction>,
}

#[derive(Deserialize)]
struct Interaction {
    request: VcrRequest,
    response: VcrResponse,
}

#[derive(Deserialize)]
struct VcrRequest {
    #[serde(default)]
    body: Yaml,
    #[serde(default)]
    headers: Yaml,
    method: String,
    uri: String,
}

#[derive(Deserialize)]
struct VcrResponse {
    #[serde(default)]
    body: Yaml,
    #[serde(default)]
    headers: Yaml,
    status: Status,
}

#[derive(Deserialize)]
struct Status {
    code: u16,
}

/// True when the YAML text looks like a VCR cassette (a top-level `interactions:` key).
pub fn looks_like(text: &str) -> bool {
    text.lines().any(|l| l.starts_with("interactions:"))
}

/// Parse a cassette file into cassettes named `<stem>#<n>`.
pub fn parse(text: &str, stem: &str, source: &str) -> Result<Vec<Cassette>, String> {
    let file: File = serde_yaml::from_str(text).map_err(|e| format!("not a VCR cassette: {e}"))?;
    let mut out = Vec::new();
    for (n, i) in file.interactions.into_iter().enumerate() {
        let path = path_of(&i.request.uri);
        let req_headers = headers(&i.request.headers);
        let resp_headers = headers(&i.response.headers);
        let date = resp_headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("date"))
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        let request = Request {
            method: i.request.method.to_ascii_uppercase(),
            path,
            headers: relevant_headers(
                req_headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
                REQUEST_HEADERS,
            ),
            body: body(&i.request.body),
        };
        let kept = relevant_headers(
            resp_headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            RESPONSE_HEADERS,
        );
        let response = Response::from_body(i.response.status.code, kept, body(&i.response.body));
        let model = serde_json::from_str::<serde_json::Value>(&request.body)
            .ok()
            .and_then(|v| v.get("model").and_then(|m| m.as_str()).map(str::to_string))
            .unwrap_or_default();
        let meta = Meta {
            source: format!("{source}#{n}"),
            model,
            tier: Tier::Raw,
            note: if date.is_empty() {
                String::new()
            } else {
                format!("recorded {date}")
            },
            ..Meta::default()
        };
        out.push(Cassette::new(
            format!("{stem}#{n}"),
            meta,
            request,
            response,
        ));
    }
    if out.is_empty() {
        return Err("VCR cassette has no interactions".into());
    }
    Ok(out)
}

fn path_of(uri: &str) -> String {
    match uri.find("://") {
        Some(i) => {
            let after = &uri[i + 3..];
            after.find('/').map_or("/", |j| &after[j..]).to_string()
        }
        None => uri.to_string(),
    }
}

/// A body is a plain string, `null`, or `{string: ...}` (newer vcrpy).
fn body(v: &Yaml) -> String {
    match v {
        Yaml::String(s) => s.clone(),
        Yaml::Mapping(m) => m
            .get(Yaml::String("string".into()))
            .and_then(Yaml::as_str)
            .unwrap_or_default()
            .to_string(),
        _ => String::new(),
    }
}

/// Headers are `name: [values]` (or `name: value`).
fn headers(v: &Yaml) -> Vec<(String, String)> {
    let Yaml::Mapping(m) = v else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (k, v) in m {
        let Some(k) = k.as_str() else { continue };
        match v {
            Yaml::Sequence(vs) => {
                for x in vs {
                    out.push((k.to_string(), scalar(x)));
                }
            }
            other => out.push((k.to_string(), scalar(other))),
        }
    }
    out
}

fn scalar(v: &Yaml) -> String {
    match v {
        Yaml::String(s) => s.clone(),
        Yaml::Number(n) => n.to_string(),
        Yaml::Bool(b) => b.to_string(),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CASSETTE: &str = r#"interactions:
- request:
    body: '{"model": "m", "stream": true}'
    headers:
      content-type:
      - application/json
      host:
      - 127.0.0.1:11434
    method: POST
    uri: http://127.0.0.1:11434/api/chat
  response:
    body:
      string: '{"a":1}

        {"b":2}

        '
    headers:
      Content-Type:
      - application/x-ndjson
      Date:
      - Fri, 24 May 2024 20:01:31 GMT
    status:
      code: 200
      message: OK
version: 1
"#;

    #[test]
    fn streamed_bodies_are_resplit_into_ndjson_frames() {
        let got = parse(CASSETTE, "c", "c.yaml").unwrap();
        let c = &got[0];
        assert_eq!(c.request.path, "/api/chat");
        assert_eq!(c.meta.model, "m");
        assert_eq!(
            c.response.frames,
            Some(vec!["{\"a\":1}\n".to_string(), "{\"b\":2}\n".to_string()])
        );
        assert_eq!(c.meta.note, "recorded Fri, 24 May 2024 20:01:31 GMT");
    }

    #[test]
    fn yaml_without_interactions_is_reported() {
        assert!(parse("openapi: 3.1.0\n", "x", "x").is_err());
        assert!(parse("interactions: [", "x", "x").is_err());
    }
}
