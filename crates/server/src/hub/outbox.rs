//! A connection's bounded outbound queue, as the hub and the append queue see it.
//!
//! Fan-out never waits on a connection: [`Outbox::push`] is a `try_send`, and a queue
//! over its frame or byte bound cancels the connection's overflow token, so the
//! connection closes the socket (1013) and the client resumes after reconnecting. A slow
//! reader can cost itself its connection, never a room or a sender its speed.
//!
//! Each queued item says what it means for the connection's per-room order
//! ([`Outgoing`]), so the connection can hand every room's messages to its client once
//! each and in seq order, across its snapshot, joins, resumes and gap fills
//! (`connection/order.rs`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::extract::ws::Utf8Bytes;
use natter_protocol::{RoomId, Seq, ServerMsg, UserId};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::broker::ConnId;

/// One queued frame and its place in the connection's per-room order.
#[derive(Debug, Clone)]
pub enum Outgoing {
    /// A frame outside any room's order: presence, channels, acks, errors, pages of
    /// older history the client asked for.
    Frame(Utf8Bytes),
    /// A room's live message: sent unless the connection was given this seq already,
    /// and held back while the room's history is on its way.
    Message {
        /// The room.
        room: RoomId,
        /// The message's seq.
        seq: Seq,
        /// The `message` frame.
        frame: Utf8Bytes,
    },
    /// `ready`: the connection follows `rooms`, whose histories follow; their live
    /// messages wait for them.
    Ready {
        /// The rooms whose history will follow.
        rooms: Vec<RoomId>,
        /// The `ready` frame.
        frame: Utf8Bytes,
    },
    /// `joined`: the connection follows `room`, whose history follows.
    Joined {
        /// The room.
        room: RoomId,
        /// The `joined` frame.
        frame: Utf8Bytes,
    },
    /// A room's catch-up history (after `ready`, a join, a resume): the connection
    /// was given everything up to `newest`; live messages that waited for it go out
    /// after it, those it already holds are dropped.
    History {
        /// The room.
        room: RoomId,
        /// The newest seq the client holds once it has this frame.
        newest: Seq,
        /// The `history` frame.
        frame: Utf8Bytes,
    },
    /// What the connection's snapshot still owes it after `ready` (or a `catch_up`
    /// asked for): per room, what the client holds and the room's newest seq. The
    /// connection's writer reads each history from the store as the socket drains (a
    /// user in thousands of rooms never has them all queued at once); a room with
    /// nothing new sends nothing.
    CatchUp {
        /// Whose histories they are (reactions say which are theirs).
        viewer: UserId,
        /// The rooms, with what each still needs.
        rooms: Vec<RoomCatchUp>,
    },
    /// A history of `room` the client asked for (an older page, a `catch_up`) is
    /// being read: the room's live events wait for its [`Outgoing::History`].
    Hold {
        /// The room.
        room: RoomId,
    },
    /// `left`: the connection no longer follows `room`.
    Left {
        /// The room.
        room: RoomId,
        /// The `left` frame.
        frame: Utf8Bytes,
    },
}

/// One room of a connection's catch-up after `ready`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoomCatchUp {
    /// The room.
    pub room: RoomId,
    /// The newest seq the client holds (its resume point; 0 for none).
    pub after: Seq,
    /// The room's newest seq, read after the connection was attached to fan-out.
    pub latest: Seq,
}

impl Outgoing {
    /// The frame to write, if the item is one.
    pub fn frame(&self) -> Option<&Utf8Bytes> {
        match self {
            Outgoing::Frame(frame)
            | Outgoing::Message { frame, .. }
            | Outgoing::Ready { frame, .. }
            | Outgoing::Joined { frame, .. }
            | Outgoing::History { frame, .. }
            | Outgoing::Left { frame, .. } => Some(frame),
            Outgoing::CatchUp { .. } | Outgoing::Hold { .. } => None,
        }
    }

    /// Bytes this item holds in the queue.
    fn len(&self) -> usize {
        self.frame().map_or(0, |frame| frame.len())
    }
}

/// The sending half of one connection's bounded outbound queue.
#[derive(Debug, Clone)]
pub struct Outbox {
    /// Which connection this is.
    pub id: ConnId,
    /// Frames waiting for the connection's writer.
    tx: mpsc::Sender<Outgoing>,
    /// Bytes of the frames queued and not yet taken by the writer, against `max_bytes`.
    queued_bytes: Arc<AtomicUsize>,
    /// Most bytes the queue may hold: a frame count alone would let big frames pile up.
    max_bytes: usize,
    /// Cancelled when the queue overflowed: the connection then closes the socket
    /// with 1013 and the client resumes after reconnecting.
    overflowed: CancellationToken,
}

/// The receiving half of an outbound queue: what the connection's writer takes from.
#[derive(Debug)]
pub struct OutboxQueue {
    /// Frames waiting.
    rx: mpsc::Receiver<Outgoing>,
    /// Shared with the [`Outbox`]: taken frames are counted off here.
    queued_bytes: Arc<AtomicUsize>,
}

impl OutboxQueue {
    /// Waits for the next item (`None` once every sender is gone).
    pub async fn recv(&mut self) -> Option<Outgoing> {
        let item = self.rx.recv().await?;
        self.taken(&item);
        Some(item)
    }

    /// The next item if one is queued now.
    pub fn try_recv(&mut self) -> Option<Outgoing> {
        let item = self.rx.try_recv().ok()?;
        self.taken(&item);
        Some(item)
    }

    fn taken(&self, item: &Outgoing) {
        self.queued_bytes.fetch_sub(item.len(), Ordering::Relaxed);
    }
}

impl Outbox {
    /// A new outbound queue holding at most `capacity` frames and `max_bytes` bytes.
    pub fn new(id: ConnId, capacity: usize, max_bytes: usize) -> (Self, OutboxQueue) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let queued_bytes = Arc::new(AtomicUsize::new(0));
        (
            Outbox {
                id,
                tx,
                queued_bytes: queued_bytes.clone(),
                max_bytes,
                overflowed: CancellationToken::new(),
            },
            OutboxQueue { rx, queued_bytes },
        )
    }

    /// Queues an item without waiting. A full queue (in frames or bytes) marks the
    /// connection as too slow; the item is dropped, as the connection is closing.
    pub fn push(&self, item: Outgoing) {
        let len = item.len();
        let queued = self.queued_bytes.fetch_add(len, Ordering::Relaxed) + len;
        if queued > self.max_bytes {
            self.queued_bytes.fetch_sub(len, Ordering::Relaxed);
            self.overflowed.cancel();
            return;
        }
        if let Err(err) = self.tx.try_send(item) {
            self.queued_bytes.fetch_sub(len, Ordering::Relaxed);
            if let mpsc::error::TrySendError::Full(_) = err {
                self.overflowed.cancel();
            }
        }
    }

    /// Serializes and queues one message outside any room's order, for this
    /// connection only.
    pub fn send(&self, msg: &ServerMsg) {
        self.push(Outgoing::Frame(msg.to_json().into()));
    }

    /// Resolves once the queue has overflowed.
    pub fn overflowed(&self) -> &CancellationToken {
        &self.overflowed
    }
}
