//! A fleet of WebSocket clients spread over rooms, speaking either natter's protocol or
//! the ceiling server's bare one, and the open-loop publisher that drives them.
//!
//! Every published message carries `step sender n scheduled_ns` in its text. Receivers
//! measure latency from the *scheduled* send time (so queueing in the generator or the
//! server counts), and count deliveries, duplicates and reordering per sender.
//!
//! With [`Attention::Active`], every natter member also behaves as a person reading
//! along: it tells the server what it has read every [`READ_REPORT_EVERY`] while
//! messages arrive (as the web client does), and says it is typing every
//! [`TYPING_EVERY`] — the traffic typing indicators and read markers add to chat.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use futures_util::{SinkExt, StreamExt};
use natter_protocol::{ClientFrame, ClientMsg, RoomId, ServerMsg, PROTOCOL_VERSION};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::measure::{Counters, Histogram};

/// Which server the fleet talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// natter's JSON protocol (hello, join_channel, send).
    Natter,
    /// The ceiling server: first frame is the room, then raw text is relayed.
    Ceiling,
    /// socket.io v4 (Engine.IO 4 over a WebSocket): `join` and `msg` events, as the
    /// socket.io and Flask-SocketIO peers speak it.
    SocketIo,
}

/// State shared by the publisher and every reader.
pub struct Shared {
    /// The generator's clock origin: scheduled times are nanoseconds since this.
    pub t0: Instant,
    /// The step being measured; messages of other steps are ignored.
    pub step: std::sync::atomic::AtomicU64,
    /// Latencies of the current step.
    pub latency: Histogram,
    /// Counters of the current step.
    pub counters: Counters,
}

impl Shared {
    /// Fresh state.
    pub fn new() -> Arc<Self> {
        Arc::new(Shared {
            t0: Instant::now(),
            step: 0.into(),
            latency: Histogram::default(),
            counters: Counters::default(),
        })
    }
}

/// Whether members also type and mark messages read (natter only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attention {
    /// Members only send and receive messages.
    Off,
    /// Members report what they read and say they are typing, as people do.
    Active,
}

/// How often a reading member tells the server what it has read, while messages come
/// (the web client gathers read positions this long).
pub const READ_REPORT_EVERY: Duration = Duration::from_secs(1);

/// How often every member says it is typing (the client repeats `typing` every 3 s
/// while someone types; here everyone always is).
pub const TYPING_EVERY: Duration = Duration::from_secs(3);

/// One connected client.
pub struct Member {
    /// Frames to send (its writer task feeds and flushes them).
    outbound: mpsc::Sender<Message>,
    /// natter's id of its room (the ceiling uses names only).
    room_id: RoomId,
}

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The fleet: `rooms × members` clients.
pub struct Fleet {
    /// Clients in room-major order: room r's members are `r*members .. (r+1)*members`.
    pub members: Vec<Member>,
    /// Members per room.
    pub per_room: usize,
    /// How the fleet speaks.
    pub protocol: Protocol,
}

/// The next text frame during setup (other frames skipped); fails after a minute of
/// silence or when the connection closes.
async fn next_text(ws: &mut Ws) -> Result<tokio_tungstenite::tungstenite::Utf8Bytes> {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(60), ws.next())
            .await
            .context("server went quiet during setup")?
            .context("connection closed during setup")??;
        if let Message::Text(text) = frame {
            return Ok(text);
        }
    }
}

async fn next_server_msg(ws: &mut Ws) -> Result<ServerMsg> {
    Ok(serde_json::from_str(next_text(ws).await?.as_str())?)
}

/// Skips frames until a text frame starting with `prefix` (socket.io setup).
async fn next_text_starting(ws: &mut Ws, prefix: &str) -> Result<()> {
    while !next_text(ws).await?.as_str().starts_with(prefix) {}
    Ok(())
}

async fn send_msg(ws: &mut Ws, msg: ClientMsg) -> Result<()> {
    ws.send(Message::text(ClientFrame::from(msg).to_json()))
        .await?;
    Ok(())
}

/// Creates channels `r0..r{rooms}` on a natter server (one admin connection).
pub async fn create_natter_rooms(addr: SocketAddr, rooms: usize) -> Result<()> {
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws")).await?;
    send_msg(
        &mut ws,
        ClientMsg::Hello {
            version: PROTOCOL_VERSION,
            name: "bench-admin".into(),
            credentials: None,
            resume: vec![],
        },
    )
    .await?;
    for room in 0..rooms {
        send_msg(
            &mut ws,
            ClientMsg::CreateChannel {
                name: format!("r{room}"),
                delete_when_empty: false,
            },
        )
        .await?;
    }
    let mut created = 0;
    while created < rooms {
        match next_server_msg(&mut ws).await? {
            ServerMsg::Joined { .. } => created += 1,
            ServerMsg::Error { message, .. } => bail!("creating rooms: {message}"),
            _ => {}
        }
    }
    let _ = ws.close(None).await;
    Ok(())
}

/// Connects one member and joins its room; returns the socket and natter's room id.
/// natter members are named `b{index}`.
pub async fn join(
    addr: SocketAddr,
    protocol: Protocol,
    index: usize,
    room: usize,
) -> Result<(Ws, RoomId)> {
    let path = match protocol {
        Protocol::SocketIo => "socket.io/?EIO=4&transport=websocket",
        Protocol::Natter | Protocol::Ceiling => "ws",
    };
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/{path}")).await?;
    match protocol {
        Protocol::Ceiling => {
            ws.send(Message::text(format!("r{room}"))).await?;
            Ok((ws, RoomId(room as i64)))
        }
        Protocol::SocketIo => {
            // Engine.IO "open" (0{…}), then connect to the default namespace (40), then
            // join with an acknowledgement (420[…] answered by 430[…]).
            next_text_starting(&mut ws, "0").await?;
            ws.send(Message::text("40")).await?;
            next_text_starting(&mut ws, "40").await?;
            ws.send(Message::text(format!(r#"420["join","r{room}"]"#)))
                .await?;
            next_text_starting(&mut ws, "430").await?;
            Ok((ws, RoomId(room as i64)))
        }
        Protocol::Natter => {
            send_msg(
                &mut ws,
                ClientMsg::Hello {
                    version: PROTOCOL_VERSION,
                    name: format!("b{index}"),
                    credentials: None,
                    resume: vec![],
                },
            )
            .await?;
            send_msg(
                &mut ws,
                ClientMsg::JoinChannel {
                    name: format!("r{room}"),
                },
            )
            .await?;
            loop {
                match next_server_msg(&mut ws).await? {
                    ServerMsg::Joined { room, .. } => return Ok((ws, room.id)),
                    ServerMsg::Error { message, .. } => bail!("member {index}: {message}"),
                    _ => {}
                }
            }
        }
    }
}

impl Fleet {
    /// Connects `rooms × per_room` clients, `parallel` at a time. Returns the fleet and
    /// how long connecting took.
    pub async fn connect(
        addrs: &[SocketAddr],
        protocol: Protocol,
        rooms: usize,
        per_room: usize,
        shared: Arc<Shared>,
        attention: Attention,
    ) -> Result<(Fleet, Duration)> {
        if protocol == Protocol::Natter {
            create_natter_rooms(addrs[0], rooms).await?;
        }
        let started = Instant::now();
        let total = rooms * per_room;
        let mut members = Vec::with_capacity(total);
        let parallel = 200;
        for batch_start in (0..total).step_by(parallel) {
            let batch: Vec<_> = (batch_start..(batch_start + parallel).min(total))
                // Member i connects to node i mod nodes: every room spans the nodes.
                .map(|i| tokio::spawn(join(addrs[i % addrs.len()], protocol, i, i / per_room)))
                .collect();
            for handle in batch {
                let (ws, room_id) = handle.await??;
                let member = spawn_member(ws, room_id, protocol, shared.clone(), attention);
                members.push(member);
            }
        }
        Ok((
            Fleet {
                members,
                per_room,
                protocol,
            },
            started.elapsed(),
        ))
    }

    /// Rooms in the fleet.
    pub fn rooms(&self) -> usize {
        self.members.len() / self.per_room.max(1)
    }

    /// Publishes `rate` messages per second for `duration`, open loop: message k is
    /// due at `start + k/rate` whatever happened to earlier ones. Senders rotate over
    /// rooms first, then members.
    pub async fn publish(&self, shared: &Shared, step: u64, rate: f64, duration: Duration) {
        let total = (rate * duration.as_secs_f64()).round() as u64;
        let rooms = self.rooms() as u64;
        let per_room = self.per_room as u64;
        let start = Instant::now();
        for k in 0..total {
            let due = start + Duration::from_secs_f64(k as f64 / rate);
            if due > Instant::now() {
                tokio::time::sleep_until(due.into()).await;
            }
            let room = k % rooms;
            let member = (k / rooms) % per_room;
            let index = (room * per_room + member) as usize;
            let sender = &self.members[index];
            let scheduled = due.duration_since(shared.t0).as_nanos();
            let text =
                format!("{step} {index} {k} {scheduled} lorem ipsum dolor sit amet, consectetur");
            let frame = match self.protocol {
                Protocol::Ceiling => text,
                Protocol::SocketIo => format!(r#"42["msg","{text}"]"#),
                Protocol::Natter => format!(
                    r#"{{"type":"send","room":{},"client_id":"s{step}-{k}","text":"{text}"}}"#,
                    sender.room_id.0
                ),
            };
            match sender.outbound.try_send(Message::text(frame)) {
                Ok(()) => shared.counters.sent.fetch_add(1, Ordering::Relaxed),
                Err(_) => shared.counters.not_sent.fetch_add(1, Ordering::Relaxed),
            };
        }
    }
}

impl Fleet {
    /// Sends message `n` of a stream of 3.9 KB filler messages from member `index` to its
    /// room. Readers ignore them (the text is not a measured payload); they exist to
    /// fill the buffers of a client that never reads.
    pub fn send_filler(&self, index: usize, n: u64) {
        let text = "x".repeat(3900);
        let member = &self.members[index];
        let frame = match self.protocol {
            Protocol::Ceiling => text,
            Protocol::SocketIo => format!(r#"42["msg","{text}"]"#),
            Protocol::Natter => format!(
                r#"{{"type":"send","room":{},"client_id":"filler-{n}","text":"{text}"}}"#,
                member.room_id.0
            ),
        };
        let _ = member.outbound.try_send(Message::text(frame));
    }
}

/// Writes queued frames as natter's server does: feed everything waiting, flush once.
/// Ends when the queue closes or the socket fails.
pub async fn write_queued<S>(mut sink: S, mut queue: mpsc::Receiver<Message>)
where
    S: futures_util::Sink<Message> + Unpin,
{
    while let Some(first) = queue.recv().await {
        if sink.feed(first).await.is_err() {
            return;
        }
        while let Ok(more) = queue.try_recv() {
            if sink.feed(more).await.is_err() {
                return;
            }
        }
        if sink.flush().await.is_err() {
            return;
        }
    }
}

/// Starts a member's writer and reader tasks (and, with attention, the task that
/// reports reading and typing).
fn spawn_member(
    ws: Ws,
    room_id: RoomId,
    protocol: Protocol,
    shared: Arc<Shared>,
    attention: Attention,
) -> Member {
    let (sink, mut stream) = ws.split();
    let (outbound, queue) = mpsc::channel::<Message>(256);
    tokio::spawn(write_queued(sink, queue));
    let pong = outbound.clone();
    // The newest seq received, for the read reports.
    let newest_seq = Arc::new(AtomicU64::new(0));
    if attention == Attention::Active && protocol == Protocol::Natter {
        tokio::spawn(read_and_type(outbound.clone(), room_id, newest_seq.clone()));
    }
    tokio::spawn(async move {
        // Per sender: the step and newest message number seen (duplicates, order).
        let mut newest: HashMap<u64, (u64, u64)> = HashMap::new();
        while let Some(Ok(frame)) = stream.next().await {
            let Message::Text(text) = frame else { continue };
            let payload = match protocol {
                Protocol::Ceiling => Some(text.as_str()),
                Protocol::Natter => {
                    if let Some(seq) = natter_seq(text.as_str()) {
                        newest_seq.fetch_max(seq, Ordering::Relaxed);
                    }
                    natter_payload(text.as_str())
                }
                Protocol::SocketIo => {
                    // Engine.IO 4: the server pings ("2"), the client answers ("3").
                    if text.as_str() == "2" {
                        let _ = pong.try_send(Message::text("3"));
                    }
                    socketio_payload(text.as_str())
                }
            };
            if let Some(payload) = payload {
                record(&shared, payload, &mut newest);
            }
        }
    });
    Member { outbound, room_id }
}

/// A member's reading and typing: every [`READ_REPORT_EVERY`], `mark_read` up to the
/// newest seq received if it moved; every [`TYPING_EVERY`], `typing`. Each member starts
/// at its own moment, so the fleet's signals spread out as people's do. Ends with the
/// member's connection.
async fn read_and_type(outbound: mpsc::Sender<Message>, room: RoomId, newest_seq: Arc<AtomicU64>) {
    // A random start (std's randomly keyed hasher is random enough here).
    let random = {
        use std::hash::{BuildHasher, Hasher};
        std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish()
    };
    let offset = random % TYPING_EVERY.as_millis() as u64;
    tokio::time::sleep(Duration::from_millis(offset)).await;
    let mut reports = tokio::time::interval(READ_REPORT_EVERY);
    let per_typing = (TYPING_EVERY.as_millis() / READ_REPORT_EVERY.as_millis()).max(1) as u64;
    let mut reported = 0;
    for tick in 0u64.. {
        reports.tick().await;
        let mut frames = Vec::new();
        let newest = newest_seq.load(Ordering::Relaxed);
        if newest > reported {
            reported = newest;
            frames.push(ClientMsg::MarkRead { room, seq: newest });
        }
        if tick % per_typing == 0 {
            frames.push(ClientMsg::Typing { room, typing: true });
        }
        for msg in frames {
            if outbound.is_closed() {
                return;
            }
            // A full queue drops the signal, as a busy client would skip one.
            let _ = outbound.try_send(Message::text(ClientFrame::from(msg).to_json()));
        }
    }
}

/// The seq of a natter `message` frame, found without a full JSON parse.
fn natter_seq(frame: &str) -> Option<u64> {
    if !frame.starts_with(r#"{"type":"message""#) {
        return None;
    }
    let start = frame.find(r#""seq":"#)? + 6;
    let digits = frame[start..].find(|c: char| !c.is_ascii_digit())?;
    frame[start..start + digits].parse().ok()
}

/// The text of a natter `message` frame, found without a full JSON parse (the
/// generator must not be the bottleneck).
fn natter_payload(frame: &str) -> Option<&str> {
    if !frame.starts_with(r#"{"type":"message""#) {
        return None;
    }
    let start = frame.find(r#""text":""#)? + 8;
    let len = frame[start..].find('"')?;
    Some(&frame[start..start + len])
}

/// The text of a socket.io `msg` event frame (`42["msg","…"]`).
fn socketio_payload(frame: &str) -> Option<&str> {
    frame.strip_prefix(r#"42["msg",""#)?.strip_suffix(r#""]"#)
}

fn record(shared: &Shared, payload: &str, newest: &mut HashMap<u64, (u64, u64)>) {
    let mut fields = payload.split(' ');
    let (Some(step), Some(sender), Some(n), Some(scheduled)) = (
        fields.next().and_then(|f| f.parse::<u64>().ok()),
        fields.next().and_then(|f| f.parse::<u64>().ok()),
        fields.next().and_then(|f| f.parse::<u64>().ok()),
        fields.next().and_then(|f| f.parse::<u64>().ok()),
    ) else {
        return;
    };
    if step != shared.step.load(Ordering::Relaxed) {
        return;
    }
    let now = shared.t0.elapsed();
    shared
        .latency
        .record(now.saturating_sub(Duration::from_nanos(scheduled)));
    let counters = &shared.counters;
    counters.received.fetch_add(1, Ordering::Relaxed);
    match newest.get(&sender) {
        Some(&(last_step, last)) if last_step == step && last == n => {
            counters.duplicates.fetch_add(1, Ordering::Relaxed);
        }
        Some(&(last_step, last)) if last_step == step && last > n => {
            counters.out_of_order.fetch_add(1, Ordering::Relaxed);
        }
        _ => {
            newest.insert(sender, (step, n));
        }
    }
}

/// Watches natter's presence frames on a connection of its own and records, for each
/// member whose name is `b{index}` with `index` in `started`, the time from the start of
/// its connect to its `online` announcement.
pub async fn watch_presence(
    addr: SocketAddr,
    started: Arc<std::sync::Mutex<HashMap<String, Instant>>>,
    latency: Arc<Histogram>,
) -> Result<tokio::task::JoinHandle<()>> {
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws")).await?;
    send_msg(
        &mut ws,
        ClientMsg::Hello {
            version: PROTOCOL_VERSION,
            name: "presence-watcher".into(),
            credentials: None,
            resume: vec![],
        },
    )
    .await?;
    Ok(tokio::spawn(async move {
        while let Some(Ok(frame)) = ws.next().await {
            let Message::Text(text) = frame else { continue };
            if !text.as_str().starts_with(r#"{"type":"presence""#) {
                continue;
            }
            let Ok(ServerMsg::Presence { online, .. }) = serde_json::from_str(text.as_str()) else {
                continue;
            };
            let now = Instant::now();
            let Ok(mut started) = started.lock() else {
                return;
            };
            for user in online {
                if let Some(at) = started.remove(&user.name) {
                    latency.record(now - at);
                }
            }
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_seq_of_a_message_frame() {
        let frame =
            r#"{"type":"message","message":{"room":3,"seq":41,"sender":{"id":"u","name":"n"}}}"#;
        assert_eq!(natter_seq(frame), Some(41));
        assert_eq!(natter_seq(r#"{"type":"typing","room":3}"#), None);
    }

    #[test]
    fn finds_the_text_of_a_message_frame() {
        let frame = r#"{"type":"message","message":{"room":1,"seq":4,"sender":{"id":"a","name":"b"},"ts":1,"kind":"text","text":"1 2 3 4 lorem"}}"#;
        assert_eq!(natter_payload(frame), Some("1 2 3 4 lorem"));
        assert_eq!(natter_payload(r#"{"type":"ack","client_id":"x"}"#), None);
        assert_eq!(
            socketio_payload(r#"42["msg","1 2 3 4 lorem"]"#),
            Some("1 2 3 4 lorem")
        );
        assert_eq!(socketio_payload("2"), None);
    }

    #[test]
    fn counts_duplicates_and_reordering() {
        let shared = Shared::new();
        shared.step.store(7, Ordering::Relaxed);
        let mut newest = HashMap::new();
        for payload in [
            "7 1 10 0", "7 1 11 0", "7 1 11 0", "7 1 9 0", "6 1 12 0", "7 2 1 0",
        ] {
            record(&shared, payload, &mut newest);
        }
        let c = &shared.counters;
        assert_eq!(
            c.received.load(Ordering::Relaxed),
            5,
            "other steps are ignored"
        );
        assert_eq!(c.duplicates.load(Ordering::Relaxed), 1);
        assert_eq!(c.out_of_order.load(Ordering::Relaxed), 1);
        // The next step numbers its messages from 0 again: not duplicates.
        shared.step.store(8, Ordering::Relaxed);
        record(&shared, "8 1 0 0", &mut newest);
        record(&shared, "8 1 1 0", &mut newest);
        assert_eq!(c.duplicates.load(Ordering::Relaxed), 1);
        assert_eq!(c.out_of_order.load(Ordering::Relaxed), 1);
    }
}
