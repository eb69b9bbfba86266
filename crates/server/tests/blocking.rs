//! Blocking over real sockets, on SQLite: someone blocked cannot pop up on the
//! blocker's screen, a direct room already open disappears from every tab of the
//! blocker, the blocked person is never told, and unblocking brings the room back.

mod common;

use std::time::Duration;

use common::*;
use natter_protocol::*;
use natter_server::Config;

/// Long enough for a frame that was going to come to have come.
const QUIET: Duration = Duration::from_millis(400);

/// Waits for the `blocked` list; returns the ids in it.
async fn block_list(client: &mut Client) -> Vec<UserId> {
    client
        .recv_until(|m| match m {
            ServerMsg::Blocked { users } => Some(users.iter().map(|u| u.id.clone()).collect()),
            _ => None,
        })
        .await
}

/// What `ready` said about blocks and rooms.
fn ready_blocked_and_rooms(client: &Client) -> (Vec<UserId>, Vec<RoomId>) {
    match &client.ready {
        Some(ServerMsg::Ready { blocked, rooms, .. }) => (
            blocked.iter().map(|u| u.id.clone()).collect(),
            rooms.iter().map(|r| r.id).collect(),
        ),
        other => panic!("not ready: {other:?}"),
    }
}

#[tokio::test]
async fn someone_blocked_cannot_pop_up_and_is_not_told() {
    let (_dir, db) = temp_db();
    let server = TestServer::start(&db).await;
    let mut ann = server.user("Ann").await;
    let mut pest = server.user("Pest").await;

    ann.send(ClientMsg::Block { user: pest.id() }).await;
    assert_eq!(block_list(&mut ann).await, [pest.id()]);

    // Pest opens a direct room and writes: everything looks normal to Pest…
    pest.send(ClientMsg::OpenDirect { user: ann.id() }).await;
    let (room, _) = pest.expect_joined().await;
    pest.say(room, "p1", "hello?").await;
    // …and nothing of it reaches Ann.
    ann.expect_no_messages(QUIET).await;

    // Nor does it come back when Ann reconnects: the room is hidden from her.
    let credentials = ann.credentials.clone();
    ann.close().await;
    let mut ann = server.client().await;
    ann.hello("Ann", credentials.clone(), vec![]).await;
    let (blocked, rooms) = ready_blocked_and_rooms(&ann);
    assert_eq!(blocked, [pest.id()], "ready lists whom I block");
    assert!(
        !rooms.contains(&room),
        "the direct room is hidden: {rooms:?}"
    );

    // Ann cannot write to someone she blocks; she is told why.
    ann.send(ClientMsg::OpenDirect { user: pest.id() }).await;
    assert_eq!(ann.expect_error().await.0, ErrorCode::UserBlocked);

    // Unblocking brings the room back with what Pest wrote meanwhile.
    ann.send(ClientMsg::Unblock { user: pest.id() }).await;
    let (back, history) = ann.expect_joined().await;
    assert_eq!(back, room);
    assert!(history.iter().any(|m| m.text == "hello?"), "{history:?}");
    assert_eq!(block_list(&mut ann).await, [] as [UserId; 0]);
    // And from now on Pest's messages arrive.
    pest.say(room, "p2", "still there?").await;
    assert_eq!(ann.next_text(room).await.text, "still there?");
    server.stop().await;
}

#[tokio::test]
async fn blocking_takes_an_open_direct_room_from_every_tab() {
    let (_dir, db) = temp_db();
    let server = TestServer::start(&db).await;
    let mut ann = server.user("Ann").await;
    let mut ann_phone = server.client().await;
    ann_phone
        .hello("Ann", ann.credentials.clone(), vec![])
        .await;
    let mut bo = server.user("Bo").await;
    bo.send(ClientMsg::OpenDirect { user: ann.id() }).await;
    let (room, _) = bo.expect_joined().await;
    for tab in [&mut ann, &mut ann_phone] {
        assert_eq!(tab.expect_joined().await.0, room);
    }

    ann.send(ClientMsg::Block { user: bo.id() }).await;
    for tab in [&mut ann, &mut ann_phone] {
        let left = tab
            .recv_until(|m| match m {
                ServerMsg::Left { room } => Some(*room),
                _ => None,
            })
            .await;
        assert_eq!(left, room);
        assert_eq!(block_list(tab).await, [bo.id()]);
    }
    // Bo is not told, and what Bo writes reaches no tab of Ann's.
    bo.say(room, "b1", "you there?").await;
    bo.send(ClientMsg::OpenDirect { user: ann.id() }).await;
    bo.expect_joined().await;
    for tab in [&mut ann, &mut ann_phone] {
        tab.expect_no_messages(QUIET).await;
    }
    // The room is not Ann's to write in while she blocks Bo.
    ann.send(ClientMsg::Send {
        reply_to: None,
        room,
        client_id: "a1".into(),
        text: "hm".into(),
        attachments: Vec::new(),
    })
    .await;
    assert_eq!(ann.expect_error().await.0, ErrorCode::NotMember);
    server.stop().await;
}

#[tokio::test]
async fn blocks_have_a_limit_and_clear_errors() {
    let mut config = Config::for_tests("memory:");
    config.max_blocks_per_user = 2;
    let server = TestServer::start_with(config).await;
    let mut ann = server.user("Ann").await;
    let mut others = Vec::new();
    for name in ["B1", "B2", "B3"] {
        others.push(server.user(name).await.id());
    }

    ann.send(ClientMsg::Block { user: ann.id() }).await;
    assert_eq!(ann.expect_error().await.0, ErrorCode::CannotBlockSelf);
    ann.send(ClientMsg::Block {
        user: UserId("nobody".into()),
    })
    .await;
    assert_eq!(ann.expect_error().await.0, ErrorCode::NoSuchUser);

    for other in &others[..2] {
        ann.send(ClientMsg::Block {
            user: other.clone(),
        })
        .await;
        block_list(&mut ann).await;
    }
    // Blocking someone again changes nothing and costs nothing.
    ann.send(ClientMsg::Block {
        user: others[0].clone(),
    })
    .await;
    assert_eq!(block_list(&mut ann).await, others[..2]);
    ann.send(ClientMsg::Block {
        user: others[2].clone(),
    })
    .await;
    assert_eq!(ann.expect_error().await.0, ErrorCode::TooManyBlocks);
    // Unblocking one makes room.
    ann.send(ClientMsg::Unblock {
        user: others[0].clone(),
    })
    .await;
    assert_eq!(block_list(&mut ann).await, others[1..2]);
    ann.send(ClientMsg::Block {
        user: others[2].clone(),
    })
    .await;
    assert_eq!(block_list(&mut ann).await, others[1..3]);
    server.stop().await;
}
