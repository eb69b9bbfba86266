//! The `Store` contract, run against every store: SQLite on a real file, and the
//! in-memory store. Each contract test is written once, as an async function taking
//! the store, and instantiated per store by `contract_tests!`.

use std::sync::Arc;

use natter_protocol::{MessageKind, RoomId, UserId, UserSummary, DEFAULT_CHANNEL};
use natter_server::store::memory::MemoryStore;
use natter_server::store::sqlite::SqliteStore;
use natter_server::store::{Appended, NewMessage, Store, StoreError, StoreResult, UserRecord};

fn user(id: &str) -> UserSummary {
    UserSummary {
        id: UserId(id.into()),
        name: id.into(),
    }
}

fn text(room: RoomId, sender: &str, client_id: &str, text: &str) -> NewMessage {
    NewMessage {
        room,
        sender: user(sender),
        ts: 1,
        kind: MessageKind::Text,
        text: text.into(),
        client_id: Some(client_id.into()),
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
        .history_before(a, 100, 10)
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
    store.delete_room(room.id).await.expect("store call failed");
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
        .history_before(room.id, 100, 10)
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
    assert_eq!(seqs(store.history_before(room, 26, 3).await), [23, 24, 25]);
    assert_eq!(seqs(store.history_before(room, 3, 10).await), [1, 2]);
    assert_eq!(
        seqs(store.history_before(room, 1, 10).await),
        Vec::<u64>::new()
    );
    assert_eq!(seqs(store.latest_after(room, 20, 3).await), [23, 24, 25]);
    assert_eq!(seqs(store.latest_after(room, 23, 10).await), [24, 25]);
    assert_eq!(
        seqs(store.latest_after(room, 25, 10).await),
        Vec::<u64>::new()
    );
}

async fn members_and_direct_rooms(store: Arc<dyn Store>) {
    for id in ["ann", "bob"] {
        store
            .create_user(&UserRecord {
                id: UserId(id.into()),
                secret_hash: "h".into(),
                name: id.into(),
            })
            .await
            .expect("store call failed");
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
        1
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
                let user = UserId(format!("u{n}"));
                store
                    .create_user(&UserRecord {
                        id: user.clone(),
                        secret_hash: "h".into(),
                        name: user.0.clone(),
                    })
                    .await
                    .expect("store call failed");
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

/// Instantiates every contract test for one store: `$open` makes a fresh store (and
/// the temporary directory that must outlive it).
macro_rules! contract_tests {
    ($store:ident, $open:expr, [$($test:ident),* $(,)?]) => {
        mod $store {
            use super::*;

            async fn open() -> (Arc<dyn Store>, Option<tempfile::TempDir>) {
                $open
            }

            $(
                // Several worker threads, so concurrent writes really overlap.
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $test() {
                    let (store, _dir) = open().await;
                    super::$test(store).await;
                }
            )*
        }
    };
}

/// Every contract test above, for one store.
macro_rules! all_contract_tests {
    ($store:ident, $open:expr) => {
        contract_tests!(
            $store,
            $open,
            [
                default_channel_exists_and_names_are_unique_in_any_case,
                seqs_are_gap_free_per_room_across_batches,
                a_resend_is_stored_once_and_returns_the_original,
                a_deleted_room_refuses_messages_and_forgets_history,
                history_pages_from_either_end,
                appends_succeed_while_other_writes_run,
                members_and_direct_rooms,
            ]
        );
    };
}

all_contract_tests!(sqlite, {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let url = format!("sqlite://{}/store.db", dir.path().display());
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&url).await.expect("store call failed"));
    (store, Some(dir))
});

all_contract_tests!(memory, {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    (store, None)
});
