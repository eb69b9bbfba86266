//! A [`Store`] that keeps everything in process memory, chosen with
//! `--database-url memory:`. Nothing survives a restart.
//!
//! It exists for two reasons: tests that are about chat logic rather than about a
//! database, and the benchmark, where it shows what persistence costs (natter on
//! SQLite against natter on this). It keeps the same contract as the SQLite store —
//! gap-free seqs per room, idempotent `(sender, client_id)` — through the same batch
//! planner ([`super::batch`]).
//!
//! Changes to messages live in `memory/changes.rs`.
//!
//! Why one long file: it is the reference implementation of the whole `Store` contract
//! (rooms, messages, files, accounts, sessions, tokens, mail) over one in-memory state behind
//! one lock.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;

use async_trait::async_trait;
use natter_protocol::validate::name_key;
use natter_protocol::{ChannelListing, ChatMessage, FileId, RoomId, Seq, UserId, UserSummary};

use super::accounts::{
    AccountRecord, AccountStore, MailRecord, NewAccount, NewMail, SessionRecord, TokenPurpose,
};
use super::batch::AppendBatch;
use super::changes::ChangeEvent;
use super::files::{FileRecord, FileStore};
use super::{
    Appended, Blocking, Departure, NewMessage, RoomRecord, RoomRecordKind, Store, StoreError,
    StoreResult, UserRecord,
};

mod attention;
mod changes;

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
    /// When each user last said hello (see [`Store::seen`]).
    seen: HashMap<UserId, i64>,
    rooms: BTreeMap<RoomId, Room>,
    next_room: i64,
    /// Case-folded channel name → room.
    channels: HashMap<String, RoomId>,
    /// Code → code room.
    codes: HashMap<String, RoomId>,
    /// Both members, smaller id first → direct room.
    directs: HashMap<[UserId; 2], RoomId>,
    /// Who each user blocks, longest blocked first.
    blocks: HashMap<UserId, Vec<UserId>>,
    /// `(sender id, client_id)` → where the message is.
    client_ids: HashMap<(String, String), (RoomId, Seq)>,
    /// `(sender id, client_id)` → where the change is.
    change_ids: HashMap<(String, String), (RoomId, Seq)>,
    /// Accounts by user.
    accounts: HashMap<UserId, MemoryAccount>,
    /// Sessions by id hash.
    sessions: HashMap<String, SessionRecord>,
    /// Emailed tokens by hash.
    tokens: HashMap<String, MemoryToken>,
    /// Uploads by id.
    files: HashMap<FileId, FileRecord>,
    /// `(user, at, bytes)` of every upload, for the daily quota.
    upload_log: Vec<(UserId, i64, u64)>,
    /// Queued email by id (ascending = oldest first).
    mail: BTreeMap<i64, QueuedMail>,
    /// The id the next queued email gets.
    next_mail: i64,
    /// Read positions by person and room.
    read: HashMap<(UserId, RoomId), Seq>,
}

/// An account's sign-in details (its name is the user's).
#[derive(Debug, Clone)]
struct MemoryAccount {
    email: String,
    password_hash: String,
    verified: bool,
    created_at: i64,
}

#[derive(Debug, Clone)]
struct MemoryToken {
    user: UserId,
    purpose: TokenPurpose,
    expires_at: i64,
    used: bool,
}

#[derive(Debug, Clone)]
struct QueuedMail {
    mail: NewMail,
    attempts: i64,
    next_attempt_at: i64,
}

#[derive(Debug)]
struct Room {
    record: RoomRecord,
    members: HashSet<UserId>,
    /// Messages by ascending seq (seqs taken by changes hold none), as first stored:
    /// [`changes`] applies edits and deletions to them, and keeps reactions apart.
    messages: Vec<ChatMessage>,
    /// Changes by ascending seq (an edit's text is its message's, not kept here).
    changes: Vec<ChangeEvent>,
    /// Reactions per message seq: per emoji in the order first given, its reactors
    /// (with the seq of each reaction) in the order they reacted.
    reactions: BTreeMap<Seq, Vec<(String, Vec<UserSummary>)>>,
    /// Who each message mentions (`@room` expanded to the members when stored).
    mentioned: BTreeMap<Seq, HashSet<UserId>>,
}

impl Room {
    /// The message with this seq.
    fn message(&self, seq: Seq) -> Option<&ChatMessage> {
        let at = self.messages.binary_search_by_key(&seq, |m| m.seq).ok()?;
        self.messages.get(at)
    }

    /// The newest `limit` messages with seq in `from..below`, oldest first, as
    /// `viewer` sees them now.
    fn newest(
        &self,
        from: Seq,
        below: Seq,
        limit: u32,
        viewer: Option<&UserId>,
    ) -> Vec<ChatMessage> {
        let start = self.messages.partition_point(|m| m.seq < from);
        let end = self.messages.partition_point(|m| m.seq < below).max(start);
        let start = start.max(end.saturating_sub(limit as usize));
        self.messages[start..end]
            .iter()
            .map(|m| self.current(m, viewer))
            .collect()
    }
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
                changes: Vec::new(),
                reactions: BTreeMap::new(),
                mentioned: BTreeMap::new(),
            },
        );
        record
    }

    fn account_record(&self, user: &UserId) -> Option<AccountRecord> {
        let account = self.accounts.get(user)?;
        Some(AccountRecord {
            user_id: user.clone(),
            name: self
                .users
                .get(user)
                .map(|u| u.name.clone())
                .unwrap_or_default(),
            email: account.email.clone(),
            password_hash: account.password_hash.clone(),
            verified: account.verified,
        })
    }

    /// The account (other than `except`) whose name has this key.
    fn name_owner(&self, key: &str, except: Option<&UserId>) -> Option<UserId> {
        self.accounts
            .keys()
            .filter(|user| Some(*user) != except)
            .find(|user| {
                self.users
                    .get(*user)
                    .is_some_and(|u| name_key(&u.name) == key)
            })
            .cloned()
    }

    fn record(&self, id: Option<&RoomId>) -> Option<RoomRecord> {
        id.and_then(|id| self.rooms.get(id))
            .map(|room| room.record.clone())
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn create_user(&self, user: &UserRecord) -> StoreResult<()> {
        let mut state = self.state();
        if state.users.contains_key(&user.id) {
            return Err(StoreError::Conflict);
        }
        state.users.insert(user.id.clone(), user.clone());
        state.seen.insert(user.id.clone(), crate::clock::now_ms());
        Ok(())
    }

    async fn find_user(&self, id: &UserId) -> StoreResult<Option<UserRecord>> {
        Ok(self.state().users.get(id).cloned())
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

    async fn channel_directory(&self) -> StoreResult<Vec<ChannelListing>> {
        let mut listings: Vec<ChannelListing> = self
            .state()
            .rooms
            .values()
            .filter_map(|room| match &room.record.kind {
                RoomRecordKind::Channel { name } => Some(ChannelListing {
                    id: room.record.id,
                    name: name.clone(),
                    members: u32::try_from(room.members.len()).unwrap_or(u32::MAX),
                }),
                _ => None,
            })
            .collect();
        listings.sort_by(|a, b| {
            b.members
                .cmp(&a.members)
                .then_with(|| name_key(&a.name).cmp(&name_key(&b.name)))
        });
        Ok(listings)
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

    async fn find_direct(&self, a: &UserId, b: &UserId) -> StoreResult<Option<RoomRecord>> {
        let state = self.state();
        Ok(state.record(state.directs.get(&direct_pair(a, b))))
    }

    async fn open_direct(&self, a: &UserId, b: &UserId) -> StoreResult<(RoomRecord, bool)> {
        let members = direct_pair(a, b);
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

    async fn add_member(&self, room: RoomId, user: &UserId) -> StoreResult<bool> {
        let mut state = self.state();
        let Some(entry) = state.rooms.get_mut(&room) else {
            return Err(StoreError::NotFound);
        };
        let added = entry.members.insert(user.clone());
        if added {
            // As the SQL stores: a newcomer has read what was there.
            let latest = entry.record.latest_seq;
            let read = state.read.entry((user.clone(), room)).or_default();
            *read = (*read).max(latest);
        }
        Ok(added)
    }

    async fn remove_member(&self, room: RoomId, user: &UserId) -> StoreResult<Departure> {
        // One lock over the removal and the deletion, as the SQL stores' transaction.
        let mut state = self.state();
        let Some(entry) = state.rooms.get_mut(&room) else {
            return Ok(Departure {
                remaining: 0,
                room_deleted: false,
            });
        };
        entry.members.remove(user);
        let remaining = entry.members.len() as u64;
        let room_deleted = remaining == 0 && entry.record.delete_when_empty;
        if room_deleted {
            if let Some(gone) = state.rooms.remove(&room) {
                match &gone.record.kind {
                    RoomRecordKind::Channel { name } => state.channels.remove(&name_key(name)),
                    RoomRecordKind::Code { code } => state.codes.remove(code),
                    RoomRecordKind::Direct { members } => state.directs.remove(members),
                };
            }
            state.client_ids.retain(|_, (room_id, _)| *room_id != room);
            state.change_ids.retain(|_, (room_id, _)| *room_id != room);
            state.files.retain(|_, file| file.room != Some(room));
        }
        Ok(Departure {
            remaining,
            room_deleted,
        })
    }

    async fn rooms_of(&self, user: &UserId) -> StoreResult<Vec<RoomRecord>> {
        let state = self.state();
        let blocked = state.blocks.get(user).map_or(&[][..], Vec::as_slice);
        let hidden = |record: &RoomRecord| match &record.kind {
            RoomRecordKind::Direct { members } => members.iter().any(|m| blocked.contains(m)),
            _ => false,
        };
        Ok(state
            .rooms
            .values()
            .filter(|room| room.members.contains(user) && !hidden(&room.record))
            .map(|room| room.record.clone())
            .collect())
    }

    async fn block(&self, user: &UserId, other: &UserId, max: usize) -> StoreResult<Blocking> {
        let mut state = self.state();
        if !state.users.contains_key(user) || !state.users.contains_key(other) {
            return Err(StoreError::NotFound);
        }
        let blocked = state.blocks.entry(user.clone()).or_default();
        Ok(if blocked.contains(other) {
            Blocking::Already
        } else if blocked.len() >= max {
            Blocking::Full
        } else {
            blocked.push(other.clone());
            Blocking::Added
        })
    }

    async fn unblock(&self, user: &UserId, other: &UserId) -> StoreResult<bool> {
        let mut state = self.state();
        let Some(blocked) = state.blocks.get_mut(user) else {
            return Ok(false);
        };
        let before = blocked.len();
        blocked.retain(|b| b != other);
        Ok(blocked.len() < before)
    }

    async fn blocked_by(&self, user: &UserId) -> StoreResult<Vec<UserSummary>> {
        let state = self.state();
        let blocked = state.blocks.get(user).map_or(&[][..], Vec::as_slice);
        Ok(blocked
            .iter()
            .filter_map(|id| state.users.get(id))
            .map(|record| UserSummary {
                id: record.id.clone(),
                name: record.name.clone(),
            })
            .collect())
    }

    async fn blocks(&self, user: &UserId, other: &UserId) -> StoreResult<bool> {
        Ok(self
            .state()
            .blocks
            .get(user)
            .is_some_and(|blocked| blocked.contains(other)))
    }

    async fn seen(&self, user: &UserId, now: i64) -> StoreResult<()> {
        if let Some(seen) = self.state().seen.get_mut(user) {
            if *seen < now - super::SEEN_EVERY_MS {
                *seen = now;
            }
        }
        Ok(())
    }

    async fn delete_stale(
        &self,
        guests_seen_before: i64,
        unverified_before: i64,
    ) -> StoreResult<u64> {
        let mut state = self.state();
        let state = &mut *state;
        let unverified: Vec<UserId> = state
            .accounts
            .iter()
            .filter(|(_, a)| !a.verified && a.created_at < unverified_before)
            .map(|(id, _)| id.clone())
            .collect();
        let guests: Vec<UserId> = state
            .seen
            .iter()
            .filter(|(id, at)| **at < guests_seen_before && !state.accounts.contains_key(*id))
            .map(|(id, _)| id.clone())
            .collect();
        for user in &unverified {
            state.accounts.remove(user);
            state.tokens.retain(|_, t| &t.user != user);
            state.sessions.retain(|_, s| &s.user_id != user);
        }
        for user in unverified.iter().chain(&guests) {
            state.users.remove(user);
            state.seen.remove(user);
            state.read.retain(|(reader, _), _| reader != user);
            for room in state.rooms.values_mut() {
                room.members.remove(user);
            }
            state.blocks.remove(user);
            for blocked in state.blocks.values_mut() {
                blocked.retain(|b| b != user);
            }
        }
        let emptied: Vec<RoomId> = state
            .rooms
            .iter()
            .filter(|(_, r)| {
                r.record.delete_when_empty
                    && r.members.is_empty()
                    && matches!(r.record.kind, RoomRecordKind::Code { .. })
            })
            .map(|(id, _)| *id)
            .collect();
        for id in emptied {
            if let Some(room) = state.rooms.remove(&id) {
                if let RoomRecordKind::Code { code } = &room.record.kind {
                    state.codes.remove(code);
                }
            }
        }
        Ok((unverified.len() + guests.len()) as u64)
    }

    async fn append(&self, batch: Vec<NewMessage>) -> StoreResult<Vec<Appended>> {
        let mut batch = AppendBatch::new(batch);
        let mut state = self.state();
        let stored_before = batch
            .idempotency_keys()
            .filter_map(|(sender, client_id)| {
                let key = (sender.to_string(), client_id.to_string());
                let (room, seq) = state.client_ids.get(&key)?;
                let message = state.rooms.get(room)?.message(*seq)?;
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
                entry.note_mentions(message.seq, &message.sender.id, &message.mentions);
                entry.messages.push(message.clone());
            }
            for attached in &message.attachments {
                if let Some(file) = state.files.get_mut(&attached.id) {
                    file.room.get_or_insert(message.room);
                }
            }
        }
        Ok(outcomes)
    }

    async fn history_before(
        &self,
        room: RoomId,
        before: Seq,
        limit: u32,
        viewer: &UserId,
    ) -> StoreResult<Vec<ChatMessage>> {
        let state = self.state();
        Ok(state
            .rooms
            .get(&room)
            .map_or_else(Vec::new, |r| r.newest(1, before, limit, Some(viewer))))
    }

    async fn latest_after(
        &self,
        room: RoomId,
        after: Seq,
        limit: u32,
        viewer: &UserId,
    ) -> StoreResult<Vec<ChatMessage>> {
        let state = self.state();
        Ok(state.rooms.get(&room).map_or_else(Vec::new, |r| {
            r.newest(after.saturating_add(1), Seq::MAX, limit, Some(viewer))
        }))
    }
}

#[async_trait]
impl AccountStore for MemoryStore {
    async fn create_account(&self, account: &NewAccount, now: i64) -> StoreResult<()> {
        let mut state = self.state();
        let email_key = natter_protocol::validate::email_key(&account.email);
        let taken = state.users.contains_key(&account.user.id)
            || state
                .accounts
                .values()
                .any(|a| a.email.to_lowercase() == email_key)
            || state
                .name_owner(&name_key(&account.user.name), None)
                .is_some();
        if taken {
            return Err(StoreError::Conflict);
        }
        state
            .users
            .insert(account.user.id.clone(), account.user.clone());
        state.accounts.insert(
            account.user.id.clone(),
            MemoryAccount {
                email: account.email.clone(),
                password_hash: account.password_hash.clone(),
                verified: false,
                created_at: now,
            },
        );
        state.seen.insert(account.user.id.clone(), now);
        Ok(())
    }

    async fn account_by_email(&self, email_key: &str) -> StoreResult<Option<AccountRecord>> {
        let state = self.state();
        let user = state
            .accounts
            .iter()
            .find(|(_, a)| a.email.to_lowercase() == email_key)
            .map(|(user, _)| user.clone());
        Ok(user.and_then(|user| state.account_record(&user)))
    }

    async fn account(&self, user: &UserId) -> StoreResult<Option<AccountRecord>> {
        Ok(self.state().account_record(user))
    }

    async fn name_owner(&self, name_key: &str) -> StoreResult<Option<UserId>> {
        Ok(self.state().name_owner(name_key, None))
    }

    async fn rename_user(&self, user: &UserId, name: &str) -> StoreResult<()> {
        let mut state = self.state();
        let is_account = state.accounts.contains_key(user);
        if is_account && state.name_owner(&name_key(name), Some(user)).is_some() {
            return Err(StoreError::Conflict);
        }
        if let Some(record) = state.users.get_mut(user) {
            record.name = name.to_string();
        }
        Ok(())
    }

    async fn mark_verified(&self, user: &UserId, _now: i64) -> StoreResult<()> {
        if let Some(account) = self.state().accounts.get_mut(user) {
            account.verified = true;
        }
        Ok(())
    }

    async fn set_password(&self, user: &UserId, password_hash: &str) -> StoreResult<Vec<String>> {
        let mut state = self.state();
        if let Some(account) = state.accounts.get_mut(user) {
            account.password_hash = password_hash.to_string();
        }
        let ended: Vec<String> = state
            .sessions
            .values()
            .filter(|s| &s.user_id == user)
            .map(|s| s.id_hash.clone())
            .collect();
        for id_hash in &ended {
            state.sessions.remove(id_hash);
        }
        Ok(ended)
    }

    async fn create_session(&self, session: &SessionRecord) -> StoreResult<()> {
        let mut state = self.state();
        if state.sessions.contains_key(&session.id_hash) {
            return Err(StoreError::Conflict);
        }
        state
            .sessions
            .insert(session.id_hash.clone(), session.clone());
        Ok(())
    }

    async fn session(&self, id_hash: &str) -> StoreResult<Option<SessionRecord>> {
        Ok(self.state().sessions.get(id_hash).cloned())
    }

    async fn touch_session(&self, id_hash: &str, now: i64) -> StoreResult<()> {
        if let Some(session) = self.state().sessions.get_mut(id_hash) {
            session.last_seen_at = now;
        }
        Ok(())
    }

    async fn delete_session(&self, id_hash: &str) -> StoreResult<bool> {
        Ok(self.state().sessions.remove(id_hash).is_some())
    }

    async fn delete_expired(
        &self,
        idle_before: i64,
        created_before: i64,
        now: i64,
    ) -> StoreResult<u64> {
        let mut state = self.state();
        let before = state.sessions.len() + state.tokens.len();
        state
            .sessions
            .retain(|_, s| s.last_seen_at >= idle_before && s.created_at >= created_before);
        state.tokens.retain(|_, t| t.expires_at >= now);
        Ok((before - state.sessions.len() - state.tokens.len()) as u64)
    }

    async fn create_token(
        &self,
        token_hash: &str,
        user: &UserId,
        purpose: TokenPurpose,
        expires_at: i64,
    ) -> StoreResult<()> {
        let mut state = self.state();
        if state.tokens.contains_key(token_hash) {
            return Err(StoreError::Conflict);
        }
        let token = MemoryToken {
            user: user.clone(),
            purpose,
            expires_at,
            used: false,
        };
        state.tokens.insert(token_hash.to_string(), token);
        Ok(())
    }

    async fn use_token(
        &self,
        token_hash: &str,
        purpose: TokenPurpose,
        now: i64,
    ) -> StoreResult<Option<UserId>> {
        let mut state = self.state();
        let Some(token) = state.tokens.get_mut(token_hash) else {
            return Ok(None);
        };
        if token.used || token.purpose != purpose || token.expires_at <= now {
            return Ok(None);
        }
        token.used = true;
        Ok(Some(token.user.clone()))
    }

    async fn enqueue_mail(&self, mail: &NewMail, now: i64) -> StoreResult<()> {
        let mut state = self.state();
        state.next_mail += 1;
        let id = state.next_mail;
        let queued = QueuedMail {
            mail: mail.clone(),
            attempts: 0,
            next_attempt_at: now,
        };
        state.mail.insert(id, queued);
        Ok(())
    }

    async fn due_mail(&self, now: i64, limit: u32) -> StoreResult<Vec<MailRecord>> {
        Ok(self
            .state()
            .mail
            .iter()
            .filter(|(_, m)| m.next_attempt_at <= now)
            .take(limit as usize)
            .map(|(id, m)| MailRecord {
                id: *id,
                mail: m.mail.clone(),
                attempts: m.attempts + 1,
            })
            .collect())
    }

    async fn claim_mail(&self, id: i64, now: i64, lease_until: i64) -> StoreResult<bool> {
        let mut state = self.state();
        match state.mail.get_mut(&id) {
            Some(queued) if queued.next_attempt_at <= now => {
                queued.attempts += 1;
                queued.next_attempt_at = lease_until;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn mail_sent(&self, id: i64) -> StoreResult<()> {
        self.state().mail.remove(&id);
        Ok(())
    }

    async fn mail_failed(&self, id: i64, retry_at: i64, _error: &str) -> StoreResult<()> {
        if let Some(queued) = self.state().mail.get_mut(&id) {
            queued.next_attempt_at = retry_at;
        }
        Ok(())
    }

    async fn queued_mail(&self) -> StoreResult<u64> {
        Ok(self.state().mail.len() as u64)
    }
}

/// The two members of a direct room in their stored order.
fn direct_pair(a: &UserId, b: &UserId) -> [UserId; 2] {
    if a <= b {
        [a.clone(), b.clone()]
    } else {
        [b.clone(), a.clone()]
    }
}

#[async_trait]
impl FileStore for MemoryStore {
    async fn create_file(&self, file: &FileRecord) -> StoreResult<()> {
        let mut state = self.state();
        if state.files.contains_key(&file.id) {
            return Err(StoreError::Conflict);
        }
        state.files.insert(file.id.clone(), file.clone());
        Ok(())
    }

    async fn file(&self, id: &FileId) -> StoreResult<Option<FileRecord>> {
        Ok(self.state().files.get(id).cloned())
    }

    async fn log_upload(&self, user: &UserId, at: i64, bytes: u64) -> StoreResult<()> {
        self.state().upload_log.push((user.clone(), at, bytes));
        Ok(())
    }

    async fn uploaded_bytes_since(&self, user: &UserId, since: i64) -> StoreResult<u64> {
        Ok(self
            .state()
            .upload_log
            .iter()
            .filter(|(who, at, _)| who == user && *at >= since)
            .map(|(_, _, bytes)| bytes)
            .sum())
    }

    async fn delete_unsent_files(&self, before: i64) -> StoreResult<Vec<String>> {
        let mut state = self.state();
        state.upload_log.retain(|(_, at, _)| *at >= before);
        let mut blobs = Vec::new();
        state.files.retain(|_, file| {
            let expired = file.room.is_none() && file.created_at < before;
            if expired {
                blobs.push(file.blob.clone());
                blobs.extend(file.thumb.clone());
            }
            !expired
        });
        Ok(blobs)
    }

    async fn blob_in_use(&self, blob: &str) -> StoreResult<bool> {
        Ok(self
            .state()
            .files
            .values()
            .any(|f| f.blob == blob || f.thumb.as_deref() == Some(blob)))
    }
}
