//! Edits, deletions, reactions and replies over real WebSockets: each is an event with
//! the room's next seq, acknowledged like a send, delivered to every member once,
//! stored once per `client_id`, caught up on resume, and refused with a typed error.

mod common;

use std::time::Duration;

use common::*;
use natter_protocol::*;

fn edit(room: RoomId, client_id: &str, seq: Seq, text: &str) -> ClientMsg {
    ClientMsg::Edit {
        room,
        client_id: client_id.into(),
        seq,
        text: text.into(),
    }
}

fn delete(room: RoomId, client_id: &str, seq: Seq) -> ClientMsg {
    ClientMsg::Delete {
        room,
        client_id: client_id.into(),
        seq,
    }
}

fn react(room: RoomId, client_id: &str, seq: Seq, emoji: &str) -> ClientMsg {
    ClientMsg::React {
        room,
        client_id: client_id.into(),
        seq,
        emoji: emoji.into(),
    }
}

fn unreact(room: RoomId, client_id: &str, seq: Seq, emoji: &str) -> ClientMsg {
    ClientMsg::Unreact {
        room,
        client_id: client_id.into(),
        seq,
        emoji: emoji.into(),
    }
}

/// Two people in a fresh channel, Ann having said something; returns its seq.
async fn ann_and_bob(server: &TestServer) -> (Client, Client, RoomId, Seq) {
    let mut ann = server.user("Ann").await;
    let mut bob = server.user("Bob").await;
    ann.send(ClientMsg::CreateChannel {
        name: "changes".into(),
        delete_when_empty: false,
    })
    .await;
    let (room, _) = ann.expect_joined().await;
    bob.join_channel("changes").await;
    let seq = ann.say(room, "a-1", "helo wrold").await;
    assert_eq!(bob.next_text(room).await.seq, seq);
    (ann, bob, room, seq)
}

#[tokio::test]
async fn every_change_reaches_every_member_with_the_rooms_next_seq() {
    let (_dir, db) = temp_db();
    let server = TestServer::start(&db).await;
    let (mut ann, mut bob, room, first) = ann_and_bob(&server).await;

    // The author's own connection hears the change too (its other tabs must), as
    // well as the ack.
    ann.send(edit(room, "e-1", first, "hello world")).await;
    let (mut acked, mut heard) = (None, None);
    while acked.is_none() || heard.is_none() {
        match ann.recv().await {
            ServerMsg::Ack { seq, .. } => acked = Some(seq),
            ServerMsg::Changed {
                seq,
                target,
                change,
                ..
            } => heard = Some((seq, target, change)),
            _ => {}
        }
    }
    let edited = acked.expect("acked");
    assert_eq!(edited, first + 1, "a change takes the room's next seq");
    let expected = (
        edited,
        first,
        Change::Edit {
            text: "hello world".into(),
            mentions: vec![],
        },
    );
    assert_eq!(heard, Some(expected.clone()));
    assert_eq!(bob.next_change(room).await, expected);
    let reacted = bob.change(react(room, "r-1", first, "👍")).await;
    assert_eq!(
        ann.next_change(room).await,
        (
            reacted,
            first,
            Change::React {
                emoji: "👍".into()
            }
        )
    );
    let next = ann.say(room, "a-2", "a message after the changes").await;
    assert_eq!(next, reacted + 1, "messages and changes share one sequence");
    assert_eq!(bob.next_text(room).await.seq, next);

    // History is the current state: the page shows the edit and the reaction.
    let (page, _) = bob.history_page(room, next + 1).await;
    let message = page
        .iter()
        .find(|m| m.seq == first)
        .expect("the first message");
    assert_eq!(message.text, "hello world");
    assert!(message.edited_at.is_some());
    assert_eq!(message.rev, reacted);
    assert_eq!(message.reactions.len(), 1);
    assert!(
        message.reactions[0].me,
        "Bob's page says the reaction is his"
    );
    let (ann_page, _) = ann.history_page(room, next + 1).await;
    let ann_view = ann_page
        .iter()
        .find(|m| m.seq == first)
        .expect("the first message");
    assert!(!ann_view.reactions[0].me, "…and Ann's that it is not hers");

    let unreacted = bob.change(unreact(room, "u-1", first, "👍")).await;
    assert_eq!(ann.next_change(room).await.0, unreacted);
    let deleted = ann.change(delete(room, "d-1", first)).await;
    assert_eq!(
        bob.next_change(room).await,
        (deleted, first, Change::Delete)
    );
    let (page, _) = bob.history_page(room, deleted + 1).await;
    let tombstone = page.iter().find(|m| m.seq == first).expect("a tombstone");
    assert!(tombstone.deleted && tombstone.text.is_empty() && tombstone.reactions.is_empty());
    ann.expect_no_messages(Duration::from_millis(200)).await;
    server.stop().await;
}

#[tokio::test]
async fn changes_are_refused_with_typed_errors_and_take_no_seq() {
    let (_dir, db) = temp_db();
    let mut config = natter_server::Config::for_tests(sqlite_url(&db));
    config.listen = "127.0.0.1:0".parse().expect("an address");
    config.edit_window_secs = 1;
    let server = TestServer::start_with(config).await;
    let (mut ann, mut bob, room, first) = ann_and_bob(&server).await;
    let mut carol = server.user("Carol").await;

    // (who: 0 Ann, 1 Bob, 2 Carol)
    let refusals = [
        (
            1,
            edit(room, "x-1", first, "not mine"),
            ErrorCode::NotAuthor,
        ),
        (1, delete(room, "x-2", first), ErrorCode::NotAuthor),
        (
            0,
            edit(room, "x-3", 999, "nothing there"),
            ErrorCode::NoSuchMessage,
        ),
        (0, edit(room, "x-4", first, "   "), ErrorCode::InvalidText),
        (0, react(room, "x-5", first, "lol"), ErrorCode::InvalidEmoji),
        (
            0,
            react(room, "x-6", first, "👍 <b>"),
            ErrorCode::InvalidEmoji,
        ),
        // Seq 1 of a new channel is its creator's join notice.
        (0, react(room, "x-7", 1, "👍"), ErrorCode::NoSuchMessage),
        (2, react(room, "x-8", first, "👍"), ErrorCode::NotMember),
        (
            0,
            edit(room, "", first, "no id"),
            ErrorCode::InvalidClientId,
        ),
    ];
    for (who, request, expected) in refusals {
        let client = [&mut ann, &mut bob, &mut carol]
            .into_iter()
            .nth(who)
            .expect("a client");
        client
            .send_frame(ClientFrame {
                request_ref: Some("the-ref".into()),
                msg: request.clone(),
            })
            .await;
        assert_eq!(
            client.expect_error().await,
            (expected, Some("the-ref".into())),
            "{request:?}"
        );
    }
    // Replying to a message that is not there is refused before anything is stored.
    bob.send(ClientMsg::Send {
        room,
        client_id: "reply-x".into(),
        text: "to nothing".into(),
        attachments: Vec::new(),
        reply_to: Some(999),
    })
    .await;
    assert_eq!(bob.expect_error().await.0, ErrorCode::NoSuchMessage);

    // Twenty different emoji, then no more.
    for i in 0..MAX_REACTION_KINDS {
        let emoji = char::from_u32(0x1F600 + i as u32)
            .expect("an emoji")
            .to_string();
        bob.change(react(room, &format!("many-{i}"), first, &emoji))
            .await;
    }
    bob.send(react(room, "one-too-many", first, "🦀")).await;
    assert_eq!(bob.expect_error().await.0, ErrorCode::TooManyReactions);

    // The edit window (1 s here) closes; deleting stays possible.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    ann.send(edit(room, "too-late", first, "later")).await;
    assert_eq!(ann.expect_error().await.0, ErrorCode::EditWindowClosed);
    let deleted = ann.change(delete(room, "d", first)).await;
    assert_eq!(
        deleted,
        first + MAX_REACTION_KINDS as Seq + 1,
        "only the twenty reactions and the deletion took seqs"
    );
    ann.send(delete(room, "d-again", first)).await;
    assert_eq!(ann.expect_error().await.0, ErrorCode::NoSuchMessage);
    server.stop().await;
}

#[tokio::test]
async fn a_resent_change_is_acked_with_its_original_seq_and_delivered_once() {
    let (_dir, db) = temp_db();
    let server = TestServer::start(&db).await;
    let (mut ann, mut bob, room, first) = ann_and_bob(&server).await;
    for (request, label) in [
        (edit(room, "same-edit", first, "fixed"), "edit"),
        (react(room, "same-react", first, "🎉"), "react"),
        (unreact(room, "same-unreact", first, "🎉"), "unreact"),
        (delete(room, "same-delete", first), "delete"),
    ] {
        let seq = ann.change(request.clone()).await;
        assert_eq!(ann.change(request).await, seq, "{label} resent: same seq");
        assert_eq!(bob.next_change(room).await.0, seq, "{label} delivered");
    }
    bob.expect_no_messages(Duration::from_millis(300)).await;
    // Reacting twice under different ids changes nothing the second time: acked with
    // the message's newest change, nothing delivered.
    let other = ann.say(room, "a-2", "again").await;
    bob.next_text(room).await;
    let reacted = bob.change(react(room, "twice-1", other, "👍")).await;
    ann.next_change(room).await;
    assert_eq!(
        bob.change(react(room, "twice-2", other, "👍")).await,
        reacted
    );
    ann.expect_no_messages(Duration::from_millis(300)).await;
    server.stop().await;
}

#[tokio::test]
async fn a_client_coming_back_sees_what_changed_while_it_was_away() {
    let (_dir, db) = temp_db();
    let server = TestServer::start(&db).await;
    let (mut ann, bob, room, first) = ann_and_bob(&server).await;
    let second = ann.say(room, "a-2", "second").await;
    let third = ann.say(room, "a-3", "third").await;
    let untouched = ann.say(room, "a-4", "untouched").await;
    let credentials = bob.credentials.clone();
    bob.close().await;

    ann.change(edit(room, "e", first, "first, edited")).await;
    ann.change(react(room, "r", second, "❤️")).await;
    ann.change(delete(room, "d", third)).await;
    let new = ann.say(room, "a-5", "said while Bob was away").await;

    let mut bob = Client::connect(server.addr).await;
    let histories = bob
        .hello(
            "Bob",
            credentials,
            vec![ResumePosition {
                room,
                seq: untouched,
            }],
        )
        .await;
    let history = histories
        .iter()
        .find(|h| matches!(h, ServerMsg::History { room: r, .. } if *r == room))
        .expect("a catch-up for the room");
    let ServerMsg::History {
        messages,
        changed,
        through,
        more_before,
        ..
    } = history
    else {
        unreachable!()
    };
    assert_eq!(messages.iter().map(|m| m.seq).collect::<Vec<_>>(), [new]);
    assert!(!more_before);
    assert_eq!(
        *through,
        Some(new),
        "Bob now holds everything up to the newest seq"
    );
    assert_eq!(
        changed.iter().map(|m| m.seq).collect::<Vec<_>>(),
        [first, second, third],
        "the held messages that changed, and only those"
    );
    assert_eq!(changed[0].text, "first, edited");
    assert_eq!(changed[1].reactions[0].emoji, "❤️");
    assert!(changed[2].deleted);

    // A client that finds a gap asks to catch up from where it holds everything.
    bob.send(ClientMsg::CatchUp { room, after: first }).await;
    let (messages, changed) = bob
        .recv_until(|m| match m {
            ServerMsg::History {
                messages,
                changed,
                through: Some(_),
                ..
            } => Some((messages.clone(), changed.clone())),
            _ => None,
        })
        .await;
    assert_eq!(
        messages.iter().map(|m| m.seq).collect::<Vec<_>>(),
        [second, third, untouched, new],
        "every message after the point, in its current state"
    );
    assert!(messages[1].deleted, "the deleted one as a tombstone");
    assert_eq!(changed.iter().map(|m| m.seq).collect::<Vec<_>>(), [first]);
    server.stop().await;
}

#[tokio::test]
async fn a_reply_quotes_its_original_and_outlives_it() {
    let (_dir, db) = temp_db();
    let server = TestServer::start(&db).await;
    let (mut ann, mut bob, room, first) = ann_and_bob(&server).await;
    bob.send(ClientMsg::Send {
        room,
        client_id: "reply-1".into(),
        text: "you mean *hello world*?".into(),
        attachments: Vec::new(),
        reply_to: Some(first),
    })
    .await;
    let reply = ann.next_text(room).await;
    let quoted = reply
        .reply_to
        .clone()
        .expect("the reply says what it answers");
    assert_eq!(quoted.seq, first);
    assert_eq!(quoted.sender.name, "Ann");
    assert_eq!(quoted.text, "helo wrold");

    ann.change(delete(room, "d", first)).await;
    let (page, _) = ann.history_page(room, reply.seq + 10).await;
    let reply = page
        .iter()
        .find(|m| m.seq == reply.seq)
        .expect("the reply stays");
    let quoted = reply.reply_to.as_ref().expect("with its quote");
    assert!(quoted.deleted && quoted.text.is_empty(), "{quoted:?}");
    server.stop().await;
}

#[tokio::test]
async fn a_deleted_messages_text_is_gone_from_the_database_file() {
    let (dir, db) = temp_db();
    let server = TestServer::start(&db).await;
    let (mut ann, _bob, room, _) = ann_and_bob(&server).await;
    let secret = "my-bank-pin-is-8461-zebra";
    let seq = ann.say(room, "secret", secret).await;
    ann.change(edit(room, "e", seq, &format!("{secret}, edited")))
        .await;
    ann.change(delete(room, "d", seq)).await;
    // Every file of the database, the write-ahead log included, within a few seconds
    // (the log is emptied by the next background checkpoint).
    let holding = || {
        std::fs::read_dir(dir.path())
            .expect("the database directory")
            .filter_map(|entry| {
                let path = entry.expect("an entry").path();
                let bytes = std::fs::read(&path).unwrap_or_default();
                bytes
                    .windows(secret.len())
                    .any(|w| w == secret.as_bytes())
                    .then(|| path.display().to_string())
            })
            .collect::<Vec<_>>()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !holding().is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        holding(),
        Vec::<String>::new(),
        "files still holding the deleted text"
    );
    server.stop().await;
}
