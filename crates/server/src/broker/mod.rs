//! Fan-out and presence behind a trait: how events reach every node that has
//! recipients for them.
//!
//! The hub never writes to other connections directly: it publishes a [`Delivery`] and
//! delivers what the broker hands back through [`ClusterSink`]. [`LocalBroker`] (the
//! default) hands every delivery straight back to this process. [`redis::RedisBroker`]
//! also forwards it over Redis pub/sub to the other nodes, whose hubs deliver to their
//! own connections, and shares who is online on which node.
//!
//! Pub/sub is at-most-once, so nothing a broker carries is the only copy of anything:
//! messages are in the store before they are published (receivers fill gaps from it),
//! and each node's presence is also kept in Redis for a node that (re)connects.

pub mod redis;

use std::sync::{Arc, RwLock, Weak};

use async_trait::async_trait;
use axum::extract::ws::Utf8Bytes;
use natter_protocol::{ChatMessage, RoomId, Seq, ServerMsg, UserId, UserSummary};
use serde::{Deserialize, Serialize};

/// Identifies one WebSocket connection (a browser tab), unique within this process: a
/// [`Delivery`] names the one to skip (the sender, who gets an ack instead).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnId(pub u64);

/// Names one server process in a cluster (random, new at every start).
pub type NodeId = String;

/// Who should receive a delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// Every online member of a room.
    Room(RoomId),
    /// Every connection of one user.
    User(UserId),
    /// Every ready connection.
    Everyone,
    /// No connection: the delivery only carries its [`Effect`].
    Nobody,
}

/// A change to the hub's indexes that every node applies when the delivery arrives,
/// before it hands the frame to its connections: membership and the channel list
/// change on every node that has the people concerned, not only where the request
/// was made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    /// `user` is now a member of `room`, whose newest seq was at least `seq`.
    Member {
        /// The room.
        room: RoomId,
        /// The new member.
        user: UserId,
        /// Where fan-out of the room starts on a node that did not follow it yet.
        seq: Seq,
    },
    /// `user` left `room`.
    NotMember {
        /// The room.
        room: RoomId,
        /// Who left.
        user: UserId,
    },
    /// A public channel was created.
    Channel {
        /// Its id.
        id: RoomId,
        /// Its name.
        name: String,
    },
    /// The room was deleted.
    RoomGone {
        /// The room.
        room: RoomId,
    },
    /// A signed-in session ended (signed out, or its password was reset): every
    /// connection opened with it closes with [`natter_protocol::CLOSE_SIGNED_OUT`].
    SessionEnded {
        /// SHA-256 (hex) of the session id.
        session: String,
    },
}

/// What a catch-up `history` frame (after a join, or a room found while catching up)
/// brings a connection: everything of `room` up to `newest`. The connection's live
/// messages of the room wait for it, and those it brings are not sent again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatchUp {
    /// The room.
    pub room: RoomId,
    /// The newest seq the connection holds once it has the frame.
    pub newest: Seq,
}

/// One serialized event, its recipients and what it changes. The frame is serialized
/// once and the same bytes are shared by every recipient.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// Recipients.
    pub target: Target,
    /// A connection to skip (the sender, who gets an ack instead); it names a
    /// connection of the publishing node, so other nodes ignore it.
    pub except: Option<ConnId>,
    /// A room message's seq: receivers hand room messages to their connections in seq
    /// order, once each, and fetch any they missed from the store.
    pub seq: Option<Seq>,
    /// The index change that comes with this event, if any.
    pub effect: Option<Effect>,
    /// Set when the frame is a room's catch-up `history` for a user's connections.
    pub catch_up: Option<CatchUp>,
    /// The JSON text frame.
    pub frame: Utf8Bytes,
}

impl Delivery {
    /// A stored message for its room on every node (handed out in seq order there),
    /// skipping the sending connection `except`.
    pub fn room_message(message: &ChatMessage, except: Option<ConnId>) -> Self {
        Delivery {
            except,
            ..Delivery::room_event(
                message.room,
                message.seq,
                &ServerMsg::Message {
                    message: message.clone(),
                },
            )
        }
    }

    /// An event with a seq (a message, a change) for its room on every node, handed
    /// out in seq order there, to every member's connection.
    pub fn room_event(room: RoomId, seq: Seq, msg: &ServerMsg) -> Self {
        Delivery {
            target: Target::Room(room),
            except: None,
            seq: Some(seq),
            effect: None,
            catch_up: None,
            frame: msg.to_json().into(),
        }
    }
}

/// Why a broker operation that needed an answer did not get one.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// Redis failed or could not be reached.
    #[error("redis: {0}")]
    Redis(#[from] ::redis::RedisError),
    /// Not connected to Redis at the moment (it is reconnecting).
    #[error("Redis is not reachable")]
    Unavailable,
}

/// What a broker reports to this node's hub.
pub trait ClusterSink: Send + Sync {
    /// A delivery for this node's connections (from this node or another).
    fn deliver(&self, delivery: &Delivery);
    /// `user` is online on `node` under `name`, or no longer there (`None`).
    fn presence(&self, node: &str, user: &UserId, name: Option<&str>);
    /// Everyone online on `node`, replacing what was known of it (after a (re)connect).
    fn node_snapshot(&self, node: &str, users: Vec<UserSummary>);
    /// `node` stopped answering: its users go offline after the grace period unless it
    /// comes back or they reconnect elsewhere.
    fn node_gone(&self, node: &str);
    /// Events may have been missed (a node died after storing but before publishing):
    /// fetch from the store what the rooms here have not seen.
    fn catch_up(&self);
    /// This node (re)subscribed: anything may have been missed meanwhile — memberships
    /// (a direct room opened elsewhere) as well as messages. Reconcile both with the store.
    fn reconnected(&self);
    /// The users online on this node (with those in their grace period).
    fn local_users(&self) -> Vec<UserSummary>;
    /// Compares what this node delivered with the newest seq of each room in the store
    /// and fetches what is missing: a message lost on the way with none after it to
    /// reveal the gap would otherwise wait for the room's next message.
    fn sweep(&self);
}

/// Carries deliveries and presence to every node (including this one).
#[async_trait]
pub trait Broker: Send + Sync + 'static {
    /// This node's id.
    fn node(&self) -> &str;
    /// Registers this process's hub as the receiver of deliveries and presence.
    fn subscribe(&self, sink: Weak<dyn ClusterSink>);
    /// Sends a delivery on its way: to this node's hub at once, to the others through
    /// the broker. Never blocks: fan-out must not stall the sender.
    fn publish(&self, delivery: Delivery);
    /// Tells the other nodes that `user` is online here under `name`, or no longer
    /// here (`None`). Never blocks.
    fn announce(&self, user: &UserId, name: Option<&str>);
    /// Reserves a display name (its `name_key`) for `user` across the cluster. False
    /// when another user holds it.
    async fn claim_name(&self, user: &UserId, key: &str) -> Result<bool, BrokerError>;
    /// Gives up `user`'s reservation of a name. Never blocks.
    fn release_name(&self, user: &UserId, key: &str);
}

/// Single-process broker: a published delivery is handed to the local hub at once;
/// presence and names live in the hub alone.
pub struct LocalBroker {
    /// The local hub, set once at start-up.
    sink: RwLock<Option<Weak<dyn ClusterSink>>>,
}

impl Default for LocalBroker {
    fn default() -> Self {
        LocalBroker {
            sink: RwLock::new(None),
        }
    }
}

/// This node's sink, if the hub is still alive.
fn upgrade(slot: &RwLock<Option<Weak<dyn ClusterSink>>>) -> Option<Arc<dyn ClusterSink>> {
    slot.read()
        .ok()
        .and_then(|s| s.as_ref().and_then(Weak::upgrade))
}

#[async_trait]
impl Broker for LocalBroker {
    fn node(&self) -> &str {
        "local"
    }

    fn subscribe(&self, sink: Weak<dyn ClusterSink>) {
        if let Ok(mut slot) = self.sink.write() {
            *slot = Some(sink);
        }
    }

    fn publish(&self, delivery: Delivery) {
        if let Some(sink) = upgrade(&self.sink) {
            sink.deliver(&delivery);
        }
    }

    fn announce(&self, _user: &UserId, _name: Option<&str>) {}

    async fn claim_name(&self, _user: &UserId, _key: &str) -> Result<bool, BrokerError> {
        // One node: the hub's own name index decides.
        Ok(true)
    }

    fn release_name(&self, _user: &UserId, _key: &str) {}
}
