//! The hub: who is online, under which name, in which rooms, and how an event reaches
//! their connections.
//!
//! Shared state is one [`RoomHub`] handle (a `Clone` around an `Arc`) with a std
//! `RwLock` over [`HubState`]. The lock is only taken inside short synchronous methods
//! here and never across an `.await`: fan-out is a non-blocking `try_send` per
//! recipient, so one slow client can never stall a room. Everything that waits (the
//! database, Redis) happens outside the lock, in `session.rs`, the append queue and
//! the tasks spawned here.
//!
//! The hub is written for several nodes; with one node its broker simply hands
//! everything back at once:
//! - **Presence** is a board of who is online on which node (this one included). A
//!   user is online while any node has them; people see one presence change when the
//!   first node gains them and when the last loses them, so tabs on several nodes count
//!   as one and a reconnect to another node within the grace period shows nothing.
//! - **Room messages** carry their seq. Each node hands a room's messages to its
//!   connections in seq order, once each: one that arrives early waits for the ones
//!   before it, and if they do not come within [`GAP_WAIT`] (pub/sub dropped them, or
//!   their node died before publishing) they are read from the store.
//! - **Membership and channel changes** travel with the event that announces them
//!   ([`Effect`]), so the node of the person concerned updates its index too.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard, Weak};
use std::time::Duration;

use axum::extract::ws::Utf8Bytes;
use natter_protocol::validate::name_key;
use natter_protocol::{
    ChannelInfo, ChatMessage, RoomId, RoomInfo, RoomKind, Seq, ServerMsg, UserId, UserSummary,
    HISTORY_PAGE, SNAPSHOT_CHUNK,
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::appender::AppendQueue;
use crate::broker::{Broker, ClusterSink, Delivery, Effect, NodeId, Target};
use crate::store::{RoomRecord, RoomRecordKind, Store, StoreError};

/// Identifies one WebSocket connection (a browser tab), unique within this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnId(pub u64);

/// The sending half of one connection's bounded outbound queue.
#[derive(Debug, Clone)]
pub struct Outbox {
    /// Which connection this is.
    pub id: ConnId,
    /// Frames waiting for the connection's writer.
    tx: mpsc::Sender<Utf8Bytes>,
    /// Cancelled when the queue overflowed: the connection task then closes the socket
    /// with 1013 and the client resumes after reconnecting.
    overflowed: CancellationToken,
}

impl Outbox {
    /// A new outbound queue holding at most `capacity` frames.
    pub fn new(id: ConnId, capacity: usize) -> (Self, mpsc::Receiver<Utf8Bytes>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        (
            Outbox {
                id,
                tx,
                overflowed: CancellationToken::new(),
            },
            rx,
        )
    }

    /// Queues a frame without waiting. A full queue marks the connection as too slow.
    pub fn push(&self, frame: Utf8Bytes) {
        if let Err(mpsc::error::TrySendError::Full(_)) = self.tx.try_send(frame) {
            self.overflowed.cancel();
        }
    }

    /// Serializes and queues one message for this connection only.
    pub fn send(&self, msg: &ServerMsg) {
        self.push(msg.to_json().into());
    }

    /// Resolves once the queue has overflowed.
    pub fn overflowed(&self) -> &CancellationToken {
        &self.overflowed
    }
}

/// This node's part of an online user: their connections here.
#[derive(Debug)]
struct LocalUser {
    /// Open connections (tabs) on this node that finished `hello`.
    conns: HashMap<ConnId, Outbox>,
    /// Rooms this user is a member of (mirrors the store while online).
    rooms: HashSet<RoomId>,
    /// Bumped whenever the last connection closes; a pending offline timer only fires
    /// if the epoch is unchanged, so a reconnect inside the grace period cancels it.
    epoch: u64,
}

/// A user online somewhere in the cluster.
#[derive(Debug)]
struct OnlineUser {
    /// Current display name.
    name: String,
    /// The nodes that have this user (with a connection or in a grace period).
    nodes: HashSet<NodeId>,
}

/// One room's fan-out on this node.
#[derive(Debug, Default)]
struct RoomFanout {
    /// Members online on this node.
    members: HashSet<UserId>,
    /// The newest seq handed to them; the next message must be the one after.
    delivered: Seq,
    /// Messages that arrived ahead of a missing one, by seq, with the connection to skip.
    early: BTreeMap<Seq, (Utf8Bytes, Option<ConnId>)>,
    /// A task is already waiting to fill the gap before `early`.
    filling: bool,
}

impl RoomFanout {
    fn starting_after(seq: Seq) -> Self {
        RoomFanout {
            delivered: seq,
            ..RoomFanout::default()
        }
    }

    /// The first seq missing before the early messages, if any are waiting.
    fn gap(&self) -> Option<Seq> {
        self.early
            .keys()
            .next()
            .filter(|first| **first > self.delivered + 1)
            .map(|_| self.delivered + 1)
    }
}

/// Everything the hub knows, guarded by one lock.
#[derive(Debug, Default)]
struct HubState {
    /// Users with connections on this node, or inside their grace period here.
    local: HashMap<UserId, LocalUser>,
    /// Everyone online on any node: the presence board.
    online: HashMap<UserId, OnlineUser>,
    /// `name_key` of every online user's name → the user holding it.
    names: HashMap<String, UserId>,
    /// Rooms with members on this node: the fan-out index.
    rooms: HashMap<RoomId, RoomFanout>,
    /// Every public channel (id → name), kept in memory for the snapshot after `ready`.
    channels: BTreeMap<RoomId, String>,
    /// Nodes that stopped answering and whose users go offline when their grace ends.
    departing: HashSet<NodeId>,
    /// Signed-in sessions with connections here (by session id hash): ending one
    /// closes them all.
    sessions: HashMap<String, SessionConnections>,
}

/// The connections of one signed-in session on this node.
#[derive(Debug)]
struct SessionConnections {
    /// Cancelled when the session ends.
    ended: CancellationToken,
    /// How many connections hold a [`SessionWatch`] for it.
    connections: usize,
}

/// Held by a connection opened with a session cookie: `ended()` resolves when the
/// session is signed out on any node. Dropping it forgets the connection.
pub struct SessionWatch {
    /// The hub to tell when this connection goes.
    hub: RoomHub,
    /// The session's id hash.
    session: String,
    /// Cancelled when the session ends.
    ended: CancellationToken,
}

impl SessionWatch {
    /// Resolves once the session has ended.
    pub fn ended(&self) -> &CancellationToken {
        &self.ended
    }
}

impl Drop for SessionWatch {
    fn drop(&mut self) {
        let mut state = self.hub.write();
        if let Some(entry) = state.sessions.get_mut(&self.session) {
            entry.connections = entry.connections.saturating_sub(1);
            if entry.connections == 0 {
                state.sessions.remove(&self.session);
            }
        }
    }
}

/// What one presence update means to the people watching.
enum PresenceChange {
    /// Nothing they can see.
    Unchanged,
    /// Came online, or is online under a new name.
    Online(UserSummary),
    /// No node has them any more.
    Offline(UserId),
}

impl HubState {
    /// Records that `node` has `user` under `name` (`None`: no longer has them).
    fn set_presence(&mut self, node: &str, user: &UserId, name: Option<&str>) -> PresenceChange {
        match name {
            Some(name) => {
                let key = name_key(name);
                let entry = self
                    .online
                    .entry(user.clone())
                    .or_insert_with(|| OnlineUser {
                        name: String::new(),
                        nodes: HashSet::new(),
                    });
                entry.nodes.insert(node.to_string());
                if entry.name == name {
                    return PresenceChange::Unchanged;
                }
                let old = std::mem::replace(&mut entry.name, name.to_string());
                if self.names.get(&name_key(&old)) == Some(user) {
                    self.names.remove(&name_key(&old));
                }
                self.names.insert(key, user.clone());
                PresenceChange::Online(UserSummary {
                    id: user.clone(),
                    name: name.to_string(),
                })
            }
            None => {
                let Some(entry) = self.online.get_mut(user) else {
                    return PresenceChange::Unchanged;
                };
                entry.nodes.remove(node);
                if !entry.nodes.is_empty() {
                    return PresenceChange::Unchanged;
                }
                if let Some(gone) = self.online.remove(user) {
                    let key = name_key(&gone.name);
                    if self.names.get(&key) == Some(user) {
                        self.names.remove(&key);
                    }
                }
                PresenceChange::Offline(user.clone())
            }
        }
    }

    /// Indexes a local user as a member of `room`, following the room from `seq` on if
    /// this node did not follow it yet.
    fn index_member(&mut self, room: RoomId, user: &UserId, seq: Seq) {
        let Some(local) = self.local.get_mut(user) else {
            return;
        };
        local.rooms.insert(room);
        self.rooms
            .entry(room)
            .or_insert_with(|| RoomFanout::starting_after(seq))
            .members
            .insert(user.clone());
    }

    /// Removes `user` from the fan-out of `room`; a room nobody here is in is forgotten.
    fn unindex_member(&mut self, room: RoomId, user: &UserId) {
        if let Some(local) = self.local.get_mut(user) {
            local.rooms.remove(&room);
        }
        if let Some(fanout) = self.rooms.get_mut(&room) {
            fanout.members.remove(user);
            if fanout.members.is_empty() {
                self.rooms.remove(&room);
            }
        }
    }

    fn apply(&mut self, effect: &Effect) {
        match effect {
            Effect::Member { room, user, seq } => self.index_member(*room, user, *seq),
            Effect::NotMember { room, user } => self.unindex_member(*room, user),
            Effect::Channel { id, name } => {
                self.channels.insert(*id, name.clone());
            }
            Effect::SessionEnded { session } => {
                if let Some(ended) = self.sessions.remove(session) {
                    ended.ended.cancel();
                }
            }
            Effect::RoomGone { room } => {
                self.channels.remove(room);
                if let Some(fanout) = self.rooms.remove(room) {
                    for user in fanout.members {
                        if let Some(local) = self.local.get_mut(&user) {
                            local.rooms.remove(room);
                        }
                    }
                }
            }
        }
    }
}

/// Queues `frame` for every connection here of `members`, except `except`.
fn send_to_members(
    members: &HashSet<UserId>,
    local: &HashMap<UserId, LocalUser>,
    frame: &Utf8Bytes,
    except: Option<ConnId>,
) {
    for member in members {
        if let Some(user) = local.get(member) {
            send_to_user(user, frame, except);
        }
    }
}

fn send_to_user(user: &LocalUser, frame: &Utf8Bytes, except: Option<ConnId>) {
    for (id, outbox) in &user.conns {
        if Some(*id) != except {
            outbox.push(frame.clone());
        }
    }
}

/// Hands the early messages that now follow `delivered` to the room's members.
fn release_early(fanout: &mut RoomFanout, local: &HashMap<UserId, LocalUser>) {
    while let Some(entry) = fanout.early.first_entry() {
        let seq = *entry.key();
        if seq <= fanout.delivered {
            entry.remove();
        } else if seq == fanout.delivered + 1 {
            let (frame, except) = entry.remove();
            send_to_members(&fanout.members, local, &frame, except);
            fanout.delivered = seq;
        } else {
            return;
        }
    }
}

/// How long presence changes are collected before they go out as one frame. A crowd
/// connecting at once then costs each client one frame per window instead of one per
/// person (with N people, N² frames become N per window).
const PRESENCE_WINDOW: Duration = Duration::from_millis(100);

/// Presence frames go to everyone online, so each window costs one delivery per
/// connection. The window grows with the number of people online (this much per
/// person) so that presence costs at most about 10,000 deliveries a second however
/// many are online: 100 ms up to 1,000 people, 1 s at 10,000.
const PRESENCE_WINDOW_PER_USER: Duration = Duration::from_micros(100);

/// How long a room message that arrived ahead of a missing one waits for it before the
/// missing ones are read from the store. Between nodes, messages of one room reach a
/// node out of order by well under a millisecond; this only runs out when pub/sub
/// really lost something.
pub const GAP_WAIT: Duration = Duration::from_millis(100);

/// How long to collect presence changes with `online` people online.
fn presence_window(online: usize) -> Duration {
    PRESENCE_WINDOW.max(PRESENCE_WINDOW_PER_USER * u32::try_from(online).unwrap_or(u32::MAX))
}

/// Hands `items` to `send` in vectors of at most [`SNAPSHOT_CHUNK`] (none when empty).
fn in_chunks<T>(mut items: impl Iterator<Item = T>, mut send: impl FnMut(Vec<T>)) {
    loop {
        let chunk: Vec<T> = items.by_ref().take(SNAPSHOT_CHUNK).collect();
        if chunk.is_empty() {
            return;
        }
        send(chunk);
    }
}

/// Presence changes not yet sent; a later change of the same user replaces an earlier.
#[derive(Debug, Default)]
struct PresenceBatch {
    online: HashMap<UserId, UserSummary>,
    offline: HashSet<UserId>,
}

/// Another online user holds the requested display name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the name is held by someone else online")]
pub struct NameTaken;

/// A hub reference that does not keep the hub alive (held by its own tasks).
#[derive(Clone)]
pub(crate) struct WeakHub(Weak<HubInner>);

impl WeakHub {
    /// The hub, unless it has been dropped.
    pub(crate) fn upgrade(&self) -> Option<RoomHub> {
        self.0.upgrade().map(|inner| RoomHub { inner })
    }
}

/// Shared handle to the hub.
#[derive(Clone)]
pub struct RoomHub {
    /// The shared state and services.
    inner: Arc<HubInner>,
}

struct HubInner {
    state: RwLock<HubState>,
    /// Durable state.
    store: Arc<dyn Store>,
    /// Fan-out and presence across nodes.
    broker: Arc<dyn Broker>,
    /// The single, batching writer of messages.
    appender: AppendQueue,
    /// Where connection ids come from.
    next_conn: AtomicU64,
    /// See [`crate::Config::presence_grace_ms`].
    presence_grace: Duration,
    /// See [`crate::Config::outbound_queue`].
    outbound_queue: usize,
    /// Presence changes waiting for the next window.
    presence: Mutex<PresenceBatch>,
    /// This hub, for the tasks it spawns from `&self` callbacks.
    me: WeakHub,
}

impl RoomHub {
    /// Starts a hub over `store` and `broker`, with the channel list loaded.
    pub async fn start(
        store: Arc<dyn Store>,
        broker: Arc<dyn Broker>,
        presence_grace: Duration,
        outbound_queue: usize,
    ) -> Result<Self, crate::store::StoreError> {
        let channels = store.list_channels().await?;
        let inner = Arc::new_cyclic(|weak: &Weak<HubInner>| {
            let appender = AppendQueue::start(store.clone(), WeakHub(weak.clone()));
            let mut state = HubState::default();
            for channel in channels {
                if let crate::store::RoomRecordKind::Channel { name } = channel.kind {
                    state.channels.insert(channel.id, name);
                }
            }
            HubInner {
                state: RwLock::new(state),
                store,
                broker: broker.clone(),
                appender,
                next_conn: AtomicU64::new(1),
                presence_grace,
                outbound_queue,
                presence: Mutex::new(PresenceBatch::default()),
                me: WeakHub(weak.clone()),
            }
        });
        let presence_hub = WeakHub(Arc::downgrade(&inner));
        tokio::spawn(async move {
            let mut window = PRESENCE_WINDOW;
            loop {
                tokio::time::sleep(window).await;
                match presence_hub.upgrade() {
                    Some(hub) => {
                        hub.flush_presence();
                        window = presence_window(hub.read().online.len());
                    }
                    None => return,
                }
            }
        });
        let sink: Weak<HubInner> = Arc::downgrade(&inner);
        broker.subscribe(sink);
        Ok(RoomHub { inner })
    }

    /// The store, for the session's reads and membership writes.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// The append queue, through which every message is stored and then fanned out.
    pub fn appender(&self) -> &AppendQueue {
        &self.inner.appender
    }

    /// Opens an outbound queue for a new connection.
    pub fn open_outbox(&self) -> (Outbox, mpsc::Receiver<Utf8Bytes>) {
        let id = ConnId(self.inner.next_conn.fetch_add(1, Ordering::Relaxed));
        Outbox::new(id, self.inner.outbound_queue)
    }

    /// Stops the append queue once it has stored what it already accepted.
    pub async fn shutdown(&self) {
        self.inner.appender.drain().await;
    }

    fn node(&self) -> &str {
        self.inner.broker.node()
    }

    fn read(&self) -> RwLockReadGuard<'_, HubState> {
        self.inner.read()
    }

    fn write(&self) -> RwLockWriteGuard<'_, HubState> {
        self.inner.write()
    }

    /// Is this name unused by everyone online? A cheap early answer for a newcomer;
    /// [`RoomHub::claim_name`] and [`RoomHub::register`] decide.
    pub fn name_free(&self, name: &str) -> bool {
        !self.read().names.contains_key(&name_key(name))
    }

    /// Reserves `name` for `user` on every node (through the broker). While the broker
    /// cannot be reached, this node's own view decides, so people can still sign in.
    pub async fn claim_name(&self, user: &UserId, name: &str) -> Result<(), NameTaken> {
        match self.inner.broker.claim_name(user, &name_key(name)).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(NameTaken),
            Err(err) => {
                tracing::warn!(%err, "could not reserve a name across nodes; checking this node only");
                Ok(())
            }
        }
    }

    /// Puts a user online under `name` with a new connection, its rooms (with their
    /// newest seqs) indexed for fan-out, and queues `ready` followed by the snapshot of
    /// who is online and which channels exist (read at that same instant) as the
    /// connection's first frames. Fails when another user holds the name.
    pub fn register(
        &self,
        user: &UserId,
        name: &str,
        rooms: &[(RoomId, Seq)],
        outbox: &Outbox,
        ready: ServerMsg,
    ) -> Result<(), NameTaken> {
        let key = name_key(name);
        let mut state = self.write();
        if state.names.get(&key).is_some_and(|holder| holder != user) {
            return Err(NameTaken);
        }
        let old_key = state.online.get(user).map(|u| name_key(&u.name));
        state
            .local
            .entry(user.clone())
            .or_insert_with(|| LocalUser {
                conns: HashMap::new(),
                rooms: HashSet::new(),
                epoch: 0,
            });
        for (room, seq) in rooms {
            state.index_member(*room, user, *seq);
        }
        let change = state.set_presence(self.node(), user, Some(name));
        // The snapshot, in bounded frames, queued before the connection can receive
        // any live event (it is attached below, under the same lock).
        outbox.send(&ready);
        let online = state.online.iter().map(|(id, u)| UserSummary {
            id: id.clone(),
            name: u.name.clone(),
        });
        in_chunks(online, |online| {
            outbox.send(&ServerMsg::Presence {
                online,
                offline: Vec::new(),
            })
        });
        let channels = state.channels.iter().map(|(id, name)| ChannelInfo {
            id: *id,
            name: name.clone(),
        });
        in_chunks(channels, |channels| {
            outbox.send(&ServerMsg::Channels { channels })
        });
        if let Some(local) = state.local.get_mut(user) {
            local.conns.insert(outbox.id, outbox.clone());
        }
        drop(state);
        self.after_presence_change(user, Some(name), change);
        if let Some(old_key) = old_key.filter(|old| *old != key) {
            self.inner.broker.release_name(user, &old_key);
        }
        Ok(())
    }

    /// Changes an online user's name. Fails when someone else holds it.
    pub fn rename(&self, user: &UserId, name: &str) -> Result<(), NameTaken> {
        let key = name_key(name);
        let mut state = self.write();
        if state.names.get(&key).is_some_and(|holder| holder != user) {
            return Err(NameTaken);
        }
        let Some(old_key) = state.online.get(user).map(|u| name_key(&u.name)) else {
            // Not online (cannot happen for a ready session): nothing to rename.
            return Ok(());
        };
        let change = state.set_presence(self.node(), user, Some(name));
        drop(state);
        self.after_presence_change(user, Some(name), change);
        if old_key != key {
            self.inner.broker.release_name(user, &old_key);
        }
        Ok(())
    }

    /// Tells the other nodes about a presence change of a user here, and the people
    /// here (in the next presence frame) if they can see it.
    fn after_presence_change(&self, user: &UserId, name: Option<&str>, change: PresenceChange) {
        self.inner.broker.announce(user, name);
        self.inner.note(change);
    }

    /// The current name of a user online on any node.
    pub fn online_name(&self, user: &UserId) -> Option<String> {
        self.read().online.get(user).map(|u| u.name.clone())
    }

    /// Is `user` (online here) a member of `room`?
    pub fn is_member(&self, user: &UserId, room: RoomId) -> bool {
        self.read()
            .local
            .get(user)
            .is_some_and(|u| u.rooms.contains(&room))
    }

    /// Drops a closed connection. When it was the user's last one here, the user stays
    /// online for the grace period and then leaves this node unless they came back.
    pub fn disconnect(&self, user: &UserId, conn: ConnId) {
        let epoch = {
            let mut state = self.write();
            let Some(local) = state.local.get_mut(user) else {
                return;
            };
            local.conns.remove(&conn);
            if !local.conns.is_empty() {
                return;
            }
            local.epoch += 1;
            local.epoch
        };
        let me = self.inner.me.clone();
        let user = user.clone();
        let grace = self.inner.presence_grace;
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            if let Some(hub) = me.upgrade() {
                hub.expire(&user, epoch);
            }
        });
    }

    /// Ends a grace period: the user leaves this node if nothing reconnected since, and
    /// goes offline unless another node has them.
    fn expire(&self, user: &UserId, epoch: u64) {
        let (change, name_key_held) = {
            let mut state = self.write();
            let still_gone = state
                .local
                .get(user)
                .is_some_and(|u| u.conns.is_empty() && u.epoch == epoch);
            if !still_gone {
                return;
            }
            let Some(local) = state.local.remove(user) else {
                return;
            };
            for room in local.rooms {
                if let Some(fanout) = state.rooms.get_mut(&room) {
                    fanout.members.remove(user);
                    if fanout.members.is_empty() {
                        state.rooms.remove(&room);
                    }
                }
            }
            let key = state.online.get(user).map(|u| name_key(&u.name));
            (state.set_presence(self.node(), user, None), key)
        };
        let offline = matches!(change, PresenceChange::Offline(_));
        self.after_presence_change(user, None, change);
        if let (true, Some(key)) = (offline, name_key_held) {
            // Nobody has them any more: the name is free for others at once.
            self.inner.broker.release_name(user, &key);
        }
    }

    /// Sends the collected presence changes to everyone here as one frame (every node
    /// sends its own people the changes it sees).
    fn flush_presence(&self) {
        let batch = std::mem::take(&mut *self.inner.presence_batch());
        if batch.online.is_empty() && batch.offline.is_empty() {
            return;
        }
        // In frames of at most SNAPSHOT_CHUNK people each, like the snapshot: a crowd
        // arriving in one window must not grow every connection's write buffer.
        let everyone_here = |msg: ServerMsg| self.inner.deliver_here(Target::Everyone, None, &msg);
        in_chunks(batch.online.into_values(), |online| {
            everyone_here(ServerMsg::Presence {
                online,
                offline: Vec::new(),
            })
        });
        in_chunks(batch.offline.into_iter(), |offline| {
            everyone_here(ServerMsg::Presence {
                online: Vec::new(),
                offline,
            })
        });
    }

    /// Serializes `msg` once and sends it to `target` on every node.
    pub fn publish(&self, target: Target, msg: &ServerMsg) {
        self.publish_delivery(target, None, None, None, msg);
    }

    /// Like [`RoomHub::publish`], with an index change every node applies first.
    pub fn publish_with(&self, target: Target, effect: Effect, msg: &ServerMsg) {
        self.publish_delivery(target, None, None, Some(effect), msg);
    }

    /// Registers a connection opened with a signed-in session, so ending the session
    /// (on any node) closes it.
    pub fn watch_session(&self, session: &str) -> SessionWatch {
        let mut state = self.inner.write();
        let entry = state
            .sessions
            .entry(session.to_string())
            .or_insert_with(|| SessionConnections {
                ended: CancellationToken::new(),
                connections: 0,
            });
        entry.connections += 1;
        SessionWatch {
            hub: self.clone(),
            session: session.to_string(),
            ended: entry.ended.clone(),
        }
    }

    /// Closes every connection, on every node, opened with one of these sessions.
    pub fn end_sessions(&self, sessions: Vec<String>) {
        for session in sessions {
            self.inner.broker.publish(Delivery {
                target: Target::Nobody,
                except: None,
                seq: None,
                effect: Some(Effect::SessionEnded { session }),
                frame: Utf8Bytes::from_static(""),
            });
        }
    }

    /// Sends a stored message to its room on every node (in seq order there).
    pub fn publish_message(&self, message: &ChatMessage, except: Option<ConnId>) {
        self.publish_delivery(
            Target::Room(message.room),
            except,
            Some(message.seq),
            None,
            &ServerMsg::Message {
                message: message.clone(),
            },
        );
    }

    fn publish_delivery(
        &self,
        target: Target,
        except: Option<ConnId>,
        seq: Option<Seq>,
        effect: Option<Effect>,
        msg: &ServerMsg,
    ) {
        self.inner.broker.publish(Delivery {
            target,
            except,
            seq,
            effect,
            frame: msg.to_json().into(),
        });
    }

    /// The wire form of a room; direct rooms get both members' current names.
    pub async fn room_info(&self, record: &RoomRecord) -> Result<RoomInfo, StoreError> {
        let kind = match &record.kind {
            RoomRecordKind::Channel { name } => RoomKind::Channel { name: name.clone() },
            RoomRecordKind::Code { code } => RoomKind::Code { code: code.clone() },
            RoomRecordKind::Direct { members: [a, b] } => RoomKind::Direct {
                members: [self.user_summary(a).await?, self.user_summary(b).await?],
            },
        };
        Ok(RoomInfo {
            id: record.id,
            kind,
            delete_when_empty: record.delete_when_empty,
            latest_seq: record.latest_seq,
        })
    }

    /// A user's id with their current name (as online, else as last stored).
    async fn user_summary(&self, id: &UserId) -> Result<UserSummary, StoreError> {
        let name = match self.online_name(id) {
            Some(name) => name,
            None => self
                .inner
                .store
                .find_user(id)
                .await?
                .map(|u| u.name)
                .unwrap_or_default(),
        };
        Ok(UserSummary {
            id: id.clone(),
            name,
        })
    }

    /// Brings the rooms of the people on this node in line with the store, after
    /// events may have been lost (Redis was away): a room someone was added to meanwhile
    /// (say, a direct message opened from another node) is announced with its latest
    /// page, as a join would have been; a room they left elsewhere is taken away.
    async fn reconcile_memberships(&self) {
        let users: Vec<UserId> = self.read().local.keys().cloned().collect();
        for user in users {
            let records = match self.inner.store.rooms_of(&user).await {
                Ok(records) => records,
                Err(err) => {
                    tracing::warn!(%err, "could not compare memberships with the store");
                    return;
                }
            };
            let Some(indexed) = self.read().local.get(&user).map(|u| u.rooms.clone()) else {
                continue;
            };
            let stored: HashSet<RoomId> = records.iter().map(|r| r.id).collect();
            for record in records.iter().filter(|r| !indexed.contains(&r.id)) {
                let (info, page) = match (
                    self.room_info(record).await,
                    self.inner
                        .store
                        .latest_after(record.id, 0, HISTORY_PAGE)
                        .await,
                ) {
                    (Ok(info), Ok(page)) => (info, page),
                    (Err(err), _) | (_, Err(err)) => {
                        tracing::warn!(%err, "could not announce a room missed while Redis was away");
                        continue;
                    }
                };
                let by = match &record.kind {
                    RoomRecordKind::Direct { members } => members
                        .iter()
                        .find(|m| **m != user)
                        .unwrap_or(&user)
                        .clone(),
                    _ => user.clone(),
                };
                self.inner.deliver_here(
                    Target::User(user.clone()),
                    Some(Effect::Member {
                        room: record.id,
                        user: user.clone(),
                        seq: record.latest_seq,
                    }),
                    &ServerMsg::Joined { room: info, by },
                );
                let more_before = page.first().is_some_and(|m| m.seq > 1);
                self.inner.deliver_here(
                    Target::User(user.clone()),
                    None,
                    &ServerMsg::History {
                        room: record.id,
                        messages: page,
                        more_before,
                    },
                );
            }
            for room in indexed.difference(&stored) {
                self.inner.deliver_here(
                    Target::User(user.clone()),
                    Some(Effect::NotMember {
                        room: *room,
                        user: user.clone(),
                    }),
                    &ServerMsg::Left { room: *room },
                );
            }
        }
    }

    /// Reads the messages of `room` this node has not delivered from the store and
    /// hands them to its members (at most the newest page; a client that finds a gap
    /// before them asks for history itself).
    async fn fill_from_store(&self, room: RoomId) {
        let Some(after) = self.read().rooms.get(&room).map(|f| f.delivered) else {
            return;
        };
        let messages = match self
            .inner
            .store
            .latest_after(room, after, HISTORY_PAGE)
            .await
        {
            Ok(messages) => messages,
            Err(err) => {
                tracing::warn!(%err, room = room.0, "could not read missed messages; will retry");
                return;
            }
        };
        let mut state = self.write();
        let HubState { rooms, local, .. } = &mut *state;
        let Some(fanout) = rooms.get_mut(&room) else {
            return;
        };
        for message in messages {
            if message.seq > fanout.delivered {
                let seq = message.seq;
                let frame: Utf8Bytes = ServerMsg::Message { message }.to_json().into();
                send_to_members(&fanout.members, local, &frame, None);
                fanout.delivered = seq;
            }
        }
        release_early(fanout, local);
    }

    /// Replaces the channel list with the store's, after events may have been lost
    /// (Redis was away), and tells the people here what changed.
    async fn reconcile_channels(&self) {
        let records = match self.inner.store.list_channels().await {
            Ok(records) => records,
            Err(err) => {
                tracing::warn!(%err, "could not compare the channel list with the store");
                return;
            }
        };
        let stored: BTreeMap<RoomId, String> = records
            .into_iter()
            .filter_map(|record| match record.kind {
                RoomRecordKind::Channel { name } => Some((record.id, name)),
                _ => None,
            })
            .collect();
        let (added, removed): (Vec<ChannelInfo>, Vec<RoomId>) = {
            let state = self.read();
            let added = stored
                .iter()
                .filter(|(id, _)| !state.channels.contains_key(id))
                .map(|(id, name)| ChannelInfo {
                    id: *id,
                    name: name.clone(),
                })
                .collect();
            let removed = state
                .channels
                .keys()
                .filter(|id| !stored.contains_key(id))
                .copied()
                .collect();
            (added, removed)
        };
        for channel in added {
            self.inner.deliver_here(
                Target::Everyone,
                Some(Effect::Channel {
                    id: channel.id,
                    name: channel.name.clone(),
                }),
                &ServerMsg::ChannelAdded { channel },
            );
        }
        for room in removed {
            self.inner.deliver_here(
                Target::Everyone,
                Some(Effect::RoomGone { room }),
                &ServerMsg::ChannelRemoved { room },
            );
        }
    }

    /// [`RoomHub::fill_from_store`] for every room followed here.
    async fn fill_all_from_store(&self) {
        let rooms: Vec<RoomId> = self.read().rooms.keys().copied().collect();
        for room in rooms {
            self.fill_from_store(room).await;
        }
    }

    /// Waits [`GAP_WAIT`] for the messages missing before `room`'s early ones, then
    /// reads them from the store, until no gap is left.
    fn fill_gap_later(&self, room: RoomId) {
        let me = self.inner.me.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(GAP_WAIT).await;
                let Some(hub) = me.upgrade() else { return };
                let gap = {
                    let mut state = hub.write();
                    let Some(fanout) = state.rooms.get_mut(&room) else {
                        return;
                    };
                    let gap = fanout.gap();
                    if gap.is_none() {
                        fanout.filling = false;
                    }
                    gap
                };
                if gap.is_none() {
                    return;
                }
                tracing::debug!(
                    room = room.0,
                    "filling a gap in a room's messages from the store"
                );
                hub.fill_from_store(room).await;
            }
        });
    }
}

impl HubInner {
    fn read(&self) -> RwLockReadGuard<'_, HubState> {
        // A poisoned lock means a panic elsewhere while holding it; the state itself is
        // still consistent (every method completes its change before returning).
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, HubState> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    fn presence_batch(&self) -> std::sync::MutexGuard<'_, PresenceBatch> {
        self.presence.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a visible presence change for the next presence frame.
    fn note(&self, change: PresenceChange) {
        let mut batch = self.presence_batch();
        match change {
            PresenceChange::Unchanged => {}
            PresenceChange::Online(user) => {
                batch.offline.remove(&user.id);
                batch.online.insert(user.id.clone(), user);
            }
            PresenceChange::Offline(user) => {
                batch.online.remove(&user);
                batch.offline.insert(user);
            }
        }
    }

    /// Hands `msg` (with `effect`) to this node's recipients only: for what each node
    /// works out for itself (presence frames, catching up after Redis was away).
    fn deliver_here(&self, target: Target, effect: Option<Effect>, msg: &ServerMsg) {
        self.deliver_local(&Delivery {
            target,
            except: None,
            seq: None,
            effect,
            frame: msg.to_json().into(),
        });
    }

    /// Applies a delivery's effect and hands its frame to this node's recipients;
    /// room messages in seq order, once each.
    fn deliver_local(&self, delivery: &Delivery) {
        let mut state = self.write();
        if let Some(effect) = &delivery.effect {
            state.apply(effect);
        }
        let HubState { rooms, local, .. } = &mut *state;
        let mut gap_in = None;
        match &delivery.target {
            Target::Room(room) => {
                let Some(fanout) = rooms.get_mut(room) else {
                    return;
                };
                let Some(seq) = delivery.seq else {
                    send_to_members(&fanout.members, local, &delivery.frame, delivery.except);
                    return;
                };
                if seq <= fanout.delivered {
                    // Already delivered (a resend's original, or filled from the store).
                } else if seq == fanout.delivered + 1 {
                    send_to_members(&fanout.members, local, &delivery.frame, delivery.except);
                    fanout.delivered = seq;
                    release_early(fanout, local);
                } else {
                    fanout
                        .early
                        .insert(seq, (delivery.frame.clone(), delivery.except));
                    if !fanout.filling {
                        fanout.filling = true;
                        gap_in = Some(*room);
                    }
                }
            }
            Target::User(id) => {
                if let Some(user) = local.get(id) {
                    send_to_user(user, &delivery.frame, delivery.except);
                }
            }
            Target::Everyone => local
                .values()
                .for_each(|user| send_to_user(user, &delivery.frame, delivery.except)),
            Target::Nobody => {}
        }
        drop(state);
        if let (Some(room), Some(hub)) = (gap_in, self.me.upgrade()) {
            hub.fill_gap_later(room);
        }
    }

    /// Takes the users of a node that stopped answering offline, unless it answered
    /// again meanwhile.
    fn drop_departed_node(&self, node: &str) {
        let changes: Vec<PresenceChange> = {
            let mut state = self.write();
            if !state.departing.remove(node) {
                return;
            }
            let users: Vec<UserId> = state
                .online
                .iter()
                .filter(|(_, u)| u.nodes.contains(node))
                .map(|(id, _)| id.clone())
                .collect();
            users
                .iter()
                .map(|user| state.set_presence(node, user, None))
                .collect()
        };
        for change in changes {
            self.note(change);
        }
    }
}

impl ClusterSink for HubInner {
    fn deliver(&self, delivery: &Delivery) {
        self.deliver_local(delivery);
    }

    fn presence(&self, node: &str, user: &UserId, name: Option<&str>) {
        let change = {
            let mut state = self.write();
            state.departing.remove(node);
            state.set_presence(node, user, name)
        };
        self.note(change);
    }

    fn node_snapshot(&self, node: &str, users: Vec<UserSummary>) {
        let changes: Vec<PresenceChange> = {
            let mut state = self.write();
            state.departing.remove(node);
            let listed: HashSet<&UserId> = users.iter().map(|u| &u.id).collect();
            let gone: Vec<UserId> = state
                .online
                .iter()
                .filter(|(id, u)| u.nodes.contains(node) && !listed.contains(id))
                .map(|(id, _)| id.clone())
                .collect();
            let mut changes: Vec<PresenceChange> = gone
                .iter()
                .map(|user| state.set_presence(node, user, None))
                .collect();
            for user in &users {
                changes.push(state.set_presence(node, &user.id, Some(&user.name)));
            }
            changes
        };
        for change in changes {
            self.note(change);
        }
    }

    fn node_gone(&self, node: &str) {
        self.write().departing.insert(node.to_string());
        let me = self.me.clone();
        let node = node.to_string();
        let grace = self.presence_grace;
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            if let Some(hub) = me.upgrade() {
                hub.inner.drop_departed_node(&node);
            }
        });
        // It may have stored messages it never published.
        self.catch_up();
    }

    fn catch_up(&self) {
        let me = self.me.clone();
        tokio::spawn(async move {
            if let Some(hub) = me.upgrade() {
                hub.fill_all_from_store().await;
            }
        });
    }

    fn reconnected(&self) {
        let me = self.me.clone();
        tokio::spawn(async move {
            if let Some(hub) = me.upgrade() {
                hub.reconcile_channels().await;
                hub.reconcile_memberships().await;
                hub.fill_all_from_store().await;
            }
        });
    }

    fn sweep(&self) {
        let me = self.me.clone();
        tokio::spawn(async move {
            let Some(hub) = me.upgrade() else { return };
            let delivered: Vec<(RoomId, Seq)> = hub
                .read()
                .rooms
                .iter()
                .map(|(id, fanout)| (*id, fanout.delivered))
                .collect();
            if delivered.is_empty() {
                return;
            }
            let rooms: Vec<RoomId> = delivered.iter().map(|(room, _)| *room).collect();
            let latest: HashMap<RoomId, Seq> = match hub.inner.store.latest_seqs(&rooms).await {
                Ok(latest) => latest.into_iter().collect(),
                Err(err) => {
                    tracing::warn!(%err, "could not compare the rooms with the store");
                    return;
                }
            };
            for (room, seq) in delivered {
                if latest.get(&room).is_some_and(|newest| *newest > seq) {
                    tracing::debug!(room = room.0, "a room was behind the store; catching up");
                    hub.fill_from_store(room).await;
                }
            }
        });
    }

    fn local_users(&self) -> Vec<UserSummary> {
        let state = self.read();
        state
            .local
            .keys()
            .filter_map(|id| {
                state.online.get(id).map(|u| UserSummary {
                    id: id.clone(),
                    name: u.name.clone(),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use natter_protocol::{MessageKind, RoomId, Seq, ServerMsg, UserId, UserSummary};
    use tokio::sync::mpsc;

    use super::{presence_window, RoomHub, GAP_WAIT};
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
            let hub = RoomHub::start(store.clone(), Arc::new(LocalBroker::default()), GRACE, 64)
                .await
                .expect("hub starts");
            Node { hub, store }
        }

        fn sink(&self) -> &dyn ClusterSink {
            &*self.hub.inner
        }

        /// A user online here in `rooms` (followed from the given seqs); their frames.
        fn connect(
            &self,
            id: &str,
            rooms: &[(RoomId, Seq)],
        ) -> mpsc::Receiver<axum::extract::ws::Utf8Bytes> {
            let (outbox, frames) = self.hub.open_outbox();
            let user = UserId(id.into());
            let ready = ServerMsg::Ready {
                me: UserSummary {
                    id: user.clone(),
                    name: id.into(),
                },
                credentials: None,
                rooms: Vec::new(),
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
        let message = natter_protocol::ChatMessage {
            room,
            seq,
            sender: UserSummary {
                id: UserId("elsewhere".into()),
                name: "Elsewhere".into(),
            },
            ts: 1,
            kind: MessageKind::Text,
            text: format!("m{}", seq - 1),
        };
        Delivery {
            target: Target::Room(room),
            except: None,
            seq: Some(seq),
            effect: None,
            frame: ServerMsg::Message { message }.to_json().into(),
        }
    }

    /// The seqs of the room messages among the frames received so far.
    fn seqs(frames: &mut mpsc::Receiver<axum::extract::ws::Utf8Bytes>) -> Vec<Seq> {
        let mut seqs = Vec::new();
        while let Ok(frame) = frames.try_recv() {
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
    fn presence(
        frames: &mut mpsc::Receiver<axum::extract::ws::Utf8Bytes>,
    ) -> (Vec<String>, Vec<String>) {
        let (mut online, mut offline) = (Vec::new(), Vec::new());
        while let Ok(frame) = frames.try_recv() {
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
}
