//! Framing: the only place where dialect chunks become bytes on the wire.
//!
//! NDJSON (`application/x-ndjson`) for the native API, SSE (`text/event-stream`) for OpenAI and
//! Anthropic. Each chunk is flushed as its own body frame. The body owns the backend's event
//! stream: when the client disconnects, hyper drops the body, which drops the stream, which
//! cancels the generation.

use std::collections::VecDeque;

use bytes::{BufMut, Bytes, BytesMut};
use futures::{FutureExt, Stream, StreamExt};
use http::{header, HeaderValue, Response, StatusCode};
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use ollmlx_dialect::{Chunk, Codec};
use ollmlx_infer::{Event, EventStream};

use crate::body::{BoxBody, BoxError};
use crate::respond::status_and_message;
use crate::routes::Route;

/// How chunks are framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// One JSON document per line.
    Ndjson,
    /// Server-sent events.
    Sse,
}

impl Framing {
    /// The Content-Type of a stream with this framing.
    pub fn content_type(self) -> &'static str {
        match self {
            Framing::Ndjson => "application/x-ndjson",
            Framing::Sse => "text/event-stream",
        }
    }

    /// Frame one chunk.
    pub fn frame(self, chunk: Chunk) -> Option<Bytes> {
        match (self, chunk) {
            (Framing::Ndjson, Chunk::Data(b)) | (Framing::Ndjson, Chunk::Named(_, b)) => {
                let mut out = BytesMut::with_capacity(b.len() + 1);
                out.put_slice(&b);
                out.put_u8(b'\n');
                Some(out.freeze())
            }
            (Framing::Ndjson, Chunk::Done) => None,
            (Framing::Sse, Chunk::Data(b)) => {
                let mut out = BytesMut::with_capacity(b.len() + 8);
                out.put_slice(b"data: ");
                out.put_slice(&b);
                out.put_slice(b"\n\n");
                Some(out.freeze())
            }
            (Framing::Sse, Chunk::Named(name, b)) => {
                let mut out = BytesMut::with_capacity(b.len() + name.len() + 16);
                out.put_slice(b"event: ");
                out.put_slice(name.as_bytes());
                out.put_slice(b"\ndata: ");
                out.put_slice(&b);
                out.put_slice(b"\n\n");
                Some(out.freeze())
            }
            (Framing::Sse, Chunk::Done) => Some(Bytes::from_static(b"data: [DONE]\n\n")),
        }
    }
}

struct State {
    events: Option<EventStream>,
    codec: Box<dyn Codec>,
    framing: Framing,
    pending: VecDeque<Bytes>,
    route: Route,
}

/// The framed byte stream for `first` followed by the rest of `events`.
pub fn framed_stream(
    first: Event,
    events: EventStream,
    codec: Box<dyn Codec>,
    framing: Framing,
    route: Route,
) -> impl Stream<Item = Result<Frame<Bytes>, BoxError>> + Send + 'static {
    let mut state = State {
        events: Some(events),
        codec,
        framing,
        pending: VecDeque::new(),
        route,
    };
    let chunks = state.codec.stream(&first);
    state
        .pending
        .extend(chunks.into_iter().filter_map(|c| framing.frame(c)));
    futures::stream::unfold(state, |mut st| async move {
        loop {
            if !st.pending.is_empty() {
                return Some((Ok(Frame::data(st.take_batch())), st));
            }
            let events = st.events.as_mut()?;
            let item = events.next().await;
            st.absorb(item);
            // Coalesce whatever the backend has already produced into the same write, so a fast
            // backend is not limited by one syscall per chunk; a slow one still gets every chunk
            // flushed as soon as it exists.
            while st.pending_bytes() < COALESCE_LIMIT {
                let Some(events) = st.events.as_mut() else {
                    break;
                };
                match events.next().now_or_never() {
                    Some(item) => st.absorb(item),
                    None => break,
                }
            }
        }
    })
}

/// Stop coalescing ready chunks once a write reaches this size.
const COALESCE_LIMIT: usize = 64 * 1024;

impl State {
    fn absorb(&mut self, item: Option<Result<Event, ollmlx_infer::BackendError>>) {
        let chunks = match item {
            Some(Ok(ev)) => self.codec.stream(&ev),
            Some(Err(e)) => {
                let (status, msg) = status_and_message(&self.route, &e);
                self.events = None;
                self.codec.stream_error(status, &msg)
            }
            None => {
                self.events = None;
                self.codec.stream_end()
            }
        };
        let framing = self.framing;
        self.pending
            .extend(chunks.into_iter().filter_map(|c| framing.frame(c)));
    }

    fn pending_bytes(&self) -> usize {
        self.pending.iter().map(Bytes::len).sum()
    }

    fn take_batch(&mut self) -> Bytes {
        if self.pending.len() == 1 {
            return self.pending.pop_front().unwrap_or_default();
        }
        let mut out = BytesMut::with_capacity(self.pending_bytes());
        for b in self.pending.drain(..) {
            out.put_slice(&b);
        }
        out.freeze()
    }
}

/// A 200 streaming response.
pub fn stream_response(
    first: Event,
    events: EventStream,
    codec: Box<dyn Codec>,
    framing: Framing,
    route: Route,
) -> Response<BoxBody> {
    let body = StreamBody::new(framed_stream(first, events, codec, framing, route)).boxed_unsync();
    let mut r = Response::new(body);
    *r.status_mut() = StatusCode::OK;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(framing.content_type()),
    );
    if framing == Framing::Sse {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    }
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ndjson_frames_are_lines_and_done_is_silent() {
        assert_eq!(
            Framing::Ndjson.frame(Chunk::Data(b"{}".to_vec())).unwrap(),
            Bytes::from_static(b"{}\n")
        );
        assert!(Framing::Ndjson.frame(Chunk::Done).is_none());
    }

    #[test]
    fn sse_frames_carry_event_names_and_done_marker() {
        assert_eq!(
            Framing::Sse.frame(Chunk::Data(b"{}".to_vec())).unwrap(),
            Bytes::from_static(b"data: {}\n\n")
        );
        assert_eq!(
            Framing::Sse
                .frame(Chunk::Named("message_stop", b"{}".to_vec()))
                .unwrap(),
            Bytes::from_static(b"event: message_stop\ndata: {}\n\n")
        );
        assert_eq!(
            Framing::Sse.frame(Chunk::Done).unwrap(),
            Bytes::from_static(b"data: [DONE]\n\n")
        );
    }
}
