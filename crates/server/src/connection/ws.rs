//! The only module that knows WebSocket frames.
//!
//! Each connection is two tasks. The reading task `select!`s on incoming frames, the
//! heartbeat, the hello deadline, the queue's overflow signal, the session's end and
//! server shutdown. The writer owns the socket's sending half: it takes everything
//! queued, passes it through the connection's per-room order ([`super::order`]), feeds
//! it and flushes once per wake-up (a burst costs one syscall, not one per message).
//! Every write has a deadline (`--write-timeout-ms`): a peer that accepts no bytes for
//! that long is dropped, and nothing the peer does can stall reading, the heartbeat,
//! overflow or shutdown.
//!
//! Close codes sent by the server (see docs/protocol.md):
//! 1001 going away (shutdown, heartbeat lost) · 1003 binary frame · 1007 invalid UTF-8 ·
//! 1008 no hello in time or persistent rate-limit abuse · 1009 message too big ·
//! 1013 too slow (outbound queue full, in frames or bytes) · 4001 signed out (the session this connection
//! was opened with ended).
//!
//! The checks before the upgrade (Origin, per-IP cap, session cookie) are
//! [`crate::http::upgrade`]'s.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use natter_protocol::{decode_client_frame, ErrorCode, ServerMsg, UserId, MAX_FRAME_BYTES};
use tokio::sync::oneshot;
use tokio::time::{sleep, Instant};
use tokio_util::sync::CancellationToken;

use super::conversation::Conversation;
use super::order::RoomOrder;
use super::SignedIn;
use crate::hub::history::catch_up;
use crate::hub::{OutboxQueue, Outgoing, RoomCatchUp};
use crate::limits::{ConnectionLimiter, Verdict};
use crate::store::Store;
use crate::{telemetry, AppState};

/// Read buffer per connection. tungstenite's default (128 KiB) costs ~137 KiB of memory
/// per idle connection; 4 KiB brings that under 16 KiB and still reads a typical frame
/// in one go (larger frames just take several reads).
const READ_BUFFER: usize = 4 * 1024;
/// Bytes written before tungstenite flushes on its own (we flush per wake-up anyway).
/// The buffer never shrinks, so this (plus the largest frame) is memory every
/// connection keeps; frames are kept small for the same reason (see `SNAPSHOT_CHUNK`).
const WRITE_BUFFER: usize = 4 * 1024;
/// How long to wait for a client's close reply after sending ours.
const CLOSE_WAIT: Duration = Duration::from_secs(1);
/// How long the writer may take to send our close frame before it is abandoned.
const CLOSE_SEND: Duration = Duration::from_secs(2);
/// How often an open signed-in connection in use renews its session's idle expiry.
const SESSION_TOUCH_EVERY: Duration = Duration::from_secs(3600);
/// Hard cap on unflushed outgoing bytes for one connection.
const MAX_WRITE_BUFFER: usize = 4 * 1024 * 1024;

/// Close codes this server sends, named.
pub mod close {
    /// Server shutting down or peer silent: reconnect (elsewhere or later).
    pub const GOING_AWAY: u16 = 1001;
    /// The client sent a binary frame; natter speaks JSON text frames only.
    pub const UNSUPPORTED_DATA: u16 = 1003;
    /// A text frame was not valid UTF-8.
    pub const INVALID_PAYLOAD: u16 = 1007;
    /// Policy: no `hello` within the deadline, or rate limits ignored.
    pub const POLICY: u16 = 1008;
    /// A message exceeded [`natter_protocol::MAX_FRAME_BYTES`].
    pub const TOO_BIG: u16 = 1009;
    /// The client did not read fast enough: reconnect and resume.
    pub const TRY_AGAIN_LATER: u16 = 1013;
    /// The session this connection was signed in with ended.
    pub const SIGNED_OUT: u16 = natter_protocol::CLOSE_SIGNED_OUT;
}

/// Applies natter's message limits and buffer sizes to an upgrade.
pub fn configure(ws: WebSocketUpgrade) -> WebSocketUpgrade {
    ws.max_message_size(MAX_FRAME_BYTES)
        .max_frame_size(MAX_FRAME_BYTES)
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        .max_write_buffer_size(MAX_WRITE_BUFFER)
}

/// Echoes every data frame back, with natter's socket settings and close handling but
/// without the chat: what protocol conformance suites (Autobahn, `cargo xtask
/// autobahn`) need to exercise the WebSocket layer natter ships.
pub async fn echo(mut socket: WebSocket) {
    loop {
        let reply = match socket.recv().await {
            Some(Ok(Message::Text(text))) => Message::Text(text),
            Some(Ok(Message::Binary(data))) => Message::Binary(data),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(Message::Close(_))) => {
                // tungstenite queued the close reply; flushing sends it.
                let _ = socket.flush().await;
                return;
            }
            None => return,
            Some(Err(err)) => {
                if let Some((code, reason)) = read_error_close(err) {
                    let close = CloseFrame {
                        code,
                        reason: Utf8Bytes::from_static(reason),
                    };
                    let _ = socket.send(Message::Close(Some(close))).await;
                }
                return;
            }
        };
        if socket.send(reply).await.is_err() {
            return;
        }
    }
}

/// Why the connection loop ended: a close frame to send, or none.
type Ending = Option<(u16, &'static str)>;

/// Runs one upgraded connection until it closes: `signed_in` when it came with a valid
/// session cookie. Called by [`crate::http::upgrade`] once the checks passed.
///
/// Two tasks: this one reads (frames, requests, the heartbeat, deadlines, shutdown), and
/// a writer owns the socket's sending half, so a peer that stops reading can stall
/// nothing here — its writes time out and the connection is dropped.
pub async fn serve(
    socket: WebSocket,
    app: AppState,
    mut limiter: ConnectionLimiter,
    signed_in: Option<SignedIn>,
) {
    metrics::gauge!(telemetry::CONNECTIONS).increment(1.0);
    let _counted = Uncount;
    let (outbox, queue) = app.hub.open_outbox();
    let overflowed = outbox.overflowed().clone();
    // A signed-in connection ends with its session: signed out on any node, or its
    // absolute lifetime over (it cannot outlive the cookie).
    let session_ended = async {
        match &signed_in {
            Some(signed_in) => tokio::select! {
                _ = signed_in.watch.ended().cancelled() => "signed out",
                _ = tokio::time::sleep_until(signed_in.expires) => "session expired",
            },
            None => std::future::pending().await,
        }
    };
    tokio::pin!(session_ended);
    // Using the connection keeps the session from idling out (checked hourly at most).
    let keep_alive = signed_in.as_ref().map(|s| &s.keep_alive);
    let mut last_touch = Instant::now();
    let mut conversation = Conversation::new(
        app.hub.clone(),
        outbox,
        signed_in.as_ref().map(|s| s.user.clone()),
        app.quotas.clone(),
        limiter.ip(),
    );
    let (sink, mut stream) = socket.split();
    // The reading side's last word: a close frame to send (or, with `None`, just a
    // flush of what tungstenite queued, such as its reply to the peer's close).
    let (close_writer, close_requested) = oneshot::channel();
    let heartbeat_every = app.config.heartbeat();
    let writer_done = CancellationToken::new();
    let writer = Writer {
        sink,
        queue,
        close: close_requested,
        heartbeat: tokio::time::interval_at(Instant::now() + heartbeat_every, heartbeat_every),
        order: RoomOrder::new(app.config.outbound_queue, app.config.outbound_queue_bytes),
        catch_up: VecDeque::new(),
        store: app.hub.store().clone(),
        write_timeout: app.config.write_timeout(),
        overflowed: overflowed.clone(),
        done: writer_done.clone(),
        frames_sent: metrics::counter!(telemetry::FRAMES_SENT),
    };
    let mut writer = tokio::spawn(writer.run());

    let hello_deadline = sleep(app.config.hello_timeout());
    tokio::pin!(hello_deadline);
    let mut heartbeat = tokio::time::interval_at(Instant::now() + heartbeat_every, heartbeat_every);
    let mut last_heard = Instant::now();
    // Made once, not per turn of the loop: a fresh `cancelled()` future registers with
    // (and on drop, leaves) the token's waiter list every time it is polled anew.
    let shutdown = app.shutdown.cancelled();
    tokio::pin!(shutdown);
    let overflow = overflowed.cancelled();
    tokio::pin!(overflow);
    let writer_stopped = writer_done.cancelled();
    tokio::pin!(writer_stopped);

    let ending: Ending = loop {
        tokio::select! {
            biased;
            _ = &mut shutdown => break Some((close::GOING_AWAY, "server shutting down")),
            _ = &mut overflow => break Some((close::TRY_AGAIN_LATER, "too slow: reconnect and resume")),
            // The peer took no bytes for the write timeout, or the socket failed.
            _ = &mut writer_stopped => break None,
            why = &mut session_ended => break Some((close::SIGNED_OUT, why)),
            _ = &mut hello_deadline, if !conversation.is_ready() => break Some((close::POLICY, "no hello in time")),
            _ = heartbeat.tick() => {
                // (The writer sends the pings.)
                if last_heard.elapsed() > heartbeat_every * 2 {
                    break Some((close::GOING_AWAY, "heartbeat lost"));
                }
            }
            incoming = stream.next() => {
                last_heard = Instant::now();
                if matches!(incoming, Some(Ok(Message::Text(_) | Message::Binary(_)))) {
                    match limiter.check(std::time::Instant::now()) {
                        Verdict::Allow => {}
                        Verdict::Refuse(wait) => {
                            telemetry::refused("frame_rate");
                            conversation.send(&ServerMsg::Error {
                                code: ErrorCode::RateLimited,
                                message: "Too many messages; slow down.".into(),
                                request_ref: None,
                                retry_after_ms: Some(wait.as_millis().try_into().unwrap_or(u64::MAX).max(1)),
                            });
                            continue;
                        }
                        Verdict::Close => break Some((close::POLICY, "rate limit exceeded")),
                    }
                }
                if let Some(keep_alive) = keep_alive.filter(|_| last_touch.elapsed() > SESSION_TOUCH_EVERY) {
                    last_touch = Instant::now();
                    keep_alive();
                }
                match incoming {
                    Some(Ok(Message::Text(text))) => match decode_client_frame(text.as_str()) {
                        // Boxed: an idle connection's task is sized for its largest
                        // await, and a request's (hello's above all) is far larger than
                        // waiting for frames — boxing it keeps idle connections small.
                        Ok(frame) => Box::pin(conversation.handle(frame)).await,
                        Err(err) => conversation.reject_frame(&err.reason, err.request_ref),
                    },
                    Some(Ok(Message::Binary(_))) => break Some((close::UNSUPPORTED_DATA, "natter speaks JSON text frames")),
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                    // tungstenite queued the close reply; the writer's flush sends it.
                    Some(Ok(Message::Close(_))) => break None,
                    None => break None,
                    Some(Err(err)) => break read_error_close(err),
                }
            }
        }
    };
    conversation.disconnect();
    if let Some((code, why)) = &ending {
        telemetry::closed(close_reason(*code, why));
    }
    let close = ending.map(|(code, reason)| CloseFrame {
        code,
        reason: Utf8Bytes::from_static(reason),
    });
    let closing = close.is_some();
    // Best effort: the peer may already be gone, or not reading at all.
    let _ = close_writer.send(close);
    if tokio::time::timeout(CLOSE_SEND, &mut writer).await.is_err() {
        writer.abort();
    }
    if closing {
        // Wait briefly for the peer's close reply before dropping the TCP connection:
        // closing with unread data in our buffer would send a reset that can overtake
        // the close frame on its way to the client.
        let drain = async {
            while let Some(Ok(frame)) = stream.next().await {
                if matches!(frame, Message::Close(_)) {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(CLOSE_WAIT, drain).await;
    }
}

/// Takes a connection off `natter_connections` when it ends, however it ends.
struct Uncount;

impl Drop for Uncount {
    fn drop(&mut self) {
        metrics::gauge!(telemetry::CONNECTIONS).decrement(1.0);
    }
}

/// The sending half of a connection, in a task of its own.
struct Writer {
    /// The socket's sending half.
    sink: SplitSink<WebSocket, Message>,
    /// What the hub queued for this connection.
    queue: OutboxQueue,
    /// The close, from the reading side.
    close: oneshot::Receiver<Option<CloseFrame>>,
    /// When to ping the peer (the reading side checks that it answers).
    heartbeat: tokio::time::Interval,
    /// Exactly once and in order, per room.
    order: RoomOrder,
    /// Rooms of the snapshot whose history is still to be read and sent.
    catch_up: VecDeque<(UserId, RoomCatchUp)>,
    /// Where those histories are read from.
    store: Arc<dyn Store>,
    /// How long one write may make no progress.
    write_timeout: Duration,
    /// Cancelled when more waits than the connection may hold: it closes with 1013.
    overflowed: CancellationToken,
    /// Cancelled when the writer stops, so the reading side stops too.
    done: CancellationToken,
    /// `natter_frames_sent_total`, held so counting costs no registry lookup per flush.
    frames_sent: metrics::Counter,
}

/// The peer accepted no bytes for the write timeout, or the socket failed.
struct WriteFailed;

impl Writer {
    /// Writes until told to close, or until a write fails or makes no progress.
    ///
    /// What is queued goes first; the snapshot's histories are read one room at a time
    /// when nothing else waits, so they go out as fast as the socket drains and never
    /// pile up in memory.
    async fn run(mut self) {
        let _done = self.done.clone().drop_guard();
        loop {
            match self.close.try_recv() {
                Ok(frame) => return self.close_with(frame).await,
                Err(oneshot::error::TryRecvError::Closed) => return,
                Err(oneshot::error::TryRecvError::Empty) => {}
            }
            if let Some(item) = self.queue.try_recv() {
                if self.write_queued(item).await.is_err() {
                    return;
                }
                continue;
            }
            if let Some((viewer, room)) = self.catch_up.pop_front() {
                // Boxed, like requests on the reading side: rare, and larger than the
                // rest of the writer's waiting.
                if Box::pin(self.write_catch_up(&viewer, room)).await.is_err() {
                    return;
                }
                continue;
            }
            tokio::select! {
                biased;
                frame = &mut self.close => {
                    if let Ok(frame) = frame {
                        self.close_with(frame).await;
                    }
                    return;
                }
                _ = self.heartbeat.tick() => {
                    if self.write(Message::Ping(Default::default())).await.is_err()
                        || self.flush().await.is_err()
                    {
                        return;
                    }
                }
                item = self.queue.recv() => {
                    let Some(item) = item else { return };
                    if self.write_queued(item).await.is_err() {
                        return;
                    }
                }
            }
        }
    }

    /// Sends the close frame, if any, and whatever tungstenite queued (best effort:
    /// the peer may be gone or not reading).
    async fn close_with(&mut self, frame: Option<CloseFrame>) {
        if let Some(frame) = frame {
            let _ = self.write(Message::Close(Some(frame))).await;
        }
        let _ = self.flush().await;
    }

    /// Reads one room's history after what the client holds and sends it (with the
    /// live messages that waited for it). A store failure closes the connection with
    /// 1013: the client reconnects and resumes.
    async fn write_catch_up(
        &mut self,
        viewer: &UserId,
        room: RoomCatchUp,
    ) -> Result<(), WriteFailed> {
        let started = std::time::Instant::now();
        let read = catch_up(
            &*self.store,
            room.room,
            room.after,
            Some(room.latest),
            viewer,
        )
        .await;
        telemetry::store_call("history", started);
        let (history, newest) = match read {
            Ok(read) => read,
            Err(err) => {
                tracing::error!(%err, "could not read a room's history for a snapshot");
                self.overflowed.cancel();
                return Ok(());
            }
        };
        let item = Outgoing::History {
            room: room.room,
            newest,
            frame: history.to_json().into(),
        };
        self.write_queued(item).await
    }

    /// Feeds `first` and everything else already queued (through the per-room order),
    /// then flushes once: a burst costs one syscall, not one per message.
    async fn write_queued(&mut self, first: Outgoing) -> Result<(), WriteFailed> {
        // What one item puts on the wire (a history may release waiting messages).
        let mut frames = Vec::new();
        let mut sent = 0;
        let mut next = Some(first);
        while let Some(item) = next {
            let admitted = match item {
                Outgoing::CatchUp { viewer, rooms } => {
                    for room in rooms {
                        if room.latest > room.after {
                            self.catch_up.push_back((viewer.clone(), room));
                        } else {
                            // Nothing new: no history frame at all.
                            self.order
                                .settle(room.room, room.after, |frame| frames.push(frame));
                        }
                    }
                    Ok(())
                }
                item => self.order.admit(item, |frame| frames.push(frame)),
            };
            sent += frames.len() as u64;
            for frame in frames.drain(..) {
                self.write(Message::Text(frame)).await?;
            }
            if admitted.is_err() {
                self.overflowed.cancel();
                break;
            }
            next = self.queue.try_recv();
        }
        self.frames_sent.increment(sent);
        self.flush().await
    }

    async fn write(&mut self, message: Message) -> Result<(), WriteFailed> {
        match tokio::time::timeout(self.write_timeout, self.sink.feed(message)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(WriteFailed),
            Err(_) => {
                tracing::debug!("a peer took no bytes for the write timeout; dropping it");
                telemetry::closed("write_timeout");
                Err(WriteFailed)
            }
        }
    }

    async fn flush(&mut self) -> Result<(), WriteFailed> {
        match tokio::time::timeout(self.write_timeout, self.sink.flush()).await {
            Ok(Ok(())) => Ok(()),
            _ => Err(WriteFailed),
        }
    }
}

/// The `reason` label of a close the server chose (for `natter_closes_total`).
fn close_reason(code: u16, why: &str) -> &'static str {
    match code {
        close::TRY_AGAIN_LATER => "outbox_overflow",
        close::SIGNED_OUT => "signed_out",
        close::GOING_AWAY if why == "heartbeat lost" => "heartbeat",
        close::GOING_AWAY => "shutdown",
        close::POLICY if why == "no hello in time" => "hello_timeout",
        close::POLICY => "rate_limit",
        _ => "bad_frame",
    }
}

/// tungstenite answers protocol errors with the right close itself, but not an
/// over-size message (it just errors) or invalid UTF-8: those we close ourselves.
fn read_error_close(err: axum::Error) -> Ending {
    let inner = err.into_inner();
    match inner.downcast_ref::<tungstenite::Error>() {
        Some(tungstenite::Error::Capacity(_)) => {
            Some((close::TOO_BIG, "message too big (limit 64 KiB)"))
        }
        Some(tungstenite::Error::Utf8(_)) => {
            Some((close::INVALID_PAYLOAD, "text frame is not valid UTF-8"))
        }
        _ => {
            tracing::debug!(err = %inner, "websocket read failed");
            None
        }
    }
}
