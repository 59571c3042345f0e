//! Reader for Ollama's documentation examples (`extracted/api_md_examples.json`: the code
//! blocks of `docs/api.md`, each `{section, endpoint, headings, kind, lang, text, source_line}`).
//!
//! A `curl` request block is paired with the response blocks that follow it in the same
//! section. Blocks that cannot be replayed (json5, binary uploads, prose) are reported as
//! problems of the file, not errors. Docs are tier 4: field names are normative, values are not.

use serde::Deserialize;
use serde_json::Value;

use crate::cassette::{Cassette, Meta, Request, Response, Tier};

#[derive(Deserialize)]
struct Block {
    #[serde(default)]
    section: String,
    #[serde(default)]
    endpoint: Option<String>,
    kind: String,
    #[serde(default)]
    lang: String,
    text: String,
    #[serde(default)]
    source_line: u64,
}

/// True when a JSON document looks like the extracted docs examples.
pub fn looks_like(v: &Value) -> bool {
    v.as_array().is_some_and(|a| {
        a.first()
            .is_some_and(|b| b.get("kind").is_some() && b.get("text").is_some())
    })
}

/// Parse the examples; returns the cassettes and the blocks that were skipped (with why).
pub fn parse(text: &str, source: &str) -> Result<(Vec<Cassette>, Vec<String>), String> {
    let blocks: Vec<Block> =
        serde_json::from_str(text).map_err(|e| format!("not a docs examples file: {e}"))?;
    let mut out: Vec<Cassette> = Vec::new();
    let mut problems = Vec::new();
    let mut current: Option<(Cassette, Vec<Value>, bool)> = None;
    let finish = |cur: Option<(Cassette, Vec<Value>, bool)>, out: &mut Vec<Cassette>| {
        if let Some((mut c, objs, stream)) = cur {
            if objs.is_empty() {
                return;
            }
            // A streamed request is answered with NDJSON even when the docs only show the final
            // chunk; Fields-mode comparison matches a lone chunk against the last frame.
            let ndjson = stream || is_progress(&c);
            let body = if ndjson {
                objs.iter().map(|o| format!("{o}\n")).collect::<String>()
            } else {
                objs[0].to_string()
            };
            let ct = if ndjson {
                "application/x-ndjson"
            } else {
                "application/json; charset=utf-8"
            };
            c.response = Response::from_body(200, vec![("content-type".into(), ct.into())], body);
            out.push(c);
        }
    };
    for b in blocks {
        let at = format!("line {} ({})", b.source_line, b.section);
        if b.kind == "request" {
            finish(current.take(), &mut out);
            match parse_curl(&b.text) {
                Ok(request) => {
                    let body: Value = serde_json::from_str(&request.body).unwrap_or(Value::Null);
                    // Load/unload requests (no prompt, no messages) answer one JSON object.
                    let has_input = body.get("prompt").is_some_and(|p| p != "")
                        || body
                            .get("messages")
                            .and_then(Value::as_array)
                            .is_some_and(|m| !m.is_empty());
                    let streams =
                        has_input && matches!(request.path.as_str(), "/api/generate" | "/api/chat");
                    let stream =
                        streams && body.get("stream").and_then(Value::as_bool) != Some(false);
                    let model = body
                        .get("model")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string();
                    let slug: String = request.path.trim_start_matches('/').replace('/', "_");
                    let meta = Meta {
                        source: format!("{source}:{}", b.source_line),
                        model,
                        tier: Tier::Docs,
                        note: b.section.clone(),
                        ..Meta::default()
                    };
                    let name = format!("api_md_{}_{}", b.source_line, slug);
                    current = Some((
                        Cassette::new(name, meta, request, Response::default()),
                        Vec::new(),
                        stream,
                    ));
                }
                Err(e) => problems.push(format!("{at}: request skipped: {e}")),
            }
        } else if b.kind == "response" {
            let Some((c, objs, _)) = current.as_mut() else {
                problems.push(format!("{at}: response without a request"));
                continue;
            };
            if b.endpoint
                .as_deref()
                .is_some_and(|e| !e.ends_with(&c.request.path))
            {
                problems.push(format!("{at}: response for another endpoint"));
                continue;
            }
            if b.lang == "json5" {
                problems.push(format!(
                    "{at}: json5 example (comments, unquoted keys) skipped"
                ));
                continue;
            }
            let mut parsed = Vec::new();
            for v in serde_json::Deserializer::from_str(&b.text).into_iter::<Value>() {
                match v {
                    Ok(v) => parsed.push(v),
                    Err(e) => {
                        problems.push(format!("{at}: response block is not JSON: {e}"));
                        parsed.clear();
                        break;
                    }
                }
            }
            for v in parsed {
                if is_response_object(&v) {
                    objs.push(v);
                } else {
                    problems.push(format!(
                        "{at}: block is model output, not a response object"
                    ));
                }
            }
        }
    }
    finish(current.take(), &mut out);
    Ok((out, problems))
}

fn is_progress(c: &Cassette) -> bool {
    matches!(
        c.request.path.as_str(),
        "/api/pull" | "/api/push" | "/api/create"
    )
}

fn is_response_object(v: &Value) -> bool {
    const KEYS: &[&str] = &[
        "model",
        "status",
        "embeddings",
        "embedding",
        "models",
        "version",
        "error",
    ];
    v.as_object()
        .is_some_and(|o| KEYS.iter().any(|k| o.contains_key(*k)))
}

/// Parse `curl [-X M] [-H h]... URL [-d 'json']`.
fn parse_curl(text: &str) -> Result<Request, String> {
    let text = text.replace("\\\n", " ");
    let text = text.trim();
    let rest = text.strip_prefix("curl").ok_or("not a curl command")?;
    let mut method: Option<String> = None;
    let mut url = None;
    let mut body: Option<String> = None;
    let mut headers = Vec::new();
    let mut it = Tokens(rest);
    while let Some(tok) = it.next_token()? {
        match tok.as_str() {
            "-X" | "--request" => method = it.next_token()?,
            "-H" | "--header" => {
                if let Some(h) = it.next_token()? {
                    if let Some((k, v)) = h.split_once(':') {
                        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
                    }
                }
            }
            "-d" | "--data" | "--data-raw" => body = it.next_token()?,
            "-I" | "--head" => method = Some("HEAD".into()),
            "-T" | "--upload-file" => return Err("binary upload".into()),
            t if t.starts_with("http") => url = Some(t.to_string()),
            _ => {}
        }
    }
    let url = url.ok_or("no URL")?;
    let path = match url.find("://") {
        Some(i) => {
            let after = &url[i + 3..];
            after.find('/').map_or("/", |j| &after[j..]).to_string()
        }
        None => url.clone(),
    };
    if path.contains(':') {
        return Err(format!("path {path} has a placeholder"));
    }
    let method = method.unwrap_or_else(|| if body.is_some() { "POST" } else { "GET" }.into());
    let body = body.unwrap_or_default();
    if !body.is_empty() && serde_json::from_str::<Value>(&body).is_err() {
        return Err("request body is not JSON".into());
    }
    Ok(Request {
        method,
        path,
        headers,
        body,
    })
}

/// Shell-ish tokens: whitespace-separated, single or double quotes group.
struct Tokens<'a>(&'a str);

impl Tokens<'_> {
    fn next_token(&mut self) -> Result<Option<String>, String> {
        let s = self.0.trim_start();
        let Some(c) = s.chars().next() else {
            return Ok(None);
        };
        if c == '\'' || c == '"' {
            let end = s[1..].find(c).ok_or("unterminated quote")? + 1;
            self.0 = &s[end + 1..];
            return Ok(Some(s[1..end].to_string()));
        }
        let end = s.find(char::is_whitespace).unwrap_or(s.len());
        self.0 = &s[end..];
        Ok(Some(s[..end].to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curl_with_method_headers_and_a_quoted_body() {
        let r = parse_curl(
            "curl -X DELETE http://localhost:11434/api/delete -H \"Content-Type: application/json\" -d '{\n \"model\": \"m\"\n}'",
        )
        .unwrap();
        assert_eq!(r.method, "DELETE");
        assert_eq!(r.path, "/api/delete");
        assert_eq!(r.headers[0].0, "content-type");
        assert!(r.body.contains("\"m\""));
        assert_eq!(
            parse_curl("curl http://localhost:11434/api/tags")
                .unwrap()
                .method,
            "GET"
        );
        assert!(parse_curl("curl -T f -X POST http://h/api/blobs/x").is_err());
    }

    #[test]
    fn a_request_is_paired_with_its_streamed_responses() {
        let text = r#"[
          {"section":"Generate","endpoint":"POST /api/generate","kind":"request","lang":"shell","text":"curl http://localhost:11434/api/generate -d '{\"model\":\"m\",\"prompt\":\"p\"}'","source_line":1},
          {"section":"Generate","endpoint":"POST /api/generate","kind":"response","lang":"json","text":"{\"model\":\"m\",\"response\":\"a\",\"done\":false}","source_line":2},
          {"section":"Generate","endpoint":"POST /api/generate","kind":"response","lang":"json","text":"{\"model\":\"m\",\"response\":\"\",\"done\":true}","source_line":3},
          {"section":"Show","endpoint":"POST /api/show","kind":"response","lang":"json5","text":"{a: 1}","source_line":4}
        ]"#;
        let (cs, problems) = parse(text, "api.json").unwrap();
        assert_eq!(cs.len(), 1);
        assert_eq!(cs[0].response.frames.as_ref().map(Vec::len), Some(2));
        assert_eq!(problems.len(), 1, "{problems:?}");
    }
}
