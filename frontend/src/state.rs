//! The chat's state and every way it changes: a pure reducer, no browser in sight.
//!
//! [`ChatState`] is plain data: who I am, the people seen, the channels, my rooms and
//! their messages, read positions, the room on screen, the popups, errors by form and
//! the sends not yet acknowledged. Nothing here touches the socket, localStorage or a
//! signal: every transition returns the [`Effect`]s the outside world must carry out,
//! in order, so all of it is unit-tested natively (`cargo test -p natter-web`), and
//! [`crate::chat`] only feeds events in and performs what comes out.
//!
//! - this file: the data, [`Effect`], and the questions the screen and socket ask;
//! - `server.rs`: [`ChatState::apply`], what each [`natter_protocol::ServerMsg`] does;
//! - `attention.rs`: unread and mention counts, typing, mutes, notifications;
//! - `local.rs`: what the person does (view, popups, post, join, page back), restoring
//!   a cached visit and forgetting the person;
//! - `tests.rs`: a test per `ServerMsg` variant, and the person's transitions.
//!
//! Each part of the state is [`Versioned`]: changing it counts, so the Leptos wrapper
//! re-renders exactly the parts an event changed, as separate signals did before.

use std::collections::HashMap;
use std::ops::Deref;

use natter_protocol::{
    Attachment, ChannelInfo, ChatMessage, ClientMsg, GuestCredentials, ReadState, ReplyPreview,
    ResumePosition, RoomId, RoomInfo, RoomKind, Seq, UserId, UserSummary,
};

use crate::logic;

mod attention;
mod local;

pub use attention::Typist;
mod server;
#[cfg(test)]
mod tests;

/// Which form an error belongs to: sent as the request's `ref`, echoed by the server.
pub mod form {
    /// The name prompt.
    pub const HELLO: &str = "hello";
    /// Renaming from the header.
    pub const RENAME: &str = "rename";
    /// The new-channel form.
    pub const CHANNEL: &str = "channel";
    /// The join-by-code form.
    pub const CODE: &str = "code";
    /// Anything else (shown above the composer).
    pub const GENERAL: &str = "general";
    /// News for the welcome screen's account forms ("you were signed out").
    pub const ACCOUNT: &str = "account";
}

/// The form that shows an error answering the request tagged `request_ref`.
fn form_of(request_ref: Option<&str>) -> &'static str {
    match request_ref {
        Some(form::HELLO) => form::HELLO,
        Some(form::RENAME) => form::RENAME,
        Some(form::CHANNEL) => form::CHANNEL,
        Some(form::CODE) => form::CODE,
        _ => form::GENERAL,
    }
}

/// A part of [`ChatState`] that counts its changes. Reading is free (it derefs to the
/// value); changing goes through [`Versioned::edit`] or [`Versioned::set`], which count,
/// so the UI learns which parts an event touched from two numbers instead of cloning
/// and comparing the data.
#[derive(Debug, Clone, Default)]
pub struct Versioned<T> {
    /// The data.
    value: T,
    /// How many times it was handed out for changing.
    version: u64,
}

impl<T> Versioned<T> {
    /// How many times this part was changed (or may have been): a change of this number
    /// is what re-renders the components that show the part.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The value, to change; counts as a change.
    pub fn edit(&mut self) -> &mut T {
        self.version = self.version.wrapping_add(1);
        &mut self.value
    }

    /// Replaces the value; counts as a change.
    pub fn set(&mut self, value: T) {
        *self.edit() = value;
    }
}

impl<T> Deref for Versioned<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.value
    }
}

/// A room's messages as the client holds them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RoomHistory {
    /// One seq-ordered run without duplicates (see [`logic::apply_batch`]): every
    /// message between the first and the last, in its current state.
    pub messages: Vec<ChatMessage>,
    /// The server has older messages than the first one here.
    pub more_before: bool,
    /// An older page has been asked for and not arrived yet.
    pub loading_older: bool,
    /// Every event of the room (messages and changes) up to this seq is in
    /// `messages`: where a resume starts, and the seq the next live event must follow.
    pub through: Seq,
    /// A `catch_up` for a gap is on its way (asked once, not per event after it).
    pub catching_up: bool,
}

/// A person in the user list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    /// The user.
    pub user: UserSummary,
    /// Online now (or within the grace period).
    pub online: bool,
}

/// A message the user sent that the server has not acknowledged yet (shown greyed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// Its idempotency key: resent as is after a reconnect.
    pub client_id: String,
    /// The room.
    pub room: RoomId,
    /// The text.
    pub text: String,
    /// Files uploaded for it (shown with it at once, sent by id).
    pub attachments: Vec<Attachment>,
    /// The message it answers.
    pub reply_to: Option<ReplyPreview>,
}

impl Pending {
    /// The request that sends it (with its own client id, so a resend is stored once).
    pub fn request(&self) -> ClientMsg {
        ClientMsg::Send {
            room: self.room,
            client_id: self.client_id.clone(),
            text: self.text.clone(),
            attachments: self.attachments.iter().map(|a| a.id.clone()).collect(),
            reply_to: self.reply_to.as_ref().map(|r| r.seq),
        }
    }
}

/// A change (edit, delete, react, unreact) sent and not yet acknowledged: resent with
/// its client id after a reconnect, like a pending message. Its effect shows when the
/// server's `changed` comes back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingChange {
    /// Its idempotency key (also the request's `ref`, so an error names it).
    pub client_id: String,
    /// The request.
    pub request: ClientMsg,
}

/// A direct-message popup on screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Popup {
    /// The direct room.
    pub room: RoomId,
    /// Folded to its title bar.
    pub minimized: bool,
}

/// What the outside world must do after a transition, in the order given. Saves are
/// snapshots of the state after the transition, so one of each per transition is enough.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Send this request (no form waits for its answer).
    Send(ClientMsg),
    /// Send a message or change tagged with its client id as `ref`, so an error that
    /// refuses it names it.
    SendTagged {
        /// The request.
        request: ClientMsg,
        /// Its client id.
        client_id: String,
    },
    /// Resend every pending message now, with its original client id (the server stores
    /// each once, so this is always safe).
    ResendPending,
    /// After this long, call [`ChatState::pace`]: the server said slow down, so
    /// pending messages go out one at a time, paced below its rate, until none is left
    /// (all at once, every refused one would be refused again — and enough refusals
    /// close the connection).
    PaceAfter {
        /// How long to wait, in milliseconds.
        ms: u64,
    },
    /// Say `hello` again on the open socket (with whatever identity is stored by then).
    SayHello,
    /// Reconnects say hello under this name from now on (I was renamed).
    SetHelloName(String),
    /// The server accepted `hello`: the connection is online, its backoff starts over.
    SessionReady,
    /// Keep who I am, my rooms, read positions, the room on screen and the popups.
    SaveProfile,
    /// Keep the newest messages of `room` for `user`.
    SaveHistory {
        /// Whose cache.
        user: UserId,
        /// Which room.
        room: RoomId,
    },
    /// Drop the cached messages of a room `user` left.
    ForgetRoom {
        /// Whose cache.
        user: UserId,
        /// Which room.
        room: RoomId,
    },
    /// Drop everything kept for `user` on this server.
    ForgetUser(UserId),
    /// Keep the guest identity the server issued.
    SaveCredentials(GuestCredentials),
    /// Drop the guest identity (the server does not know it).
    ForgetCredentials,
    /// I have read `room` up to `seq`: tell the server (coalesced, a few times a second
    /// at most), so my other devices agree.
    ReportRead {
        /// The room.
        room: RoomId,
        /// The newest seq read.
        seq: Seq,
    },
    /// After `after_ms`, call [`ChatState::typing_expired`] with these.
    ExpireTyping {
        /// The room.
        room: RoomId,
        /// The typist.
        user: UserId,
        /// Which signal.
        generation: u64,
        /// How long the signal holds.
        after_ms: u64,
    },
    /// A message for me (direct, or mentioning me) arrived in a room not muted: raise
    /// a browser notification if the page is hidden and they are allowed, or offer to
    /// allow them (once).
    Notify {
        /// Where; clicking the notification shows it.
        room: RoomId,
        /// Who (and where).
        title: String,
        /// The start of the message.
        body: String,
    },
}

/// Pushes a save unless the same one is already queued (see [`Effect`]).
fn push_once(out: &mut Vec<Effect>, effect: Effect) {
    if !out.contains(&effect) {
        out.push(effect);
    }
}

/// One line of the channel browser.
#[derive(Debug, Clone, PartialEq)]
pub struct DirectoryEntry {
    /// The channel.
    pub channel: ChannelInfo,
    /// Its member count when the server last counted; `None` until it has.
    pub members: Option<u32>,
    /// I am a member (the browser offers Open instead of Join).
    pub joined: bool,
}

/// What this browser kept of someone's last visit, to show before the socket is back.
#[derive(Debug, Clone, PartialEq)]
pub struct CachedVisit {
    /// Who they were.
    pub me: UserSummary,
    /// Their rooms.
    pub rooms: Vec<RoomInfo>,
    /// Newest seq read per room.
    pub read: HashMap<RoomId, Seq>,
    /// Rooms muted on this browser.
    pub muted: Vec<RoomId>,
    /// The room in the main pane.
    pub current: Option<RoomId>,
    /// Open direct-message popups.
    pub popups: Vec<Popup>,
    /// Cached messages per room (each one gap-free run, oldest first).
    pub history: HashMap<RoomId, Vec<ChatMessage>>,
}

/// Everything the chat shows, as plain data.
#[derive(Debug, Clone, Default)]
pub struct ChatState {
    /// Who I am: from the cache at start, confirmed by `ready`.
    pub me: Versioned<Option<UserSummary>>,
    /// Everyone seen since the page loaded, online or not.
    pub people: Versioned<Vec<Person>>,
    /// Every public channel.
    pub channels: Versioned<Vec<ChannelInfo>>,
    /// Members per public channel, as the server last counted them for the channel
    /// browser (names come from `channels`, which stays live; counts are refreshed
    /// each time the browser opens).
    pub member_counts: Versioned<HashMap<RoomId, u32>>,
    /// Rooms I am in.
    pub rooms: Versioned<Vec<RoomInfo>>,
    /// Messages per room.
    pub history: Versioned<HashMap<RoomId, RoomHistory>>,
    /// Newest seq read per room (here or, through the server, on any device of mine).
    pub read: Versioned<HashMap<RoomId, Seq>>,
    /// The server's read state per room: its counts of what came after (see
    /// `attention.rs`).
    pub read_states: Versioned<HashMap<RoomId, ReadState>>,
    /// Rooms I muted (kept on this browser).
    pub muted: Versioned<Vec<RoomId>>,
    /// Per room opened with something unread, the read position it was opened at:
    /// the "new messages" line goes after it.
    pub new_since: Versioned<HashMap<RoomId, Seq>>,
    /// Who is typing, per room.
    pub typing: Versioned<HashMap<RoomId, Vec<attention::Typist>>>,
    /// Counts typing signals, so an old signal's timer does not end a newer one.
    pub typing_generation: u64,
    /// The page is hidden (another tab, minimized): what is "on screen" is not read.
    pub page_hidden: bool,
    /// The channel or code room in the main pane.
    pub current: Versioned<Option<RoomId>>,
    /// Direct-message popups, oldest first.
    pub popups: Versioned<Vec<Popup>>,
    /// Errors by form (see [`form`]), shown inline next to it.
    pub errors: Versioned<HashMap<&'static str, String>>,
    /// Sent but not acknowledged, in sending order.
    pub pending: Versioned<Vec<Pending>>,
    /// Changes sent but not acknowledged, in sending order.
    pub pending_changes: Versioned<Vec<PendingChange>>,
    /// The people I block: their messages are not shown, their direct room not opened.
    pub blocked: Versioned<Vec<UserSummary>>,
    /// Whether the sidebar drawer is open (narrow screens); viewing a room closes it.
    pub drawer_open: Versioned<bool>,
    /// Pending messages are paced (the server said `rate_limited`, or many waited for
    /// a reconnect): new ones queue behind them instead of going out at once.
    pub throttled: bool,
}

fn is_direct_kind(kind: &RoomKind) -> bool {
    matches!(kind, RoomKind::Direct { .. })
}

// Steps shared by the server's transitions and the person's.
impl ChatState {
    /// Asks for the profile to be kept, when there is someone to keep it for.
    fn save_profile(&self, out: &mut Vec<Effect>) {
        if self.me.is_some() {
            push_once(out, Effect::SaveProfile);
        }
    }

    /// Everything in `room` up to its newest message is read now (and the server is
    /// told, for my other devices).
    fn mark_read(&mut self, room: RoomId, out: &mut Vec<Effect>) {
        let latest = self.latest_seq(room);
        if self.read.get(&room).is_none_or(|read| *read < latest) {
            self.read.edit().insert(room, latest);
            self.save_profile(out);
            out.push(Effect::ReportRead { room, seq: latest });
        }
    }

    /// [`ChatState::mark_read`], if the room's messages are on screen.
    fn mark_read_if_visible(&mut self, room: RoomId, out: &mut Vec<Effect>) {
        if self.is_visible(room) {
            self.mark_read(room, out);
        }
    }

    /// Shows `room`: in the main pane, or its popup for a direct room.
    fn show(&mut self, room: RoomId, out: &mut Vec<Effect>) {
        if self.is_direct(room) {
            self.open_popup(room, out);
        } else {
            self.current.set(Some(room));
            self.drawer_open.set(false);
            self.note_new_since(room);
            self.mark_read(room, out);
            self.save_profile(out);
        }
    }

    /// Opens (or unfolds) the popup of a direct room.
    fn open_popup(&mut self, room: RoomId, out: &mut Vec<Effect>) {
        let popups = self.popups.edit();
        match popups.iter_mut().find(|p| p.room == room) {
            Some(popup) => popup.minimized = false,
            None => popups.push(Popup {
                room,
                minimized: false,
            }),
        }
        self.note_new_since(room);
        self.mark_read(room, out);
        self.save_profile(out);
    }
}

// Questions the screen and the socket ask.
impl ChatState {
    /// Where to resume each room from when saying hello as `identity`: only rooms
    /// cached for that same person.
    pub fn resume_positions(&self, identity: Option<&UserId>) -> Vec<ResumePosition> {
        let same = identity.is_some_and(|id| self.me.as_ref().is_some_and(|m| &m.id == id));
        if !same {
            return Vec::new();
        }
        self.history
            .iter()
            .filter(|(_, h)| h.through > 0)
            .map(|(room, h)| ResumePosition {
                room: *room,
                seq: h.through,
            })
            .collect()
    }

    /// The newest seq known in a room (from its info, its messages or the events
    /// held through).
    fn latest_seq(&self, room: RoomId) -> Seq {
        let from_info = self
            .rooms
            .iter()
            .find(|r| r.id == room)
            .map_or(0, |r| r.latest_seq);
        let from_history = self
            .history
            .get(&room)
            .map_or(0, |h| h.through.max(h.messages.last().map_or(0, |m| m.seq)));
        from_info.max(from_history)
    }

    /// How a room is called on my screen.
    pub fn room_title(&self, room: RoomId) -> String {
        let me = self.me.as_ref().map(|m| &m.id);
        self.rooms
            .iter()
            .find(|r| r.id == room)
            .map(|r| logic::room_title(r, me))
            .unwrap_or_default()
    }

    /// Ids of my rooms: direct-message rooms or the others.
    pub fn room_ids(&self, direct: bool) -> Vec<RoomId> {
        self.rooms
            .iter()
            .filter(|r| is_direct_kind(&r.kind) == direct)
            .map(|r| r.id)
            .collect()
    }

    /// The channel browser's list: public channels whose name contains `filter` (any
    /// case), busiest first (channels not counted yet last), then by name; each with
    /// whether I am in it.
    pub fn channel_directory(&self, filter: &str) -> Vec<DirectoryEntry> {
        let filter = filter.trim().trim_start_matches('#').to_lowercase();
        let mut entries: Vec<DirectoryEntry> = self
            .channels
            .iter()
            .filter(|c| c.name.to_lowercase().contains(&filter))
            .map(|c| DirectoryEntry {
                channel: c.clone(),
                members: self.member_counts.get(&c.id).copied(),
                joined: self.rooms.iter().any(|r| r.id == c.id),
            })
            .collect();
        entries.sort_by(|a, b| {
            b.members.cmp(&a.members).then_with(|| {
                a.channel
                    .name
                    .to_lowercase()
                    .cmp(&b.channel.name.to_lowercase())
            })
        });
        entries
    }

    /// Whether I block `user`.
    pub fn blocks(&self, user: &UserId) -> bool {
        self.blocked.iter().any(|b| &b.id == user)
    }

    /// Whether `room` is a direct room with someone I block (the server takes such a
    /// room away; this guards the moment a block and an opening cross).
    fn with_blocked(&self, room: &RoomInfo) -> bool {
        match &room.kind {
            RoomKind::Direct { members } => members.iter().any(|m| self.blocks(&m.id)),
            _ => false,
        }
    }

    /// A direct-message room (shown in a popup, not the main pane).
    fn is_direct(&self, room: RoomId) -> bool {
        self.rooms
            .iter()
            .any(|r| r.id == room && is_direct_kind(&r.kind))
    }

    /// Rooms whose messages are on screen: the main pane and unfolded popups, while
    /// the page is not hidden.
    fn is_visible(&self, room: RoomId) -> bool {
        !self.page_hidden
            && (*self.current == Some(room)
                || self.popups.iter().any(|p| p.room == room && !p.minimized))
    }
}
