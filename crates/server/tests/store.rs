//! The `Store` contract, run against every store: SQLite on a real file, PostgreSQL (a
//! fresh schema per test; skipped loudly when unreachable, except in CI), and the
//! in-memory store. Each contract test is written once, as an async function taking
//! the store, and instantiated per store by `contract_tests!`.
//!
//! Why one long file: the contract is written once and run against every store;
//! splitting it would split the contract. (Changes to messages and attention, contracts
//! of their own, are in `store/changes.rs` and `store/attention.rs`.)

#[path = "store/attention.rs"]
mod attention;
#[path = "store/changes.rs"]
mod changes;
mod common;
use attention::*;
use changes::*;

use std::any::Any;
use std::sync::Arc;

use common::services::PgSchema;

use natter_protocol::{FileId, MessageKind, RoomId, UserId, UserSummary, DEFAULT_CHANNEL};
use natter_server::store::accounts::{
    NewAccount, NewMail, SessionRecord, TokenPurpose, ACCOUNT_SECRET_HASH,
};
use natter_server::store::files::FileRecord;
use natter_server::store::memory::MemoryStore;
use natter_server::store::postgres::PgStore;
use natter_server::store::sqlite::SqliteStore;
use natter_server::store::{
    Appended, Blocking, Departure, NewMessage, Store, StoreError, StoreResult, UserRecord,
};

fn user(id: &str) -> UserSummary {
    UserSummary {
        id: UserId(id.into()),
        name: id.into(),
    }
}

/// Whose history is read (reactions say whether they are theirs).
fn viewer() -> UserId {
    UserId("viewer".into())
}

fn text(room: RoomId, sender: &str, client_id: &str, text: &str) -> NewMessage {
    NewMessage {
        room,
        sender: user(sender),
        ts: 1,
        kind: MessageKind::Text,
        text: text.into(),
        client_id: Some(client_id.into()),
        attachments: Vec::new(),
        reply_to: None,
        mentions: Vec::new(),
    }
}

fn stored_seq(outcome: &Appended) -> u64 {
    match outcome {
        Appended::Stored(m) => m.seq,
        other => panic!("expected a stored message, got {other:?}"),
    }
}

async fn default_channel_exists_and_names_are_unique_in_any_case(store: Arc<dyn Store>) {
    let general = store
        .find_channel(DEFAULT_CHANNEL)
        .await
        .expect("store call failed");
    assert!(general.is_some(), "a fresh store holds #general");
    store
        .create_channel("Rust", false)
        .await
        .expect("store call failed");
    assert!(matches!(
        store.create_channel("rust", false).await,
        Err(StoreError::Conflict)
    ));
    assert!(store
        .find_channel("RUST")
        .await
        .expect("store call failed")
        .is_some());
    assert_eq!(
        store
            .list_channels()
            .await
            .expect("store call failed")
            .len(),
        2
    );
}

async fn seqs_are_gap_free_per_room_across_batches(store: Arc<dyn Store>) {
    let a = store
        .create_channel("a", false)
        .await
        .expect("store call failed")
        .id;
    let b = store
        .create_channel("b", false)
        .await
        .expect("store call failed")
        .id;
    let first = store
        .append(vec![
            text(a, "u1", "1", "a1"),
            text(b, "u1", "2", "b1"),
            text(a, "u2", "1", "a2"),
        ])
        .await
        .expect("store call failed");
    let seqs: Vec<_> = first.iter().map(stored_seq).collect();
    assert_eq!(seqs, [1, 1, 2]);
    let second = store
        .append(vec![text(a, "u1", "3", "a3"), text(b, "u2", "2", "b2")])
        .await
        .expect("store call failed");
    assert_eq!(second.iter().map(stored_seq).collect::<Vec<_>>(), [3, 2]);
    assert_eq!(
        store
            .room(a)
            .await
            .expect("store call failed")
            .expect("store call failed")
            .latest_seq,
        3
    );
    let history = store
        .history_before(a, 100, 10, &viewer())
        .await
        .expect("store call failed");
    let texts: Vec<_> = history.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(texts, ["a1", "a2", "a3"]);
}

async fn a_resend_is_stored_once_and_returns_the_original(store: Arc<dyn Store>) {
    let room = store
        .create_channel("r", false)
        .await
        .expect("store call failed")
        .id;
    let first = store
        .append(vec![text(room, "u1", "x", "hello")])
        .await
        .expect("store call failed");
    let seq = stored_seq(&first[0]);
    // Resent in a later batch, and twice within one batch.
    let again = store
        .append(vec![
            text(room, "u1", "x", "hello"),
            text(room, "u1", "y", "new"),
            text(room, "u1", "y", "new"),
        ])
        .await
        .expect("store call failed");
    assert!(matches!(&again[0], Appended::Duplicate(m) if m.seq == seq && m.text == "hello"));
    assert!(matches!(&again[1], Appended::Stored(m) if m.seq == seq + 1));
    assert!(matches!(&again[2], Appended::Duplicate(m) if m.seq == seq + 1));
    // Another sender may use the same client id.
    let other = store
        .append(vec![text(room, "u2", "x", "mine")])
        .await
        .expect("store call failed");
    assert_eq!(stored_seq(&other[0]), seq + 2);
    assert_eq!(
        store
            .room(room)
            .await
            .expect("store call failed")
            .expect("store call failed")
            .latest_seq,
        seq + 2
    );
}

async fn a_deleted_room_refuses_messages_and_forgets_history(store: Arc<dyn Store>) {
    let room = store
        .create_code_room("ABCDEFGH", true)
        .await
        .expect("store call failed");
    assert!(matches!(
        store.create_code_room("ABCDEFGH", false).await,
        Err(StoreError::Conflict)
    ));
    store
        .append(vec![text(room.id, "u1", "1", "bye")])
        .await
        .expect("store call failed");
    guest(&*store, "u1").await;
    store
        .add_member(room.id, &UserId("u1".into()))
        .await
        .expect("store call failed");
    let departure = store
        .remove_member(room.id, &UserId("u1".into()))
        .await
        .expect("store call failed");
    assert!(departure.room_deleted, "{departure:?}");
    let outcomes = store
        .append(vec![text(room.id, "u1", "2", "anyone?")])
        .await
        .expect("store call failed");
    assert_eq!(outcomes, [Appended::NoSuchRoom]);
    assert!(store
        .find_code_room("ABCDEFGH")
        .await
        .expect("store call failed")
        .is_none());
    assert!(store
        .history_before(room.id, 100, 10, &viewer())
        .await
        .expect("store call failed")
        .is_empty());
}

async fn history_pages_from_either_end(store: Arc<dyn Store>) {
    let room = store
        .create_channel("long", false)
        .await
        .expect("store call failed")
        .id;
    let batch = (1..=25)
        .map(|n| text(room, "u1", &n.to_string(), &format!("m{n}")))
        .collect();
    store.append(batch).await.expect("store call failed");
    let seqs = |page: StoreResult<Vec<natter_protocol::ChatMessage>>| -> Vec<u64> {
        let page = page.expect("store call failed");
        page.iter().map(|m| m.seq).collect()
    };
    assert_eq!(
        seqs(store.history_before(room, 26, 3, &viewer()).await),
        [23, 24, 25]
    );
    assert_eq!(
        seqs(store.history_before(room, 3, 10, &viewer()).await),
        [1, 2]
    );
    assert_eq!(
        seqs(store.history_before(room, 1, 10, &viewer()).await),
        Vec::<u64>::new()
    );
    assert_eq!(
        seqs(store.latest_after(room, 20, 3, &viewer()).await),
        [23, 24, 25]
    );
    assert_eq!(
        seqs(store.latest_after(room, 23, 10, &viewer()).await),
        [24, 25]
    );
    assert_eq!(
        seqs(store.latest_after(room, 25, 10, &viewer()).await),
        Vec::<u64>::new()
    );
}

async fn members_and_direct_rooms(store: Arc<dyn Store>) {
    for id in ["ann", "bob"] {
        guest(&*store, id).await;
    }
    let ann = UserId("ann".into());
    let bob = UserId("bob".into());
    let (dm, created) = store
        .open_direct(&bob, &ann)
        .await
        .expect("store call failed");
    assert!(created);
    let (again, created) = store
        .open_direct(&ann, &bob)
        .await
        .expect("store call failed");
    assert_eq!((again.id, created), (dm.id, false));
    let channel = store
        .create_channel("team", true)
        .await
        .expect("store call failed")
        .id;
    assert!(store
        .add_member(channel, &ann)
        .await
        .expect("store call failed"));
    assert!(!store
        .add_member(channel, &ann)
        .await
        .expect("store call failed"));
    assert!(store
        .add_member(channel, &bob)
        .await
        .expect("store call failed"));
    let mut rooms: Vec<_> = store
        .rooms_of(&ann)
        .await
        .expect("store call failed")
        .iter()
        .map(|r| r.id)
        .collect();
    rooms.sort();
    assert_eq!(rooms, [dm.id, channel]);
    assert_eq!(
        store
            .remove_member(channel, &ann)
            .await
            .expect("store call failed"),
        Departure {
            remaining: 1,
            room_deleted: false
        }
    );
    store
        .rename_user(&ann, "Ann2")
        .await
        .expect("store call failed");
    assert_eq!(
        store
            .find_user(&ann)
            .await
            .expect("store call failed")
            .expect("store call failed")
            .name,
        "Ann2"
    );
}

async fn appends_succeed_while_other_writes_run(store: Arc<dyn Store>) {
    let room = store
        .create_channel("busy", false)
        .await
        .expect("store call failed")
        .id;
    let mut tasks = Vec::new();
    for n in 0..40 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            if n % 2 == 0 {
                let outcome = store
                    .append(vec![text(room, "u1", &format!("c{n}"), "hi")])
                    .await
                    .expect("an append failed because another connection wrote");
                assert!(matches!(outcome[0], Appended::Stored(_)));
            } else {
                let user = guest(&*store, &format!("u{n}")).await;
                store
                    .add_member(room, &user)
                    .await
                    .expect("store call failed");
            }
        }));
    }
    for task in tasks {
        task.await.expect("task panicked");
    }
    assert_eq!(
        store
            .room(room)
            .await
            .expect("store call failed")
            .map(|r| r.latest_seq),
        Some(20)
    );
}

/// The last member leaves a delete-when-empty room while someone joins it, over and
/// over: either the join came first (the room lives, with the joiner in it) or the
/// room is gone and the join says so — never a joiner in a deleted room.
async fn a_room_is_never_deleted_under_someone_who_just_joined(store: Arc<dyn Store>) {
    let leaver = guest(&*store, "leaver").await;
    let joiner = guest(&*store, "joiner").await;
    let (mut kept, mut deleted) = (0, 0);
    for n in 0..60 {
        let room = store
            .create_code_room(&format!("RACE{n:08}"), true)
            .await
            .expect("store call failed")
            .id;
        store
            .add_member(room, &leaver)
            .await
            .expect("store call failed");
        let (leave, join) = {
            let (a, b) = (store.clone(), store.clone());
            let (leaver, joiner) = (leaver.clone(), joiner.clone());
            tokio::join!(
                tokio::spawn(async move { a.remove_member(room, &leaver).await }),
                tokio::spawn(async move { b.add_member(room, &joiner).await }),
            )
        };
        let leave = leave.expect("task").expect("leave");
        let exists = store.room(room).await.expect("store call failed").is_some();
        match join.expect("task") {
            Ok(_) => {
                assert!(exists, "room {n} was deleted under a member who joined");
                assert!(!leave.room_deleted && leave.remaining <= 1, "{leave:?}");
                kept += 1;
            }
            Err(StoreError::NotFound) => {
                assert!(!exists && leave.room_deleted, "{leave:?}");
                deleted += 1;
            }
            Err(other) => panic!("join failed: {other}"),
        }
        let members_left = store
            .rooms_of(&joiner)
            .await
            .expect("store call failed")
            .iter()
            .any(|r| r.id == room);
        assert_eq!(members_left, exists, "room {n}");
    }
    assert_eq!(kept + deleted, 60);
}

/// Guests nobody used for the expiry and sign-ups never verified are deleted, with
/// their memberships (and code rooms that were to go when empty); the name and email
/// of an unverified sign-up are free again. Returning guests and accounts stay.
async fn unused_identities_expire(store: Arc<dyn Store>) {
    const DAY: i64 = 24 * 3600 * 1000;
    let now = natter_server::clock::now_ms();
    let guest = |id: &str| UserRecord {
        id: UserId(id.into()),
        secret_hash: "h".into(),
        name: id.into(),
    };
    for id in ["gone", "back"] {
        store
            .create_user(&guest(id))
            .await
            .expect("store call failed");
    }
    let (gone, back) = (UserId("gone".into()), UserId("back".into()));
    let room = store
        .create_code_room("STALEROOMABC", true)
        .await
        .expect("store call failed")
        .id;
    let general = store
        .find_channel(DEFAULT_CHANNEL)
        .await
        .expect("store call failed")
        .expect("general")
        .id;
    for user in [&gone, &back] {
        store
            .add_member(general, user)
            .await
            .expect("store call failed");
    }
    store
        .add_member(room, &gone)
        .await
        .expect("store call failed");
    store
        .create_account(&account("unverified", "Una", "una@example.org"), now)
        .await
        .expect("store call failed");
    store
        .create_account(&account("verified", "Vera", "vera@example.org"), now)
        .await
        .expect("store call failed");
    store
        .mark_verified(&UserId("verified".into()), now)
        .await
        .expect("store call failed");
    // Forty days on: "back" said hello again yesterday, "gone" never did.
    let later = now + 40 * DAY;
    store
        .seen(&back, later - DAY)
        .await
        .expect("store call failed");
    let deleted = store
        .delete_stale(later - 30 * DAY, later - DAY)
        .await
        .expect("store call failed");
    assert_eq!(deleted, 2, "the unused guest and the unverified sign-up");
    for (id, kept) in [
        ("gone", false),
        ("back", true),
        ("unverified", false),
        ("verified", true),
    ] {
        let found = store
            .find_user(&UserId(id.into()))
            .await
            .expect("store call failed");
        assert_eq!(found.is_some(), kept, "{id}");
    }
    assert!(store.room(room).await.expect("store call failed").is_none());
    let members: Vec<RoomId> = store
        .rooms_of(&back)
        .await
        .expect("store call failed")
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(members, [general]);
    // The unverified sign-up's name and email can be taken again.
    assert_eq!(
        store
            .name_owner(&natter_protocol::validate::name_key("Una"))
            .await
            .expect("store call failed"),
        None
    );
    store
        .create_account(&account("again", "Una", "una@example.org"), later)
        .await
        .expect("the name and email are free again");
    // Nothing else is stale now.
    assert_eq!(
        store
            .delete_stale(later - 30 * DAY, later - DAY)
            .await
            .expect("store call failed"),
        0
    );
}

/// Creates the guest `id` (named like its id) and returns its id.
/// A block hides the pair's direct room from the blocker only, is limited, comes
/// undone, and goes with either user when they expire.
async fn files_are_sent_once_with_their_message_and_unsent_ones_expire(store: Arc<dyn Store>) {
    let ann = guest(&*store, "ann").await;
    let room = store
        .create_channel("pictures", false)
        .await
        .expect("store call failed")
        .id;
    let file = |id: &str, created_at: i64| FileRecord {
        id: FileId(id.into()),
        uploader: ann.clone(),
        blob: format!("blob-{id}"),
        thumb: Some(format!("thumb-{id}")),
        name: format!("{id}.jpg"),
        mime: "image/jpeg".into(),
        size: 1_000,
        width: Some(800),
        height: Some(600),
        created_at,
        room: None,
    };
    let sent = file("sent", 1);
    let old = file("old", 1);
    let fresh = file("fresh", 10_000);
    for f in [&sent, &old, &fresh] {
        store.create_file(f).await.expect("store call failed");
    }
    assert!(matches!(
        store.create_file(&sent).await,
        Err(StoreError::Conflict)
    ));
    for (at, bytes) in [(1, 700), (10_000, 1_000)] {
        store
            .log_upload(&ann, at, bytes)
            .await
            .expect("store call failed");
    }
    assert_eq!(
        store
            .uploaded_bytes_since(&ann, 5)
            .await
            .expect("store call failed"),
        1_000,
        "only the uploads at or after the time count"
    );

    let mut message = text(room, "ann", "c-1", "");
    message.attachments = vec![sent.attachment()];
    let stored = store
        .append(vec![message])
        .await
        .expect("store call failed");
    let seq = stored_seq(&stored[0]);
    let history = store
        .history_before(room, seq + 1, 10, &viewer())
        .await
        .expect("store call failed");
    assert_eq!(history[0].attachments, [sent.attachment()]);
    let now_sent = store
        .file(&sent.id)
        .await
        .expect("store call failed")
        .expect("the file");
    assert_eq!(now_sent.room, Some(room));

    // Unsent and older than the cut: deleted, its blobs handed back; sent or newer: kept.
    let mut freed = store
        .delete_unsent_files(5_000)
        .await
        .expect("store call failed");
    freed.sort();
    assert_eq!(freed, ["blob-old", "thumb-old"]);
    assert!(store
        .file(&old.id)
        .await
        .expect("store call failed")
        .is_none());
    assert!(store
        .file(&fresh.id)
        .await
        .expect("store call failed")
        .is_some());
    assert!(store
        .blob_in_use("thumb-sent")
        .await
        .expect("store call failed"));
    assert!(!store
        .blob_in_use("blob-old")
        .await
        .expect("store call failed"));
    // The log before the cut went too; what came after still counts.
    assert_eq!(
        store
            .uploaded_bytes_since(&ann, 0)
            .await
            .expect("store call failed"),
        1_000
    );
}

async fn the_channel_directory_counts_members_busiest_first(store: Arc<dyn Store>) {
    let ann = guest(&*store, "ann").await;
    let bo = guest(&*store, "bo").await;
    let busy = store
        .create_channel("Busy", false)
        .await
        .expect("store call failed");
    store
        .create_channel("alone", false)
        .await
        .expect("store call failed");
    let general = store
        .find_channel(DEFAULT_CHANNEL)
        .await
        .expect("store call failed")
        .expect("general exists");
    for user in [&ann, &bo] {
        store
            .add_member(busy.id, user)
            .await
            .expect("store call failed");
    }
    store
        .add_member(general.id, &ann)
        .await
        .expect("store call failed");
    // Code and direct rooms are not channels: never listed.
    store
        .create_code_room("ABCDEFGHJKLM", false)
        .await
        .expect("store call failed");
    store
        .open_direct(&ann, &bo)
        .await
        .expect("store call failed");
    let listed: Vec<(String, u32)> = store
        .channel_directory()
        .await
        .expect("store call failed")
        .into_iter()
        .map(|l| (l.name, l.members))
        .collect();
    assert_eq!(
        listed,
        [
            ("Busy".to_string(), 2),
            ("general".to_string(), 1),
            ("alone".to_string(), 0)
        ]
    );
}

async fn blocks_hide_a_direct_room_from_the_blocker_only(store: Arc<dyn Store>) {
    let ann = guest(&*store, "ann").await;
    let pest = guest(&*store, "pest").await;
    let bo = guest(&*store, "bo").await;
    let (direct, _) = store
        .open_direct(&ann, &pest)
        .await
        .expect("store call failed");
    let rooms = |user: UserId| {
        let store = store.clone();
        async move {
            let rooms = store.rooms_of(&user).await.expect("store call failed");
            rooms.iter().map(|r| r.id).collect::<Vec<RoomId>>()
        }
    };
    assert_eq!(rooms(ann.clone()).await, [direct.id]);

    let blocked = store
        .block(&ann, &pest, 1)
        .await
        .expect("store call failed");
    assert_eq!(blocked, Blocking::Added);
    assert_eq!(
        rooms(ann.clone()).await,
        [] as [RoomId; 0],
        "hidden from the blocker"
    );
    assert_eq!(
        rooms(pest.clone()).await,
        [direct.id],
        "the other still has it"
    );
    assert!(store.blocks(&ann, &pest).await.expect("store call failed"));
    assert!(!store.blocks(&pest, &ann).await.expect("store call failed"));
    assert_eq!(
        store
            .block(&ann, &pest, 1)
            .await
            .expect("store call failed"),
        Blocking::Already
    );
    assert_eq!(
        store.block(&ann, &bo, 1).await.expect("store call failed"),
        Blocking::Full,
        "one block allowed"
    );
    assert!(matches!(
        store.block(&ann, &UserId("nobody".into()), 5).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(
        store.block(&ann, &bo, 5).await.expect("store call failed"),
        Blocking::Added
    );
    let names: Vec<UserSummary> = store.blocked_by(&ann).await.expect("store call failed");
    assert_eq!(names, [user("pest"), user("bo")], "longest blocked first");

    assert!(store.unblock(&ann, &pest).await.expect("store call failed"));
    assert!(!store.unblock(&ann, &pest).await.expect("store call failed"));
    assert_eq!(
        rooms(ann.clone()).await,
        [direct.id],
        "back after unblocking"
    );

    // An expiring guest takes its blocks along, both ways.
    store.block(&bo, &ann, 5).await.expect("store call failed");
    let later = natter_server::clock::now_ms() + 1000;
    store
        .seen(&ann, later + 40 * 24 * 3600 * 1000)
        .await
        .expect("store call failed");
    store
        .delete_stale(later, 0)
        .await
        .expect("store call failed");
    assert!(store
        .find_user(&bo)
        .await
        .expect("store call failed")
        .is_none());
    assert_eq!(
        store.blocked_by(&ann).await.expect("store call failed"),
        [] as [UserSummary; 0]
    );
    assert!(!store.blocks(&bo, &ann).await.expect("store call failed"));
}

async fn guest(store: &dyn Store, id: &str) -> UserId {
    let user = UserId(id.into());
    store
        .create_user(&UserRecord {
            id: user.clone(),
            secret_hash: "h".into(),
            name: id.into(),
        })
        .await
        .expect("store call failed");
    user
}

fn account(id: &str, name: &str, email: &str) -> NewAccount {
    NewAccount {
        user: UserRecord {
            id: UserId(id.into()),
            secret_hash: ACCOUNT_SECRET_HASH.into(),
            name: name.into(),
        },
        email: email.into(),
        password_hash: format!("hash-of-{id}"),
    }
}

async fn accounts_reserve_their_email_and_name_in_any_case(store: Arc<dyn Store>) {
    let ann = account("a1", "Ann", "Ann@Example.org");
    store
        .create_account(&ann, 1)
        .await
        .expect("store call failed");
    let found = store
        .account_by_email("ann@example.org")
        .await
        .expect("store call failed")
        .expect("found by its email key");
    assert_eq!(found.user_id, UserId("a1".into()));
    assert_eq!(
        (found.name.as_str(), found.email.as_str()),
        ("Ann", "Ann@Example.org")
    );
    assert!(!found.verified);
    assert_eq!(
        store
            .account(&UserId("a1".into()))
            .await
            .expect("store call failed"),
        Some(found)
    );
    assert_eq!(
        store
            .find_user(&UserId("a1".into()))
            .await
            .expect("store call failed")
            .map(|u| u.name),
        Some("Ann".into()),
        "the account's user is a user like any other"
    );
    for (clash, why) in [
        (
            account("a2", "Other", "ANN@example.org"),
            "same email, other case",
        ),
        (
            account("a3", "aNN", "b@example.org"),
            "same name, other case",
        ),
        (account("a1", "Fresh", "c@example.org"), "same user id"),
    ] {
        assert!(
            matches!(
                store.create_account(&clash, 1).await,
                Err(StoreError::Conflict)
            ),
            "{why}"
        );
    }
    assert!(
        store
            .find_user(&UserId("a3".into()))
            .await
            .expect("store call failed")
            .is_none(),
        "a refused account leaves no user behind"
    );
    assert_eq!(
        store.name_owner("ann").await.expect("store call failed"),
        Some(UserId("a1".into()))
    );
    assert_eq!(
        store.name_owner("bob").await.expect("store call failed"),
        None
    );

    store
        .create_account(&account("b1", "Bob", "bob@example.org"), 1)
        .await
        .expect("store call failed");
    assert!(matches!(
        store.rename_user(&UserId("b1".into()), "ANN").await,
        Err(StoreError::Conflict)
    ));
    store
        .rename_user(&UserId("a1".into()), "Annie")
        .await
        .expect("store call failed");
    assert_eq!(
        store.name_owner("ann").await.expect("store call failed"),
        None,
        "the old name is free"
    );
    assert_eq!(
        store.name_owner("annie").await.expect("store call failed"),
        Some(UserId("a1".into()))
    );
    store
        .mark_verified(&UserId("a1".into()), 2)
        .await
        .expect("store call failed");
    let ann = store
        .account(&UserId("a1".into()))
        .await
        .expect("store call failed")
        .expect("ann");
    assert!(ann.verified);
    assert_eq!(ann.name, "Annie");
}

async fn sessions_end_alone_or_all_at_once(store: Arc<dyn Store>) {
    store
        .create_account(&account("a1", "Ann", "ann@example.org"), 1)
        .await
        .expect("store call failed");
    let session = |id: &str, created: i64, seen: i64| SessionRecord {
        id_hash: id.into(),
        user_id: UserId("a1".into()),
        created_at: created,
        last_seen_at: seen,
    };
    for s in [
        session("s1", 10, 10),
        session("s2", 20, 20),
        session("s3", 30, 30),
    ] {
        store.create_session(&s).await.expect("store call failed");
    }
    store
        .touch_session("s1", 100)
        .await
        .expect("store call failed");
    assert_eq!(
        store.session("s1").await.expect("store call failed"),
        Some(session("s1", 10, 100))
    );
    assert!(store.delete_session("s2").await.expect("store call failed"));
    assert!(!store.delete_session("s2").await.expect("store call failed"));
    assert_eq!(store.session("s2").await.expect("store call failed"), None);
    // idle before 50 (s3 last seen 30) or made before 5 (none): s3 goes.
    let deleted = store
        .delete_expired(50, 5, 0)
        .await
        .expect("store call failed");
    assert_eq!(deleted, 1);
    assert!(store
        .session("s3")
        .await
        .expect("store call failed")
        .is_none());
    assert!(store
        .session("s1")
        .await
        .expect("store call failed")
        .is_some());
    store
        .create_session(&session("s4", 40, 40))
        .await
        .expect("store call failed");
    let mut ended = store
        .set_password(&UserId("a1".into()), "new-hash")
        .await
        .expect("store call failed");
    ended.sort();
    assert_eq!(
        ended,
        vec!["s1".to_string(), "s4".to_string()],
        "a new password ends every session"
    );
    let ann = store
        .account(&UserId("a1".into()))
        .await
        .expect("store call failed")
        .expect("ann");
    assert_eq!(ann.password_hash, "new-hash");
}

async fn tokens_work_once_for_their_purpose_until_they_expire(store: Arc<dyn Store>) {
    store
        .create_account(&account("a1", "Ann", "ann@example.org"), 1)
        .await
        .expect("store call failed");
    let ann = UserId("a1".into());
    store
        .create_token("t-verify", &ann, TokenPurpose::Verify, 1000)
        .await
        .expect("store call failed");
    store
        .create_token("t-reset", &ann, TokenPurpose::Reset, 1000)
        .await
        .expect("store call failed");
    store
        .create_token("t-old", &ann, TokenPurpose::Reset, 500)
        .await
        .expect("store call failed");
    let use_token = |hash: &'static str, purpose, now| {
        let store = store.clone();
        async move {
            store
                .use_token(hash, purpose, now)
                .await
                .expect("store call failed")
        }
    };
    assert_eq!(
        use_token("t-verify", TokenPurpose::Reset, 100).await,
        None,
        "wrong purpose"
    );
    assert_eq!(
        use_token("t-nope", TokenPurpose::Verify, 100).await,
        None,
        "unknown"
    );
    assert_eq!(
        use_token("t-old", TokenPurpose::Reset, 500).await,
        None,
        "expired"
    );
    assert_eq!(
        use_token("t-verify", TokenPurpose::Verify, 100).await,
        Some(ann.clone())
    );
    assert_eq!(
        use_token("t-verify", TokenPurpose::Verify, 101).await,
        None,
        "used"
    );
    // Two uses at once: exactly one wins.
    let (a, b) = tokio::join!(
        use_token("t-reset", TokenPurpose::Reset, 100),
        use_token("t-reset", TokenPurpose::Reset, 100)
    );
    assert_eq!(a.is_some() as u8 + b.is_some() as u8, 1, "{a:?} {b:?}");
    assert_eq!(
        store
            .delete_expired(0, 0, 900)
            .await
            .expect("store call failed"),
        1,
        "t-old went"
    );
}

async fn queued_mail_is_claimed_once_and_retried(store: Arc<dyn Store>) {
    let mail = |to: &str| NewMail {
        to: to.into(),
        subject: "Hi".into(),
        body: format!("to {to}"),
    };
    store
        .enqueue_mail(&mail("a@example.org"), 100)
        .await
        .expect("store call failed");
    store
        .enqueue_mail(&mail("b@example.org"), 100)
        .await
        .expect("store call failed");
    store
        .enqueue_mail(&mail("later@example.org"), 500)
        .await
        .expect("store call failed");
    assert_eq!(store.queued_mail().await.expect("store call failed"), 3);
    let due = store.due_mail(100, 10).await.expect("store call failed");
    let recipients: Vec<&str> = due.iter().map(|m| m.mail.to.as_str()).collect();
    assert_eq!(
        recipients,
        ["a@example.org", "b@example.org"],
        "oldest first, only what is due"
    );
    assert_eq!(due[0].attempts, 1);
    let (first, second) = (due[0].id, due[1].id);
    assert!(store
        .claim_mail(first, 100, 1000)
        .await
        .expect("store call failed"));
    assert!(
        !store
            .claim_mail(first, 100, 1000)
            .await
            .expect("store call failed"),
        "claimed once"
    );
    assert_eq!(
        store
            .due_mail(100, 10)
            .await
            .expect("store call failed")
            .len(),
        1
    );
    store
        .mail_failed(first, 200, "connection refused")
        .await
        .expect("store call failed");
    let again = store.due_mail(200, 1).await.expect("store call failed");
    assert_eq!(
        (again[0].id, again[0].attempts),
        (first, 2),
        "retried, counted"
    );
    store.mail_sent(first).await.expect("store call failed");
    assert!(store
        .claim_mail(second, 100, 1000)
        .await
        .expect("store call failed"));
    store.mail_sent(second).await.expect("store call failed");
    assert_eq!(store.queued_mail().await.expect("store call failed"), 1);
    assert_eq!(
        store
            .due_mail(499, 10)
            .await
            .expect("store call failed")
            .len(),
        0
    );
}

/// Instantiates every contract test for one store: `$open` makes a fresh store (and
/// the temporary directory that must outlive it).
/// What a store needs kept alive beside it (a directory, a schema).
type Keep = Box<dyn Any + Send>;

macro_rules! contract_tests {
    ($store:ident, |$test_name:ident| $open:block, [$($test:ident),* $(,)?]) => {
        mod $store {
            use super::*;

            /// The store and what must outlive it; `None` when the store's service is
            /// unreachable (the test is then skipped, loudly).
            async fn open($test_name: &str) -> Option<(Arc<dyn Store>, Keep)> $open

            $(
                // Several worker threads, so concurrent writes really overlap.
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $test() {
                    let name = concat!(stringify!($store), "::", stringify!($test));
                    let Some((store, _keep)) = open(name).await else {
                        return;
                    };
                    super::$test(store).await;
                }
            )*
        }
    };
}

/// Every contract test above, for one store.
macro_rules! all_contract_tests {
    ($store:ident, |$test_name:ident| $open:block) => {
        contract_tests!(
            $store,
            |$test_name| $open,
            [
                default_channel_exists_and_names_are_unique_in_any_case,
                seqs_are_gap_free_per_room_across_batches,
                a_resend_is_stored_once_and_returns_the_original,
                a_deleted_room_refuses_messages_and_forgets_history,
                history_pages_from_either_end,
                appends_succeed_while_other_writes_run,
                members_and_direct_rooms,
                a_room_is_never_deleted_under_someone_who_just_joined,
                unused_identities_expire,
                blocks_hide_a_direct_room_from_the_blocker_only,
                the_channel_directory_counts_members_busiest_first,
                files_are_sent_once_with_their_message_and_unsent_ones_expire,
                accounts_reserve_their_email_and_name_in_any_case,
                sessions_end_alone_or_all_at_once,
                tokens_work_once_for_their_purpose_until_they_expire,
                queued_mail_is_claimed_once_and_retried,
                changes_take_seqs_and_history_shows_the_current_state,
                changes_are_refused_without_taking_a_seq,
                a_resent_change_is_stored_once,
                a_deleted_message_takes_its_files_and_replies_keep_their_place,
                mentions_and_read_positions_count_what_came_after,
            ]
        );
    };
}

all_contract_tests!(sqlite, |_test| {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let url = format!("sqlite://{}/store.db", dir.path().display());
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&url).await.expect("store call failed"));
    Some((store, Box::new(dir)))
});

all_contract_tests!(postgres, |test| {
    let schema = PgSchema::fresh(test).await?;
    let store: Arc<dyn Store> =
        Arc::new(PgStore::open(&schema.url).await.expect("store call failed"));
    Some((store, Box::new(schema)))
});

all_contract_tests!(memory, |_test| {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    Some((store, Box::new(())))
});

/// On SQLite, a burst of other writes (people joining, guests arriving, sessions
/// touched) does not queue messages behind it: an append started after 300 joins were
/// under way is stored long before the last of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_messages_do_not_wait_behind_a_burst_of_other_writes() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    const JOINS: usize = 300;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let url = format!("sqlite://{}/store.db", dir.path().display());
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&url).await.expect("store opens"));
    let room = store
        .create_channel("busy", false)
        .await
        .expect("store call failed")
        .id;
    for n in 0..JOINS {
        guest(&*store, &format!("u{n}")).await;
    }
    let joined = Arc::new(AtomicUsize::new(0));
    let mut joins = Vec::new();
    for n in 0..JOINS {
        let (store, joined) = (store.clone(), joined.clone());
        joins.push(tokio::spawn(async move {
            store
                .add_member(room, &UserId(format!("u{n}")))
                .await
                .expect("a join failed");
            joined.fetch_add(1, Ordering::SeqCst);
        }));
    }
    // The joins are under way (and, were writes taking turns, all queued) before the
    // message comes.
    while joined.load(Ordering::SeqCst) < 5 {
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    let outcome = store
        .append(vec![text(room, "u0", "c1", "hi")])
        .await
        .expect("the append failed");
    let joined_before = joined.load(Ordering::SeqCst);
    assert!(matches!(outcome[0], Appended::Stored(_)));
    for join in joins {
        join.await.expect("join task");
    }
    assert!(
        joined_before < JOINS * 3 / 4,
        "the message waited for {joined_before} of {JOINS} joins"
    );
}

/// Two nodes on one PostgreSQL database write into the same rooms at once: every seq
/// is used exactly once, in commit order, and a resend that reaches both nodes at the
/// same time is stored once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_nodes_share_gap_free_seqs() {
    let Some(schema) = PgSchema::fresh("postgres_nodes_share_gap_free_seqs").await else {
        return;
    };
    let node_a = PgStore::open(&schema.url).await.expect("node a");
    let node_b = PgStore::open(&schema.url).await.expect("node b");
    let room = node_a
        .create_channel("shared", false)
        .await
        .expect("store call failed")
        .id;
    let other = node_b
        .create_channel("other", false)
        .await
        .expect("store call failed")
        .id;
    const WRITERS: usize = 8;
    const BATCHES: usize = 25;
    let mut tasks = Vec::new();
    for writer in 0..WRITERS {
        let store = if writer % 2 == 0 {
            node_a.clone()
        } else {
            node_b.clone()
        };
        tasks.push(tokio::spawn(async move {
            for batch in 0..BATCHES {
                // Rooms in both orders, so lock order matters.
                let (first, second) = if writer % 2 == 0 {
                    (room, other)
                } else {
                    (other, room)
                };
                let id = |n: usize| format!("w{writer}-b{batch}-{n}");
                store
                    .append(vec![
                        text(first, "u", &id(0), "x"),
                        text(second, "u", &id(1), "y"),
                        text(first, "u", &id(2), "z"),
                    ])
                    .await
                    .expect("a concurrent append failed");
            }
        }));
    }
    // The same resend on both nodes at once.
    let resend = vec![text(room, "r", "same", "once")];
    let (a, b) = tokio::join!(node_a.append(resend.clone()), node_b.append(resend));
    for task in tasks {
        task.await.expect("writer panicked");
    }
    let outcomes = [a.expect("node a"), b.expect("node b")];
    let stored = outcomes
        .iter()
        .filter(|o| matches!(o[0], Appended::Stored(_)))
        .count();
    assert_eq!(stored, 1, "one node stored the resend, the other found it");
    // Each batch puts two messages in one room and one in the other; half the writers
    // start with each room, and `room` also holds the resend.
    let per_room = WRITERS * BATCHES * 3 / 2;
    for (room, expected) in [(room, per_room + 1), (other, per_room)] {
        let mut seqs = Vec::new();
        let mut before = u64::MAX;
        loop {
            let page = node_a
                .history_before(room, before, 100, &viewer())
                .await
                .expect("store call failed");
            let Some(first) = page.first() else { break };
            before = first.seq;
            seqs.extend(page.iter().rev().map(|m| m.seq));
        }
        seqs.reverse();
        assert_eq!(
            seqs,
            (1..=expected as u64).collect::<Vec<_>>(),
            "gap-free, each seq once"
        );
    }
}
