//! The in-memory [`AttentionStore`]: mentions are noted per message as it is stored or
//! edited, read positions kept in a map.

use std::collections::HashSet;

use async_trait::async_trait;
use natter_protocol::validate::name_key;
use natter_protocol::{
    Mention, MessageKind, ReadState, RoomId, Seq, UserId, UserSummary, MAX_UNREAD_COUNTED,
};

use super::{MemoryStore, Room};
use crate::store::attention::{AttentionStore, ReadPosition};
use crate::store::StoreResult;

impl Room {
    /// Notes who message `seq` by `sender` mentions: each person other than the sender,
    /// every other member for `@room`.
    pub(super) fn note_mentions(&mut self, seq: Seq, sender: &UserId, mentions: &[Mention]) {
        let mut who = HashSet::new();
        for mention in mentions {
            match &mention.user {
                Some(user) => {
                    who.insert(user.clone());
                }
                None => who.extend(self.members.iter().cloned()),
            }
        }
        who.remove(sender);
        if !who.is_empty() {
            self.mentioned.insert(seq, who);
        }
    }

    /// `user`'s read state here, having read up to `read`, not counting what people
    /// in `blocked` sent.
    fn read_state(&self, user: &UserId, read: Seq, blocked: &[UserId]) -> ReadState {
        let through = self.record.latest_seq;
        let read = read.min(through);
        let unread = self
            .messages
            .iter()
            .rev()
            .take_while(|m| m.seq > read)
            .filter(|m| m.kind == MessageKind::Text && !m.deleted && &m.sender.id != user)
            .filter(|m| !blocked.contains(&m.sender.id))
            .take(MAX_UNREAD_COUNTED as usize)
            .count();
        let mentions = self
            .mentioned
            .range(read + 1..)
            .filter(|(seq, who)| {
                who.contains(user)
                    && self
                        .message(**seq)
                        .is_some_and(|m| !blocked.contains(&m.sender.id))
            })
            .count();
        ReadState {
            seq: read,
            unread: unread as u32,
            mentions: mentions as u32,
            through,
        }
    }
}

#[async_trait]
impl AttentionStore for MemoryStore {
    async fn members_named(&self, room: RoomId, names: &[&str]) -> StoreResult<Vec<UserSummary>> {
        let state = self.state();
        let keys: HashSet<String> = names.iter().map(|n| name_key(n)).collect();
        let Some(room) = state.rooms.get(&room) else {
            return Ok(Vec::new());
        };
        Ok(room
            .members
            .iter()
            .filter_map(|id| state.users.get(id))
            .filter(|user| keys.contains(&name_key(&user.name)))
            .map(|user| UserSummary {
                id: user.id.clone(),
                name: user.name.clone(),
            })
            .collect())
    }

    async fn member_count(&self, room: RoomId) -> StoreResult<u32> {
        let state = self.state();
        Ok(state.rooms.get(&room).map_or(0, |r| r.members.len() as u32))
    }

    async fn save_read_positions(&self, positions: &[ReadPosition]) -> StoreResult<()> {
        let mut state = self.state();
        for position in positions {
            let member = state
                .rooms
                .get(&position.room)
                .is_some_and(|r| r.members.contains(&position.user));
            let latest = state
                .rooms
                .get(&position.room)
                .map_or(0, |r| r.record.latest_seq);
            if member {
                let stored = state
                    .read
                    .entry((position.user.clone(), position.room))
                    .or_default();
                *stored = (*stored).max(position.seq.min(latest));
            }
        }
        Ok(())
    }

    async fn read_states(&self, user: &UserId) -> StoreResult<Vec<(RoomId, ReadState)>> {
        let state = self.state();
        let blocked = state.blocks.get(user).cloned().unwrap_or_default();
        Ok(state
            .rooms
            .iter()
            .filter(|(_, room)| room.members.contains(user))
            .map(|(id, room)| {
                let read = state.read.get(&(user.clone(), *id)).copied().unwrap_or(0);
                (*id, room.read_state(user, read, &blocked))
            })
            .collect())
    }

    async fn read_state(
        &self,
        user: &UserId,
        room: RoomId,
        seq: Seq,
    ) -> StoreResult<Option<ReadState>> {
        let state = self.state();
        let stored = state.read.get(&(user.clone(), room)).copied().unwrap_or(0);
        let blocked = state.blocks.get(user).cloned().unwrap_or_default();
        Ok(state
            .rooms
            .get(&room)
            .filter(|r| r.members.contains(user))
            .map(|r| r.read_state(user, stored.max(seq), &blocked)))
    }
}
