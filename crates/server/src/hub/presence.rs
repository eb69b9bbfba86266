//! Presence: who is online under which name, batched into few frames.
//!
//! The hub keeps a board of who is online on which node (this one included). A user
//! is online while any node has them; people see one change when the first node gains
//! them and when the last loses them, so tabs on several nodes count as one and a
//! reconnect to another node within the grace period shows nothing. Changes are
//! collected for a window that grows with the crowd and sent as one `presence` frame
//! (in chunks of [`natter_protocol::SNAPSHOT_CHUNK`]).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use natter_protocol::validate::name_key;
use natter_protocol::{ServerMsg, UserId, UserSummary};

use super::{
    in_chunks, shared_chunks, HubInner, HubState, OnlineUser, RoomHub, SharedFrames, WeakHub,
};
use crate::broker::{ConnId, Target};

/// What one presence update means to the people watching.
pub(super) enum PresenceChange {
    /// Nothing they can see.
    Unchanged,
    /// Came online, or is online under a new name.
    Online(UserSummary),
    /// No node has them any more.
    Offline(UserId),
}

impl HubState {
    /// Records that `node` has `user` under `name` (`None`: no longer has them).
    pub(super) fn set_presence(
        &mut self,
        node: &str,
        user: &UserId,
        name: Option<&str>,
    ) -> PresenceChange {
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
pub(super) fn presence_window(online: usize) -> Duration {
    PRESENCE_WINDOW.max(PRESENCE_WINDOW_PER_USER * u32::try_from(online).unwrap_or(u32::MAX))
}

/// Presence changes not yet sent; a later change of the same user replaces an earlier.
#[derive(Debug, Default)]
pub(super) struct PresenceBatch {
    online: HashMap<UserId, UserSummary>,
    offline: HashSet<UserId>,
}

impl HubState {
    /// Who is online as `presence` frames, serialized at most once per presence
    /// window: the frames are dropped when a window's changes go out, and rebuilt by
    /// the next connection that needs them. Between windows they may lag behind the
    /// board, which is fine: a connection that takes them is attached before the
    /// window's changes go out, and gets those changes then, like everyone else.
    pub(super) fn presence_frames(&mut self) -> SharedFrames {
        let online = &self.online;
        self.presence_frames
            .get_or_insert_with(|| {
                let online = online.iter().map(|(id, u)| UserSummary {
                    id: id.clone(),
                    name: u.name.clone(),
                });
                shared_chunks(online, |online| ServerMsg::Presence {
                    online,
                    offline: Vec::new(),
                })
            })
            .clone()
    }
}

/// Flushes the presence batch every window, for as long as the hub lives.
pub(super) fn flush_every_window(hub: WeakHub) {
    tokio::spawn(async move {
        let mut window = PRESENCE_WINDOW;
        loop {
            tokio::time::sleep(window).await;
            match hub.upgrade() {
                Some(hub) => {
                    hub.flush_presence();
                    window = presence_window(hub.read().online.len());
                }
                None => return,
            }
        }
    });
}

impl RoomHub {
    /// Drops a closed connection. When it was the user's last one here, the user stays
    /// online for the grace period and then leaves this node unless they came back —
    /// or leaves at once when the connection said it was `leaving_for_good`.
    pub fn disconnect(&self, user: &UserId, conn: ConnId, leaving_for_good: bool) {
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
        if leaving_for_good {
            self.expire(user, epoch);
            return;
        }
        let me = self.inner.me.clone();
        let user = user.clone();
        let grace = self.inner.settings.presence_grace;
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
                state.unindex_member(room, user);
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
        // The shared snapshot frames no longer match; the next connection rebuilds them.
        self.write().presence_frames = None;
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
}

impl HubInner {
    pub(super) fn presence_batch(&self) -> std::sync::MutexGuard<'_, PresenceBatch> {
        self.presence.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a visible presence change for the next presence frame.
    pub(super) fn note(&self, change: PresenceChange) {
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

    /// Takes the users of a node that stopped answering offline, unless it answered
    /// again meanwhile.
    pub(super) fn drop_departed_node(&self, node: &str) {
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
