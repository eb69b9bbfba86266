//! The append queue: every message is stored here, then fanned out, then acknowledged.
//!
//! One task owns all message writes. It takes whatever is queued (up to a batch), stores
//! it in one transaction — the store assigns each message the next seq of its room — and
//! only after the commit publishes each message to its room and acks its sender, in seq
//! order. Batching turns a burst of sends into one commit; a single writer means per-room
//! order is simply queue order.
//!
//! Changes to messages (edits, deletions, reactions) queue here too and take the same
//! path — a seq, the store, then publish, then ack — in a transaction of their own
//! after the batch's messages (a change always targets a message stored before it was
//! sent, so nothing in the batch depends on the other half).

use std::sync::Arc;
use std::time::Instant;

use natter_protocol::{ChatMessage, ErrorCode, ServerMsg};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::Outbox;
use crate::broker::{Broker, Delivery};
use crate::store::changes::{ChangeOutcome, ChangeRefusal, NewChange};
use crate::store::{Appended, NewMessage, Store};
use crate::telemetry;

/// Most messages stored in one transaction.
const MAX_BATCH: usize = 256;
/// Messages that may wait for the writer before senders are slowed down.
const QUEUE_DEPTH: usize = 4096;

/// Who hears about a stored message besides the room.
#[derive(Debug)]
pub enum AppendReply {
    /// A user's send: ack (or error) to the sending connection, which is skipped by the
    /// fan-out (its other tabs still get the message).
    Ack {
        /// The sending connection.
        outbox: Outbox,
        /// The send's `client_id`, echoed in the ack.
        client_id: String,
        /// The send's `ref`, for an error.
        request_ref: Option<String>,
    },
    /// A server-made notice (join/leave): the caller waits for the stored message.
    Notice(oneshot::Sender<Result<ChatMessage, AppendError>>),
}

/// Why a message or change was not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AppendError {
    /// The room was deleted.
    #[error("no such room")]
    NoSuchRoom,
    /// The message to change is gone (deleted meanwhile) or never was.
    #[error("That message does not exist (any more).")]
    NoSuchMessage,
    /// The message is someone else's.
    #[error("Only its author can change a message.")]
    NotAuthor,
    /// The message has as many different emoji as it may.
    #[error("This message has 20 different reactions; add one of those.")]
    TooManyReactions,
    /// The database failed or the server is shutting down.
    #[error("could not store the message")]
    Failed,
}

/// What a job stores.
#[derive(Debug)]
enum Work {
    /// A message (or notice).
    Message(NewMessage),
    /// A change to a message.
    Change(NewChange),
}

struct AppendJob {
    work: Work,
    reply: AppendReply,
    /// When it was queued, for `natter_message_seconds`.
    queued_at: Instant,
}

/// Handle to the single writer task.
#[derive(Debug, Clone)]
pub struct AppendQueue {
    /// Jobs waiting for the writer.
    tx: mpsc::Sender<AppendJob>,
    /// Tells the writer to stop accepting and finish what it has.
    stop: CancellationToken,
    /// Lets shutdown wait for the writer to finish.
    tracker: TaskTracker,
}

impl std::fmt::Debug for AppendJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppendJob")
            .field("work", &self.work)
            .finish()
    }
}

impl AppendQueue {
    /// Starts the writer task. It publishes what it stored through `broker`, the way
    /// every event reaches every node (this one included).
    pub(crate) fn start(store: Arc<dyn Store>, broker: Arc<dyn Broker>) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
        let stop = CancellationToken::new();
        let tracker = TaskTracker::new();
        tracker.spawn(write_loop(store, broker, rx, stop.clone()));
        tracker.close();
        AppendQueue { tx, stop, tracker }
    }

    /// Queues a message; waits only when the writer is far behind (backpressure).
    pub async fn append(&self, message: NewMessage, reply: AppendReply) {
        if matches!(reply, AppendReply::Ack { .. }) {
            metrics::counter!(telemetry::MESSAGES_RECEIVED).increment(1);
        }
        self.queue(Work::Message(message), reply).await;
    }

    /// Queues a change to a message, acknowledged (or refused) through `reply`.
    pub async fn change(&self, change: NewChange, reply: AppendReply) {
        self.queue(Work::Change(change), reply).await;
    }

    async fn queue(&self, work: Work, reply: AppendReply) {
        let job = AppendJob {
            work,
            reply,
            queued_at: Instant::now(),
        };
        if let Err(mpsc::error::SendError(job)) = self.tx.send(job).await {
            fail(job.reply, AppendError::Failed);
        }
    }

    /// Stores a server notice and returns it once stored.
    pub async fn append_notice(&self, message: NewMessage) -> Result<ChatMessage, AppendError> {
        let (tx, rx) = oneshot::channel();
        self.append(message, AppendReply::Notice(tx)).await;
        rx.await.unwrap_or(Err(AppendError::Failed))
    }

    /// Stops accepting work and waits until everything accepted is stored.
    pub async fn drain(&self) {
        self.stop.cancel();
        self.tracker.wait().await;
    }
}

async fn write_loop(
    store: Arc<dyn Store>,
    broker: Arc<dyn Broker>,
    mut rx: mpsc::Receiver<AppendJob>,
    stop: CancellationToken,
) {
    let mut jobs = Vec::with_capacity(MAX_BATCH);
    // Handles taken once: recording through them costs no registry lookup.
    let message_seconds = metrics::histogram!(telemetry::MESSAGE_SECONDS);
    let append_seconds = metrics::histogram!(telemetry::STORE_SECONDS, "op" => "append");
    loop {
        let received = tokio::select! {
            biased;
            n = rx.recv_many(&mut jobs, MAX_BATCH) => n,
            _ = stop.cancelled() => {
                // Refuse new work; what is already queued is still stored below.
                rx.close();
                rx.recv_many(&mut jobs, MAX_BATCH).await
            }
        };
        if received == 0 {
            return;
        }
        // Let every connection that is ready to run queue its message first: under
        // load this turns many one-message commits into one (each statement is a
        // round trip to the database), at no cost when the server is idle.
        tokio::task::yield_now().await;
        while jobs.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        // Move the messages out (no copy of their text); keep the replies in order.
        let mut batch = Vec::with_capacity(jobs.len());
        let mut replies = Vec::with_capacity(jobs.len());
        let mut changes = Vec::new();
        for job in jobs.drain(..) {
            match job.work {
                Work::Message(message) => {
                    batch.push(message);
                    replies.push((job.reply, job.queued_at));
                }
                Work::Change(change) => changes.push((change, job.reply)),
            }
        }
        if !changes.is_empty() {
            store_changes(&*store, &*broker, changes).await;
        }
        if batch.is_empty() {
            continue;
        }
        let count = batch.len();
        let started = Instant::now();
        let outcomes = store.append(batch).await;
        append_seconds.record(started.elapsed());
        match outcomes {
            Ok(outcomes) => {
                for ((reply, queued_at), outcome) in replies.into_iter().zip(outcomes) {
                    finish(&*broker, reply, outcome);
                    message_seconds.record(queued_at.elapsed());
                }
            }
            Err(err) => {
                tracing::error!(%err, messages = count, "storing messages failed");
                for (reply, _) in replies {
                    fail(reply, AppendError::Failed);
                }
            }
        }
    }
}

/// Stores a batch of changes in one transaction, then fans out and acks each.
async fn store_changes(
    store: &dyn Store,
    broker: &dyn Broker,
    jobs: Vec<(NewChange, AppendReply)>,
) {
    let (changes, replies): (Vec<NewChange>, Vec<AppendReply>) = jobs.into_iter().unzip();
    let count = changes.len();
    match store.apply_changes(changes).await {
        Ok(outcomes) => {
            for (reply, outcome) in replies.into_iter().zip(outcomes) {
                let (room, seq, ts) = match outcome {
                    // A resend is published again, as a message's is (see `finish`).
                    ChangeOutcome::Stored(event) | ChangeOutcome::Duplicate(event) => {
                        broker.publish(Delivery::room_event(
                            event.room,
                            event.seq,
                            &event.to_msg(),
                        ));
                        (event.room, event.seq, event.ts)
                    }
                    ChangeOutcome::Unchanged { room, seq, ts } => (room, seq, ts),
                    ChangeOutcome::Refused(refusal) => {
                        fail(
                            reply,
                            match refusal {
                                ChangeRefusal::NoSuchMessage => AppendError::NoSuchMessage,
                                ChangeRefusal::NotAuthor => AppendError::NotAuthor,
                                ChangeRefusal::TooManyReactions => AppendError::TooManyReactions,
                            },
                        );
                        continue;
                    }
                    ChangeOutcome::NoSuchRoom => {
                        fail(reply, AppendError::NoSuchRoom);
                        continue;
                    }
                };
                acknowledge(reply, room, seq, ts, Vec::new());
            }
        }
        Err(err) => {
            tracing::error!(%err, changes = count, "storing changes failed");
            for reply in replies {
                fail(reply, AppendError::Failed);
            }
        }
    }
}

/// After the commit: fan out, then ack.
fn finish(broker: &dyn Broker, reply: AppendReply, outcome: Appended) {
    let except = match &reply {
        AppendReply::Ack { outbox, .. } => Some(outbox.id),
        AppendReply::Notice(_) => None,
    };
    match outcome {
        // Stored before: ack again with the original seq. It is published again too: the
        // node that stored it may have died before publishing it (every node hands each
        // seq to its connections once, so nobody sees it twice).
        Appended::Stored(message) | Appended::Duplicate(message) => {
            broker.publish(Delivery::room_message(&message, except));
            succeed(reply, message);
        }
        Appended::NoSuchRoom => fail(reply, AppendError::NoSuchRoom),
    }
}

fn succeed(reply: AppendReply, message: ChatMessage) {
    match reply {
        AppendReply::Ack { .. } => acknowledge(
            reply,
            message.room,
            message.seq,
            message.ts,
            message.mentions,
        ),
        AppendReply::Notice(tx) => {
            let _ = tx.send(Ok(message));
        }
    }
}

/// Acks a user's send (with the mentions resolved in it) or change (a notice has
/// nobody to ack).
fn acknowledge(
    reply: AppendReply,
    room: natter_protocol::RoomId,
    seq: natter_protocol::Seq,
    ts: natter_protocol::Timestamp,
    mentions: Vec<natter_protocol::Mention>,
) {
    if let AppendReply::Ack {
        outbox, client_id, ..
    } = reply
    {
        outbox.send(&ServerMsg::Ack {
            client_id,
            room,
            seq,
            ts,
            mentions,
        });
    }
}

fn fail(reply: AppendReply, err: AppendError) {
    match reply {
        AppendReply::Ack {
            outbox,
            request_ref,
            ..
        } => {
            let code = match err {
                AppendError::NoSuchRoom => ErrorCode::NoSuchRoom,
                AppendError::NoSuchMessage => ErrorCode::NoSuchMessage,
                AppendError::NotAuthor => ErrorCode::NotAuthor,
                AppendError::TooManyReactions => ErrorCode::TooManyReactions,
                AppendError::Failed => ErrorCode::Internal,
            };
            outbox.send(&ServerMsg::error(code, err.to_string(), request_ref));
        }
        AppendReply::Notice(tx) => {
            let _ = tx.send(Err(err));
        }
    }
}
