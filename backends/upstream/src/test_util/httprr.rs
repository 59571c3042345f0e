//! Parser for Go `httprr` traces (`httprr trace v1`), the wire-exact recordings of real Ollama
//! traffic in `shared/golden-seed/langchaingo`. Test support only: it feeds the replaying fake
//! upstream that the backends' tests talk to.
//!
//! Format: the line `httprr trace v1`, then per interaction a line `<reqlen> <resplen>` followed
//! by exactly that many bytes of raw HTTP/1.1 request and raw response (chunked framing kept).

use std::path::{Path, PathBuf};

use bytes::Bytes;

/// One recorded request/response pair.
#[derive(Debug, Clone)]
pub struct Interaction {
    /// The request as sent.
    pub request: RecordedRequest,
    /// The response as received.
    pub response: RecordedResponse,
}

/// A recorded request.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// `GET`, `POST`, ...
    pub method: String,
    /// Path and query (the absolute URI of the request line stripped to its path).
    pub path: String,
    /// Header lines in order.
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Bytes,
}

/// A recorded response.
#[derive(Debug, Clone)]
pub struct RecordedResponse {
    /// Status code.
    pub status: u16,
    /// Header lines in order (framing headers included, as recorded).
    pub headers: Vec<(String, String)>,
    /// Body pieces: one per HTTP chunk for chunked responses, else the whole body.
    pub chunks: Vec<Bytes>,
}

/// Why a trace could not be parsed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(String);

// === impl RecordedResponse ===

impl RecordedResponse {
    /// The de-chunked body.
    pub fn body(&self) -> Vec<u8> {
        self.chunks.iter().flat_map(|c| c.iter().copied()).collect()
    }

    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn err(msg: impl Into<String>) -> ParseError {
    ParseError(msg.into())
}

/// Parse a whole trace.
pub fn parse(data: &[u8]) -> Result<Vec<Interaction>, ParseError> {
    let rest = data
        .strip_prefix(b"httprr trace v1\n")
        .ok_or_else(|| err("missing `httprr trace v1` header"))?;
    let mut rest = rest;
    let mut out = Vec::new();
    while !rest.is_empty() {
        let nl = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(|| err("missing length line"))?;
        let line = std::str::from_utf8(&rest[..nl]).map_err(|_| err("bad length line"))?;
        let (a, b) = line
            .split_once(' ')
            .ok_or_else(|| err(format!("bad length line {line:?}")))?;
        let req_len: usize = a.parse().map_err(|_| err("bad request length"))?;
        let resp_len: usize = b.parse().map_err(|_| err("bad response length"))?;
        rest = &rest[nl + 1..];
        if rest.len() < req_len + resp_len {
            return Err(err("trace truncated"));
        }
        let request = parse_request(&rest[..req_len])?;
        let response = parse_response(&rest[req_len..req_len + resp_len])?;
        rest = &rest[req_len + resp_len..];
        out.push(Interaction { request, response });
    }
    Ok(out)
}

/// Read and parse a trace file.
pub fn load(path: &Path) -> Result<Vec<Interaction>, ParseError> {
    let data =
        std::fs::read(path).map_err(|e| err(format!("cannot read {}: {e}", path.display())))?;
    parse(&data).map_err(|e| err(format!("{}: {e}", path.display())))
}

/// Start line, headers, body.
type Head<'a> = (String, Vec<(String, String)>, &'a [u8]);

/// Split a message into (start line, headers, body). Header lines may end in `\n` or `\r\n`
/// (the recordings contain one hand-edited `User-Agent` line ending in a bare `\n`).
fn split_head(msg: &[u8]) -> Result<Head<'_>, ParseError> {
    let mut pos = 0;
    let mut lines = Vec::new();
    loop {
        let nl = msg[pos..]
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(|| err("unterminated header block"))?;
        let raw = &msg[pos..pos + nl];
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        pos += nl + 1;
        if raw.is_empty() {
            break;
        }
        lines.push(String::from_utf8_lossy(raw).into_owned());
    }
    let mut it = lines.into_iter();
    let start = it.next().ok_or_else(|| err("empty message"))?;
    let headers = it
        .filter_map(|l| {
            l.split_once(':')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        })
        .collect();
    Ok((start, headers, &msg[pos..]))
}

fn parse_request(msg: &[u8]) -> Result<RecordedRequest, ParseError> {
    let (start, headers, body) = split_head(msg)?;
    let mut parts = start.split(' ');
    let method = parts.next().unwrap_or_default().to_string();
    let target = parts.next().ok_or_else(|| err("bad request line"))?;
    let path = match target.find("://") {
        Some(i) => {
            let after = &target[i + 3..];
            after.find('/').map_or("/", |j| &after[j..]).to_string()
        }
        None => target.to_string(),
    };
    Ok(RecordedRequest {
        method,
        path,
        headers,
        body: Bytes::copy_from_slice(body),
    })
}

fn parse_response(msg: &[u8]) -> Result<RecordedResponse, ParseError> {
    let (start, headers, body) = split_head(msg)?;
    let status: u16 = start
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| err(format!("bad status line {start:?}")))?;
    let chunked =
        header(&headers, "transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
    let chunks = if chunked {
        dechunk(body)?
    } else if body.is_empty() {
        Vec::new()
    } else {
        vec![Bytes::copy_from_slice(body)]
    };
    Ok(RecordedResponse {
        status,
        headers,
        chunks,
    })
}

fn dechunk(mut body: &[u8]) -> Result<Vec<Bytes>, ParseError> {
    let mut out = Vec::new();
    loop {
        let nl = body
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or_else(|| err("bad chunk size line"))?;
        let size_str = std::str::from_utf8(&body[..nl]).map_err(|_| err("bad chunk size"))?;
        let size_str = size_str.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_str, 16)
            .map_err(|_| err(format!("bad chunk size {size_str:?}")))?;
        body = &body[nl + 2..];
        if size == 0 {
            return Ok(out);
        }
        if body.len() < size + 2 {
            return Err(err("chunk truncated"));
        }
        out.push(Bytes::copy_from_slice(&body[..size]));
        body = &body[size + 2..];
    }
}

/// The golden-seed folder: `$OLLMLX_GOLDEN_SEED`, else `shared/golden-seed` next to the repo.
/// `None` (after printing a loud SKIP line naming `test`) when it is absent.
pub fn golden_seed_dir(test: &str) -> Option<PathBuf> {
    let dir = std::env::var_os("OLLMLX_GOLDEN_SEED")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/golden-seed")
        });
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "\n!!!!!!!! SKIP {test}: golden-seed recordings not found at {} (set OLLMLX_GOLDEN_SEED) !!!!!!!!\n",
            dir.display()
        );
        None
    }
}

/// Load `langchaingo/llms/ollama/<rel>` from the golden seed, or `None` (SKIP printed).
pub fn langchaingo(test: &str, rel: &str) -> Option<Vec<Interaction>> {
    let dir = golden_seed_dir(test)?;
    let path = dir.join("langchaingo/llms/ollama").join(rel);
    if !path.is_file() {
        eprintln!(
            "\n!!!!!!!! SKIP {test}: recording {} is missing !!!!!!!!\n",
            path.display()
        );
        return None;
    }
    match load(&path) {
        Ok(i) => Some(i),
        Err(e) => panic!("golden recording does not parse: {e}"),
    }
}

/// Every `.httprr` trace under `golden-seed/langchaingo`, sorted by path, or `None` (SKIP printed).
pub fn all_langchaingo(test: &str) -> Option<Vec<(PathBuf, Vec<Interaction>)>> {
    let root = golden_seed_dir(test)?.join("langchaingo");
    let mut files = Vec::new();
    let mut dirs = vec![root];
    while let Some(d) = dirs.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "httprr") {
                files.push(p);
            }
        }
    }
    files.sort();
    if files.is_empty() {
        eprintln!("\n!!!!!!!! SKIP {test}: no .httprr recordings under the golden seed !!!!!!!!\n");
        return None;
    }
    let mut out = Vec::new();
    for f in files {
        match load(&f) {
            Ok(i) => out.push((f, i)),
            Err(e) => panic!("golden recording does not parse: {e}"),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_chunked_and_length_delimited_interactions() {
        let trace = b"httprr trace v1\n60 103\nPOST http://h:1/api/x HTTP/1.1\r\nA: b\nContent-Length: 2\r\n\r\n{}HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: application/x-ndjson\r\n\r\n3\r\nab\n\r\n2\r\ncd\r\n0\r\n\r\n";
        let got = parse(trace).unwrap();
        assert_eq!(got.len(), 1);
        let i = &got[0];
        assert_eq!(i.request.method, "POST");
        assert_eq!(i.request.path, "/api/x");
        assert_eq!(i.request.headers[0], ("A".into(), "b".into()));
        assert_eq!(&i.request.body[..], b"{}");
        assert_eq!(i.response.status, 200);
        assert_eq!(
            i.response.chunks,
            vec![Bytes::from("ab\n"), Bytes::from("cd")]
        );
        assert_eq!(
            i.response.header("content-type"),
            Some("application/x-ndjson")
        );
    }
}
