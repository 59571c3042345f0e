//! A request's events on their way out of the engine thread (tokens, logprobs, the final
//! `Done`), without the engine thread ever waiting for that request's client.
//!
//! Sits between [`crate::sequence::Sequence`] (which produces the events) and the reply
//! channel the server reads. The channel is bounded; a client that stops reading without
//! hanging up (a suspended UI, a stalled proxy) fills it. Blocking on it there would stop the
//! whole batch — every other request decoding beside it — until that client read again. So an
//! event that does not fit is held here, in order, and moved into the channel on the row's
//! next step; the row keeps decoding (its output is bounded by `num_predict` and the context).
//! When the request ends with events still held, a short-lived thread delivers them and the
//! final event at the client's pace, and the engine goes on.

use std::collections::VecDeque;

use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::mpsc::Sender;

use crate::EngineEvent;

/// The reply side of one request.
pub struct Outbox {
    tx: Sender<EngineEvent>,
    held: VecDeque<EngineEvent>,
}

impl Outbox {
    /// Wrap a request's reply channel.
    pub fn new(tx: Sender<EngineEvent>) -> Self {
        Outbox {
            tx,
            held: VecDeque::new(),
        }
    }

    /// The client went away (its receiver was dropped).
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    /// Events waiting for room in the channel.
    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// Queue `events` after the held ones and move as many as fit into the channel.
    /// `false`: the client went away.
    pub fn send_all(&mut self, events: impl IntoIterator<Item = EngineEvent>) -> bool {
        self.held.extend(events);
        self.flush()
    }

    /// [`Outbox::send_all`] for one event.
    pub fn send(&mut self, event: EngineEvent) -> bool {
        self.send_all([event])
    }

    /// Move held events into the channel while it has room. `false`: the client went away.
    pub fn flush(&mut self) -> bool {
        while let Some(ev) = self.held.pop_front() {
            match self.tx.try_send(ev) {
                Ok(()) => {}
                Err(TrySendError::Full(ev)) => {
                    self.held.push_front(ev);
                    return true;
                }
                Err(TrySendError::Closed(_)) => {
                    self.held.clear();
                    return false;
                }
            }
        }
        !self.tx.is_closed()
    }

    /// End the stream with `last` (when given): sent now if everything fits, otherwise the held
    /// events and `last` are handed to a thread that waits for the client, so the caller never
    /// blocks on it.
    pub fn finish(mut self, last: Option<EngineEvent>) {
        self.held.extend(last);
        if !self.flush() || self.held.is_empty() {
            return;
        }
        let Outbox { tx, held } = self;
        // Shared so that the events are not lost if no thread can be started.
        let job = std::sync::Arc::new(std::sync::Mutex::new(Some((tx, held))));
        let deliver =
            |job: &std::sync::Mutex<Option<(Sender<EngineEvent>, VecDeque<EngineEvent>)>>| {
                let taken = job.lock().unwrap_or_else(|p| p.into_inner()).take();
                if let Some((tx, held)) = taken {
                    for ev in held {
                        if tx.blocking_send(ev).is_err() {
                            break; // the client went away: nothing more to deliver
                        }
                    }
                }
            };
        let theirs = job.clone();
        let spawned = std::thread::Builder::new()
            .name("ollmlx-outbox".into())
            .spawn(move || deliver(&theirs));
        if spawned.is_err() {
            // No thread to spare: deliver here rather than lose the end of the stream.
            deliver(&job);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::Done;

    fn text(s: &str) -> EngineEvent {
        EngineEvent::Text(s.to_string())
    }

    fn content(ev: EngineEvent) -> String {
        match ev {
            EngineEvent::Text(s) => s,
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn events_beyond_the_channel_are_held_in_order_and_flushed_as_it_drains() {
        let (tx, mut rx) = tokio::sync::mpsc::channel(2);
        let mut out = Outbox::new(tx);
        assert!(out.send_all(["a", "b", "c", "d"].map(text)));
        assert_eq!(out.held(), 2);
        assert_eq!(content(rx.try_recv().unwrap()), "a");
        assert!(out.send(text("e")));
        assert_eq!(out.held(), 2); // "c" moved in, "d" and "e" wait
        let mut got = vec![
            content(rx.try_recv().unwrap()),
            content(rx.try_recv().unwrap()),
        ];
        assert!(out.flush());
        while let Ok(ev) = rx.try_recv() {
            got.push(content(ev));
        }
        assert_eq!(got, ["b", "c", "d", "e"]);
        assert_eq!(out.held(), 0);
    }

    #[test]
    fn a_dropped_receiver_reports_the_client_gone_and_drops_what_was_held() {
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        let mut out = Outbox::new(tx);
        assert!(out.send_all(["a", "b"].map(text)));
        drop(rx);
        assert!(out.is_closed());
        assert!(!out.send(text("c")));
        assert_eq!(out.held(), 0);
    }

    #[test]
    fn finish_returns_at_once_and_the_held_events_and_done_still_arrive_in_order() {
        let (tx, mut rx) = tokio::sync::mpsc::channel(1);
        let mut out = Outbox::new(tx);
        assert!(out.send_all(["a", "b", "c"].map(text)));
        // The channel is full and nobody reads: finish must not wait for the reader.
        out.finish(Some(EngineEvent::Done(Done::unloaded())));
        let mut got = Vec::new();
        while let Some(ev) = rx.blocking_recv() {
            match ev {
                EngineEvent::Done(_) => {
                    got.push("done".to_string());
                    break;
                }
                ev => got.push(content(ev)),
            }
        }
        assert_eq!(got, ["a", "b", "c", "done"]);
    }
}
