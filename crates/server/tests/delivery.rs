//! Delivery guarantees across restarts and crashes: gap-free resume, idempotent
//! resends, and "an ack means it is on disk" under SIGKILL.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use common::process::{free_addr, ServerProcess};
use common::resuming::{chatters, check_logs};
use common::*;
use natter_protocol::*;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn clients_resume_after_a_restart_with_every_message_once_and_in_order() {
    let (_dir, db) = temp_db();
    let server = TestServer::start(&db).await;
    let addr = server.addr;
    const CLIENTS: usize = 3;
    const EACH: usize = 30;
    let tasks = chatters(&[addr], CLIENTS, EACH);
    // Let them chat, then restart the server under their feet.
    tokio::time::sleep(Duration::from_millis(200)).await;
    server.stop().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let server = TestServer::start_on(addr, &db).await;

    let mut logs = Vec::new();
    for task in tasks {
        let log = task.await.expect("client task");
        assert!(
            log.sessions >= 2,
            "the client reconnected on its own ({} sessions)",
            log.sessions
        );
        logs.push(log);
    }
    check_logs(&logs, CLIENTS, EACH);
    server.stop().await;
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
                reply_to: None,
                room: RoomId(1),
                client_id: format!("r{round}-{i}"),
                text: format!("round {round} message {i}"),
                attachments: Vec::new(),
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
