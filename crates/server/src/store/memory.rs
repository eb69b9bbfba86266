//! A [`Store`] that keeps everything in process memory, chosen with
//! `--database-url memory:`. Nothing survives a restart.
//!
//! It exists for two reasons: tests that are about chat logic rather than about a
//! database, and the benchmark, where it shows what persistence costs (natter on
//! SQLite against natter on this). It keeps the same contract as the SQLite store —
//! gap-free seqs per room, idempotent `(sender, client_id)` — through the same batch
//! planner ([`super::batch`]).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;

use async_trait::async_trait;
use natter_protocol::validate::name_key;
use natter_protocol::{ChatMessage, RoomId, Seq, UserId};

use super::batch::AppendBatch;
use super::{
    Appended, NewMessage, RoomRecord, RoomRecordKind, Store, StoreError, StoreResult, UserRecord,
};

/// The URL that selects this store.
pub const MEMORY_URL: &str = "memory:";

/// In-memory [`Store`]; one mutex, held only for short synchronous sections.
#[derive(Debug)]
pub struct MemoryStore {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    users: HashMap<UserId, UserRecord>,
    rooms: BTreeMap<RoomId, Room>,
    next_room: i64,
    /// Case-folded channel name → room.
    channels: HashMap<String, RoomId>,
    /// Code → code room.
    codes: HashMap<String, RoomId>,
    /// Both members, smaller id first → direct room.
    directs: HashMap<[UserId; 2], RoomId>,
    /// `(sender id, client_id)` → where the message is.
    client_ids: HashMap<(String, String), (RoomId, Seq)>,
}

#[derive(Debug)]
struct Room {
    record: RoomRecord,
    members: HashSet<UserId>,
    /// `messages[i]` has seq `i + 1`.
    messages: Vec<ChatMessage>,
}

impl Default for MemoryStore {
    /// An empty store holding the default channel, as a fresh database does.
    fn default() -> Self {
        let store = MemoryStore {
            state: Mutex::default(),
        };
        store.state().insert_room(
            RoomRecordKind::Channel {
                name: natter_protocol::DEFAULT_CHANNEL.into(),
            },
            false,
        );
        store
    }
}

impl MemoryStore {
    /// Same as [`MemoryStore::default`]: a fresh store with the default channel.
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl State {
    fn insert_room(&mut self, kind: RoomRecordKind, delete_when_empty: bool) -> RoomRecord {
        self.next_room += 1;
        let id = RoomId(self.next_room);
        match &kind {
            RoomRecordKind::Channel { name } => self.channels.insert(name_key(name), id),
            RoomRecordKind::Code { code } => self.codes.insert(code.clone(), id),
            RoomRecordKind::Direct { members } => self.directs.insert(members.clone(), id),
        };
        let record = RoomRecord {
            id,
            kind,
            delete_when_empty,
            latest_seq: 0,
        };
        self.rooms.insert(
            record.id,
            Room {
                record: record.clone(),
                members: HashSet::new(),
                messages: Vec::new(),
            },
        );
        record
    }

    fn record(&self, id: Option<&RoomId>) -> Option<RoomRecord> {
        id.and_then(|id| self.rooms.get(id))
            .map(|room| room.record.clone())
    }
}

/// The newest `limit` messages (oldest first) among `messages[range]`; `messages[i]`
/// has seq `i + 1`, so a seq bound is an index.
fn newest(messages: &[ChatMessage], from_seq: Seq, below_seq: Seq, limit: u32) -> Vec<ChatMessage> {
    let len = messages.len() as Seq;
    let end = below_seq.saturating_sub(1).min(len);
    let start = from_seq
        .saturating_sub(1)
        .min(end)
        .max(end.saturating_sub(u64::from(limit)));
    messages[start as usize..end as usize].to_vec()
}

#[async_trait]
impl Store for MemoryStore {
    async fn create_user(&self, user: &UserRecord) -> StoreResult<()> {
        let mut state = self.state();
        if state.users.contains_key(&user.id) {
            return Err(StoreError::Conflict);
        }
        state.users.insert(user.id.clone(), user.clone());
        Ok(())
    }

    async fn find_user(&self, id: &UserId) -> StoreResult<Option<UserRecord>> {
        Ok(self.state().users.get(id).cloned())
    }

    async fn rename_user(&self, id: &UserId, name: &str) -> StoreResult<()> {
        if let Some(user) = self.state().users.get_mut(id) {
            user.name = name.to_string();
        }
        Ok(())
    }

    async fn create_channel(&self, name: &str, delete_when_empty: bool) -> StoreResult<RoomRecord> {
        let mut state = self.state();
        if state.channels.contains_key(&name_key(name)) {
            return Err(StoreError::Conflict);
        }
        let kind = RoomRecordKind::Channel {
            name: name.to_string(),
        };
        Ok(state.insert_room(kind, delete_when_empty))
    }

    async fn find_channel(&self, name: &str) -> StoreResult<Option<RoomRecord>> {
        let state = self.state();
        Ok(state.record(state.channels.get(&name_key(name))))
    }

    async fn list_channels(&self) -> StoreResult<Vec<RoomRecord>> {
        Ok(self
            .state()
            .rooms
            .values()
            .filter(|room| matches!(room.record.kind, RoomRecordKind::Channel { .. }))
            .map(|room| room.record.clone())
            .collect())
    }

    async fn create_code_room(
        &self,
        code: &str,
        delete_when_empty: bool,
    ) -> StoreResult<RoomRecord> {
        let mut state = self.state();
        if state.codes.contains_key(code) {
            return Err(StoreError::Conflict);
        }
        let kind = RoomRecordKind::Code {
            code: code.to_string(),
        };
        Ok(state.insert_room(kind, delete_when_empty))
    }

    async fn find_code_room(&self, code: &str) -> StoreResult<Option<RoomRecord>> {
        let state = self.state();
        Ok(state.record(state.codes.get(code)))
    }

    async fn open_direct(&self, a: &UserId, b: &UserId) -> StoreResult<(RoomRecord, bool)> {
        let members = if a <= b {
            [a.clone(), b.clone()]
        } else {
            [b.clone(), a.clone()]
        };
        let mut state = self.state();
        if let Some(room) = state.record(state.directs.get(&members)) {
            return Ok((room, false));
        }
        let room = state.insert_room(
            RoomRecordKind::Direct {
                members: members.clone(),
            },
            false,
        );
        if let Some(entry) = state.rooms.get_mut(&room.id) {
            entry.members.extend(members);
        }
        Ok((room, true))
    }

    async fn room(&self, id: RoomId) -> StoreResult<Option<RoomRecord>> {
        Ok(self.state().rooms.get(&id).map(|room| room.record.clone()))
    }

    async fn delete_room(&self, id: RoomId) -> StoreResult<()> {
        let mut state = self.state();
        if let Some(room) = state.rooms.remove(&id) {
            match &room.record.kind {
                RoomRecordKind::Channel { name } => state.channels.remove(&name_key(name)),
                RoomRecordKind::Code { code } => state.codes.remove(code),
                RoomRecordKind::Direct { members } => state.directs.remove(members),
            };
            state.client_ids.retain(|_, (room_id, _)| *room_id != id);
        }
        Ok(())
    }

    async fn add_member(&self, room: RoomId, user: &UserId) -> StoreResult<bool> {
        match self.state().rooms.get_mut(&room) {
            Some(entry) => Ok(entry.members.insert(user.clone())),
            None => Err(StoreError::NotFound),
        }
    }

    async fn remove_member(&self, room: RoomId, user: &UserId) -> StoreResult<u64> {
        match self.state().rooms.get_mut(&room) {
            Some(entry) => {
                entry.members.remove(user);
                Ok(entry.members.len() as u64)
            }
            None => Ok(0),
        }
    }

    async fn rooms_of(&self, user: &UserId) -> StoreResult<Vec<RoomRecord>> {
        Ok(self
            .state()
            .rooms
            .values()
            .filter(|room| room.members.contains(user))
            .map(|room| room.record.clone())
            .collect())
    }

    async fn append(&self, batch: Vec<NewMessage>) -> StoreResult<Vec<Appended>> {
        let mut batch = AppendBatch::new(batch);
        let mut state = self.state();
        let stored_before = batch
            .idempotency_keys()
            .filter_map(|(sender, client_id)| {
                let key = (sender.to_string(), client_id.to_string());
                let (room, seq) = state.client_ids.get(&key)?;
                let message = state.rooms.get(room)?.messages.get(*seq as usize - 1)?;
                Some((key, message.clone()))
            })
            .collect();
        batch.mark_resends(stored_before);
        let mut latest = HashMap::new();
        for (room, count) in batch.seq_demand() {
            if let Some(entry) = state.rooms.get_mut(&room) {
                entry.record.latest_seq += count;
                latest.insert(room, entry.record.latest_seq);
            }
        }
        let (outcomes, rows) = batch.assign(&latest);
        for row in rows {
            let Appended::Stored(message) = &outcomes[row.index] else {
                continue;
            };
            if let Some(client_id) = row.client_id {
                state.client_ids.insert(
                    (message.sender.id.0.clone(), client_id),
                    (message.room, message.seq),
                );
            }
            if let Some(entry) = state.rooms.get_mut(&message.room) {
                entry.messages.push(message.clone());
            }
        }
        Ok(outcomes)
    }

    async fn history_before(
        &self,
        room: RoomId,
        before: Seq,
        limit: u32,
    ) -> StoreResult<Vec<ChatMessage>> {
        let state = self.state();
        let messages = state.rooms.get(&room).map_or(&[][..], |r| &r.messages);
        Ok(newest(messages, 1, before, limit))
    }

    async fn latest_after(
        &self,
        room: RoomId,
        after: Seq,
        limit: u32,
    ) -> StoreResult<Vec<ChatMessage>> {
        let state = self.state();
        let messages = state.rooms.get(&room).map_or(&[][..], |r| &r.messages);
        Ok(newest(messages, after.saturating_add(1), Seq::MAX, limit))
    }
}
