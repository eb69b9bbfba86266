//! Room fan-out on this node: each room's messages reach its members here in seq order,
//! once each.
//!
//! Every node keeps, per room with members on it, the newest seq it handed out. A
//! message that arrives ahead of a missing one waits for it; if the missing ones do
//! not come within [`GAP_WAIT`] (pub/sub dropped them, or their node died before
//! publishing) they are read from the store. Repeats (a resend's original published
//! again, or a message already filled from the store) go nowhere. Fan-out itself is a
//! short write section and a `try_send` per connection: a slow client never stalls a
//! room.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use axum::extract::ws::Utf8Bytes;
use natter_protocol::{RoomId, Seq, ServerMsg, UserId, HISTORY_PAGE};

use super::{HubInner, HubState, LocalUser, Outgoing, RoomHub};
use crate::broker::{CatchUp, ConnId, Delivery, Effect, Target};

/// One room's fan-out on this node.
#[derive(Debug, Default)]
pub(super) struct RoomFanout {
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

impl HubState {
    /// Every room followed here with the newest seq handed out in it.
    pub(super) fn delivered_seqs(&self) -> Vec<(RoomId, Seq)> {
        self.rooms
            .iter()
            .map(|(id, fanout)| (*id, fanout.delivered))
            .collect()
    }

    /// Stops following a deleted room: nobody here is a member any more.
    pub(super) fn forget_room(&mut self, room: RoomId) {
        if let Some(fanout) = self.rooms.remove(&room) {
            for user in fanout.members {
                if let Some(local) = self.local.get_mut(&user) {
                    local.rooms.remove(&room);
                }
            }
        }
    }

    /// Indexes a local user as a member of `room`, following the room from `seq` on if
    /// this node did not follow it yet.
    pub(super) fn index_member(&mut self, room: RoomId, user: &UserId, seq: Seq) {
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
    pub(super) fn unindex_member(&mut self, room: RoomId, user: &UserId) {
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
}

/// Queues `item` for every connection here of `members`, except `except`.
fn send_to_members(
    members: &HashSet<UserId>,
    local: &HashMap<UserId, LocalUser>,
    item: &Outgoing,
    except: Option<ConnId>,
) {
    for member in members {
        if let Some(user) = local.get(member) {
            send_to_user(user, item, except);
        }
    }
}

fn send_to_user(user: &LocalUser, item: &Outgoing, except: Option<ConnId>) {
    for (id, outbox) in &user.conns {
        if Some(*id) != except {
            outbox.push(item.clone());
        }
    }
}

/// Hands the early messages of `room` that now follow `delivered` to its members.
fn release_early(room: RoomId, fanout: &mut RoomFanout, local: &HashMap<UserId, LocalUser>) {
    while let Some(entry) = fanout.early.first_entry() {
        let seq = *entry.key();
        if seq <= fanout.delivered {
            entry.remove();
        } else if seq == fanout.delivered + 1 {
            let (frame, except) = entry.remove();
            let item = Outgoing::Message { room, seq, frame };
            send_to_members(&fanout.members, local, &item, except);
            fanout.delivered = seq;
        } else {
            return;
        }
    }
}

/// What a delivery to one user means to each of their connections' per-room order:
/// a join or a catch-up history opens or closes a room's order, anything else is a
/// plain frame.
fn for_user(user: &UserId, delivery: &Delivery) -> Outgoing {
    let frame = delivery.frame.clone();
    match (&delivery.effect, delivery.catch_up) {
        (_, Some(CatchUp { room, newest })) => Outgoing::History {
            room,
            newest,
            frame,
        },
        (
            Some(Effect::Member {
                room, user: member, ..
            }),
            None,
        ) if member == user => Outgoing::Joined { room: *room, frame },
        (Some(Effect::NotMember { room, user: member }), None) if member == user => {
            Outgoing::Left { room: *room, frame }
        }
        _ => Outgoing::Frame(frame),
    }
}

/// How long a room message that arrived ahead of a missing one waits for it before the
/// missing ones are read from the store. Between nodes, messages of one room reach a
/// node out of order by well under a millisecond; this only runs out when pub/sub
/// really lost something.
pub const GAP_WAIT: Duration = Duration::from_millis(100);

impl RoomHub {
    /// Reads the events (messages and changes) of `room` this node has not delivered
    /// from the store and hands them to its members (at most the newest page; a client
    /// that finds a gap before them asks to `catch_up` itself).
    pub(super) async fn fill_from_store(&self, room: RoomId) {
        let Some(after) = self.read().rooms.get(&room).map(|f| f.delivered) else {
            return;
        };
        let events = match self
            .inner
            .store
            .events_after(room, after, HISTORY_PAGE)
            .await
        {
            Ok(events) => events,
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
        for event in events {
            if event.seq() > fanout.delivered {
                let seq = event.seq();
                let frame: Utf8Bytes = event.to_msg().to_json().into();
                let item = Outgoing::Message { room, seq, frame };
                send_to_members(&fanout.members, local, &item, None);
                fanout.delivered = seq;
            }
        }
        release_early(room, fanout, local);
    }

    /// Waits [`GAP_WAIT`] for the messages missing before `room`'s early ones, then
    /// reads them from the store, until no gap is left.
    pub(super) fn fill_gap_later(&self, room: RoomId) {
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
    /// Hands `msg` (with `effect`) to this node's recipients only: for what each node
    /// works out for itself (presence frames, catching up after Redis was away).
    pub(super) fn deliver_here(&self, target: Target, effect: Option<Effect>, msg: &ServerMsg) {
        self.deliver_local(&Delivery {
            target,
            except: None,
            seq: None,
            effect,
            catch_up: None,
            frame: msg.to_json().into(),
        });
    }

    /// Applies a delivery's effect and hands its frame to this node's recipients;
    /// room messages in seq order, once each.
    pub(super) fn deliver_local(&self, delivery: &Delivery) {
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
                    let item = Outgoing::Frame(delivery.frame.clone());
                    send_to_members(&fanout.members, local, &item, delivery.except);
                    return;
                };
                if seq <= fanout.delivered {
                    // Already delivered (a resend's original, or filled from the store).
                } else if seq == fanout.delivered + 1 {
                    let started = std::time::Instant::now();
                    let item = Outgoing::Message {
                        room: *room,
                        seq,
                        frame: delivery.frame.clone(),
                    };
                    send_to_members(&fanout.members, local, &item, delivery.except);
                    fanout.delivered = seq;
                    release_early(*room, fanout, local);
                    self.fanout_seconds.record(started.elapsed());
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
                    send_to_user(user, &for_user(id, delivery), delivery.except);
                }
            }
            Target::Everyone => {
                let item = Outgoing::Frame(delivery.frame.clone());
                local
                    .values()
                    .for_each(|user| send_to_user(user, &item, delivery.except));
            }
            Target::Nobody => {}
        }
        drop(state);
        if let (Some(room), Some(hub)) = (gap_in, self.me.upgrade()) {
            hub.fill_gap_later(room);
        }
    }
}
