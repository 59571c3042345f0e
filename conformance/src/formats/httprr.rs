//! Reader for Go `httprr` traces (`httprr trace v1`): wire-exact recordings.
//!
//! Layout: the line `httprr trace v1`, then per interaction a line `<reqlen> <resplen>` followed
//! by exactly that many bytes of raw HTTP/1.1 request and raw response (chunked framing kept).
//! Header lines may end in `\r\n` or a bare `\n` (one hand-edited seed line does).

use crate::cassette::{
    relevant_headers, Cassette, Meta, Request, Response, Tier, REQUEST_HEADERS, RESPONSE_HEADERS,
};

/// The magic first line.
pub const MAGIC: &[u8] = b"httprr trace v1\n";

/// Parse a whole trace into cassettes named `<stem>#<n>`.
pub fn parse(data: &[u8], stem: &str, source: &str) -> Result<Vec<Cassette>, String> {
    let mut rest = data
        .strip_prefix(MAGIC)
        .ok_or("missing `httprr trace v1` header")?;
    let mut out = Vec::new();
    while !rest.is_empty() {
        let n = out.len();
        let nl = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or(format!("interaction {n}: missing length line"))?;
        let line = std::str::from_utf8(&rest[..nl]).map_err(|_| "bad length line")?;
        let (a, b) = line
            .split_once(' ')
            .ok_or(format!("interaction {n}: bad length line {line:?}"))?;
        let req_len: usize = a.parse().map_err(|_| format!("bad request length {a:?}"))?;
        let resp_len: usize = b
            .parse()
            .map_err(|_| format!("bad response length {b:?}"))?;
        rest = &rest[nl + 1..];
        if rest.len() < req_len + resp_len {
            return Err(format!(
                "interaction {n}: trace truncated ({} bytes left, {} announced)",
                rest.len(),
                req_len + resp_len
            ));
        }
        let request =
            parse_request(&rest[..req_len]).map_err(|e| format!("interaction {n}: {e}"))?;
        let response = parse_response(&rest[req_len..req_len + resp_len])
            .map_err(|e| format!("interaction {n}: {e}"))?;
        rest = &rest[req_len + resp_len..];
        let model = serde_json::from_str::<serde_json::Value>(&request.body)
            .ok()
            .and_then(|v| v.get("model").and_then(|m| m.as_str()).map(str::to_string))
            .unwrap_or_default();
        let meta = Meta {
            source: format!("{source}#{n}"),
            model,
            tier: Tier::Wire,
            ..Meta::default()
        };
        out.push(Cassette::new(
            format!("{stem}#{n}"),
            meta,
            request,
            response,
        ));
    }
    Ok(out)
}

/// Start line, headers, body.
type Head<'a> = (String, Vec<(String, String)>, &'a [u8]);

fn split_head(msg: &[u8]) -> Result<Head<'_>, String> {
    let mut pos = 0;
    let mut lines = Vec::new();
    loop {
        let nl = msg[pos..]
            .iter()
            .position(|&b| b == b'\n')
            .ok_or("unterminated header block")?;
        let raw = &msg[pos..pos + nl];
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        pos += nl + 1;
        if raw.is_empty() {
            break;
        }
        lines.push(String::from_utf8_lossy(raw).into_owned());
    }
    let mut it = lines.into_iter();
    let start = it.next().ok_or("empty message")?;
    let headers = it
        .filter_map(|l| {
            l.split_once(':')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        })
        .collect();
    Ok((start, headers, &msg[pos..]))
}

fn parse_request(msg: &[u8]) -> Result<Request, String> {
    let (start, headers, body) = split_head(msg)?;
    let mut parts = start.split(' ');
    let method = parts.next().unwrap_or_default().to_string();
    let target = parts.next().ok_or("bad request line")?;
    let path = match target.find("://") {
        Some(i) => {
            let after = &target[i + 3..];
            after.find('/').map_or("/", |j| &after[j..]).to_string()
        }
        None => target.to_string(),
    };
    Ok(Request {
        method,
        path,
        headers: relevant_headers(
            headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            REQUEST_HEADERS,
        ),
        body: String::from_utf8_lossy(body).into_owned(),
    })
}

fn parse_response(msg: &[u8]) -> Result<Response, String> {
    let (start, headers, body) = split_head(msg)?;
    let status: u16 = start
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or(format!("bad status line {start:?}"))?;
    let chunked = headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    });
    let body = if chunked {
        dechunk(body)?.concat()
    } else {
        body.to_vec()
    };
    let body = String::from_utf8(body).map_err(|_| "response body is not UTF-8")?;
    let kept = relevant_headers(
        headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        RESPONSE_HEADERS,
    );
    Ok(Response::from_body(status, kept, body))
}

fn dechunk(mut body: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let mut out = Vec::new();
    loop {
        let nl = body
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("bad chunk size line (truncated body?)")?;
        let size_str = std::str::from_utf8(&body[..nl]).map_err(|_| "bad chunk size")?;
        let size_str = size_str.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_str, 16)
            .map_err(|_| format!("bad chunk size {size_str:?}"))?;
        body = &body[nl + 2..];
        if size == 0 {
            return Ok(out);
        }
        if body.len() < size + 2 {
            return Err("chunk truncated".into());
        }
        out.push(body[..size].to_vec());
        body = &body[size + 2..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRACE: &[u8] = b"httprr trace v1\n86 103\nPOST http://h:1/api/x HTTP/1.1\r\nContent-Type: application/json\nContent-Length: 2\r\n\r\n{}HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: application/x-ndjson\r\n\r\n3\r\nab\n\r\n2\r\ncd\r\n0\r\n\r\n";

    #[test]
    fn chunked_ndjson_becomes_frames_and_the_path_loses_its_host() {
        let got = parse(TRACE, "t", "t.httprr").unwrap();
        assert_eq!(got.len(), 1);
        let c = &got[0];
        assert_eq!(c.name, "t#0");
        assert_eq!(c.request.path, "/api/x");
        assert_eq!(c.request.body, "{}");
        assert_eq!(
            c.request.headers,
            vec![("content-type".into(), "application/json".into())]
        );
        assert_eq!(c.response.status, 200);
        assert_eq!(
            c.response.frames,
            Some(vec!["ab\n".to_string(), "cd".to_string()])
        );
    }

    #[test]
    fn a_truncated_trace_is_an_error_not_a_panic() {
        let cut = &TRACE[..TRACE.len() - 20];
        let err = parse(cut, "t", "t").unwrap_err();
        assert!(err.contains("truncated"), "{err}");
        assert!(parse(b"httprr trace v1\nxx\n", "t", "t").is_err());
        assert!(parse(b"nope", "t", "t").is_err());
    }
}
