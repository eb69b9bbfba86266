//! The `history` scenario: how long a page of 100 messages takes to read when the room
//! is full of changes — 1,000 messages, 1,000 edits and 10,000 reactions on the newest
//! 100 (20 emoji from each of 5 people on every one of them) — against the same page
//! of a room that was never changed.
//!
//! A page is read in its current state (edits applied, reactions ranked and counted
//! in the database), so this is the price of that read on the path a person scrolling
//! back, or joining, waits for. Measured over the WebSocket, request to answer, one
//! page at a time, on natter's default SQLite store.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use futures_util::{SinkExt, StreamExt};
use natter_protocol::{ClientFrame, ClientMsg, RoomId, Seq, MAX_REACTION_KINDS};
use tokio::sync::{mpsc, Notify};
use tokio_tungstenite::tungstenite::Message;

use crate::fleet::{join, Protocol};
use crate::measure::Histogram;
use crate::suite::{start, Bench, Server};

/// Messages in each room.
const MESSAGES: usize = 1000;
/// Messages of the changed room that get the edits and reactions (the newest page).
const CHANGED: usize = 100;
/// Edits per changed message (1,000 in all).
const EDITS_EACH: usize = 10;
/// People reacting, each with every one of the 20 emoji on every changed message.
const REACTORS: usize = 5;
/// Pages read per room.
const READS: usize = 200;

/// Page-read latencies of the two rooms.
#[derive(Debug, Clone, serde::Serialize)]
pub struct HistoryPages {
    /// Reactions stored in the changed room.
    pub reactions: usize,
    /// Edits stored in the changed room.
    pub edits: usize,
    /// The never-changed room: p50 and p99 in milliseconds.
    pub plain_ms: (f64, f64),
    /// The changed room: p50 and p99 in milliseconds.
    pub changed_ms: (f64, f64),
    /// Seconds it took to store the changes (through the WebSocket, acked).
    pub seed_secs: f64,
}

/// One seeding connection: frames go out through a channel; a reader counts acks and
/// hands over `history` frames (every other frame — the room's events — is drained so
/// the server never cuts a slow reader off).
struct Client {
    out: mpsc::UnboundedSender<Message>,
    acks: Arc<std::sync::atomic::AtomicUsize>,
    acked: Arc<Notify>,
    pages: mpsc::UnboundedReceiver<Instant>,
}

impl Client {
    async fn connect(addr: SocketAddr, index: usize, room: usize) -> Result<(Client, RoomId)> {
        let (ws, room_id) = join(addr, Protocol::Natter, 10_000 + index, room).await?;
        let (mut sink, mut stream) = ws.split();
        let (out, mut queue) = mpsc::unbounded_channel::<Message>();
        tokio::spawn(async move {
            while let Some(frame) = queue.recv().await {
                if sink.send(frame).await.is_err() {
                    return;
                }
            }
        });
        let acks = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let acked = Arc::new(Notify::new());
        let (page_tx, pages) = mpsc::unbounded_channel();
        let (count, notify) = (acks.clone(), acked.clone());
        tokio::spawn(async move {
            while let Some(Ok(frame)) = stream.next().await {
                let Message::Text(text) = frame else { continue };
                // Cheap checks first: most frames are the room's events.
                if text.starts_with(r#"{"type":"ack""#) {
                    count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    notify.notify_one();
                } else if text.starts_with(r#"{"type":"history""#) {
                    let _ = page_tx.send(Instant::now());
                } else if text.starts_with(r#"{"type":"error""#) {
                    eprintln!("history bench: {text}");
                }
            }
        });
        Ok((
            Client {
                out,
                acks,
                acked,
                pages,
            },
            room_id,
        ))
    }

    fn send(&self, msg: ClientMsg) -> Result<()> {
        self.out
            .send(Message::text(ClientFrame::from(msg).to_json()))
            .context("connection gone")
    }

    /// Waits until `n` acks in all have come.
    async fn acked(&self, n: usize) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(300);
        while self.acks.load(std::sync::atomic::Ordering::Relaxed) < n {
            if Instant::now() > deadline {
                bail!("history bench: acks stopped coming");
            }
            let _ = tokio::time::timeout(Duration::from_millis(200), self.acked.notified()).await;
        }
        Ok(())
    }

    /// Reads the newest page of `room` `READS` times; returns the latencies.
    async fn read_pages(&mut self, room: RoomId) -> Result<Histogram> {
        let latency = Histogram::default();
        for _ in 0..READS {
            let asked = Instant::now();
            self.send(ClientMsg::History {
                room,
                before: Seq::MAX,
                limit: natter_protocol::HISTORY_PAGE,
            })?;
            let answered = tokio::time::timeout(Duration::from_secs(30), self.pages.recv())
                .await
                .context("no history page within 30 s")?
                .context("connection closed")?;
            latency.record(answered.duration_since(asked));
        }
        Ok(latency)
    }
}

/// The emoji reactions are made with: 20 different ones.
fn emoji(i: usize) -> String {
    char::from_u32(0x1F600 + i as u32).map_or_else(String::new, String::from)
}

impl Bench {
    /// Runs the `history` scenario on natter (SQLite).
    pub async fn history_pages(&self) -> Result<HistoryPages> {
        let running = start(Server::Natter, &self.bins, self.addr, self.core).await?;
        let addr = running.addrs[0];
        crate::fleet::create_natter_rooms(addr, 2).await?;
        let (mut writer, plain) = Client::connect(addr, 0, 0).await?;
        let (writer_b, changed) = Client::connect(addr, 1, 1).await?;
        for i in 0..MESSAGES {
            for (client, room) in [(&writer, plain), (&writer_b, changed)] {
                client.send(ClientMsg::Send {
                    room,
                    client_id: format!("m{i}"),
                    text: format!("message {i}: some words of an ordinary length to read"),
                    attachments: Vec::new(),
                    reply_to: None,
                })?;
            }
        }
        writer.acked(MESSAGES).await?;
        writer_b.acked(MESSAGES).await?;
        // The newest 100 messages' seqs: the changed room held nothing else before.
        let first_changed = (MESSAGES - CHANGED) as Seq + 2; // seq 1 is the join notice
        let seeding = Instant::now();
        for round in 0..EDITS_EACH {
            for k in 0..CHANGED as Seq {
                writer_b.send(ClientMsg::Edit {
                    room: changed,
                    client_id: format!("e{round}-{k}"),
                    seq: first_changed + k,
                    text: format!("message edited {round} times"),
                })?;
            }
        }
        let edits = EDITS_EACH * CHANGED;
        writer_b.acked(MESSAGES + edits).await?;
        let mut reactors = Vec::with_capacity(REACTORS);
        for r in 0..REACTORS {
            reactors.push(Client::connect(addr, 100 + r, 1).await?.0);
        }
        for reactor in &reactors {
            for k in 0..CHANGED as Seq {
                for e in 0..MAX_REACTION_KINDS {
                    reactor.send(ClientMsg::React {
                        room: changed,
                        client_id: format!("r{k}-{e}"),
                        seq: first_changed + k,
                        emoji: emoji(e),
                    })?;
                }
            }
        }
        let each = CHANGED * MAX_REACTION_KINDS;
        for reactor in &reactors {
            reactor.acked(each).await?;
        }
        let seed_secs = seeding.elapsed().as_secs_f64();
        drop(reactors);
        let plain_latency = writer.read_pages(plain).await?;
        let mut reader = writer_b;
        let changed_latency = reader.read_pages(changed).await?;
        let ms = |h: &Histogram| {
            (
                h.quantile(0.5).as_secs_f64() * 1000.0,
                h.quantile(0.99).as_secs_f64() * 1000.0,
            )
        };
        drop(running);
        Ok(HistoryPages {
            reactions: each * REACTORS,
            edits,
            plain_ms: ms(&plain_latency),
            changed_ms: ms(&changed_latency),
            seed_secs,
        })
    }
}
