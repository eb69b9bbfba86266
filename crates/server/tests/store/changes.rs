//! The change contract (edits, deletions, reactions; `store/changes.rs`), run against
//! every store by `store.rs`'s `contract_tests!`.

use natter_protocol::{Change, ChatMessage, ReplyPreview, MAX_REACTION_KINDS};
use natter_server::store::changes::{ChangeOutcome, ChangeRefusal, NewChange, RoomEvent};

use super::*;

fn new_change(room: RoomId, by: &str, client_id: &str, target: u64, change: Change) -> NewChange {
    NewChange {
        room,
        target,
        by: user(by),
        ts: 5,
        client_id: client_id.into(),
        change,
    }
}

fn react(emoji: &str) -> Change {
    Change::React {
        emoji: emoji.into(),
    }
}

async fn apply(store: &dyn Store, changes: Vec<NewChange>) -> Vec<ChangeOutcome> {
    store
        .apply_changes(changes)
        .await
        .expect("store call failed")
}

/// The seq a change was stored with; panics on anything else.
fn stored(outcome: &ChangeOutcome) -> u64 {
    match outcome {
        ChangeOutcome::Stored(event) => event.seq,
        other => panic!("expected a stored change, got {other:?}"),
    }
}

async fn room_with_messages(store: &dyn Store, name: &str, texts: &[&str]) -> RoomId {
    let room = store
        .create_channel(name, false)
        .await
        .expect("store call failed")
        .id;
    let batch = texts
        .iter()
        .enumerate()
        .map(|(i, t)| text(room, "a", &format!("{name}-{i}"), t))
        .collect();
    store.append(batch).await.expect("store call failed");
    room
}

async fn latest_seq(store: &dyn Store, room: RoomId) -> u64 {
    store
        .room(room)
        .await
        .expect("store call failed")
        .expect("the room exists")
        .latest_seq
}

async fn current(store: &dyn Store, room: RoomId, viewer: &str) -> Vec<ChatMessage> {
    store
        .latest_after(room, 0, 100, &UserId(viewer.into()))
        .await
        .expect("store call failed")
}

pub async fn changes_take_seqs_and_history_shows_the_current_state(store: Arc<dyn Store>) {
    let store = &*store;
    let room = room_with_messages(store, "changes", &["one", "two", "three"]).await;
    let outcomes = apply(
        store,
        vec![
            new_change(
                room,
                "a",
                "e1",
                1,
                Change::Edit {
                    text: "one, edited".into(),
                    mentions: vec![],
                },
            ),
            new_change(room, "b", "r1", 2, react("👍")),
            new_change(room, "c", "r2", 2, react("👍")),
            new_change(room, "b", "r3", 2, react("🎉")),
            new_change(room, "b", "r4", 2, react("👍")),
            new_change(
                room,
                "c",
                "r5",
                2,
                Change::Unreact {
                    emoji: "❌".into()
                },
            ),
            new_change(room, "a", "d1", 3, Change::Delete),
        ],
    )
    .await;
    assert_eq!(
        outcomes.iter().take(4).map(stored).collect::<Vec<_>>(),
        [4, 5, 6, 7],
        "each change takes the room's next seq"
    );
    // Reacting twice, or taking back what was not given, changes nothing and takes no
    // seq: the answer is the message's newest change.
    for unchanged in &outcomes[4..6] {
        assert!(
            matches!(unchanged, ChangeOutcome::Unchanged { seq: 7, .. }),
            "{unchanged:?}"
        );
    }
    assert_eq!(stored(&outcomes[6]), 8);
    assert_eq!(latest_seq(store, room).await, 8);

    let as_b = current(store, room, "b").await;
    assert_eq!(as_b.len(), 3, "changes are not messages");
    assert_eq!(as_b[0].text, "one, edited");
    assert_eq!((as_b[0].edited_at, as_b[0].rev), (Some(5), 4));
    let reactions = &as_b[1].reactions;
    assert_eq!(reactions.len(), 2);
    assert_eq!(
        (
            reactions[0].emoji.as_str(),
            reactions[0].count,
            reactions[0].me
        ),
        ("👍", 2, true)
    );
    assert_eq!(
        reactions[0].users,
        vec![user("b"), user("c")],
        "in the order given"
    );
    assert_eq!(
        (
            reactions[1].emoji.as_str(),
            reactions[1].count,
            reactions[1].me
        ),
        ("🎉", 1, true)
    );
    assert_eq!(as_b[1].rev, 7);
    assert!(as_b[2].deleted);
    assert_eq!((as_b[2].text.as_str(), as_b[2].rev), ("", 8));
    let as_c = current(store, room, "c").await;
    assert!(
        as_c[1].reactions[0].me && !as_c[1].reactions[1].me,
        "`me` is the viewer's"
    );

    // A resume from seq 3 (or 7) learns which held messages changed since.
    let changed = |after| async move {
        store
            .changed_since(room, after, &UserId("b".into()), 100)
            .await
            .expect("store call failed")
            .iter()
            .map(|m| m.seq)
            .collect::<Vec<_>>()
    };
    assert_eq!(changed(3).await, [1, 2, 3]);
    assert_eq!(changed(7).await, [3]);
    assert_eq!(changed(8).await, Vec::<u64>::new());

    // A node filling a gap reads messages and changes back in seq order.
    store
        .append(vec![text(room, "a", "changes-late", "four")])
        .await
        .expect("store call failed");
    let events = store
        .events_after(room, 3, 100)
        .await
        .expect("store call failed");
    assert_eq!(
        events.iter().map(RoomEvent::seq).collect::<Vec<_>>(),
        [4, 5, 6, 7, 8, 9]
    );
    assert!(matches!(
        &events[0],
        RoomEvent::Change(c) if c.change == Change::Edit { text: "one, edited".into(), mentions: vec![] } && c.target == 1
    ));
    assert!(matches!(&events[5], RoomEvent::Message(m) if m.text == "four"));
    let newest = store
        .events_after(room, 3, 2)
        .await
        .expect("store call failed");
    assert_eq!(
        newest.iter().map(RoomEvent::seq).collect::<Vec<_>>(),
        [8, 9]
    );
}

pub async fn changes_are_refused_without_taking_a_seq(store: Arc<dyn Store>) {
    let store = &*store;
    let room = room_with_messages(store, "refusals", &["mine"]).await;
    let mut notice = text(room, "b", "n", "");
    notice.kind = MessageKind::Join;
    notice.client_id = None;
    store.append(vec![notice]).await.expect("store call failed");
    let outcomes = apply(
        store,
        vec![
            new_change(
                room,
                "b",
                "x1",
                1,
                Change::Edit {
                    text: "not yours".into(),
                    mentions: vec![],
                },
            ),
            new_change(room, "b", "x2", 1, Change::Delete),
            new_change(room, "a", "x3", 99, react("👍")),
            new_change(room, "a", "x4", 2, react("👍")),
        ],
    )
    .await;
    assert_eq!(
        outcomes,
        [
            ChangeOutcome::Refused(ChangeRefusal::NotAuthor),
            ChangeOutcome::Refused(ChangeRefusal::NotAuthor),
            ChangeOutcome::Refused(ChangeRefusal::NoSuchMessage),
            ChangeOutcome::Refused(ChangeRefusal::NoSuchMessage),
        ]
    );
    assert_eq!(latest_seq(store, room).await, 2, "no seq taken");

    // At most MAX_REACTION_KINDS different emoji; more of one already there is fine.
    let emoji: Vec<String> = (0..=MAX_REACTION_KINDS)
        .map(|i| {
            char::from_u32(0x1F600 + i as u32)
                .expect("an emoji")
                .to_string()
        })
        .collect();
    let reactions = emoji
        .iter()
        .enumerate()
        .map(|(i, e)| new_change(room, "b", &format!("many-{i}"), 1, react(e)))
        .collect();
    let outcomes = apply(store, reactions).await;
    assert!(outcomes[..MAX_REACTION_KINDS]
        .iter()
        .all(|o| matches!(o, ChangeOutcome::Stored(_))));
    assert_eq!(
        outcomes[MAX_REACTION_KINDS],
        ChangeOutcome::Refused(ChangeRefusal::TooManyReactions)
    );
    let more = apply(
        store,
        vec![new_change(room, "c", "same", 1, react(&emoji[0]))],
    )
    .await;
    assert!(matches!(more[0], ChangeOutcome::Stored(_)));

    // A deleted message takes no more changes.
    apply(
        store,
        vec![new_change(room, "a", "gone", 1, Change::Delete)],
    )
    .await;
    let after = latest_seq(store, room).await;
    let outcomes = apply(
        store,
        vec![
            new_change(
                room,
                "a",
                "late-edit",
                1,
                Change::Edit {
                    text: "again".into(),
                    mentions: vec![],
                },
            ),
            new_change(room, "c", "late-react", 1, react("👍")),
        ],
    )
    .await;
    assert!(outcomes
        .iter()
        .all(|o| *o == ChangeOutcome::Refused(ChangeRefusal::NoSuchMessage)));
    assert_eq!(latest_seq(store, room).await, after);
}

pub async fn a_resent_change_is_stored_once(store: Arc<dyn Store>) {
    let store = &*store;
    let room = room_with_messages(store, "resends", &["typo"]).await;
    let edit = || {
        new_change(
            room,
            "a",
            "edit-1",
            1,
            Change::Edit {
                text: "fixed".into(),
                mentions: vec![],
            },
        )
    };
    let first = apply(store, vec![edit(), edit()]).await;
    let again = apply(store, vec![edit()]).await;
    let seq = stored(&first[0]);
    for resent in [&first[1], &again[0]] {
        assert!(
            matches!(resent, ChangeOutcome::Duplicate(e) if e.seq == seq
                && e.change == Change::Edit { text: "fixed".into(), mentions: vec![] }),
            "{resent:?}"
        );
    }
    let reaction = || new_change(room, "b", "react-1", 1, react("👍"));
    let first = stored(&apply(store, vec![reaction()]).await[0]);
    let again = apply(store, vec![reaction()]).await;
    assert!(matches!(&again[0], ChangeOutcome::Duplicate(e) if e.seq == first));
    assert_eq!(latest_seq(store, room).await, first, "resends take no seq");
    assert_eq!(current(store, room, "b").await[0].reactions[0].count, 1);
}

pub async fn a_deleted_message_takes_its_files_and_replies_keep_their_place(store: Arc<dyn Store>) {
    let store = &*store;
    let ann = guest(store, "ann").await;
    let room = store
        .create_channel("deleting", true)
        .await
        .expect("store call failed")
        .id;
    let file = FileRecord {
        id: FileId("picture".into()),
        uploader: ann.clone(),
        blob: "blob".into(),
        thumb: None,
        name: "p.png".into(),
        mime: "image/png".into(),
        size: 10,
        width: Some(1),
        height: Some(1),
        created_at: 1,
        room: None,
    };
    store.create_file(&file).await.expect("store call failed");
    let mut original = text(room, &ann.0, "orig", "look at this");
    original.attachments = vec![file.attachment()];
    store
        .append(vec![original])
        .await
        .expect("store call failed");
    let mut reply = text(room, "b", "reply", "nice");
    reply.reply_to = Some(ReplyPreview {
        seq: 1,
        sender: user(&ann.0),
        text: "look at this".into(),
        deleted: false,
    });
    store.append(vec![reply]).await.expect("store call failed");
    let before = current(store, room, "b").await;
    let quoted = before[1].reply_to.as_ref().expect("a reply preview");
    assert_eq!(
        (quoted.seq, quoted.text.as_str(), quoted.deleted),
        (1, "look at this", false)
    );

    let outcome = apply(
        store,
        vec![new_change(room, &ann.0, "del", 1, Change::Delete)],
    )
    .await;
    assert_eq!(stored(&outcome[0]), 3);
    let after = current(store, room, "b").await;
    assert!(after[0].deleted && after[0].text.is_empty() && after[0].attachments.is_empty());
    let quoted = after[1]
        .reply_to
        .as_ref()
        .expect("the reply keeps its quote");
    assert_eq!(
        (quoted.seq, quoted.text.as_str(), quoted.deleted),
        (1, "", true)
    );
    assert!(
        store
            .file(&file.id)
            .await
            .expect("store call failed")
            .is_none(),
        "the deleted message's file is gone"
    );

    // Delete-when-empty still removes everything, changes included.
    store
        .add_member(room, &ann)
        .await
        .expect("store call failed");
    let departure = store
        .remove_member(room, &ann)
        .await
        .expect("store call failed");
    assert!(departure.room_deleted);
    let late = apply(store, vec![new_change(room, "b", "late", 2, react("👍"))]).await;
    assert!(matches!(
        late[0],
        ChangeOutcome::Refused(ChangeRefusal::NoSuchMessage) | ChangeOutcome::NoSuchRoom
    ));
    assert!(store
        .events_after(room, 0, 100)
        .await
        .expect("store call failed")
        .is_empty());
}
