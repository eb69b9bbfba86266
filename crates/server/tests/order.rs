//! The connection core's promises, tried at their edges: every connection is given a
//! room's messages once each and in seq order (across snapshot, joins, resumes and live
//! traffic), and a peer that stops reading is cut off without slowing anyone else.

mod common;

use std::time::{Duration, Instant};

use common::*;
use natter_protocol::*;
use natter_server::Config;
use tokio_tungstenite::tungstenite::Message;

/// What one connection was given of a room, checked as it arrives.
#[derive(Debug, Default)]
struct Given {
    /// The newest seq given (history or live).
    newest: Seq,
    /// Messages given that were not newer than the newest before them.
    disorder: usize,
    /// Messages given in all.
    messages: usize,
}

impl Given {
    fn take(&mut self, room: RoomId, message: &ChatMessage) {
        if message.room != room {
            return;
        }
        self.messages += 1;
        if message.seq <= self.newest {
            self.disorder += 1;
        }
        self.newest = self.newest.max(message.seq);
    }
}

/// Reads `client`'s frames until `until`, checking `room`'s messages in `history` and
/// `message` frames alike. False when the connection ended.
async fn watch(client: &mut Client, room: RoomId, until: Instant, given: &mut Given) -> bool {
    loop {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return true;
        }
        let Some(frame) = client.next_raw(left).await else {
            return Instant::now() >= until;
        };
        let Message::Text(text) = frame else { continue };
        match serde_json::from_str::<ServerMsg>(text.as_str()).expect("server frames parse") {
            ServerMsg::History { messages, .. } => {
                messages.iter().for_each(|m| given.take(room, m));
            }
            ServerMsg::Message { message } => given.take(room, &message),
            _ => {}
        }
    }
}

#[tokio::test]
async fn resumers_and_joiners_are_given_each_message_once_in_order() {
    let (_dir, db) = temp_db();
    let server = TestServer::start(&db).await;
    let addr = server.addr;
    let general = RoomId(1);
    let run_for = Duration::from_millis(2500);
    let start = Instant::now();
    let end = start + run_for;

    // Two people post without pause for the whole run.
    let mut senders = Vec::new();
    for s in 0..2 {
        let mut sender = server.user(&format!("Sender{s}")).await;
        sender.join_channel(DEFAULT_CHANNEL).await;
        senders.push(tokio::spawn(async move {
            let mut i = 0;
            while Instant::now() < end {
                sender
                    .send(ClientMsg::Send {
                        reply_to: None,
                        room: general,
                        client_id: format!("s{s}-{i}"),
                        text: format!("sender {s} message {i}"),
                        attachments: Vec::new(),
                    })
                    .await;
                i += 1;
                // Read what comes back now and then, so the sender is never cut off.
                let _ = sender.next_raw(Duration::from_millis(2)).await;
            }
        }));
    }

    // Four people reconnect every few dozen milliseconds, resuming from the newest
    // message their last connection was given.
    let mut resumers = Vec::new();
    for r in 0..4u64 {
        resumers.push(tokio::spawn(async move {
            let mut client = Client::connect(addr).await;
            client.hello(&format!("Resumer{r}"), None, vec![]).await;
            let credentials = client.credentials.clone();
            let mut given = Given::default();
            client
                .send(ClientMsg::JoinChannel {
                    name: DEFAULT_CHANNEL.into(),
                })
                .await;
            let (mut connections, mut disorder, mut messages) = (0, 0, 0);
            let mut turn = 0u64;
            loop {
                turn += 1;
                let stay = Duration::from_millis(20 + (r * 31 + turn * 17) % 90);
                let until = (Instant::now() + stay).min(end);
                watch(&mut client, general, until, &mut given).await;
                connections += 1;
                disorder += given.disorder;
                messages += given.messages;
                if Instant::now() >= end {
                    return (connections, disorder, messages);
                }
                let resume = vec![ResumePosition {
                    room: general,
                    seq: given.newest,
                }];
                client.close().await;
                client = Client::connect(addr).await;
                client
                    .send(ClientMsg::Hello {
                        version: PROTOCOL_VERSION,
                        name: format!("Resumer{r}"),
                        credentials: credentials.clone(),
                        resume,
                    })
                    .await;
                given = Given {
                    newest: 0,
                    ..Given::default()
                };
            }
        }));
    }

    // Three newcomers join #general while it is busy.
    let mut joiners = Vec::new();
    for j in 0..3u64 {
        joiners.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300 + j * 500)).await;
            let mut client = Client::connect(addr).await;
            client.hello(&format!("Joiner{j}"), None, vec![]).await;
            client
                .send(ClientMsg::JoinChannel {
                    name: DEFAULT_CHANNEL.into(),
                })
                .await;
            let mut given = Given::default();
            watch(&mut client, general, end, &mut given).await;
            (1, given.disorder, given.messages)
        }));
    }

    for sender in senders {
        sender.await.expect("sender");
    }
    let (mut connections, mut disorder, mut messages) = (0, 0, 0);
    for task in resumers.into_iter().chain(joiners) {
        let (c, d, m) = task.await.expect("reader");
        connections += c;
        disorder += d;
        messages += m;
    }
    assert!(
        connections > 40 && messages > 1000,
        "the run exercised resumes ({connections} connections, {messages} messages given)"
    );
    assert_eq!(
        disorder, 0,
        "no connection was given a message twice or out of order ({connections} connections)"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_peer_that_stops_reading_is_cut_off_while_the_others_carry_on() {
    let (_dir, db) = temp_db();
    let mut config = Config::for_tests(sqlite_url(&db));
    const WRITE_TIMEOUT: Duration = Duration::from_millis(500);
    config.write_timeout_ms = WRITE_TIMEOUT.as_millis() as u64;
    // Only the write deadline may cut it off here: no heartbeat, a queue that holds
    // everything.
    config.heartbeat_ms = 600_000;
    config.outbound_queue = 1_000_000;
    config.outbound_queue_bytes = 1 << 30;
    let grace = Duration::from_millis(config.presence_grace_ms);
    let server = TestServer::start_with(config).await;
    let general = RoomId(1);

    let mut stalled = Client::connect_small_window(server.addr).await;
    stalled.hello("Stalled", None, vec![]).await;
    stalled.join_channel(DEFAULT_CHANNEL).await;
    let stalled_id = stalled.id();
    let mut watcher = server.user("Watcher").await;
    watcher.join_channel(DEFAULT_CHANNEL).await;
    let mut poster = server.user("Poster").await;
    poster.join_channel(DEFAULT_CHANNEL).await;

    // The watcher reads all along: it must get every message, and see the stalled
    // peer go.
    const MESSAGES: usize = 4000;
    let posted = Instant::now();
    let watching = tokio::spawn(async move {
        let mut received = 0;
        let mut offline_after = None;
        let deadline = Instant::now() + Duration::from_secs(30);
        while (received < MESSAGES || offline_after.is_none()) && Instant::now() < deadline {
            match watcher.recv().await {
                ServerMsg::Message { message } if message.kind == MessageKind::Text => {
                    received += 1
                }
                ServerMsg::Presence { offline, .. } if offline.contains(&stalled_id) => {
                    offline_after = Some(posted.elapsed());
                }
                _ => {}
            }
        }
        (received, offline_after)
    });
    // From here on nobody reads `stalled`'s socket: its TCP window closes after a few
    // KiB, and the server's buffers after a few MiB.
    let text = "x".repeat(3900);
    for i in 0..MESSAGES {
        poster
            .send(ClientMsg::Send {
                reply_to: None,
                room: general,
                client_id: format!("p{i}"),
                text: text.clone(),
                attachments: Vec::new(),
            })
            .await;
        let _ = poster.next_raw(Duration::from_micros(100)).await;
    }
    let (received, offline_after) = watching.await.expect("watcher");
    assert_eq!(received, MESSAGES, "the others' deliveries carried on");
    let offline_after = offline_after.expect("the stalled peer was shown offline");
    println!(
        "{MESSAGES} messages of {} B: the stalled peer went offline {offline_after:?} after posting began (write timeout {WRITE_TIMEOUT:?}, grace {grace:?})",
        text.len()
    );
    drop(stalled);
    server.stop().await;
}

#[tokio::test]
async fn a_user_in_5000_rooms_on_a_server_with_20000_channels_connects() {
    use natter_server::store::sqlite::SqliteStore;
    use natter_server::store::{NewMessage, Store, UserRecord};

    const ROOMS: usize = 5_000;
    const WITH_NEWS: usize = 2_000;
    const CHANNELS: usize = 20_000;
    let (_dir, db) = temp_db();
    // Built straight in the database: through the protocol this would take minutes.
    let (user, secret, first_room) = {
        let store = SqliteStore::open(&sqlite_url(&db)).await.expect("store");
        let secret = "s".repeat(32);
        let user = UserRecord {
            id: UserId("crowded".into()),
            secret_hash: natter_server::secret::digest(&secret),
            name: "Crowded".into(),
        };
        store.create_user(&user).await.expect("user");
        let mut rooms = Vec::with_capacity(ROOMS);
        for i in 0..ROOMS {
            let room = store
                .create_code_room(&format!("R{i:07}"), false)
                .await
                .expect("room");
            store.add_member(room.id, &user.id).await.expect("member");
            rooms.push(room.id);
        }
        for i in 0..CHANNELS {
            store
                .create_channel(&format!("channel-{i}"), false)
                .await
                .expect("channel");
        }
        // Some rooms have something the user has not seen; the rest have nothing.
        let news = rooms[..WITH_NEWS]
            .iter()
            .map(|room| NewMessage {
                reply_to: None,
                mentions: Vec::new(),
                room: *room,
                sender: UserSummary {
                    id: user.id.clone(),
                    name: user.name.clone(),
                },
                ts: 1,
                kind: MessageKind::Text,
                text: "news".into(),
                client_id: None,
                attachments: Vec::new(),
            })
            .collect();
        store.append(news).await.expect("messages");
        (user, secret, rooms[0])
    };
    // The default outbound queue: 1,024 frames, fewer than the rooms.
    let server = TestServer::start(&db).await;
    let mut client = Client::connect(server.addr).await;
    client
        .send(ClientMsg::Hello {
            version: PROTOCOL_VERSION,
            name: "Crowded".into(),
            credentials: Some(GuestCredentials {
                user_id: user.id.clone(),
                secret,
            }),
            resume: vec![],
        })
        .await;
    // Something to do right after `hello`: its ack comes with the snapshot.
    client
        .send(ClientMsg::Send {
            reply_to: None,
            room: first_room,
            client_id: "after-hello".into(),
            text: "hello".into(),
            attachments: Vec::new(),
        })
        .await;
    let (mut rooms, mut channels, mut histories, mut acked) = (0, 0, 0, None);
    loop {
        let done = histories >= WITH_NEWS && channels > CHANNELS && acked.is_some();
        // Once everything came, a moment of quiet shows nothing else is on its way.
        let wait = if done {
            Duration::from_millis(500)
        } else {
            Duration::from_secs(30)
        };
        match client.next_raw(wait).await {
            Some(Message::Text(text)) => match serde_json::from_str(text.as_str()) {
                Ok(ServerMsg::Ready { rooms: r, .. }) => rooms = r.len(),
                Ok(ServerMsg::Channels { channels: c }) => channels += c.len(),
                Ok(ServerMsg::History { room, messages, .. }) => {
                    // (The first room's may also bring the message sent after hello.)
                    let news = messages.iter().filter(|m| m.text == "news").count();
                    assert_eq!(news, 1, "a history with what is new in {room:?}");
                    histories += 1;
                }
                Ok(ServerMsg::Ack { seq, .. }) => acked = Some(seq),
                Ok(ServerMsg::Error { message, .. }) => panic!("refused: {message}"),
                Ok(_) => {}
                Err(err) => panic!("server frames parse: {err}"),
            },
            Some(Message::Close(close)) => panic!("closed during the snapshot: {close:?}"),
            Some(_) => {}
            None if done => break,
            None => panic!(
                "the snapshot stalled: {rooms} rooms, {channels} channels, {histories} histories"
            ),
        }
    }
    assert_eq!(rooms, ROOMS);
    // (#general, made by the first migration, is a channel too.)
    assert_eq!(channels, CHANNELS + 1);
    // Rooms with nothing new cost nothing: no history frame for them.
    assert_eq!(
        histories, WITH_NEWS,
        "one history per room with news, none for the rest"
    );
    assert_eq!(
        acked,
        Some(2),
        "the connection worked meanwhile (after the news)"
    );
    server.stop().await;
}
