//! What calls for the person's attention: unread and mention counts from the read
//! position the server keeps (shared by every device), who is typing, muted rooms,
//! the "new messages" line, and which messages deserve a notification.
//!
//! Counting: the server's [`ReadState`] counts a room's unread messages and mentions
//! up to its `through`; the client adds what it holds after that. When the person
//! reads further here than the server's state says, the held messages alone count
//! (the server's next `read` brings exact numbers again).

use natter_protocol::{
    ChatMessage, MessageKind, ReadState, RoomId, RoomKind, Seq, UserId, UserSummary,
    TYPING_EXPIRY_MS,
};

use super::{ChatState, Effect};

/// Most names the mention autocomplete offers at once.
pub const MENTION_SUGGESTIONS: usize = 8;

/// Someone typing in a room, with the signal that last said so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Typist {
    /// Who.
    pub user: UserSummary,
    /// Which `typing` signal this is: the timer of an older one does not end it.
    pub generation: u64,
}

impl ChatState {
    /// The server's read state for `room`: what I read (on any device) and what came
    /// after. The newer position wins; counts are kept as the server's base.
    pub(super) fn on_read(&mut self, room: RoomId, state: ReadState, out: &mut Vec<Effect>) {
        let read = self.read.get(&room).copied().unwrap_or(0);
        if state.seq > read {
            self.read.edit().insert(room, state.seq);
            self.save_profile(out);
        }
        self.read_states.edit().insert(room, state);
    }

    /// Takes the read states a `ready` or `joined` carries.
    pub(super) fn take_read_state(&mut self, room: RoomId, state: ReadState) {
        let read = self.read.edit().entry(room).or_default();
        *read = (*read).max(state.seq);
        self.read_states.edit().insert(room, state);
    }

    /// Unread messages in a room: messages by others (not notices, not deleted, not
    /// from people I block) after the read position. Changes take seqs too, so this
    /// counts messages, not seqs.
    pub fn unread(&self, room: RoomId) -> u64 {
        self.count_after_read(room, |_| true, |s| s.unread)
    }

    /// Of the unread messages, those that mention me (by name or `@room`).
    pub fn mentions(&self, room: RoomId) -> u64 {
        let me = self.me.as_ref().map(|m| m.id.clone());
        self.count_after_read(
            room,
            |m| me.as_ref().is_some_and(|me| m.mentions(me)),
            |s| s.mentions,
        )
    }

    /// The server's count (`base`) up to its `through` when it is about my read
    /// position, plus the held messages after that which `pick` picks.
    fn count_after_read(
        &self,
        room: RoomId,
        pick: impl Fn(&ChatMessage) -> bool,
        base: impl Fn(&ReadState) -> u32,
    ) -> u64 {
        let read = self.read.get(&room).copied().unwrap_or(0);
        let (counted, from) = match self.read_states.get(&room) {
            Some(state) if state.seq == read && state.through > read => {
                (u64::from(base(state)), state.through)
            }
            _ => (0, read),
        };
        let me = self.me.as_ref().map(|m| &m.id);
        let held = self.history.get(&room).map_or(0, |h| {
            h.messages
                .iter()
                .rev()
                .take_while(|m| m.seq > from)
                .filter(|m| {
                    m.kind == MessageKind::Text
                        && !m.deleted
                        && Some(&m.sender.id) != me
                        && !self.blocks(&m.sender.id)
                        && pick(m)
                })
                .count() as u64
        });
        counted + held
    }

    /// What the page title and the drawer button count: unread messages in rooms not
    /// muted, and mentions in muted ones.
    pub fn total_unread(&self) -> u64 {
        self.rooms
            .iter()
            .map(|r| {
                if self.is_muted(r.id) {
                    self.mentions(r.id)
                } else {
                    self.unread(r.id)
                }
            })
            .sum()
    }

    /// Whether I muted `room` (no notifications, no plain unread badge).
    pub fn is_muted(&self, room: RoomId) -> bool {
        self.muted.contains(&room)
    }

    /// Mutes `room`, or unmutes it.
    pub fn toggle_mute(&mut self, room: RoomId) -> Vec<Effect> {
        let muted = self.muted.edit();
        match muted.iter().position(|r| *r == room) {
            Some(at) => {
                muted.remove(at);
            }
            None => muted.push(room),
        }
        let mut out = Vec::new();
        self.save_profile(&mut out);
        out
    }

    /// The page was hidden or shown again: while hidden, nothing on screen counts as
    /// read; shown again, what is on screen is.
    pub fn set_page_hidden(&mut self, hidden: bool) -> Vec<Effect> {
        self.page_hidden = hidden;
        let mut out = Vec::new();
        if !hidden {
            let on_screen: Vec<RoomId> = self
                .rooms
                .iter()
                .map(|r| r.id)
                .filter(|r| self.is_visible(*r))
                .collect();
            for room in on_screen {
                self.note_new_since(room);
                self.mark_read(room, &mut out);
            }
        }
        out
    }

    /// Before `room` is read on opening: where the "new messages" line goes (after the
    /// read position), or none when nothing is unread.
    pub(super) fn note_new_since(&mut self, room: RoomId) {
        let read = self.read.get(&room).copied().unwrap_or(0);
        if self.unread(room) > 0 {
            self.new_since.edit().insert(room, read);
        } else if self.new_since.contains_key(&room) {
            self.new_since.edit().remove(&room);
        }
    }

    /// A live message from someone else: they stopped typing; and if it is for me (a
    /// direct message, or one that mentions me) in a room not muted, it asks for a
    /// notification.
    pub(super) fn attend_to(&mut self, message: &ChatMessage, out: &mut Vec<Effect>) {
        let room = message.room;
        if self
            .typing
            .get(&room)
            .is_some_and(|t| t.iter().any(|t| t.user.id == message.sender.id))
        {
            if let Some(typists) = self.typing.edit().get_mut(&room) {
                typists.retain(|t| t.user.id != message.sender.id);
            }
        }
        let Some(me) = self.me.as_ref().map(|m| m.id.clone()) else {
            return;
        };
        let from_other = message.sender.id != me
            && message.kind == MessageKind::Text
            && !self.blocks(&message.sender.id);
        let direct = self.is_direct(room);
        if !from_other || self.is_muted(room) || !(direct || message.mentions(&me)) {
            return;
        }
        let title = match self.rooms.iter().find(|r| r.id == room).map(|r| &r.kind) {
            Some(RoomKind::Channel { name }) => format!("{} in #{name}", message.sender.name),
            _ => message.sender.name.clone(),
        };
        let body = if message.text.is_empty() {
            "sent a file".to_string()
        } else {
            message.text.chars().take(140).collect()
        };
        out.push(Effect::Notify { room, title, body });
    }

    /// Someone started or stopped typing in `room`.
    pub(super) fn on_typing(
        &mut self,
        room: RoomId,
        user: UserSummary,
        typing: bool,
        out: &mut Vec<Effect>,
    ) {
        let me = self.me.as_ref().map(|m| &m.id);
        if Some(&user.id) == me || self.blocks(&user.id) {
            return;
        }
        self.typing_generation += 1;
        let generation = self.typing_generation;
        let id = user.id.clone();
        let typists = self.typing.edit().entry(room).or_default();
        typists.retain(|t| t.user.id != id);
        if typing {
            typists.push(Typist { user, generation });
            out.push(Effect::ExpireTyping {
                room,
                user: id,
                generation,
                after_ms: TYPING_EXPIRY_MS,
            });
        }
    }

    /// A typing signal's time ran out: its typist stops showing, unless a newer
    /// signal came since.
    pub fn typing_expired(&mut self, room: RoomId, user: &UserId, generation: u64) {
        let stale = self.typing.get(&room).is_some_and(|t| {
            t.iter()
                .any(|t| &t.user.id == user && t.generation == generation)
        });
        if stale {
            if let Some(typists) = self.typing.edit().get_mut(&room) {
                typists.retain(|t| &t.user.id != user);
            }
        }
    }

    /// The line under a room saying who is typing, if anyone.
    pub fn typing_line(&self, room: RoomId) -> Option<String> {
        let typists = self.typing.get(&room)?;
        match typists.as_slice() {
            [] => None,
            [one] => Some(format!("{} is typing…", one.user.name)),
            [one, two] => Some(format!(
                "{} and {} are typing…",
                one.user.name, two.user.name
            )),
            _ => Some("Several people are typing…".into()),
        }
    }

    /// Who an `@query` being typed in `room` could mean, best first: people who wrote
    /// in the room (or its other member, in a direct room), then everyone online, then
    /// `@room` (not in direct rooms) — names that start with the query before those
    /// that merely contain it, at most [`MENTION_SUGGESTIONS`], never me. Each is the
    /// name to write after `@`.
    pub fn mention_suggestions(&self, room: RoomId, query: &str) -> Vec<String> {
        let query = query.to_lowercase();
        let me = self.me.as_ref().map(|m| &m.id);
        let mut people: Vec<&UserSummary> = Vec::new();
        let mut direct = false;
        if let Some(RoomKind::Direct { members }) =
            self.rooms.iter().find(|r| r.id == room).map(|r| &r.kind)
        {
            direct = true;
            people.extend(members.iter());
        }
        if let Some(held) = self.history.get(&room) {
            people.extend(held.messages.iter().rev().map(|m| &m.sender));
        }
        people.extend(self.people.iter().filter(|p| p.online).map(|p| &p.user));
        let mut names: Vec<(bool, String)> = Vec::new();
        let mut seen: Vec<&UserId> = Vec::new();
        for person in people {
            if Some(&person.id) == me || seen.contains(&&person.id) || self.blocks(&person.id) {
                continue;
            }
            seen.push(&person.id);
            // The current name (a message holds the name it was sent under).
            let name = self
                .people
                .iter()
                .find(|p| p.user.id == person.id)
                .map_or(person.name.as_str(), |p| p.user.name.as_str());
            let key = name.to_lowercase();
            if key.contains(&query) {
                names.push((!key.starts_with(&query), name.to_string()));
            }
        }
        if !direct && natter_protocol::mention::ROOM.starts_with(&query) {
            names.push((false, natter_protocol::mention::ROOM.into()));
        }
        // Stable: among equals, the order above (the room's people first).
        names.sort_by_key(|(later, _)| *later);
        names
            .into_iter()
            .map(|(_, name)| name)
            .take(MENTION_SUGGESTIONS)
            .collect()
    }

    /// Where the "new messages" line goes in `room`: before the first message after
    /// this seq.
    pub fn new_since(&self, room: RoomId) -> Option<Seq> {
        self.new_since.get(&room).copied()
    }
}
