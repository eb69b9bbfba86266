//! The hub's own tests: presence windows, and its cluster logic with other nodes
//! played by calling its [`ClusterSink`] side directly.

use std::sync::Arc;
use std::time::Duration;

use natter_protocol::{MessageKind, RoomId, Seq, ServerMsg, UserId, UserSummary};

use super::presence::presence_window;
use super::{HubSettings, OutboxQueue, RoomHub, GAP_WAIT};
use crate::broker::{ClusterSink, Delivery, LocalBroker, Target};
use crate::store::memory::MemoryStore;
use crate::store::{NewMessage, Store};

#[test]
fn the_presence_window_grows_with_the_crowd() {
    assert_eq!(presence_window(0), Duration::from_millis(100));
    assert_eq!(presence_window(1_000), Duration::from_millis(100));
    assert_eq!(presence_window(10_000), Duration::from_secs(1));
}

/// The hub's cluster logic over the in-memory store, with "other nodes" played by
/// calling the hub's [`ClusterSink`] side directly. (The real thing, with processes,
/// PostgreSQL and Redis, is `tests/cluster.rs`; this runs everywhere, in
/// milliseconds, with paused time.)
struct Node {
    hub: RoomHub,
    store: Arc<dyn Store>,
}

const GRACE: Duration = Duration::from_secs(5);

impl Node {
    async fn start() -> Node {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let settings = HubSettings {
            presence_grace: GRACE,
            outbound_queue: 64,
            outbound_queue_bytes: 1 << 20,
        };
        let hub = RoomHub::start(store.clone(), Arc::new(LocalBroker::default()), settings)
            .await
            .expect("hub starts");
        Node { hub, store }
    }

    fn sink(&self) -> &dyn ClusterSink {
        &*self.hub.inner
    }

    /// A user online here in `rooms` (followed from the given seqs); their frames.
    fn connect(&self, id: &str, rooms: &[(RoomId, Seq)]) -> OutboxQueue {
        let (outbox, frames) = self.hub.open_outbox();
        let user = UserId(id.into());
        let ready = ServerMsg::Ready {
            me: UserSummary {
                id: user.clone(),
                name: id.into(),
            },
            credentials: None,
            rooms: Vec::new(),
            blocked: Vec::new(),
        };
        self.hub
            .register(&user, id, rooms, &outbox, ready)
            .expect("registers");
        frames
    }

    async fn store_messages(&self, room: RoomId, count: usize) -> Vec<Seq> {
        let batch = (0..count)
            .map(|i| NewMessage {
                room,
                sender: UserSummary {
                    id: UserId("elsewhere".into()),
                    name: "Elsewhere".into(),
                },
                ts: 1,
                kind: MessageKind::Text,
                text: format!("m{i}"),
                client_id: None,
                attachments: Vec::new(),
                reply_to: None,
                mentions: Vec::new(),
            })
            .collect();
        self.store
            .append(batch)
            .await
            .expect("stored")
            .into_iter()
            .filter_map(|outcome| match outcome {
                crate::store::Appended::Stored(m) => Some(m.seq),
                _ => None,
            })
            .collect()
    }
}

/// What another node published: a stored message of `room`.
fn remote_message(room: RoomId, seq: Seq) -> Delivery {
    let message = natter_protocol::ChatMessage::new(
        room,
        seq,
        UserSummary {
            id: UserId("elsewhere".into()),
            name: "Elsewhere".into(),
        },
        1,
        MessageKind::Text,
        format!("m{}", seq - 1),
    );
    Delivery {
        target: Target::Room(room),
        except: None,
        seq: Some(seq),
        effect: None,
        catch_up: None,
        frame: ServerMsg::Message { message }.to_json().into(),
    }
}

/// The seqs of the room messages among the frames received so far.
fn seqs(frames: &mut OutboxQueue) -> Vec<Seq> {
    let mut seqs = Vec::new();
    while let Some(item) = frames.try_recv() {
        let Some(frame) = item.frame() else { continue };
        if let Ok(ServerMsg::Message { message }) = serde_json::from_str(frame.as_str()) {
            seqs.push(message.seq);
        }
    }
    seqs
}

#[tokio::test(start_paused = true)]
async fn room_messages_go_out_in_seq_order_once_and_gaps_are_read_from_the_store() {
    let node = Node::start().await;
    let room = RoomId(1);
    let stored = node.store_messages(room, 5).await;
    assert_eq!(stored, vec![1, 2, 3, 4, 5]);
    let mut frames = node.connect("ann", &[(room, 0)]);

    // 2 overtakes 1: it waits for it; then both go out, in order.
    node.sink().deliver(&remote_message(room, 2));
    assert_eq!(seqs(&mut frames), Vec::<Seq>::new());
    node.sink().deliver(&remote_message(room, 1));
    assert_eq!(seqs(&mut frames), vec![1, 2]);
    // A repeat (a resend's original published again) goes nowhere.
    node.sink().deliver(&remote_message(room, 2));
    assert_eq!(seqs(&mut frames), Vec::<Seq>::new());
    // 3 and 4 are lost on the way; 5 arrives and waits, then the store fills in.
    node.sink().deliver(&remote_message(room, 5));
    tokio::time::sleep(GAP_WAIT / 2).await;
    assert_eq!(seqs(&mut frames), Vec::<Seq>::new());
    tokio::time::sleep(GAP_WAIT * 2).await;
    assert_eq!(seqs(&mut frames), vec![3, 4, 5]);
}

#[tokio::test(start_paused = true)]
async fn a_sweep_finds_a_lost_message_with_nothing_after_it() {
    let node = Node::start().await;
    let room = RoomId(1);
    let mut frames = node.connect("ann", &[(room, 0)]);
    node.store_messages(room, 1).await;
    // Its delivery never came; nothing after it shows the gap.
    node.sink().sweep();
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(seqs(&mut frames), vec![1]);
}

/// The presence frames' online and offline user ids, in order.
fn presence(frames: &mut OutboxQueue) -> (Vec<String>, Vec<String>) {
    let (mut online, mut offline) = (Vec::new(), Vec::new());
    while let Some(item) = frames.try_recv() {
        let Some(frame) = item.frame() else { continue };
        if let Ok(ServerMsg::Presence {
            online: on,
            offline: off,
        }) = serde_json::from_str(frame.as_str())
        {
            online.extend(on.into_iter().map(|u| u.id.0));
            offline.extend(off.into_iter().map(|u| u.0));
        }
    }
    (online, offline)
}

#[tokio::test(start_paused = true)]
async fn a_user_on_several_nodes_is_online_until_the_last_lets_go() {
    let node = Node::start().await;
    let mut frames = node.connect("ann", &[]);
    let bob = UserId("bob".into());
    node.sink().presence("n1", &bob, Some("Bob"));
    node.sink().presence("n2", &bob, Some("Bob"));
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(presence(&mut frames).0.contains(&"bob".to_string()));
    // One of his nodes lets go: nothing to see.
    node.sink().presence("n1", &bob, None);
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(presence(&mut frames), (vec![], vec![]));
    // The other node dies: he goes offline once the grace period is over.
    node.sink().node_gone("n2");
    tokio::time::sleep(GRACE / 2).await;
    assert_eq!(presence(&mut frames), (vec![], vec![]));
    tokio::time::sleep(GRACE).await;
    assert_eq!(presence(&mut frames).1, vec!["bob".to_string()]);
}

#[tokio::test(start_paused = true)]
async fn a_node_that_answers_again_within_the_grace_period_keeps_its_users() {
    let node = Node::start().await;
    let mut frames = node.connect("ann", &[]);
    let bob = UserSummary {
        id: UserId("bob".into()),
        name: "Bob".into(),
    };
    node.sink().presence("n1", &bob.id, Some("Bob"));
    node.sink().node_gone("n1");
    node.sink().node_snapshot("n1", vec![bob]);
    tokio::time::sleep(GRACE * 2).await;
    assert!(presence(&mut frames).1.is_empty(), "nobody went offline");
}
