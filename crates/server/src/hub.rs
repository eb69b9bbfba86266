//! The hub: who is online, under which name, in which rooms, and how an event reaches
//! their connections.
//!
//! Shared state is one [`RoomHub`] handle (a `Clone` around an `Arc`) with a std
//! `RwLock` over [`HubState`]. The lock is only taken inside short synchronous methods
//! here and never across an `.await`: fan-out is a read lock plus a non-blocking
//! `try_send` per recipient, so one slow client can never stall a room. Everything
//! that waits (the database) happens outside the lock, in `session.rs` and the
//! append queue.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard, Weak};
use std::time::Duration;

use axum::extract::ws::Utf8Bytes;
use natter_protocol::validate::name_key;
use natter_protocol::{ChannelInfo, RoomId, ServerMsg, UserId, UserSummary, SNAPSHOT_CHUNK};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::appender::AppendQueue;
use crate::broker::{Broker, Delivery, Target};
use crate::store::Store;

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

/// An online user: their connections and the rooms fan-out should reach them in.
#[derive(Debug)]
struct OnlineUser {
    /// Current display name.
    name: String,
    /// Open connections (tabs) that finished `hello`.
    conns: HashMap<ConnId, Outbox>,
    /// Rooms this user is a member of (mirrors the store while online).
    rooms: HashSet<RoomId>,
    /// Bumped whenever the last connection closes; a pending offline timer only fires
    /// if the epoch is unchanged, so a reconnect inside the grace period cancels it.
    epoch: u64,
}

/// Everything the hub knows, guarded by one lock.
#[derive(Debug, Default)]
struct HubState {
    /// Users online now, or inside their grace period.
    users: HashMap<UserId, OnlineUser>,
    /// `name_key` of every online user's name → the user holding it.
    names: HashMap<String, UserId>,
    /// Online members of each room: the fan-out index.
    rooms: HashMap<RoomId, HashSet<UserId>>,
    /// Every public channel (id → name), kept in memory for the `ready` snapshot.
    channels: BTreeMap<RoomId, String>,
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

/// What [`RoomHub::register`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registered {
    /// The user was offline and is now online: tell everyone.
    CameOnline,
    /// The user was online (another tab, or within the grace period) under another
    /// name: tell everyone the new name.
    Renamed,
    /// The user was online under this name: nothing to tell.
    Unchanged,
}

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
    /// Fan-out across nodes.
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
    presence: std::sync::Mutex<PresenceBatch>,
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
                presence: std::sync::Mutex::new(PresenceBatch::default()),
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
                        window = presence_window(hub.read().users.len());
                    }
                    None => return,
                }
            }
        });
        let weak = Arc::downgrade(&inner);
        broker.subscribe(Arc::new(move |delivery| {
            if let Some(inner) = weak.upgrade() {
                RoomHub { inner }.deliver_local(delivery);
            }
        }));
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

    fn read(&self) -> RwLockReadGuard<'_, HubState> {
        // A poisoned lock means a panic elsewhere while holding it; the state itself is
        // still consistent (every method completes its change before returning).
        self.inner.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, HubState> {
        self.inner.state.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Is this name unused by everyone online? A cheap early answer for a newcomer;
    /// [`RoomHub::register`] decides atomically.
    pub fn name_free(&self, name: &str) -> bool {
        !self.read().names.contains_key(&name_key(name))
    }

    /// Puts a user online under `name` with a new connection, its rooms indexed for
    /// fan-out, and queues `ready` followed by the snapshot of who is online and which
    /// channels exist (read at that same instant) as the connection's first frames.
    /// Fails when another user holds the name.
    pub fn register(
        &self,
        user: &UserId,
        name: &str,
        rooms: &[RoomId],
        outbox: &Outbox,
        ready: ServerMsg,
    ) -> Result<Registered, NameTaken> {
        let key = name_key(name);
        let mut state = self.write();
        if state.names.get(&key).is_some_and(|holder| holder != user) {
            return Err(NameTaken);
        }
        let outcome = match state.users.get(user) {
            None => Registered::CameOnline,
            Some(online) if online.name != name => Registered::Renamed,
            Some(_) => Registered::Unchanged,
        };
        if let Some(old) = state.users.get(user).map(|u| name_key(&u.name)) {
            state.names.remove(&old);
        }
        state.names.insert(key, user.clone());
        let entry = state
            .users
            .entry(user.clone())
            .or_insert_with(|| OnlineUser {
                name: name.to_string(),
                conns: HashMap::new(),
                rooms: HashSet::new(),
                epoch: 0,
            });
        entry.name = name.to_string();
        entry.rooms.extend(rooms.iter().copied());
        for room in rooms {
            state.rooms.entry(*room).or_default().insert(user.clone());
        }
        // The snapshot, in bounded frames, queued before the connection can receive
        // any live event (it is attached below, under the same lock).
        outbox.send(&ready);
        let online = state.users.iter().map(|(id, u)| UserSummary {
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
        if let Some(entry) = state.users.get_mut(user) {
            entry.conns.insert(outbox.id, outbox.clone());
        }
        Ok(outcome)
    }

    /// Changes an online user's name. Fails when someone else holds it.
    pub fn rename(&self, user: &UserId, name: &str) -> Result<(), NameTaken> {
        let key = name_key(name);
        let mut state = self.write();
        if state.names.get(&key).is_some_and(|holder| holder != user) {
            return Err(NameTaken);
        }
        let Some(old) = state.users.get(user).map(|u| name_key(&u.name)) else {
            // Not online (cannot happen for a ready session): nothing to rename.
            return Ok(());
        };
        state.names.remove(&old);
        state.names.insert(key, user.clone());
        if let Some(entry) = state.users.get_mut(user) {
            entry.name = name.to_string();
        }
        Ok(())
    }

    /// The current name of an online user.
    pub fn online_name(&self, user: &UserId) -> Option<String> {
        self.read().users.get(user).map(|u| u.name.clone())
    }

    /// Is `user` (online) a member of `room`?
    pub fn is_member(&self, user: &UserId, room: RoomId) -> bool {
        self.read()
            .users
            .get(user)
            .is_some_and(|u| u.rooms.contains(&room))
    }

    /// Indexes `user` as a member of `room`, if they are online.
    pub fn add_member(&self, room: RoomId, user: &UserId) {
        let mut state = self.write();
        if let Some(entry) = state.users.get_mut(user) {
            entry.rooms.insert(room);
            state.rooms.entry(room).or_default().insert(user.clone());
        }
    }

    /// Removes `user` from the fan-out index of `room`.
    pub fn remove_member(&self, room: RoomId, user: &UserId) {
        let mut state = self.write();
        if let Some(entry) = state.users.get_mut(user) {
            entry.rooms.remove(&room);
        }
        if let Some(members) = state.rooms.get_mut(&room) {
            members.remove(user);
            if members.is_empty() {
                state.rooms.remove(&room);
            }
        }
    }

    /// Records a new public channel in the in-memory list.
    pub fn add_channel(&self, channel: &ChannelInfo) {
        self.write()
            .channels
            .insert(channel.id, channel.name.clone());
    }

    /// Forgets a deleted room (a channel leaves the list).
    pub fn remove_room(&self, room: RoomId) {
        let mut state = self.write();
        state.channels.remove(&room);
        if let Some(members) = state.rooms.remove(&room) {
            for user in members {
                if let Some(entry) = state.users.get_mut(&user) {
                    entry.rooms.remove(&room);
                }
            }
        }
    }

    /// Drops a closed connection. When it was the user's last one, the user stays
    /// online for the grace period and then goes offline unless they came back.
    pub fn disconnect(&self, user: &UserId, conn: ConnId) {
        let epoch = {
            let mut state = self.write();
            let Some(entry) = state.users.get_mut(user) else {
                return;
            };
            entry.conns.remove(&conn);
            if !entry.conns.is_empty() {
                return;
            }
            entry.epoch += 1;
            entry.epoch
        };
        let weak = Arc::downgrade(&self.inner);
        let user = user.clone();
        let grace = self.inner.presence_grace;
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            if let Some(inner) = weak.upgrade() {
                RoomHub { inner }.expire(&user, epoch);
            }
        });
    }

    /// Ends a grace period: takes the user offline if nothing reconnected since.
    fn expire(&self, user: &UserId, epoch: u64) {
        {
            let mut state = self.write();
            let still_gone = state
                .users
                .get(user)
                .is_some_and(|u| u.conns.is_empty() && u.epoch == epoch);
            if !still_gone {
                return;
            }
            let Some(entry) = state.users.remove(user) else {
                return;
            };
            state.names.remove(&name_key(&entry.name));
            for room in entry.rooms {
                if let Some(members) = state.rooms.get_mut(&room) {
                    members.remove(user);
                    if members.is_empty() {
                        state.rooms.remove(&room);
                    }
                }
            }
        }
        self.note_offline(user.clone());
    }

    /// Queues "`user` is online under this name" for the next presence frame.
    pub fn note_online(&self, user: UserSummary) {
        let mut batch = self.presence_batch();
        batch.offline.remove(&user.id);
        batch.online.insert(user.id.clone(), user);
    }

    /// Queues "`user` went offline" for the next presence frame.
    fn note_offline(&self, user: UserId) {
        let mut batch = self.presence_batch();
        batch.online.remove(&user);
        batch.offline.insert(user);
    }

    fn presence_batch(&self) -> std::sync::MutexGuard<'_, PresenceBatch> {
        self.inner
            .presence
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Sends the collected presence changes to everyone as one frame.
    fn flush_presence(&self) {
        let batch = std::mem::take(&mut *self.presence_batch());
        if batch.online.is_empty() && batch.offline.is_empty() {
            return;
        }
        // In frames of at most SNAPSHOT_CHUNK people each, like the snapshot: a crowd
        // arriving in one window must not grow every connection's write buffer.
        in_chunks(batch.online.into_values(), |online| {
            self.publish(
                Target::Everyone,
                None,
                &ServerMsg::Presence {
                    online,
                    offline: Vec::new(),
                },
            )
        });
        in_chunks(batch.offline.into_iter(), |offline| {
            self.publish(
                Target::Everyone,
                None,
                &ServerMsg::Presence {
                    online: Vec::new(),
                    offline,
                },
            )
        });
    }

    /// Serializes `msg` once and sends it to `target` through the broker.
    pub fn publish(&self, target: Target, except: Option<ConnId>, msg: &ServerMsg) {
        self.inner.broker.publish(Delivery {
            target,
            except,
            frame: msg.to_json().into(),
        });
    }

    /// Hands a delivery to this process's recipients (called by the broker).
    fn deliver_local(&self, delivery: &Delivery) {
        let state = self.read();
        let send_to_user = |user: &OnlineUser| {
            for (id, outbox) in &user.conns {
                if Some(*id) != delivery.except {
                    outbox.push(delivery.frame.clone());
                }
            }
        };
        match &delivery.target {
            Target::Room(room) => {
                if let Some(members) = state.rooms.get(room) {
                    for member in members {
                        if let Some(user) = state.users.get(member) {
                            send_to_user(user);
                        }
                    }
                }
            }
            Target::User(id) => {
                if let Some(user) = state.users.get(id) {
                    send_to_user(user);
                }
            }
            Target::Everyone => state.users.values().for_each(send_to_user),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::presence_window;

    #[test]
    fn the_presence_window_grows_with_the_crowd() {
        assert_eq!(presence_window(0), Duration::from_millis(100));
        assert_eq!(presence_window(1_000), Duration::from_millis(100));
        assert_eq!(presence_window(10_000), Duration::from_secs(1));
    }
}
