//! The attention contract (mentions, read positions, room sizes; `store/attention.rs`),
//! run against every store by `store.rs`'s `contract_tests!`.

use natter_protocol::{Change, Mention, ReadState};
use natter_server::store::attention::ReadPosition;
use natter_server::store::changes::NewChange;

use super::*;

fn mentioning(room: RoomId, sender: &str, client_id: &str, who: Option<&str>) -> NewMessage {
    let name = who.unwrap_or("room");
    NewMessage {
        mentions: vec![Mention {
            user: who.map(|w| UserId(w.into())),
            name: name.into(),
        }],
        ..text(room, sender, client_id, &format!("hey @{name}"))
    }
}

async fn state(store: &dyn Store, user: &str, room: RoomId, seq: u64) -> ReadState {
    store
        .read_state(&UserId(user.into()), room, seq)
        .await
        .expect("store call failed")
        .expect("a member")
}

fn position(user: &str, room: RoomId, seq: u64) -> ReadPosition {
    ReadPosition {
        user: UserId(user.into()),
        room,
        seq,
    }
}

/// Mentions count per person after their read position (`@room` for every member but
/// the sender), edits replace them, deletions remove them; read positions only move
/// forward and only for members.
pub async fn mentions_and_read_positions_count_what_came_after(store: Arc<dyn Store>) {
    let room = store
        .create_channel("attention", false)
        .await
        .expect("store call failed")
        .id;
    for name in ["ann", "bob", "cy"] {
        guest(&*store, name).await;
        store
            .add_member(room, &UserId(name.into()))
            .await
            .expect("store call failed");
    }
    assert_eq!(
        store.member_count(room).await.expect("store call failed"),
        3
    );
    let named = store
        .members_named(room, &["BOB", "Cy", "nobody"])
        .await
        .expect("store call failed");
    let mut ids: Vec<_> = named.into_iter().map(|u| u.id.0).collect();
    ids.sort();
    assert_eq!(ids, ["bob", "cy"]);

    let stored = store
        .append(vec![
            mentioning(room, "ann", "a1", Some("bob")),
            mentioning(room, "ann", "a2", None),
            text(room, "bob", "b1", "plain"),
            mentioning(room, "bob", "b2", Some("bob")),
        ])
        .await
        .expect("store call failed");
    let seqs: Vec<u64> = stored.iter().map(stored_seq).collect();
    let latest = seqs[3];
    let bob = state(&*store, "bob", room, 0).await;
    assert_eq!(
        bob,
        ReadState {
            seq: 0,
            unread: 2,
            mentions: 2,
            through: latest
        }
    );
    let cy = state(&*store, "cy", room, 0).await;
    assert_eq!((cy.unread, cy.mentions), (4, 1));
    let ann = state(&*store, "ann", room, 0).await;
    assert_eq!((ann.unread, ann.mentions), (2, 0));

    // History carries the mentions as stored.
    let page = store
        .history_before(room, u64::MAX, 10, &viewer())
        .await
        .expect("store call failed");
    assert_eq!(page[0].mentions, stored_message(&stored[0]).mentions);

    // An edit replaces the mentions; a deletion removes them.
    let edit = |client_id: &str, target: u64, text: &str, who: &str| NewChange {
        room,
        target,
        by: user("ann"),
        ts: 5,
        client_id: client_id.into(),
        change: Change::Edit {
            text: text.into(),
            mentions: vec![Mention {
                user: Some(UserId(who.into())),
                name: who.into(),
            }],
        },
    };
    store
        .apply_changes(vec![edit("e1", seqs[0], "hey @cy", "cy")])
        .await
        .expect("store call failed");
    store
        .apply_changes(vec![NewChange {
            change: Change::Delete,
            ..edit("e2", seqs[1], "", "cy")
        }])
        .await
        .expect("store call failed");
    assert_eq!(state(&*store, "bob", room, 0).await.mentions, 0);
    assert_eq!(state(&*store, "cy", room, 0).await.mentions, 1);

    // Read positions: forward only, members only; the stored one wins when newer.
    store
        .save_read_positions(&[position("cy", room, seqs[2]), position("nobody", room, 9)])
        .await
        .expect("store call failed");
    store
        .save_read_positions(&[position("cy", room, seqs[0])])
        .await
        .expect("store call failed");
    let cy = state(&*store, "cy", room, 0).await;
    assert_eq!(cy.seq, seqs[2]);
    assert_eq!((cy.unread, cy.mentions), (1, 0));
    let states = store
        .read_states(&UserId("cy".into()))
        .await
        .expect("store call failed");
    assert!(states.contains(&(room, cy)));
    assert_eq!(state(&*store, "cy", room, 1_000).await.seq, cy.through);
    assert!(store
        .read_state(&UserId("nobody".into()), room, 0)
        .await
        .expect("store call failed")
        .is_none());

    // A claim past the newest seq is stored as the newest: later messages still count.
    store
        .save_read_positions(&[position("bob", room, 1_000_000)])
        .await
        .expect("store call failed");
    store
        .append(vec![mentioning(room, "ann", "a3", Some("bob"))])
        .await
        .expect("store call failed");
    let bob = state(&*store, "bob", room, 0).await;
    assert_eq!((bob.unread, bob.mentions), (1, 1));
    // Nothing from someone Bob blocks counts.
    store
        .block(&UserId("bob".into()), &UserId("ann".into()), 10)
        .await
        .expect("store call failed");
    let bob = state(&*store, "bob", room, 0).await;
    assert_eq!((bob.unread, bob.mentions), (0, 0));

    // A newcomer has read what was there before they came.
    guest(&*store, "di").await;
    store
        .add_member(room, &UserId("di".into()))
        .await
        .expect("store call failed");
    let di = state(&*store, "di", room, 0).await;
    assert_eq!((di.seq, di.unread), (di.through, 0));
}

fn stored_message(outcome: &Appended) -> &natter_protocol::ChatMessage {
    match outcome {
        Appended::Stored(m) => m,
        other => panic!("expected a stored message, got {other:?}"),
    }
}
