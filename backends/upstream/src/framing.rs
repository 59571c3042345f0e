//! Splitting upstream response bodies into messages: NDJSON lines (Ollama) and SSE `data:`
//! payloads (OpenAI-compatible servers). Sits between the raw body stream of the client and the
//! per-backend decoders that turn messages into [`ollmlx_infer::Event`]s.
//!
//! Chunk boundaries of the transport are irrelevant: a line may arrive in many pieces, and one
//! chunk may hold many lines.

use bytes::{Buf, Bytes, BytesMut};
use futures::stream::BoxStream;
use futures::StreamExt;
use ollmlx_infer::{BackendError, RawBody};

/// Longest line accepted before the stream is declared broken (protects memory).
const MAX_LINE: usize = 64 * 1024 * 1024;

/// A stream of lines (without `\n` / `\r\n`); empty lines are kept.
pub type LineStream = BoxStream<'static, Result<Bytes, BackendError>>;

struct LineState {
    body: RawBody,
    buf: BytesMut,
    done: bool,
}

/// Split a body into lines. A final line without newline is still yielded.
pub fn lines(body: RawBody) -> LineStream {
    let state = LineState {
        body,
        buf: BytesMut::new(),
        done: false,
    };
    futures::stream::unfold(state, |mut st| async move {
        loop {
            if let Some(pos) = st.buf.iter().position(|&b| b == b'\n') {
                let mut line = st.buf.split_to(pos + 1);
                line.truncate(pos);
                if line.last() == Some(&b'\r') {
                    line.truncate(pos - 1);
                }
                return Some((Ok(line.freeze()), st));
            }
            if st.done {
                if st.buf.is_empty() {
                    return None;
                }
                let rest = st.buf.split().freeze();
                return Some((Ok(rest), st));
            }
            if st.buf.len() > MAX_LINE {
                st.done = true;
                st.buf.clear();
                let e = BackendError::Unavailable(format!(
                    "upstream sent a line longer than {MAX_LINE} bytes"
                ));
                return Some((Err(e), st));
            }
            match st.body.next().await {
                Some(Ok(chunk)) => st.buf.extend_from_slice(chunk.chunk()),
                Some(Err(e)) => {
                    st.done = true;
                    st.buf.clear();
                    return Some((Err(e), st));
                }
                None => st.done = true,
            }
        }
    })
    .boxed()
}

/// NDJSON: non-blank lines only.
pub fn ndjson(body: RawBody) -> LineStream {
    lines(body)
        .filter(|l| {
            let keep = match l {
                Ok(b) => !b.iter().all(u8::is_ascii_whitespace),
                Err(_) => true,
            };
            futures::future::ready(keep)
        })
        .boxed()
}

struct SseState {
    lines: LineStream,
    data: Vec<String>,
    done: bool,
}

/// Server-sent events: the `data` payload of each event (several `data:` lines joined by `\n`).
/// Comments, `event:`, `id:` and `retry:` fields are skipped.
pub fn sse_data(body: RawBody) -> BoxStream<'static, Result<String, BackendError>> {
    let state = SseState {
        lines: lines(body),
        data: Vec::new(),
        done: false,
    };
    futures::stream::unfold(state, |mut st| async move {
        loop {
            if st.done {
                return None;
            }
            match st.lines.next().await {
                Some(Ok(line)) => {
                    if line.is_empty() {
                        if !st.data.is_empty() {
                            let ev = st.data.join("\n");
                            st.data.clear();
                            return Some((Ok(ev), st));
                        }
                        continue;
                    }
                    let text = String::from_utf8_lossy(&line);
                    let (field, value) = match text.split_once(':') {
                        Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
                        None => (text.as_ref(), ""),
                    };
                    if field == "data" {
                        st.data.push(value.to_string());
                    }
                }
                Some(Err(e)) => {
                    st.done = true;
                    return Some((Err(e), st));
                }
                None => {
                    st.done = true;
                    if !st.data.is_empty() {
                        let ev = st.data.join("\n");
                        return Some((Ok(ev), st));
                    }
                    return None;
                }
            }
        }
    })
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(chunks: &[&'static str]) -> RawBody {
        futures::stream::iter(
            chunks
                .iter()
                .map(|c| Ok(Bytes::from_static(c.as_bytes())))
                .collect::<Vec<_>>(),
        )
        .boxed()
    }

    async fn collect_lines(s: LineStream) -> Vec<String> {
        s.map(|l| String::from_utf8(l.unwrap().to_vec()).unwrap())
            .collect()
            .await
    }

    #[tokio::test]
    async fn ndjson_lines_survive_arbitrary_chunk_boundaries() {
        let got = collect_lines(ndjson(body(&[
            "{\"a\":",
            "1}\n{\"b\"",
            ":2}\r\n\n{\"c\":3}",
        ])))
        .await;
        assert_eq!(got, vec![r#"{"a":1}"#, r#"{"b":2}"#, r#"{"c":3}"#]);
    }

    #[tokio::test]
    async fn sse_joins_multiline_data_and_skips_comments_and_event_names() {
        let s = sse_data(body(&[
            ": ping\n\nevent: x\ndata: {\"a\"\r\ndata: :1}\r\n\r\n",
            "data:[DONE]",
        ]));
        let got: Vec<String> = s.map(|r| r.unwrap()).collect().await;
        assert_eq!(got, vec!["{\"a\"\n:1}", "[DONE]"]);
    }

    #[tokio::test]
    async fn body_error_ends_the_line_stream_with_that_error() {
        let b: RawBody = futures::stream::iter(vec![
            Ok(Bytes::from_static(b"x\ny")),
            Err(BackendError::Unavailable("gone".into())),
        ])
        .boxed();
        let got: Vec<_> = lines(b).collect().await;
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].as_ref().unwrap().as_ref(), b"x");
        assert_eq!(got[1], Err(BackendError::Unavailable("gone".into())));
    }
}
