//! Catching up with the store when events may have been lost, and what the broker
//! reports from the other nodes.
//!
//! Pub/sub is at-most-once, so the store is the truth: after Redis reconnects, the
//! channel list and every local user's rooms are compared with the store (a channel
//! created or a direct room opened elsewhere during the outage is announced then); after
//! a reconnect or another node's death every followed room is filled from the store;
//! and a periodic sweep compares each room's delivered seq with the store's newest, so
//! even a lost message with nothing after it arrives.

use std::collections::{BTreeMap, HashMap, HashSet};

use natter_protocol::{ChannelInfo, RoomId, Seq, ServerMsg, UserId, UserSummary};

use super::history::catch_up;
use super::presence::PresenceChange;
use super::{HubInner, RoomHub};
use crate::broker::{CatchUp, ClusterSink, Delivery, Effect, Target};
use crate::store::RoomRecordKind;

impl RoomHub {
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
                let (info, (history, newest)) = match (
                    self.room_info(record).await,
                    catch_up(&*self.inner.store, record.id, 0, None, &user).await,
                ) {
                    (Ok(info), Ok(history)) => (info, history),
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
                self.inner.deliver_local(&Delivery {
                    target: Target::User(user.clone()),
                    except: None,
                    seq: None,
                    effect: None,
                    catch_up: Some(CatchUp {
                        room: record.id,
                        newest,
                    }),
                    frame: history.to_json().into(),
                });
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
        let grace = self.settings.presence_grace;
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
            let delivered = hub.read().delivered_seqs();
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
