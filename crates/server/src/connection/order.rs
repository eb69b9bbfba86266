//! Exactly once, in order, per connection: what of the queued items goes on the wire.
//!
//! The hub hands each node's connections a room's live messages in seq order, but a
//! connection also receives the same messages another way: in the `history` frames of
//! its snapshot, of a join, of a resume, and in gap fills after a node died. Where the
//! two meet, a client could see a message twice or out of order. [`RoomOrder`] stands
//! between the queue and the socket and keeps, per room, the newest seq this
//! connection was given:
//! - a live message at or below it is dropped (the client has it);
//! - while a room's catch-up history is on its way (announced by `ready` or `joined`,
//!   which are queued before any live message of the room can be), its live messages
//!   wait, and go out after the history, minus those it brought;
//! - a page of older history, or a `catch_up` the client asked for, holds the room's
//!   live events the same way (queued as [`Outgoing::Hold`] before the page is read):
//!   a change to a message of the page then reaches the client after the page, never
//!   before it, when the client would not have the message to apply it to. Holds
//!   count, so a page cannot release what a pending catch-up still holds;
//! - `left` forgets the room.
//!
//! Waiting messages count against the same bounds as the queue: a connection whose
//! histories never come is cut off like one that does not read.

use std::collections::{BTreeMap, HashMap};

use axum::extract::ws::Utf8Bytes;
use natter_protocol::{RoomId, Seq};

use crate::hub::Outgoing;

/// Per-room order of one connection (see the module docs).
#[derive(Debug)]
pub struct RoomOrder {
    /// Per followed room, the newest seq this connection was given.
    given: HashMap<RoomId, Seq>,
    /// Rooms whose history is on its way, with the live messages waiting for it.
    waiting: HashMap<RoomId, Waiting>,
    /// Frames waiting, in all rooms.
    waiting_frames: usize,
    /// Bytes waiting, in all rooms.
    waiting_bytes: usize,
    /// Most frames that may wait.
    max_frames: usize,
    /// Most bytes that may wait.
    max_bytes: usize,
}

/// One held room: how many histories it waits for, and the live events meanwhile.
#[derive(Debug, Default)]
struct Waiting {
    /// Histories announced and not yet sent.
    holds: u32,
    /// Live events by seq.
    frames: BTreeMap<Seq, Utf8Bytes>,
}

/// More live messages waited for their rooms' histories than the connection may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooManyWaiting;

impl RoomOrder {
    /// An order holding at most `max_frames` frames and `max_bytes` bytes back.
    pub fn new(max_frames: usize, max_bytes: usize) -> Self {
        RoomOrder {
            given: HashMap::new(),
            waiting: HashMap::new(),
            waiting_frames: 0,
            waiting_bytes: 0,
            max_frames,
            max_bytes,
        }
    }

    /// Takes one queued item and hands `send` the frames that go on the wire now, in
    /// order (none, one, or a history followed by the live messages that waited for it).
    pub fn admit(
        &mut self,
        item: Outgoing,
        mut send: impl FnMut(Utf8Bytes),
    ) -> Result<(), TooManyWaiting> {
        match item {
            Outgoing::Frame(frame) => send(frame),
            Outgoing::Message { room, seq, frame } => {
                if let Some(waiting) = self.waiting.get_mut(&room) {
                    if self.waiting_frames >= self.max_frames
                        || self.waiting_bytes + frame.len() > self.max_bytes
                    {
                        return Err(TooManyWaiting);
                    }
                    self.waiting_frames += 1;
                    self.waiting_bytes += frame.len();
                    if let Some(replaced) = waiting.frames.insert(seq, frame) {
                        self.forget_waiting(&replaced);
                    }
                } else {
                    let given = self.given.entry(room).or_default();
                    if seq > *given {
                        *given = seq;
                        send(frame);
                    }
                }
            }
            Outgoing::Ready { rooms, frame } => {
                send(frame);
                for room in rooms {
                    self.hold(room);
                }
            }
            Outgoing::Joined { room, frame } => {
                send(frame);
                self.hold(room);
            }
            Outgoing::Hold { room } => self.hold(room),
            Outgoing::History {
                room,
                newest,
                frame,
            } => {
                send(frame);
                self.settle(room, newest, &mut send);
            }
            // The writer takes these apart (see `ws.rs`); nothing to send as such.
            Outgoing::CatchUp { .. } => {}
            Outgoing::Left { room, frame } => {
                send(frame);
                self.given.remove(&room);
                let dropped = self.waiting.remove(&room).unwrap_or_default();
                for frame in dropped.frames.into_values() {
                    self.forget_waiting(&frame);
                }
            }
        }
        Ok(())
    }

    /// Live events of `room` wait from now until one more history of it is sent.
    fn hold(&mut self, room: RoomId) {
        self.waiting.entry(room).or_default().holds += 1;
    }

    /// A history of `room` was sent, and the connection now holds everything of it up
    /// to `newest` (0 for a page of older history, which brings nothing new): when no
    /// other history is awaited, the live messages that waited go out, minus those it
    /// already holds.
    pub fn settle(&mut self, room: RoomId, newest: Seq, mut send: impl FnMut(Utf8Bytes)) {
        let given = self.given.entry(room).or_default();
        *given = (*given).max(newest);
        let Some(waiting) = self.waiting.get_mut(&room) else {
            return;
        };
        waiting.holds = waiting.holds.saturating_sub(1);
        if waiting.holds > 0 {
            return;
        }
        let released = self.waiting.remove(&room).unwrap_or_default();
        for (seq, frame) in released.frames {
            self.forget_waiting(&frame);
            let given = self.given.entry(room).or_default();
            if seq > *given {
                *given = seq;
                send(frame);
            }
        }
    }

    fn forget_waiting(&mut self, frame: &Utf8Bytes) {
        self.waiting_frames -= 1;
        self.waiting_bytes -= frame.len();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(room: i64, seq: Seq) -> Outgoing {
        Outgoing::Message {
            room: RoomId(room),
            seq,
            frame: format!("m{room}.{seq}").into(),
        }
    }

    fn history(room: i64, newest: Seq) -> Outgoing {
        Outgoing::History {
            room: RoomId(room),
            newest,
            frame: format!("h{room}.{newest}").into(),
        }
    }

    fn sent(order: &mut RoomOrder, items: Vec<Outgoing>) -> Vec<String> {
        let mut out = Vec::new();
        for item in items {
            order
                .admit(item, |frame| out.push(frame.as_str().to_string()))
                .expect("within bounds");
        }
        out
    }

    #[test]
    fn live_messages_already_given_are_dropped() {
        let mut order = RoomOrder::new(100, 1 << 20);
        let out = sent(
            &mut order,
            vec![message(1, 1), message(1, 2), message(1, 2), message(1, 1)],
        );
        assert_eq!(out, ["m1.1", "m1.2"]);
    }

    #[test]
    fn live_messages_wait_for_the_rooms_history_and_skip_what_it_brought() {
        let mut order = RoomOrder::new(100, 1 << 20);
        let ready = Outgoing::Ready {
            rooms: vec![RoomId(1), RoomId(2)],
            frame: "ready".into(),
        };
        let out = sent(
            &mut order,
            vec![
                ready,
                message(1, 935),
                message(2, 7),
                message(1, 934),
                history(1, 934),
                history(2, 6),
                message(1, 936),
            ],
        );
        assert_eq!(out, ["ready", "h1.934", "m1.935", "h2.6", "m2.7", "m1.936"]);
    }

    #[test]
    fn a_join_holds_its_rooms_messages_until_the_history_and_left_forgets_the_room() {
        let mut order = RoomOrder::new(100, 1 << 20);
        let joined = Outgoing::Joined {
            room: RoomId(3),
            frame: "joined".into(),
        };
        let left = Outgoing::Left {
            room: RoomId(3),
            frame: "left".into(),
        };
        let out = sent(
            &mut order,
            vec![joined, message(3, 10), history(3, 9), left, message(3, 10)],
        );
        assert_eq!(out, ["joined", "h3.9", "m3.10", "left", "m3.10"]);
    }

    #[test]
    fn a_page_holds_live_events_until_it_is_sent_and_never_releases_a_pending_catch_up() {
        let mut order = RoomOrder::new(100, 1 << 20);
        let joined = Outgoing::Joined {
            room: RoomId(1),
            frame: "joined".into(),
        };
        let hold = || Outgoing::Hold { room: RoomId(1) };
        let out = sent(
            &mut order,
            vec![
                joined,
                hold(),
                message(1, 11),
                history(1, 0), // the older page: the join's history is still awaited
                message(1, 12),
                history(1, 10), // the join's history
                hold(),
                message(1, 13),
                history(1, 0), // another older page
            ],
        );
        assert_eq!(
            out,
            ["joined", "h1.0", "h1.10", "m1.11", "m1.12", "h1.0", "m1.13"]
        );
    }

    #[test]
    fn a_history_that_never_comes_cannot_hold_unbounded_messages() {
        let mut order = RoomOrder::new(2, 1 << 20);
        let joined = Outgoing::Joined {
            room: RoomId(1),
            frame: "joined".into(),
        };
        let mut ignore = |_| {};
        order.admit(joined, &mut ignore).expect("sent");
        order.admit(message(1, 1), &mut ignore).expect("waits");
        order.admit(message(1, 2), &mut ignore).expect("waits");
        assert_eq!(order.admit(message(1, 3), &mut ignore), Err(TooManyWaiting));
    }
}
