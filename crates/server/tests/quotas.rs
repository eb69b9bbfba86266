//! The limits on what one person can make the server keep, over real sockets: rooms
//! per user, channels per server, and the hourly quotas per user and per IP (room
//! creation, new direct rooms, wrong room codes) — which a new guest per attempt does
//! not escape, because every test client here comes from 127.0.0.1.

mod common;

use common::*;
use natter_protocol::*;
use natter_server::Config;

/// What a request that should put the client in a room came to: the room, or the
/// error code with its `retry_after_ms`.
async fn attempt(client: &mut Client, msg: ClientMsg) -> Result<RoomId, (ErrorCode, Option<u64>)> {
    joined(client, msg).await.map(|room| room.id)
}

/// Like [`attempt`], with the whole room.
async fn joined(client: &mut Client, msg: ClientMsg) -> Result<RoomInfo, (ErrorCode, Option<u64>)> {
    client.send(msg).await;
    client
        .recv_until(|m| match m {
            ServerMsg::Joined { room, .. } => Some(Ok(room.clone())),
            ServerMsg::Error {
                code,
                retry_after_ms,
                ..
            } => Some(Err((*code, *retry_after_ms))),
            _ => None,
        })
        .await
}

fn channel(name: &str) -> ClientMsg {
    ClientMsg::CreateChannel {
        name: name.into(),
        delete_when_empty: false,
    }
}

fn code_room() -> ClientMsg {
    ClientMsg::CreateCodeRoom {
        delete_when_empty: false,
    }
}

async fn server(configure: impl FnOnce(&mut Config)) -> TestServer {
    let mut config = Config::for_tests("memory:");
    configure(&mut config);
    TestServer::start_with(config).await
}

/// The rooms `ready` gave this client.
fn ready_rooms(client: &Client) -> usize {
    match &client.ready {
        Some(ServerMsg::Ready { rooms, .. }) => rooms.len(),
        other => panic!("not ready: {other:?}"),
    }
}

#[tokio::test]
async fn a_user_can_be_in_so_many_rooms_and_leaving_one_makes_room() {
    let server = server(|c| c.max_rooms_per_user = 3).await;
    let mut ann = server.user("Ann").await;
    let mut rooms = Vec::new();
    for n in ready_rooms(&ann)..3 {
        rooms.push(
            attempt(&mut ann, channel(&format!("c{n}")))
                .await
                .expect("under the cap"),
        );
    }
    for over in [channel("one-more"), code_room()] {
        assert_eq!(
            attempt(&mut ann, over).await,
            Err((ErrorCode::TooManyRooms, None))
        );
    }
    // Someone else's channel cannot be joined either, nor a new direct room opened.
    let mut bo = server.user("Bo").await;
    attempt(&mut bo, channel("bos")).await.expect("Bo has room");
    assert_eq!(
        attempt(&mut ann, ClientMsg::JoinChannel { name: "bos".into() }).await,
        Err((ErrorCode::TooManyRooms, None))
    );
    assert_eq!(
        attempt(&mut ann, ClientMsg::OpenDirect { user: bo.id() }).await,
        Err((ErrorCode::TooManyRooms, None))
    );
    // Bo, under his cap, can still open one with Ann: her protection is his quota.
    attempt(&mut bo, ClientMsg::OpenDirect { user: ann.id() })
        .await
        .expect("Bo opens");
    ann.send(ClientMsg::Leave {
        room: *rooms.last().expect("a room"),
    })
    .await;
    ann.recv_until(|m| matches!(m, ServerMsg::Left { .. }).then_some(()))
        .await;
    // Leaving freed one place; the direct room Bo opened took another.
    assert_eq!(
        attempt(&mut ann, channel("again")).await,
        Err((ErrorCode::TooManyRooms, None))
    );
    ann.send(ClientMsg::Leave { room: rooms[0] }).await;
    ann.recv_until(|m| matches!(m, ServerMsg::Left { .. }).then_some(()))
        .await;
    attempt(&mut ann, channel("again"))
        .await
        .expect("room again");
    server.stop().await;
}

#[tokio::test]
async fn the_server_holds_so_many_channels() {
    let server = server(|c| c.max_channels = 3).await;
    let mut ann = server.user("Ann").await;
    let mut made = 0;
    let refusal = loop {
        match attempt(&mut ann, channel(&format!("c{made}"))).await {
            Ok(_) => made += 1,
            Err(refusal) => break refusal,
        }
        assert!(made <= 3, "made more channels than the server holds");
    };
    assert_eq!(refusal, (ErrorCode::TooManyChannels, None));
    // Code rooms are not channels: they are not listed to everyone.
    attempt(&mut ann, code_room()).await.expect("a code room");
    server.stop().await;
}

#[tokio::test]
async fn a_fresh_guest_per_room_still_meets_the_ips_creation_quota() {
    let server = server(|c| c.rooms_created_per_hour = 2).await;
    let mut ann = server.user("Ann").await;
    attempt(&mut ann, code_room()).await.expect("first");
    attempt(&mut ann, channel("second")).await.expect("second");
    let (code, retry) = attempt(&mut ann, code_room()).await.expect_err("third");
    assert_eq!(code, ErrorCode::QuotaExceeded);
    // One more comes after an hour / 2, give or take the test's own run time.
    let retry = retry.expect("says when");
    assert!((1_700_000..=1_800_000).contains(&retry), "{retry}");
    let mut fresh = server.user("Fresh").await;
    assert_eq!(
        attempt(&mut fresh, channel("dodge")).await.map_err(|e| e.0),
        Err(ErrorCode::QuotaExceeded)
    );
    server.stop().await;
}

#[tokio::test]
async fn new_direct_rooms_are_counted_per_opener_and_ip_and_reopening_is_free() {
    let server = server(|c| c.directs_opened_per_hour = 2).await;
    let mut victims = Vec::new();
    for name in ["V1", "V2", "V3"] {
        victims.push(server.user(name).await);
    }
    let mut pest = server.user("Pest").await;
    for victim in &victims[..2] {
        attempt(&mut pest, ClientMsg::OpenDirect { user: victim.id() })
            .await
            .expect("under the quota");
    }
    assert_eq!(
        attempt(
            &mut pest,
            ClientMsg::OpenDirect {
                user: victims[2].id()
            }
        )
        .await
        .map_err(|e| e.0),
        Err(ErrorCode::QuotaExceeded)
    );
    // The third victim got no popup.
    let popup = victims[2]
        .recv_until_within(std::time::Duration::from_millis(300), |m| {
            matches!(m, ServerMsg::Joined { .. }).then_some(())
        })
        .await;
    assert_eq!(popup, None);
    // Opening an existing one again costs nothing.
    for _ in 0..3 {
        attempt(
            &mut pest,
            ClientMsg::OpenDirect {
                user: victims[0].id(),
            },
        )
        .await
        .expect("reopening is free");
    }
    // A new guest from the same address is no way around it.
    let mut pest2 = server.user("Pest2").await;
    assert_eq!(
        attempt(
            &mut pest2,
            ClientMsg::OpenDirect {
                user: victims[2].id()
            }
        )
        .await
        .map_err(|e| e.0),
        Err(ErrorCode::QuotaExceeded)
    );
    server.stop().await;
}

#[tokio::test]
async fn wrong_room_codes_run_out_and_then_no_guess_is_answered() {
    let server = server(|c| c.failed_codes_per_hour = 3).await;
    let mut owner = server.user("Owner").await;
    let room = joined(&mut owner, code_room()).await.expect("room");
    let RoomKind::Code { code } = room.kind else {
        panic!("not a code room: {room:?}")
    };
    assert_eq!(code.len(), validate::ROOM_CODE_LEN);
    let mut guesser = server.user("Guesser").await;
    // A right code costs nothing, however often.
    for _ in 0..5 {
        attempt(&mut guesser, ClientMsg::JoinByCode { code: code.clone() })
            .await
            .expect("the right code");
    }
    let wrong = || ClientMsg::JoinByCode {
        code: "ZZZZZZZZZZZZ".into(),
    };
    for _ in 0..3 {
        assert_eq!(
            attempt(&mut guesser, wrong()).await,
            Err((ErrorCode::NoSuchRoom, None))
        );
    }
    assert_eq!(
        attempt(&mut guesser, wrong()).await.map_err(|e| e.0),
        Err(ErrorCode::QuotaExceeded)
    );
    // With the bucket empty even a right guess is not answered: that is the point.
    let mut next = server.user("Next").await;
    assert_eq!(
        attempt(&mut next, ClientMsg::JoinByCode { code })
            .await
            .map_err(|e| e.0),
        Err(ErrorCode::QuotaExceeded)
    );
    server.stop().await;
}
