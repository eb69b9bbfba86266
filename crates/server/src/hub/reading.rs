//! Attention that goes to people rather than into a room's order: read positions,
//! room sizes and typing.
//!
//! **Read positions** are coalesced: `mark_read` only notes the newest seq per person
//! and room in [`Attention::unsaved`]; once a second ([`READ_FLUSH`]) the hub stores
//! what changed in one transaction and sends each person's connections, on every node,
//! their new [`ReadState`] (counted in the store, so every device shows the same
//! numbers) — when they have more than one: a lone tab knows what it read. However fast a client marks a busy room read, it costs the server one
//! write and one count per second for that room.
//!
//! **Room sizes** (for `@room` and typing) are counted in the store and remembered for
//! [`MEMBER_COUNT_TTL`]: typing in a room costs no query per signal.
//!
//! **Typing** is never stored or sequenced: a frame to the room's members on every
//! node, skipping the typist's own connection.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use natter_protocol::{ReadState, RoomId, Seq, ServerMsg, UserId, UserSummary};

use super::{RoomHub, WeakHub};
use crate::broker::{ConnId, Delivery, Target};
use crate::store::attention::ReadPosition;
use crate::store::StoreError;

/// How often unsaved read positions are written and sent to their owners.
pub const READ_FLUSH: Duration = Duration::from_secs(1);

/// How long a counted room size is trusted.
const MEMBER_COUNT_TTL: Duration = Duration::from_secs(10);

/// Room sizes remembered at most; past it, those older than the TTL are forgotten.
const MEMBER_COUNTS_KEPT: usize = 10_000;

/// The hub's attention state (see the module docs).
#[derive(Debug, Default)]
pub(super) struct Attention {
    /// Read positions noted since the last flush, newest per person and room.
    unsaved: Mutex<HashMap<(UserId, RoomId), Seq>>,
    /// Room sizes with when they were counted.
    member_counts: Mutex<HashMap<RoomId, (u32, Instant)>>,
}

/// Writes and announces read positions every [`READ_FLUSH`] while the hub lives.
pub(super) fn flush_reads_every_second(hub: WeakHub) {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(READ_FLUSH).await;
            match hub.upgrade() {
                Some(hub) => hub.flush_reads().await,
                None => return,
            }
        }
    });
}

impl RoomHub {
    /// Notes that `user` (a member of `room`) has read it up to `seq`: stored with the
    /// next flush if it moved forward, and the state then sent to their connections.
    pub fn mark_read(&self, user: &UserId, room: RoomId, seq: Seq) {
        let mut unsaved = lock(&self.inner.attention.unsaved);
        let noted = unsaved.entry((user.clone(), room)).or_default();
        *noted = (*noted).max(seq);
    }

    /// Stores every read position noted since the last flush and sends each owner's
    /// connections their new state. Positions that could not be stored are kept for
    /// the next flush.
    pub async fn flush_reads(&self) {
        let noted = std::mem::take(&mut *lock(&self.inner.attention.unsaved));
        self.save_reads(noted).await;
    }

    /// [`RoomHub::flush_reads`] for one person only: what their `hello` must count.
    pub async fn flush_reads_of(&self, user: &UserId) {
        let mut noted = HashMap::new();
        lock(&self.inner.attention.unsaved).retain(|key, seq| {
            let theirs = &key.0 == user;
            if theirs {
                noted.insert(key.clone(), *seq);
            }
            !theirs
        });
        self.save_reads(noted).await;
    }

    /// Stores `noted` and sends the new states (see [`RoomHub::flush_reads`]).
    async fn save_reads(&self, noted: HashMap<(UserId, RoomId), Seq>) {
        if noted.is_empty() {
            return;
        }
        let positions: Vec<ReadPosition> = noted
            .iter()
            .map(|((user, room), seq)| ReadPosition {
                user: user.clone(),
                room: *room,
                seq: *seq,
            })
            .collect();
        let store = self.store();
        if let Err(err) = store.save_read_positions(&positions).await {
            tracing::warn!(%err, "could not store read positions; trying again");
            let mut unsaved = lock(&self.inner.attention.unsaved);
            for (key, seq) in noted {
                let kept = unsaved.entry(key).or_default();
                *kept = (*kept).max(seq);
            }
            return;
        }
        for position in positions {
            // One tab and nothing elsewhere: it knows what it read; nobody to tell.
            if !self.connected_elsewhere(&position.user) {
                continue;
            }
            match store
                .read_state(&position.user, position.room, position.seq)
                .await
            {
                Ok(Some(state)) => self.publish(
                    Target::User(position.user),
                    &ServerMsg::Read {
                        room: position.room,
                        state,
                    },
                ),
                Ok(None) => {}
                Err(err) => tracing::warn!(%err, "could not count a read state"),
            }
        }
    }

    /// Whether `user` has more than one connection: several here, or any on another
    /// node. Only then does a read position need sending.
    fn connected_elsewhere(&self, user: &UserId) -> bool {
        let state = self.read();
        let here = state.local.get(user).map_or(0, |u| u.conns.len());
        let other_nodes = state
            .online
            .get(user)
            .is_some_and(|u| u.nodes.iter().any(|node| node != self.node()));
        here > 1 || other_nodes
    }

    /// `user`'s read state in `room` now (blank when they are not a member).
    pub async fn read_state(&self, user: &UserId, room: RoomId) -> Result<ReadState, StoreError> {
        Ok(self
            .store()
            .read_state(user, room, 0)
            .await?
            .unwrap_or_default())
    }

    /// How many members `room` has, counted at most [`MEMBER_COUNT_TTL`] ago.
    pub async fn member_count(&self, room: RoomId) -> Result<u32, StoreError> {
        if let Some((count, at)) = lock(&self.inner.attention.member_counts).get(&room) {
            if at.elapsed() < MEMBER_COUNT_TTL {
                return Ok(*count);
            }
        }
        let count = self.store().member_count(room).await?;
        let mut counts = lock(&self.inner.attention.member_counts);
        if counts.len() >= MEMBER_COUNTS_KEPT {
            counts.retain(|_, (_, at)| at.elapsed() < MEMBER_COUNT_TTL);
        }
        counts.insert(room, (count, Instant::now()));
        Ok(count)
    }

    /// Tells the members of `room` on every node (but not connection `typist_conn`)
    /// that `user` started or stopped typing.
    pub fn publish_typing(
        &self,
        room: RoomId,
        user: UserSummary,
        typing: bool,
        typist_conn: ConnId,
    ) {
        let msg = ServerMsg::Typing { room, user, typing };
        self.inner.broker.publish(Delivery {
            target: Target::Room(room),
            except: Some(typist_conn),
            seq: None,
            effect: None,
            catch_up: None,
            frame: msg.to_json().into(),
        });
    }
}

/// Locks one of the attention maps; a poisoned lock (a panic while holding it) still
/// holds consistent data: every use completes its change before unlocking.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}
