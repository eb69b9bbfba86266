//! A connection's bounded outbound queue, as the hub and the append queue see it.
//!
//! Fan-out never waits on a connection: [`Outbox::push`] is a `try_send`, and a full
//! queue cancels the connection's overflow token, so the connection task closes the
//! socket (1013) and the client resumes after reconnecting. A slow reader can cost
//! itself its connection, never a room or a sender its speed.

use axum::extract::ws::Utf8Bytes;
use natter_protocol::ServerMsg;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::broker::ConnId;

/// The sending half of one connection's bounded outbound queue.
#[derive(Debug, Clone)]
pub struct Outbox {
    /// Which connection this is.
    pub id: ConnId,
    /// Frames waiting for the connection's writer.
    tx: mpsc::Sender<Utf8Bytes>,
    /// Cancelled when the queue overflowed: the connection task then closes the socket
    /// with 1013 and the client resumes after reconnecting.
    overflowed: CancellationToken,
}

impl Outbox {
    /// A new outbound queue holding at most `capacity` frames.
    pub fn new(id: ConnId, capacity: usize) -> (Self, mpsc::Receiver<Utf8Bytes>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        (
            Outbox {
                id,
                tx,
                overflowed: CancellationToken::new(),
            },
            rx,
        )
    }

    /// Queues a frame without waiting. A full queue marks the connection as too slow.
    pub fn push(&self, frame: Utf8Bytes) {
        if let Err(mpsc::error::TrySendError::Full(_)) = self.tx.try_send(frame) {
            self.overflowed.cancel();
        }
    }

    /// Serializes and queues one message for this connection only.
    pub fn send(&self, msg: &ServerMsg) {
        self.push(msg.to_json().into());
    }

    /// Resolves once the queue has overflowed.
    pub fn overflowed(&self) -> &CancellationToken {
        &self.overflowed
    }
}
