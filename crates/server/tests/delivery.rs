//! Delivery guarantees across restarts and crashes: gap-free resume, idempotent
//! resends, and "an ack means it is on disk" under SIGKILL.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use futures_util::{SinkExt, StreamExt};
use natter_protocol::*;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

/// What one self-reconnecting client ends up with.
#[derive(Debug, Default)]
struct ClientLog {
    /// Every text message seen in #general, by seq.
    messages: BTreeMap<Seq, String>,
    /// Every seq seen in #general (notices too), to know where to resume.
    seen: BTreeSet<Seq>,
    /// How many sessions (connections) it took.
    sessions: usize,
}

/// A client like the browser's: reconnects on its own, resumes from the newest seq it
/// holds without a gap, and resends unacknowledged messages with their client ids.
async fn resuming_client(
    addr: SocketAddr,
    name: String,
    to_send: Vec<String>,
    expect_total: usize,
) -> ClientLog {
    let mut log = ClientLog::default();
    let mut credentials: Option<GuestCredentials> = None;
    let mut unacked: BTreeMap<String, String> = to_send
        .iter()
        .enumerate()
        .map(|(i, text)| (format!("{name}-{i:03}"), text.clone()))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let Ok((mut ws, _)) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws")).await
        else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        log.sessions += 1;
        let resume: Vec<ResumePosition> = contiguous_end(&log.seen)
            .map(|seq| ResumePosition {
                room: RoomId(1),
                seq,
            })
            .into_iter()
            .collect();
        let hello = ClientFrame::from(ClientMsg::Hello {
            version: PROTOCOL_VERSION,
            name: name.clone(),
            credentials: credentials.clone(),
            resume,
        });
        if ws.send(Message::text(hello.to_json())).await.is_err() {
            continue;
        }
        let mut next_send = Instant::now();
        loop {
            // Send one unacknowledged message every 15 ms (the first ones may resend).
            let wait = next_send.saturating_duration_since(Instant::now());
            let frame = tokio::time::timeout(wait.max(Duration::from_millis(1)), ws.next()).await;
            match frame {
                Err(_) => {
                    if credentials.is_some() {
                        if let Some((client_id, text)) = unacked.iter().next() {
                            let send = ClientFrame::from(ClientMsg::Send {
                                room: RoomId(1),
                                client_id: client_id.clone(),
                                text: text.clone(),
                            });
                            if ws.send(Message::text(send.to_json())).await.is_err() {
                                break;
                            }
                        }
                    }
                    next_send = Instant::now() + Duration::from_millis(15);
                }
                Ok(Some(Ok(Message::Text(text)))) => {
                    let Ok(msg) = serde_json::from_str::<ServerMsg>(text.as_str()) else {
                        break;
                    };
                    match msg {
                        ServerMsg::Ready {
                            credentials: creds,
                            rooms,
                            ..
                        } => {
                            credentials = Some(creds);
                            if !rooms.iter().any(|r| r.id == RoomId(1)) {
                                let join = ClientFrame::from(ClientMsg::JoinChannel {
                                    name: DEFAULT_CHANNEL.into(),
                                });
                                if ws.send(Message::text(join.to_json())).await.is_err() {
                                    break;
                                }
                            }
                        }
                        ServerMsg::History { messages, .. } => record(&mut log, messages),
                        ServerMsg::Message { message } => record(&mut log, vec![message]),
                        ServerMsg::Ack { client_id, seq, .. } => {
                            if let Some(text) = unacked.remove(&client_id) {
                                log.messages.insert(seq, text);
                                log.seen.insert(seq);
                            }
                        }
                        _ => {}
                    }
                    if unacked.is_empty() && log.messages.len() == expect_total {
                        return log;
                    }
                }
                Ok(Some(Ok(_))) => {}
                Ok(Some(Err(_)) | None) => break,
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    log
}

fn record(log: &mut ClientLog, messages: Vec<ChatMessage>) {
    for m in messages.into_iter().filter(|m| m.room == RoomId(1)) {
        log.seen.insert(m.seq);
        if m.kind == MessageKind::Text {
            log.messages.insert(m.seq, m.text);
        }
    }
}

/// The newest seq reached from the oldest held without a gap: a live message that
/// raced ahead of a catch-up batch must not make the client skip what lies between.
fn contiguous_end(seen: &BTreeSet<Seq>) -> Option<Seq> {
    let mut iter = seen.iter();
    let mut end = *iter.next()?;
    for seq in iter {
        if *seq != end + 1 {
            break;
        }
        end = *seq;
    }
    Some(end)
}

#[tokio::test]
async fn clients_resume_after_a_restart_with_every_message_once_and_in_order() {
    let (_dir, db) = temp_db();
    let server = TestServer::start(&db).await;
    let addr = server.addr;
    const CLIENTS: usize = 3;
    const EACH: usize = 30;
    let total = CLIENTS * EACH;
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let texts = (0..EACH)
                .map(|i| format!("client {c} message {i}"))
                .collect();
            tokio::spawn(resuming_client(addr, format!("Client{c}"), texts, total))
        })
        .collect();
    // Let them chat, then restart the server under their feet.
    tokio::time::sleep(Duration::from_millis(200)).await;
    server.stop().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let server = TestServer::start_on(addr, &db).await;

    for task in tasks {
        let log = task.await.expect("client task");
        assert!(
            log.sessions >= 2,
            "the client reconnected on its own ({} sessions)",
            log.sessions
        );
        let texts: Vec<&String> = log.messages.values().collect();
        assert_eq!(texts.len(), total, "every message, exactly once");
        let mut unique = texts.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), total, "no message stored twice");
        // Each sender's messages appear in the order it sent them.
        for c in 0..CLIENTS {
            let own: Vec<usize> = texts
                .iter()
                .filter_map(|t| t.strip_prefix(&format!("client {c} message ")))
                .map(|i| i.parse().expect("index"))
                .collect();
            assert_eq!(
                own,
                (0..EACH).collect::<Vec<_>>(),
                "client {c}'s messages in order"
            );
        }
    }
    server.stop().await;
}

/// A natter-server process on a fixed port, for crash and signal tests.
struct ServerProcess {
    child: Child,
    addr: SocketAddr,
}

impl ServerProcess {
    fn spawn(addr: SocketAddr, db: &std::path::Path) -> ServerProcess {
        let child = Command::new(env!("CARGO_BIN_EXE_natter-server"))
            .env("NATTER_LISTEN", addr.to_string())
            .env("NATTER_DATABASE_URL", sqlite_url(db))
            .env("NATTER_STATIC_DIR", "does-not-exist")
            .env("NATTER_RATE_PER_CONNECTION", "100000")
            .env("NATTER_BURST_PER_CONNECTION", "100000")
            .env("NATTER_RATE_PER_IP", "100000")
            .env("NATTER_BURST_PER_IP", "100000")
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("server starts");
        ServerProcess { child, addr }
    }

    async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while tokio::net::TcpStream::connect(self.addr).await.is_err() {
            assert!(Instant::now() < deadline, "server never listened");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([format!("-{name}"), self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_addr() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr")
}

/// Sends a burst and collects acks until `stop_after` arrived, then returns what was
/// acknowledged (seq → text) and keeps the client for the caller.
async fn burst(
    client: &mut Client,
    round: usize,
    count: usize,
    stop_after: usize,
) -> HashMap<Seq, String> {
    for i in 0..count {
        client
            .send(ClientMsg::Send {
                room: RoomId(1),
                client_id: format!("r{round}-{i}"),
                text: format!("round {round} message {i}"),
            })
            .await;
    }
    let mut acked = HashMap::new();
    while acked.len() < stop_after {
        let (seq, id) = client
            .recv_until(|m| match m {
                ServerMsg::Ack { seq, client_id, .. } => Some((*seq, client_id.clone())),
                _ => None,
            })
            .await;
        let i: usize = id
            .rsplit('-')
            .next()
            .and_then(|i| i.parse().ok())
            .expect("index");
        acked.insert(seq, format!("round {round} message {i}"));
    }
    acked
}

/// Everything stored in #general, paged back from the newest.
async fn all_messages(client: &mut Client, newest: Seq) -> BTreeMap<Seq, String> {
    let mut all = BTreeMap::new();
    let mut before = newest + 1;
    loop {
        let (messages, more) = client.history_page(RoomId(1), before).await;
        for m in &messages {
            all.insert(m.seq, m.text.clone());
        }
        match messages.first() {
            Some(first) if more => before = first.seq,
            _ => return all,
        }
    }
}

#[tokio::test]
async fn acknowledged_messages_survive_sigkill_and_sigterm() {
    let (_dir, db) = temp_db();
    let addr = free_addr();
    let mut credentials = None;
    let mut acknowledged: HashMap<Seq, String> = HashMap::new();
    for round in 0..4 {
        let server = ServerProcess::spawn(addr, &db);
        server.wait_ready().await;
        let mut client = Client::connect(addr).await;
        client.hello("Crasher", credentials.clone(), vec![]).await;
        credentials = client.credentials.clone();
        if round == 0 {
            client.join_channel(DEFAULT_CHANNEL).await;
        }
        let got = burst(&mut client, round, 600, 150).await;
        acknowledged.extend(got);
        if round < 3 {
            // Crash in the middle of the burst: no shutdown, no flush, no goodbye.
            drop(server);
        } else {
            // SIGTERM: a graceful stop says 1001 and loses nothing acknowledged.
            server.signal("TERM");
            let code = loop {
                match client.next_raw(Duration::from_secs(10)).await {
                    Some(Message::Close(frame)) => break frame.map(|f| f.code),
                    Some(Message::Text(text)) => {
                        if let Ok(ServerMsg::Ack { seq, client_id, .. }) =
                            serde_json::from_str(text.as_str())
                        {
                            let i = client_id.rsplit('-').next().unwrap_or_default().to_string();
                            acknowledged.insert(seq, format!("round {round} message {i}"));
                        }
                    }
                    Some(_) => continue,
                    None => break None,
                }
            };
            assert_eq!(code, Some(CloseCode::Away));
            let mut server = server;
            let status = server.child.wait().expect("exits");
            assert!(status.success(), "graceful exit, got {status}");
        }
    }

    let server = ServerProcess::spawn(addr, &db);
    server.wait_ready().await;
    let mut client = Client::connect(addr).await;
    let histories = client.hello("Crasher", credentials, vec![]).await;
    let newest = histories
        .iter()
        .find_map(|h| match h {
            ServerMsg::History {
                room: RoomId(1),
                messages,
                ..
            } => messages.last().map(|m| m.seq),
            _ => None,
        })
        .expect("history of #general");
    let stored = all_messages(&mut client, newest).await;
    let lost: Vec<_> = acknowledged
        .iter()
        .filter(|(seq, text)| stored.get(seq) != Some(text))
        .collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged messages lost, e.g. {:?}",
        lost.len(),
        lost.first()
    );
    let seqs: Vec<Seq> = stored.keys().copied().collect();
    assert_eq!(
        seqs,
        (1..=newest).collect::<Vec<_>>(),
        "seqs stay gap-free across crashes"
    );
    println!(
        "{} acknowledged messages over 3 SIGKILLs and 1 SIGTERM: 0 lost",
        acknowledged.len()
    );
}
