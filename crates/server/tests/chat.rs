//! End-to-end behaviour of the server over real WebSockets.
//!
//! Why one long file: each behaviour is one short test over the same real-server
//! helpers (`common/`).

mod common;

use std::time::Duration;

use common::*;
use natter_protocol::*;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn two_users_chat_in_a_channel_and_see_each_message_once() {
    let (_dir, db) = temp_db();
    let server = TestServer::start(&db).await;
    let mut ann = server.user("Ann").await;
    let mut bob = server.user("Bob").await;
    let (room, _) = ann.join_channel(DEFAULT_CHANNEL).await;
    let (bob_room, _) = bob.join_channel("GENERAL").await;
    assert_eq!(room, bob_room, "channel names are case-insensitive");

    let seq = ann.say(room, "a-1", "hello Bob").await;
    let got = bob.next_text(room).await;
    assert_eq!((got.seq, got.text.as_str()), (seq, "hello Bob"));
    assert_eq!(got.sender, ann.me.clone().expect("ready"));

    let reply_seq = bob.say(room, "b-1", "hi Ann").await;
    assert_eq!(reply_seq, seq + 1, "seqs are consecutive");
    let got = ann.next_text(room).await;
    assert_eq!((got.seq, got.text.as_str()), (reply_seq, "hi Ann"));

    // Exactly once: nothing else arrives for either of them.
    ann.expect_no_messages(Duration::from_millis(200)).await;
    bob.expect_no_messages(Duration::from_millis(200)).await;
    server.stop().await;
}

#[tokio::test]
async fn a_resend_with_the_same_client_id_is_stored_once() {
    let (_dir, db) = temp_db();
    let server = TestServer::start(&db).await;
    let mut ann = server.user("Ann").await;
    let mut bob = server.user("Bob").await;
    let (room, _) = ann.join_channel(DEFAULT_CHANNEL).await;
    bob.join_channel(DEFAULT_CHANNEL).await;
    let first = ann.say(room, "same-id", "once").await;
    let again = ann.say(room, "same-id", "once").await;
    assert_eq!(first, again, "the resend is acked with the original seq");
    assert_eq!(bob.next_text(room).await.seq, first);
    bob.expect_no_messages(Duration::from_millis(200)).await;
    server.stop().await;
}

#[tokio::test]
async fn a_taken_name_is_refused_with_a_typed_error() {
    let (_dir, db) = temp_db();
    let server = TestServer::start(&db).await;
    let _ann = server.user("Ann").await;
    let mut other = server.client().await;
    other
        .send_frame(ClientFrame {
            request_ref: Some("hello-1".into()),
            msg: ClientMsg::Hello {
                version: PROTOCOL_VERSION,
                name: "aNN".into(),
                credentials: None,
                resume: vec![],
            },
        })
        .await;
    assert_eq!(
        other.expect_error().await,
        (ErrorCode::NameTaken, Some("hello-1".into()))
    );
    // The connection stays usable: another name works.
    other.hello("Annette", None, vec![]).await;

    // Renaming onto a taken name is refused too; to a free one is announced.
    other.send(ClientMsg::Rename { name: "ann".into() }).await;
    assert_eq!(other.expect_error().await.0, ErrorCode::NameTaken);
    other
        .send(ClientMsg::Rename {
            name: "Netty".into(),
        })
        .await;
    let renamed = other
        .recv_until(|m| match m {
            ServerMsg::Presence { online, .. } => {
                online.iter().find(|u| u.name == "Netty").cloned()
            }
            _ => None,
        })
        .await;
    assert_eq!(renamed.id, other.id());
    server.stop().await;
}

#[tokio::test]
async fn invalid_input_gets_typed_errors() {
    let (_dir, db) = temp_db();
    let server = TestServer::start(&db).await;
    let mut client = server.client().await;
    client.send(ClientMsg::Rename { name: "x".into() }).await;
    assert_eq!(client.expect_error().await.0, ErrorCode::HelloRequired);
    client
        .send(ClientMsg::Hello {
            version: 99,
            name: "Ann".into(),
            credentials: None,
            resume: vec![],
        })
        .await;
    assert_eq!(client.expect_error().await.0, ErrorCode::UnsupportedVersion);
    client
        .send(ClientMsg::Hello {
            version: PROTOCOL_VERSION,
            name: "bad\u{0}name".into(),
            credentials: None,
            resume: vec![],
        })
        .await;
    assert_eq!(client.expect_error().await.0, ErrorCode::InvalidName);
    client.hello("Ann", None, vec![]).await;
    let (room, _) = client.join_channel(DEFAULT_CHANNEL).await;
    for (msg, code) in [
        (
            ClientMsg::Send {
                reply_to: None,
                room,
                client_id: "c".into(),
                text: "   ".into(),
                attachments: Vec::new(),
            },
            ErrorCode::InvalidText,
        ),
        (
            ClientMsg::Send {
                reply_to: None,
                room,
                client_id: "".into(),
                text: "hi".into(),
                attachments: Vec::new(),
            },
            ErrorCode::InvalidClientId,
        ),
        (
            ClientMsg::Send {
                reply_to: None,
                room: RoomId(999),
                client_id: "c".into(),
                text: "hi".into(),
                attachments: Vec::new(),
            },
            ErrorCode::NotMember,
        ),
        (
            ClientMsg::JoinChannel {
                name: "nope".into(),
            },
            ErrorCode::NoSuchRoom,
        ),
        (
            ClientMsg::JoinChannel {
                name: "two words".into(),
            },
            ErrorCode::InvalidChannelName,
        ),
        (
            ClientMsg::JoinByCode {
                code: "SHORT".into(),
            },
            ErrorCode::InvalidCode,
        ),
        (
            ClientMsg::JoinByCode {
                code: "ZZZZZZZZ".into(),
            },
            ErrorCode::NoSuchRoom,
        ),
        (
            ClientMsg::OpenDirect { user: client.id() },
            ErrorCode::CannotDirectSelf,
        ),
        (
            ClientMsg::OpenDirect {
                user: UserId("ghost".into()),
            },
            ErrorCode::NoSuchUser,
        ),
        (
            ClientMsg::CreateChannel {
                name: "General".into(),
                delete_when_empty: false,
            },
            ErrorCode::ChannelExists,
        ),
    ] {
        client.send(msg.clone()).await;
        assert_eq!(client.expect_error().await.0, code, "for {msg:?}");
    }
    server.stop().await;
}

#[tokio::test]
async fn opening_a_direct_room_reaches_both_sides() {
    let (_dir, db) = temp_db();
    let server = TestServer::start(&db).await;
    let mut ann = server.user("Ann").await;
    let mut bob = server.user("Bob").await;
    ann.send(ClientMsg::OpenDirect { user: bob.id() }).await;
    let ann_id = ann.id();
    for client in [&mut ann, &mut bob] {
        let (room, by) = client
            .recv_until(|m| match m {
                ServerMsg::Joined { room, by } => Some((room.clone(), by.clone())),
                _ => None,
            })
            .await;
        let RoomKind::Direct { members } = &room.kind else {
            panic!("expected a direct room, got {room:?}");
        };
        let names: Vec<&str> = members.iter().map(|m| m.name.as_str()).collect();
        assert!(
            names.contains(&"Ann") && names.contains(&"Bob"),
            "{names:?}"
        );
        assert_eq!(by, ann_id);
    }
    let room = bob
        .recv_until(|m| match m {
            ServerMsg::History { room, .. } => Some(*room),
            _ => None,
        })
        .await;
    let seq = bob.say(room, "dm-1", "psst").await;
    let got = ann.next_text(room).await;
    assert_eq!((got.seq, got.text.as_str()), (seq, "psst"));

    // Opening again returns the same room; direct rooms cannot be left.
    bob.send(ClientMsg::OpenDirect { user: ann.id() }).await;
    let (again, _) = bob.expect_joined().await;
    assert_eq!(again, room);
    bob.send(ClientMsg::Leave { room }).await;
    assert_eq!(bob.expect_error().await.0, ErrorCode::CannotLeaveDirect);
    server.stop().await;
}

#[tokio::test]
async fn a_user_who_reconnects_gets_the_history_and_only_what_they_missed() {
    let (_dir, db) = temp_db();
    let server = TestServer::start(&db).await;
    let mut ann = server.user("Ann").await;
    let (room, _) = ann.join_channel(DEFAULT_CHANNEL).await;
    let mut seqs = Vec::new();
    for i in 0..3 {
        seqs.push(
            ann.say(room, &format!("m{i}"), &format!("message {i}"))
                .await,
        );
    }
    let creds = ann.credentials.clone();
    ann.close().await;

    // Full history on a plain reconnect.
    let mut again = server.client().await;
    let histories = again.hello("Ann", creds.clone(), vec![]).await;
    assert_eq!(
        again.id(),
        creds.clone().expect("creds").user_id,
        "same identity"
    );
    let ServerMsg::History { messages, .. } = &histories[0] else {
        unreachable!()
    };
    let texts: Vec<&str> = messages
        .iter()
        .filter(|m| m.kind == MessageKind::Text)
        .map(|m| m.text.as_str())
        .collect();
    assert_eq!(texts, ["message 0", "message 1", "message 2"]);
    again.close().await;

    // Only the missed part on a resume.
    let mut resumed = server.client().await;
    let histories = resumed
        .hello("Ann", creds, vec![ResumePosition { room, seq: seqs[0] }])
        .await;
    let ServerMsg::History {
        messages,
        more_before,
        ..
    } = &histories[0]
    else {
        unreachable!()
    };
    let got: Vec<Seq> = messages.iter().map(|m| m.seq).collect();
    assert_eq!(got, seqs[1..]);
    assert!(!more_before);
    server.stop().await;
}

#[tokio::test]
async fn wrong_guest_credentials_are_refused() {
    let (_dir, db) = temp_db();
    let server = TestServer::start(&db).await;
    let ann = server.user("Ann").await;
    let mut creds = ann.credentials.clone().expect("creds");
    creds.secret = "guessed".into();
    let mut thief = server.client().await;
    thief
        .send(ClientMsg::Hello {
            version: PROTOCOL_VERSION,
            name: "Ann".into(),
            credentials: Some(creds),
            resume: vec![],
        })
        .await;
    assert_eq!(thief.expect_error().await.0, ErrorCode::BadCredentials);
    server.stop().await;
}

#[tokio::test]
async fn history_pages_go_back_a_hundred_at_a_time() {
    let (_dir, db) = temp_db();
    let server = TestServer::start(&db).await;
    let mut ann = server.user("Ann").await;
    let (room, _) = ann.join_channel(DEFAULT_CHANNEL).await;
    let mut last = 0;
    for i in 0..150 {
        ann.send(ClientMsg::Send {
            reply_to: None,
            room,
            client_id: format!("p{i}"),
            text: format!("n{i}"),
            attachments: Vec::new(),
        })
        .await;
    }
    for _ in 0..150 {
        last = ann
            .recv_until(|m| match m {
                ServerMsg::Ack { seq, .. } => Some(*seq),
                _ => None,
            })
            .await;
    }
    let mut viewer = server.user("Viewer").await;
    let (_, latest) = viewer.join_channel(DEFAULT_CHANNEL).await;
    assert_eq!(latest.len(), 100);
    let oldest_shown = latest[0].seq;
    assert_eq!(
        latest.last().expect("some").seq,
        last + 1,
        "ends with viewer's join notice"
    );
    let (page, more_before) = viewer.history_page(room, oldest_shown).await;
    assert_eq!(page.last().expect("page").seq, oldest_shown - 1);
    assert_eq!(page.first().expect("page").seq, 1);
    assert!(!more_before);
    server.stop().await;
}

#[tokio::test]
async fn messages_survive_a_server_restart_on_the_same_database() {
    let (_dir, db) = temp_db();
    let server = TestServer::start(&db).await;
    let mut ann = server.user("Ann").await;
    let (room, _) = ann.join_channel(DEFAULT_CHANNEL).await;
    let seq = ann.say(room, "keep", "still here?").await;
    let creds = ann.credentials.clone();
    server.stop().await;

    let server = TestServer::start(&db).await;
    let mut ann = server.client().await;
    let histories = ann.hello("Ann", creds, vec![]).await;
    let ServerMsg::History { messages, .. } = &histories[0] else {
        unreachable!()
    };
    assert!(
        messages
            .iter()
            .any(|m| m.seq == seq && m.text == "still here?"),
        "{messages:?}"
    );
    let next = ann.say(room, "after", "and counting").await;
    assert_eq!(next, seq + 1, "seqs continue after a restart");
    server.stop().await;
}

#[tokio::test]
async fn a_malformed_frame_gets_an_error_and_everyone_carries_on() {
    let (_dir, db) = temp_db();
    let server = TestServer::start(&db).await;
    let mut ann = server.user("Ann").await;
    let mut bob = server.user("Bob").await;
    let (room, _) = ann.join_channel(DEFAULT_CHANNEL).await;
    bob.join_channel(DEFAULT_CHANNEL).await;
    for junk in [
        "not json",
        "{}",
        r#"{"type":"explode"}"#,
        r#"{"type":"send","room":"x"}"#,
        "[1,2,3]",
        "\u{0}",
    ] {
        bob.send_raw(Message::text(junk)).await;
        assert_eq!(
            bob.expect_error().await.0,
            ErrorCode::BadFrame,
            "for {junk:?}"
        );
    }
    bob.send_raw(Message::text(r#"{"type":"nope","ref":"r-5"}"#))
        .await;
    assert_eq!(
        bob.expect_error().await,
        (ErrorCode::BadFrame, Some("r-5".into()))
    );
    let seq = ann.say(room, "a", "still fine?").await;
    assert_eq!(bob.next_text(room).await.seq, seq);
    let seq = bob.say(room, "b", "yes").await;
    assert_eq!(ann.next_text(room).await.seq, seq);
    server.stop().await;
}

#[tokio::test]
async fn an_oversize_message_is_closed_with_1009_and_others_carry_on() {
    let (_dir, db) = temp_db();
    let server = TestServer::start(&db).await;
    let mut ann = server.user("Ann").await;
    let mut bob = server.user("Bob").await;
    let (room, _) = ann.join_channel(DEFAULT_CHANNEL).await;
    bob.join_channel(DEFAULT_CHANNEL).await;
    bob.send_raw(Message::text("x".repeat(MAX_FRAME_BYTES + 1)))
        .await;
    assert_eq!(bob.closed().await, Some(CloseCode::Size));
    let seq = ann.say(room, "a", "bob?").await;
    assert!(seq > 0);
    server.stop().await;
}

#[tokio::test]
async fn a_binary_frame_is_closed_with_1003() {
    let (_dir, db) = temp_db();
    let server = TestServer::start(&db).await;
    let mut ann = server.user("Ann").await;
    ann.send_raw(Message::binary(vec![1, 2, 3])).await;
    assert_eq!(ann.closed().await, Some(CloseCode::Unsupported));
    server.stop().await;
}

#[tokio::test]
async fn shutdown_closes_connections_with_1001() {
    let (_dir, db) = temp_db();
    let server = TestServer::start(&db).await;
    let mut ann = server.user("Ann").await;
    let stopping = tokio::spawn(server.stop());
    assert_eq!(ann.closed().await, Some(CloseCode::Away));
    stopping.await.expect("stopped");
}

#[tokio::test]
async fn no_hello_in_time_is_closed_with_1008() {
    let (_dir, db) = temp_db();
    let mut config = natter_server::Config::for_tests(sqlite_url(&db));
    config.hello_timeout_ms = 200;
    let server = TestServer::start_with(config).await;
    let mut idle = server.client().await;
    assert_eq!(idle.closed().await, Some(CloseCode::Policy));
    server.stop().await;
}

#[tokio::test]
async fn presence_has_a_grace_period_and_counts_tabs_as_one() {
    let (_dir, db) = temp_db();
    // A generous grace period, so a loaded CI machine still reconnects inside it.
    let mut config = natter_server::Config::for_tests(sqlite_url(&db));
    config.presence_grace_ms = 1000;
    let server = TestServer::start_with(config).await;
    let mut watcher = server.user("Watcher").await;
    let tab1 = server.user("Ann").await;
    let ann = tab1.id();
    let online = watcher
        .recv_until(|m| match m {
            ServerMsg::Presence { online, .. } => online.iter().find(|u| u.name == "Ann").cloned(),
            _ => None,
        })
        .await;
    assert_eq!(online.id, ann);

    // A second tab is invisible to others; so is closing one of two tabs.
    let mut tab2 = server.client().await;
    tab2.hello("Ann", tab1.credentials.clone(), vec![]).await;
    tab1.close().await;
    watcher.expect_silence(Duration::from_millis(1300)).await;

    // A reconnect inside the grace period is invisible too.
    let creds = tab2.credentials.clone();
    tab2.close().await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let tab3 = {
        let mut c = server.client().await;
        c.hello("Ann", creds, vec![]).await;
        c
    };
    watcher.expect_silence(Duration::from_millis(1300)).await;

    // Gone for longer than the grace period: offline, and the name is free again.
    tab3.close().await;
    watcher
        .recv_until(|m| match m {
            ServerMsg::Presence { offline, .. } => offline.contains(&ann).then_some(()),
            _ => None,
        })
        .await;
    let newcomer = server.user("ann").await;
    assert_ne!(newcomer.id(), ann);
    server.stop().await;
}

#[tokio::test]
async fn channels_are_listed_live_and_delete_when_empty_rooms_go_away() {
    let (_dir, db) = temp_db();
    let server = TestServer::start(&db).await;
    let mut ann = server.user("Ann").await;
    let mut bob = server.user("Bob").await;
    ann.send(ClientMsg::CreateChannel {
        name: "Pop-up".into(),
        delete_when_empty: true,
    })
    .await;
    let (room, _) = ann.expect_joined().await;
    let added = bob
        .recv_until(|m| match m {
            ServerMsg::ChannelAdded { channel } => Some(channel.clone()),
            _ => None,
        })
        .await;
    assert_eq!((added.id, added.name.as_str()), (room, "Pop-up"));

    bob.join_channel("pop-up").await;
    let joined_notice = ann
        .recv_until(|m| match m {
            ServerMsg::Message { message } if message.kind == MessageKind::Join => {
                Some(message.sender.name.clone())
            }
            _ => None,
        })
        .await;
    assert_eq!(joined_notice, "Bob");

    bob.send(ClientMsg::Leave { room }).await;
    bob.recv_until(|m| matches!(m, ServerMsg::Left { room: r } if *r == room).then_some(()))
        .await;
    let left_notice = ann
        .recv_until(|m| match m {
            ServerMsg::Message { message } if message.kind == MessageKind::Leave => {
                Some(message.sender.name.clone())
            }
            _ => None,
        })
        .await;
    assert_eq!(left_notice, "Bob");

    ann.send(ClientMsg::Leave { room }).await;
    let removed = bob
        .recv_until(|m| match m {
            ServerMsg::ChannelRemoved { room } => Some(*room),
            _ => None,
        })
        .await;
    assert_eq!(removed, room);
    bob.send(ClientMsg::JoinChannel {
        name: "pop-up".into(),
    })
    .await;
    assert_eq!(bob.expect_error().await.0, ErrorCode::NoSuchRoom);
    server.stop().await;
}

#[tokio::test]
async fn code_rooms_are_joined_by_their_code() {
    let (_dir, db) = temp_db();
    let server = TestServer::start(&db).await;
    let mut ann = server.user("Ann").await;
    let mut bob = server.user("Bob").await;
    ann.send(ClientMsg::CreateCodeRoom {
        delete_when_empty: false,
    })
    .await;
    let info = ann
        .recv_until(|m| match m {
            ServerMsg::Joined { room, .. } => Some(room.clone()),
            _ => None,
        })
        .await;
    let RoomKind::Code { code } = &info.kind else {
        panic!("{info:?}")
    };
    assert!(validate::room_code(code).is_ok(), "{code}");
    bob.send(ClientMsg::JoinByCode {
        code: code.to_lowercase(),
    })
    .await;
    let (room, _) = bob.expect_joined().await;
    assert_eq!(room, info.id);
    let seq = bob.say(room, "c1", "found it").await;
    assert_eq!(ann.next_text(room).await.seq, seq);
    server.stop().await;
}

/// The snapshot after `ready` (who is online, which channels exist) comes in frames of
/// at most `SNAPSHOT_CHUNK` entries that together list everything.
#[tokio::test]
async fn a_big_snapshot_arrives_in_bounded_frames() {
    // About logic, not storage: the in-memory store.
    let server = TestServer::start_with(natter_server::Config::for_tests("memory:")).await;
    let people = SNAPSHOT_CHUNK + 20;
    let mut online = Vec::new();
    for n in 0..people {
        online.push(server.user(&format!("person{n}")).await);
    }
    let creator = &mut online[0];
    for n in 0..SNAPSHOT_CHUNK + 30 {
        creator
            .send(ClientMsg::CreateChannel {
                name: format!("c{n}"),
                delete_when_empty: false,
            })
            .await;
        creator.expect_joined().await;
    }

    let mut newcomer = server.client().await;
    newcomer.hello("Newcomer", None, vec![]).await;
    let (mut seen_online, mut seen_channels) = (Vec::new(), Vec::new());
    while let Some(Message::Text(text)) = newcomer.next_raw(Duration::from_millis(500)).await {
        match serde_json::from_str::<ServerMsg>(text.as_str()).expect("server frames parse") {
            ServerMsg::Presence { online, .. } => {
                assert!(
                    online.len() <= SNAPSHOT_CHUNK,
                    "{} in one frame",
                    online.len()
                );
                seen_online.extend(online.into_iter().map(|u| u.name));
            }
            ServerMsg::Channels { channels } => {
                assert!(
                    channels.len() <= SNAPSHOT_CHUNK,
                    "{} in one frame",
                    channels.len()
                );
                seen_channels.extend(channels.into_iter().map(|c| c.name));
            }
            _ => {}
        }
    }
    for n in 0..people {
        assert!(
            seen_online.contains(&format!("person{n}")),
            "person{n} listed"
        );
    }
    assert!(seen_online.contains(&"Newcomer".to_string()));
    assert_eq!(
        seen_channels.len(),
        SNAPSHOT_CHUNK + 31,
        "every channel and #general"
    );
}
