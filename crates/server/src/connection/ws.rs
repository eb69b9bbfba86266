//! The only module that knows WebSocket frames.
//!
//! Each connection is one task that `select!`s on: incoming frames, its bounded outbound
//! queue, the heartbeat, the hello deadline, the queue's overflow signal and server
//! shutdown. Outbound frames are written by feeding everything queued and flushing once
//! per wake-up, so a burst costs one syscall, not one per message.
//!
//! Close codes sent by the server (see docs/protocol.md):
//! 1001 going away (shutdown, heartbeat lost) · 1003 binary frame · 1007 invalid UTF-8 ·
//! 1008 no hello in time or persistent rate-limit abuse · 1009 message too big ·
//! 1013 too slow (outbound queue full) · 4001 signed out (the session this connection
//! was opened with ended).
//!
//! The checks before the upgrade (Origin, per-IP cap, session cookie) are
//! [`crate::http::upgrade`]'s.

use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use futures_util::{SinkExt, StreamExt};
use natter_protocol::{decode_client_frame, ErrorCode, ServerMsg, MAX_FRAME_BYTES};
use tokio::time::{sleep, Instant};

use super::conversation::Conversation;
use super::SignedIn;
use crate::limits::{ConnectionLimiter, Verdict};
use crate::AppState;

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
pub async fn serve(
    socket: WebSocket,
    app: AppState,
    mut limiter: ConnectionLimiter,
    signed_in: Option<SignedIn>,
) {
    let (outbox, mut queue) = app.hub.open_outbox();
    let overflowed = outbox.overflowed().clone();
    let watch = signed_in
        .as_ref()
        .map(|s| app.hub.watch_session(&s.session));
    // A signed-in connection ends with its session: signed out on any node, or its
    // absolute lifetime over (it cannot outlive the cookie).
    let session_ended = async {
        match (&watch, &signed_in) {
            (Some(watch), Some(signed_in)) => tokio::select! {
                _ = watch.ended().cancelled() => "signed out",
                _ = tokio::time::sleep_until(signed_in.expires) => "session expired",
            },
            _ => std::future::pending().await,
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
    );
    let (mut sink, mut stream) = socket.split();

    let hello_deadline = sleep(app.config.hello_timeout());
    tokio::pin!(hello_deadline);
    let heartbeat_every = app.config.heartbeat();
    let mut heartbeat = tokio::time::interval_at(Instant::now() + heartbeat_every, heartbeat_every);
    let mut last_heard = Instant::now();
    // Made once, not per turn of the loop: a fresh `cancelled()` future registers with
    // (and on drop, leaves) the token's waiter list every time it is polled anew.
    let shutdown = app.shutdown.cancelled();
    tokio::pin!(shutdown);
    let overflow = overflowed.cancelled();
    tokio::pin!(overflow);

    let ending: Ending = loop {
        tokio::select! {
            biased;
            _ = &mut shutdown => break Some((close::GOING_AWAY, "server shutting down")),
            _ = &mut overflow => break Some((close::TRY_AGAIN_LATER, "too slow: reconnect and resume")),
            why = &mut session_ended => break Some((close::SIGNED_OUT, why)),
            _ = &mut hello_deadline, if !conversation.is_ready() => break Some((close::POLICY, "no hello in time")),
            _ = heartbeat.tick() => {
                if last_heard.elapsed() > heartbeat_every * 2 {
                    break Some((close::GOING_AWAY, "heartbeat lost"));
                }
                if sink.send(Message::Ping(Default::default())).await.is_err() {
                    break None;
                }
            }
            Some(frame) = queue.recv() => {
                if write_all(&mut sink, frame, &mut queue).await.is_err() {
                    break None;
                }
            }
            incoming = stream.next() => {
                last_heard = Instant::now();
                if matches!(incoming, Some(Ok(Message::Text(_) | Message::Binary(_)))) {
                    match limiter.check(std::time::Instant::now()) {
                        Verdict::Allow => {}
                        Verdict::Refuse(wait) => {
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
                        Ok(frame) => conversation.handle(frame).await,
                        Err(err) => conversation.reject_frame(&err.reason, err.request_ref),
                    },
                    Some(Ok(Message::Binary(_))) => break Some((close::UNSUPPORTED_DATA, "natter speaks JSON text frames")),
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                    Some(Ok(Message::Close(_))) => {
                        // tungstenite queued the close reply; flushing sends it.
                        let _ = sink.flush().await;
                        break None;
                    }
                    None => break None,
                    Some(Err(err)) => break read_error_close(err),
                }
            }
        }
    };
    conversation.disconnect();
    if let Some((code, reason)) = ending {
        // Best effort: the peer may already be gone.
        let close = Message::Close(Some(CloseFrame {
            code,
            reason: Utf8Bytes::from_static(reason),
        }));
        let _ = tokio::time::timeout(Duration::from_secs(2), sink.send(close)).await;
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

/// Feeds `first` and everything else already queued, then flushes once.
async fn write_all(
    sink: &mut futures_util::stream::SplitSink<WebSocket, Message>,
    first: Utf8Bytes,
    queue: &mut tokio::sync::mpsc::Receiver<Utf8Bytes>,
) -> Result<(), axum::Error> {
    sink.feed(Message::Text(first)).await?;
    while let Ok(frame) = queue.try_recv() {
        sink.feed(Message::Text(frame)).await?;
    }
    sink.flush().await
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
