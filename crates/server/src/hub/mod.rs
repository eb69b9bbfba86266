//! The hub: who is online, under which name, in which rooms, and how an event reaches
//! their connections. [`RoomHub`] is the one door: every other module calls its methods
//! and never sees [`HubState`].
//!
//! Shared state is one [`RoomHub`] handle (a `Clone` around an `Arc`) with a std
//! `RwLock` over `HubState`. The lock is only taken inside short synchronous methods
//! and never across an `.await`: fan-out is a non-blocking `try_send` per recipient, so
//! one slow client can never stall a room. Everything that waits (the database, Redis)
//! happens outside the lock: in the connection's conversation, the append queue, and the
//! tasks spawned here.
//!
//! The hub is written for several nodes; with one node its broker simply hands
//! everything back at once. By concern:
//! - here: the state, `register` (a connection's snapshot and attachment under one
//!   lock), names, `publish`, and the wire form of rooms;
//! - [`outbox`]: a connection's bounded outbound queue;
//! - [`presence`]: the board of who is online on which node, grace periods, and the
//!   batched `presence` frames;
//! - [`fanout`]: per-room delivery in seq order, once each, with gaps filled from the
//!   store after [`GAP_WAIT`];
//! - [`reconcile`]: what the broker reports from other nodes, and catching up with the
//!   store after Redis reconnects, a node dies, or a periodic sweep finds a room behind;
//! - [`watch`]: sign-out watches, so an ended session's sockets close on every node;
//! - [`appender`]: the single batching writer — store, then publish, then ack — for
//!   messages and changes to them;
//! - [`history`]: catch-up histories (what a client holding a room up to a seq lacks);
//! - [`directory`]: the channel browser's member counts, counted once for everyone
//!   asking within a few seconds;
//! - [`reading`]: read positions (coalesced, stored and sent to their owners once a
//!   second), room sizes, typing.
//!
//! **Membership and channel changes** travel with the event that announces them
//! ([`Effect`]), so the node of the person concerned updates its index too.
//!
//! Why one long file: it is the door — every method here takes the one lock over
//! `HubState`, and keeping the state, `register` and the name claims beside each other
//! is what lets a reader check that no lock is held across an `.await`; the parts with
//! a concern of their own are already the submodules above.

pub mod appender;
mod directory;
mod fanout;
pub mod history;
pub mod outbox;
mod presence;
mod reading;
mod reconcile;
pub mod watch;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard, Weak};
use std::time::Duration;

use axum::extract::ws::Utf8Bytes;
use natter_protocol::validate::name_key;
use natter_protocol::{
    ChannelInfo, ChannelListing, RoomId, RoomInfo, RoomKind, Seq, ServerMsg, UserId, UserSummary,
    SNAPSHOT_CHUNK,
};

use self::appender::AppendQueue;
use self::fanout::RoomFanout;
use self::presence::{PresenceBatch, PresenceChange};
use self::watch::SessionConnections;
use crate::broker::{Broker, CatchUp, ConnId, Delivery, Effect, NodeId, Target};
use crate::store::{RoomRecord, RoomRecordKind, Store, StoreError};

pub use self::fanout::GAP_WAIT;
pub use self::outbox::{Outbox, OutboxQueue, Outgoing, RoomCatchUp};
pub use self::watch::SessionWatch;

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
/// Everything the hub knows, guarded by one lock.
#[derive(Debug, Default)]
struct HubState {
    /// Users with connections on this node, or inside their grace period here.
    local: HashMap<UserId, LocalUser>,
    /// Everyone online on any node: the presence board.
    online: HashMap<UserId, OnlineUser>,
    /// `name_key` of every online user's name → the user holding it.
    names: HashMap<String, UserId>,
    /// Names claimed on this node by someone about to take them (a rename or `hello`
    /// writing the store first): held by [`NameClaim`]s, and as taken as `names`.
    claimed: HashMap<String, UserId>,
    /// Rooms with members on this node: the fan-out index.
    rooms: HashMap<RoomId, RoomFanout>,
    /// Every public channel (id → name), kept in memory for the snapshot after `ready`.
    channels: BTreeMap<RoomId, String>,
    /// Nodes that stopped answering and whose users go offline when their grace ends.
    departing: HashSet<NodeId>,
    /// Signed-in sessions with connections here (by session id hash): ending one
    /// closes them all.
    sessions: HashMap<String, SessionConnections>,
    /// Who is online, serialized once for every connection that arrives until the
    /// next presence window changes it (see [`presence`]).
    presence_frames: Option<SharedFrames>,
    /// The channel list, serialized once for every connection that arrives until a
    /// channel is added or removed.
    channel_frames: Option<SharedFrames>,
}

/// Snapshot frames serialized once and handed to many connections (each frame is
/// reference-counted, so a connection's copy costs a pointer).
type SharedFrames = Arc<[Utf8Bytes]>;

impl HubState {
    /// Whether `key` is held, online or claimed, by someone other than `user`.
    fn name_held_by_other(&self, key: &str, user: &UserId) -> bool {
        let other = |holder: &UserId| holder != user;
        self.names.get(key).is_some_and(other) || self.claimed.get(key).is_some_and(other)
    }

    /// The channel list as `channels` frames, serialized at most once per change.
    fn channel_frames(&mut self) -> SharedFrames {
        let channels = &self.channels;
        self.channel_frames
            .get_or_insert_with(|| {
                let channels = channels.iter().map(|(id, name)| ChannelInfo {
                    id: *id,
                    name: name.clone(),
                });
                shared_chunks(channels, |channels| ServerMsg::Channels { channels })
            })
            .clone()
    }

    /// Applies an index change that came with a delivery (from this node or another).
    fn apply(&mut self, effect: &Effect) {
        match effect {
            Effect::Member { room, user, seq } => self.index_member(*room, user, *seq),
            Effect::NotMember { room, user } => self.unindex_member(*room, user),
            Effect::Channel { id, name } => {
                self.channels.insert(*id, name.clone());
                self.channel_frames = None;
            }
            Effect::SessionEnded { session } => self.end_session(session),
            Effect::RoomGone { room } => {
                if self.channels.remove(room).is_some() {
                    self.channel_frames = None;
                }
                self.forget_room(*room);
            }
        }
    }
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

/// `items` as frames of at most [`SNAPSHOT_CHUNK`] entries each (`frame` makes one),
/// serialized once to be shared.
fn shared_chunks<T>(
    items: impl Iterator<Item = T>,
    frame: impl Fn(Vec<T>) -> ServerMsg,
) -> SharedFrames {
    let mut frames = Vec::new();
    in_chunks(items, |chunk| frames.push(frame(chunk).to_json().into()));
    frames.into()
}

/// The hub's timers and bounds (from [`crate::Config`]).
#[derive(Debug, Clone)]
pub struct HubSettings {
    /// How long a user whose last connection closed stays online (a reconnect within
    /// it shows nothing); see `--presence-grace-ms`.
    pub presence_grace: Duration,
    /// Frames that may wait for one connection; see `--outbound-queue`.
    pub outbound_queue: usize,
    /// Bytes that may wait for one connection; see `--outbound-queue-bytes`.
    pub outbound_queue_bytes: usize,
}

/// Another online user holds the requested display name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the name is held by someone else online")]
pub struct NameTaken;

/// A name held for one user from [`RoomHub::claim_name`] until it is dropped — after
/// the store is written and [`RoomHub::register`] or [`RoomHub::rename`] made the name
/// theirs, or when the attempt failed. While it lives nobody else on this node can
/// take the name, so the store is never written with a name that then turns out taken.
#[must_use = "the claim ends when dropped"]
pub struct NameClaim {
    hub: RoomHub,
    key: String,
    user: UserId,
}

impl Drop for NameClaim {
    fn drop(&mut self) {
        let mut state = self.hub.write();
        if state.claimed.get(&self.key) == Some(&self.user) {
            state.claimed.remove(&self.key);
        }
    }
}

/// A hub reference that does not keep the hub alive (held by its own tasks).
#[derive(Clone)]
struct WeakHub(Weak<HubInner>);

impl WeakHub {
    /// The hub, unless it has been dropped.
    fn upgrade(&self) -> Option<RoomHub> {
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
    /// Timers and bounds.
    settings: HubSettings,
    /// Presence changes waiting for the next window.
    presence: Mutex<PresenceBatch>,
    /// `natter_fanout_seconds`, held so recording costs no registry lookup.
    fanout_seconds: metrics::Histogram,
    /// This hub, for the tasks it spawns from `&self` callbacks.
    me: WeakHub,
    /// The channel browser's last count.
    directory: directory::DirectoryCache,
    /// Unsaved read positions and counted room sizes.
    attention: reading::Attention,
}

impl RoomHub {
    /// Starts a hub over `store` and `broker`, with the channel list loaded.
    pub async fn start(
        store: Arc<dyn Store>,
        broker: Arc<dyn Broker>,
        settings: HubSettings,
    ) -> Result<Self, StoreError> {
        let channels = store.list_channels().await?;
        let inner = Arc::new_cyclic(|weak: &Weak<HubInner>| {
            let appender = AppendQueue::start(store.clone(), broker.clone());
            let mut state = HubState::default();
            for channel in channels {
                if let RoomRecordKind::Channel { name } = channel.kind {
                    state.channels.insert(channel.id, name);
                }
            }
            HubInner {
                state: RwLock::new(state),
                store,
                broker: broker.clone(),
                appender,
                next_conn: AtomicU64::new(1),
                settings,
                presence: Mutex::new(PresenceBatch::default()),
                fanout_seconds: metrics::histogram!(crate::telemetry::FANOUT_SECONDS),
                me: WeakHub(weak.clone()),
                directory: directory::DirectoryCache::default(),
                attention: reading::Attention::default(),
            }
        });
        presence::flush_every_window(WeakHub(Arc::downgrade(&inner)));
        reading::flush_reads_every_second(WeakHub(Arc::downgrade(&inner)));
        let sink: Weak<HubInner> = Arc::downgrade(&inner);
        broker.subscribe(sink);
        Ok(RoomHub { inner })
    }

    /// The store, for the conversation's reads and membership writes.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// Every public channel with its member count, most members first, counted at most
    /// a few seconds ago (see [`directory`]).
    pub async fn channel_directory(&self) -> Result<Arc<Vec<ChannelListing>>, StoreError> {
        self.inner.directory.get(self.inner.store.as_ref()).await
    }

    /// The append queue, through which every message is stored and then fanned out.
    pub fn appender(&self) -> &AppendQueue {
        &self.inner.appender
    }

    /// Opens an outbound queue for a new connection.
    pub fn open_outbox(&self) -> (Outbox, OutboxQueue) {
        let id = ConnId(self.inner.next_conn.fetch_add(1, Ordering::Relaxed));
        let settings = &self.inner.settings;
        Outbox::new(id, settings.outbound_queue, settings.outbound_queue_bytes)
    }

    /// Stops the append queue once it has stored what it already accepted, and
    /// stores the read positions not yet saved.
    pub async fn shutdown(&self) {
        self.inner.appender.drain().await;
        self.flush_reads().await;
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
        let key = name_key(name);
        let state = self.read();
        !state.names.contains_key(&key) && !state.claimed.contains_key(&key)
    }

    /// Reserves `name` for `user`: on this node until the returned claim is dropped,
    /// and on every node through the broker. Take it **before** writing the name to
    /// the store. While the broker cannot be reached, this node's own view decides, so
    /// people can still sign in.
    pub async fn claim_name(&self, user: &UserId, name: &str) -> Result<NameClaim, NameTaken> {
        let key = name_key(name);
        {
            let mut state = self.write();
            if state.name_held_by_other(&key, user) {
                return Err(NameTaken);
            }
            state.claimed.insert(key.clone(), user.clone());
        }
        let claim = NameClaim {
            hub: self.clone(),
            key,
            user: user.clone(),
        };
        match self.inner.broker.claim_name(user, &claim.key).await {
            Ok(true) => Ok(claim),
            Ok(false) => Err(NameTaken),
            Err(err) => {
                tracing::warn!(%err, "could not reserve a name across nodes; checking this node only");
                Ok(claim)
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
        if state.name_held_by_other(&key, user) {
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
        // any live event (it is attached below, under the same lock). Who is online and
        // which channels exist are frames shared by every connection that arrives
        // before they change: connecting costs a pointer per frame here, not
        // serializing everyone online and every channel.
        outbox.push(Outgoing::Ready {
            rooms: rooms.iter().map(|(room, _)| *room).collect(),
            frame: ready.to_json().into(),
        });
        for frame in state.presence_frames().iter() {
            outbox.push(Outgoing::Frame(frame.clone()));
        }
        // Its own arrival is in this window's changes; it sees itself at once.
        if let PresenceChange::Online(me) = &change {
            outbox.send(&ServerMsg::Presence {
                online: vec![me.clone()],
                offline: Vec::new(),
            });
        }
        for frame in state.channel_frames().iter() {
            outbox.push(Outgoing::Frame(frame.clone()));
        }
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
        if state.name_held_by_other(&key, user) {
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

    /// How many rooms `user` (online here) is a member of.
    pub fn room_count(&self, user: &UserId) -> usize {
        self.read().local.get(user).map_or(0, |u| u.rooms.len())
    }

    /// How many channels exist (as this node knows them).
    pub fn channel_count(&self) -> usize {
        self.read().channels.len()
    }

    /// Is `user` (online here) a member of `room`?
    pub fn is_member(&self, user: &UserId, room: RoomId) -> bool {
        self.read()
            .local
            .get(user)
            .is_some_and(|u| u.rooms.contains(&room))
    }

    /// Serializes `msg` once and sends it to `target` on every node.
    pub fn publish(&self, target: Target, msg: &ServerMsg) {
        self.publish_delivery(target, None, None, msg);
    }

    /// Like [`RoomHub::publish`], with an index change every node applies first.
    pub fn publish_with(&self, target: Target, effect: Effect, msg: &ServerMsg) {
        self.publish_delivery(target, Some(effect), None, msg);
    }

    /// Sends a room's catch-up `history` (everything up to `catch_up.newest`) to every
    /// connection of `user`, on every node: the room's live messages wait for it there.
    pub fn publish_history(&self, user: &UserId, catch_up: CatchUp, msg: &ServerMsg) {
        self.publish_delivery(Target::User(user.clone()), None, Some(catch_up), msg);
    }

    fn publish_delivery(
        &self,
        target: Target,
        effect: Option<Effect>,
        catch_up: Option<CatchUp>,
        msg: &ServerMsg,
    ) {
        self.inner.broker.publish(Delivery {
            target,
            except: None,
            seq: None,
            effect,
            catch_up,
            frame: msg.to_json().into(),
        });
    }

    /// The wire form of a room; direct rooms get both members' current names. Its read
    /// state is blank: it is per person (see [`RoomHub::read_state`]).
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
            read: natter_protocol::ReadState::default(),
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
}

#[cfg(test)]
mod tests;
