//! The cassette: one recorded request/response pair plus where it came from.
//!
//! Our own on-disk format is one JSON file per cassette (`ollmlx-cassette/1`). A streamed
//! response keeps its exact frames (NDJSON lines with their `\n`, SSE events with their blank
//! line) so that concatenating them gives the recorded body byte for byte.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// The format tag written into every cassette file.
pub const FORMAT: &str = "ollmlx-cassette/1";

/// How far a recording can be trusted (see `golden-seed/INDEX.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    /// Raw bytes including headers and framing (httprr, our own recorder).
    #[default]
    Wire,
    /// Real body string, headers partially kept (VCR/vcrpy).
    Raw,
    /// Real response body only; the request was reconstructed.
    Body,
    /// Documentation example: field names are normative, values are not.
    Docs,
}

/// Where a cassette came from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Meta {
    /// File (and interaction index) it was read from, or the scenario that produced it.
    pub source: String,
    /// Ollama version that answered, when known (e.g. `0.33.0`, `<=0.11.6`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub upstream_version: String,
    /// Model the request named.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub model: String,
    /// Trust tier.
    #[serde(default)]
    pub tier: Tier,
    /// True when the request was reconstructed from the response (body-only fixtures).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub synthesized_request: bool,
    /// Free-form note (why a request was reconstructed, what the scenario pins, ...).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub note: String,
}

/// The recorded request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Request {
    /// HTTP method.
    pub method: String,
    /// Path and query.
    pub path: String,
    /// Relevant headers, in order (`content-type`, `accept`, API-version headers).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<(String, String)>,
    /// Body text (usually JSON), exactly as sent.
    #[serde(default)]
    pub body: String,
}

/// The recorded response.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Relevant headers, in order (`content-type`, `cache-control`, `location`, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<(String, String)>,
    /// The whole body, for responses that are not streams.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// The stream frames, for NDJSON / SSE responses; their concatenation is the body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frames: Option<Vec<String>>,
}

/// One recorded interaction.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Cassette {
    /// Always [`FORMAT`].
    pub format: String,
    /// Case name (unique within a folder; used for file names and report rows).
    pub name: String,
    /// Provenance.
    pub meta: Meta,
    /// What was sent.
    pub request: Request,
    /// What came back.
    pub response: Response,
}

/// Headers worth keeping on a request.
pub const REQUEST_HEADERS: &[&str] =
    &["content-type", "accept", "anthropic-version", "openai-beta"];

/// Headers worth keeping (and comparing) on a response.
pub const RESPONSE_HEADERS: &[&str] = &[
    "content-type",
    "cache-control",
    "location",
    "access-control-allow-origin",
];

/// Keep only the `keep` headers (case-insensitive), lower-casing their names.
pub fn relevant_headers<'a>(
    headers: impl IntoIterator<Item = (&'a str, &'a str)>,
    keep: &[&str],
) -> Vec<(String, String)> {
    headers
        .into_iter()
        .filter(|(k, _)| keep.iter().any(|x| x.eq_ignore_ascii_case(k)))
        .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
        .collect()
}

// === impl Response ===

impl Response {
    /// Build a response from its full body, splitting it into frames when the content type is
    /// a stream (`application/x-ndjson`, `text/event-stream`).
    pub fn from_body(status: u16, headers: Vec<(String, String)>, body: String) -> Self {
        let ct = header(&headers, "content-type").unwrap_or_default();
        let frames = split_frames(ct, &body);
        match frames {
            Some(f) => Response {
                status,
                headers,
                body: None,
                frames: Some(f),
            },
            None => Response {
                status,
                headers,
                body: Some(body),
                frames: None,
            },
        }
    }

    /// The body bytes (frames concatenated).
    pub fn body_text(&self) -> String {
        match (&self.frames, &self.body) {
            (Some(f), _) => f.concat(),
            (None, Some(b)) => b.clone(),
            (None, None) => String::new(),
        }
    }

    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }
}

/// The first header named `name` (case-insensitive) in a header list.
pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Split a stream body into frames; `None` when the content type is not a stream.
pub fn split_frames(content_type: &str, body: &str) -> Option<Vec<String>> {
    let sep = if content_type.starts_with("application/x-ndjson") {
        "\n"
    } else if content_type.starts_with("text/event-stream") {
        "\n\n"
    } else {
        return None;
    };
    let mut out = Vec::new();
    let mut rest = body;
    while let Some(i) = rest.find(sep) {
        out.push(rest[..i + sep.len()].to_string());
        rest = &rest[i + sep.len()..];
    }
    if !rest.is_empty() {
        out.push(rest.to_string());
    }
    Some(out)
}

// === impl Cassette ===

impl Cassette {
    /// A cassette with the current format tag.
    pub fn new(name: impl Into<String>, meta: Meta, request: Request, response: Response) -> Self {
        Cassette {
            format: FORMAT.to_string(),
            name: name.into(),
            meta,
            request,
            response,
        }
    }

    /// The request body as JSON, when it is JSON.
    pub fn request_json(&self) -> Option<serde_json::Value> {
        serde_json::from_str(&self.request.body).ok()
    }

    /// Write this cassette as pretty JSON to `dir/<name>.json`.
    pub fn save(&self, dir: &Path) -> Result<std::path::PathBuf, Error> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let path = dir.join(format!("{}.json", file_stem(&self.name)));
        let mut text = serde_json::to_string_pretty(self).map_err(Error::Json)?;
        text.push('\n');
        std::fs::write(&path, text).map_err(|e| Error::io(&path, e))?;
        Ok(path)
    }
}

/// A file-name-safe version of a case name.
pub fn file_stem(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ndjson_frames_concatenate_to_the_exact_body() {
        let body = "{\"a\":1}\n{\"b\":2}\n";
        let r = Response::from_body(
            200,
            vec![("content-type".into(), "application/x-ndjson".into())],
            body.into(),
        );
        assert_eq!(r.frames.as_ref().map(Vec::len), Some(2));
        assert_eq!(r.body_text(), body);
    }

    #[test]
    fn sse_frames_keep_their_blank_line_and_a_partial_tail() {
        let body = "data: 1\n\ndata: [DONE]\n\npartial";
        let f = split_frames("text/event-stream", body).unwrap();
        assert_eq!(f, vec!["data: 1\n\n", "data: [DONE]\n\n", "partial"]);
    }

    #[test]
    fn json_bodies_are_not_split() {
        let r = Response::from_body(
            200,
            vec![("content-type".into(), "application/json".into())],
            "{}\n".into(),
        );
        assert_eq!(r.body.as_deref(), Some("{}\n"));
        assert!(r.frames.is_none());
    }
}
