//! A self-reconnecting, resuming client like the browser's, for delivery tests.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use natter_protocol::*;
use tokio_tungstenite::tungstenite::Message;

/// What one self-reconnecting client ends up with.
#[derive(Debug, Default)]
pub struct ClientLog {
    /// Every text message seen in #general, by seq.
    pub messages: BTreeMap<Seq, String>,
    /// Every seq seen in #general (notices too), to know where to resume.
    pub seen: BTreeSet<Seq>,
    /// How many sessions (connections) it took.
    pub sessions: usize,
    /// Messages of #general that came twice or out of seq order within one connection,
    /// counting both `history` frames and live `message` frames (the server promises
    /// exactly once, in order, per connection: clients never de-duplicate).
    pub disorder: usize,
}

/// A client like the browser's: reconnects on its own (to the next of `addrs` each
/// time, as behind a load balancer), resumes from the newest seq it holds without a
/// gap, and resends unacknowledged messages with their client ids.
pub async fn resuming_client(
    addrs: Vec<SocketAddr>,
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
    let mut attempt = 0;
    while Instant::now() < deadline {
        let addr = addrs[attempt % addrs.len()];
        attempt += 1;
        let Ok((mut ws, _)) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws")).await
        else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        log.sessions += 1;
        // The newest seq of #general this connection was given (history or live).
        let mut last_given: Seq = 0;
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
        // A client that never completes gives up at the deadline (the test then fails
        // on what it is missing) rather than hanging.
        while Instant::now() < deadline {
            // Send one unacknowledged message every 15 ms (the first ones may resend).
            let wait = next_send.saturating_duration_since(Instant::now());
            let frame = tokio::time::timeout(wait.max(Duration::from_millis(1)), ws.next()).await;
            match frame {
                Err(_) => {
                    if credentials.is_some() {
                        if let Some((client_id, text)) = unacked.iter().next() {
                            let send = ClientFrame::from(ClientMsg::Send {
                                reply_to: None,
                                room: RoomId(1),
                                client_id: client_id.clone(),
                                text: text.clone(),
                                attachments: Vec::new(),
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
                            credentials = creds;
                            if !rooms.iter().any(|r| r.id == RoomId(1)) {
                                let join = ClientFrame::from(ClientMsg::JoinChannel {
                                    name: DEFAULT_CHANNEL.into(),
                                });
                                if ws.send(Message::text(join.to_json())).await.is_err() {
                                    break;
                                }
                            }
                        }
                        ServerMsg::History { messages, .. } => {
                            for message in &messages {
                                check_order(&mut log, &mut last_given, message);
                            }
                            record(&mut log, messages)
                        }
                        ServerMsg::Message { message } => {
                            check_order(&mut log, &mut last_given, &message);
                            record(&mut log, vec![message])
                        }
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

/// Counts a message of #general that is not newer than the newest this connection
/// was given.
fn check_order(log: &mut ClientLog, last_given: &mut Seq, message: &ChatMessage) {
    if message.room == RoomId(1) {
        if message.seq <= *last_given {
            log.disorder += 1;
        }
        *last_given = message.seq;
    }
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
pub fn contiguous_end(seen: &BTreeSet<Seq>) -> Option<Seq> {
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

/// Every client must end with every message of the room exactly once, each sender's in
/// the order sent, and no connection given a message twice or out of order.
pub fn check_logs(logs: &[ClientLog], clients: usize, each: usize) {
    let total = clients * each;
    for (c, log) in logs.iter().enumerate() {
        let texts: Vec<&String> = log.messages.values().collect();
        assert_eq!(
            texts.len(),
            total,
            "client {c}: every message, exactly once"
        );
        let mut unique = texts.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), total, "client {c}: no message stored twice");
        for sender in 0..clients {
            let own: Vec<usize> = texts
                .iter()
                .filter_map(|t| t.strip_prefix(&format!("client {sender} message ")))
                .map(|i| i.parse().expect("index"))
                .collect();
            assert_eq!(
                own,
                (0..each).collect::<Vec<_>>(),
                "client {c} sees client {sender}'s messages in order"
            );
        }
        assert_eq!(
            log.disorder, 0,
            "client {c}: every connection got each message once, in seq order"
        );
    }
}

/// `clients` resuming clients chatting in #general, client `i` starting on node
/// `i % nodes` and moving to the next node whenever its connection drops.
pub fn chatters(
    addrs: &[SocketAddr],
    clients: usize,
    each: usize,
) -> Vec<tokio::task::JoinHandle<ClientLog>> {
    (0..clients)
        .map(|c| {
            let mut rotated = addrs.to_vec();
            rotated.rotate_left(c % addrs.len());
            let texts = (0..each)
                .map(|i| format!("client {c} message {i}"))
                .collect();
            tokio::spawn(resuming_client(
                rotated,
                format!("Chatter{c}"),
                texts,
                clients * each,
            ))
        })
        .collect()
}
