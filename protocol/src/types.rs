//! The nouns of the protocol: ids, users, rooms and messages.

use serde::{Deserialize, Serialize};

/// A user's stable identity. The display name is only a label that can change; the id
/// is what memberships, direct messages and cached history hang on.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UserId(pub String);

impl std::fmt::Display for UserId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A room's identity, assigned by the server's database. Channels, code rooms and
/// direct-message rooms share one id space, so every room-scoped message just names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RoomId(pub i64);

impl std::fmt::Display for RoomId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A message's position in its room: 1 for the first message, then +1 each time, with no
/// gaps. Clients detect missed messages and ask for them by this number.
pub type Seq = u64;

/// Milliseconds since the Unix epoch (UTC), as stamped by the server. Clients render it
/// in local time; they never supply it.
pub type Timestamp = i64;

/// What a guest presents again on reconnect to be recognised as the same person.
/// The server issues it on the first `hello`; the client keeps it in localStorage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestCredentials {
    /// The id the server assigned.
    pub user_id: UserId,
    /// A random secret only this client knows; the server stores a hash of it.
    pub secret: String,
}

/// A user as others see them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserSummary {
    /// Stable id.
    pub id: UserId,
    /// Current display name.
    pub name: String,
}

/// What kind of room this is; decides how it is found, shown and whether it can be left.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RoomKind {
    /// A public channel, listed for everyone, found by its unique name.
    Channel {
        /// The channel's name as its creator typed it (unique case-insensitively).
        name: String,
    },
    /// A private room, found only by its random code.
    Code {
        /// 12 upper-case letters (8 for rooms made before codes grew) to share with
        /// the people who should join.
        code: String,
    },
    /// A private room between exactly two users.
    Direct {
        /// Both members; a client shows the one that is not itself.
        members: [UserSummary; 2],
    },
}

/// A room the client is (or is becoming) a member of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomInfo {
    /// The room's id.
    pub id: RoomId,
    /// Channel, code room or direct messages.
    #[serde(flatten)]
    pub kind: RoomKind,
    /// When true the room and its messages are deleted as the last member leaves.
    pub delete_when_empty: bool,
    /// The seq of the room's newest message (0 when empty), so a client can count unread
    /// messages and tell whether its cached history is behind.
    pub latest_seq: Seq,
    /// Where I stopped reading, and how much came after. (Joining a room starts the
    /// read position at its newest seq: its history is not news.) Absent when all zero.
    #[serde(default, skip_serializing_if = "ReadState::is_blank")]
    pub read: ReadState,
}

/// Where a user stopped reading in a room — the same on every device of theirs — and
/// what came after it. Sent per room in `ready` and `joined`, and as
/// [`crate::ServerMsg::Read`] when it moves.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadState {
    /// The newest seq read (0: nothing yet). It only moves forward.
    pub seq: Seq,
    /// Messages by others after `seq`, up to `through` (counted up to
    /// [`crate::MAX_UNREAD_COUNTED`]).
    pub unread: u32,
    /// Of those, the ones that mention me (by name or `@room`).
    pub mentions: u32,
    /// The seq the counts go up to: a client adds the messages it holds after it.
    pub through: Seq,
}

impl ReadState {
    /// Nothing read and nothing counted (left out of a [`RoomInfo`] on the wire).
    pub fn is_blank(&self) -> bool {
        *self == ReadState::default()
    }
}

/// Someone a message mentions, resolved by the server when it stored the text (by user
/// id: a later rename still points at the same person).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mention {
    /// Who is mentioned; absent for `@room` (everyone in the room).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<UserId>,
    /// The name as written after `@` in the text, for a client to find and highlight
    /// (see [`crate::mention::split`]).
    pub name: String,
}

/// A public channel as shown in the channel list (to members and non-members alike).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelInfo {
    /// The channel's room id.
    pub id: RoomId,
    /// Its unique name.
    pub name: String,
}

/// A public channel in the channel browser: what [`ChannelInfo`] says plus how many
/// people are in it, so someone choosing where to talk sees where the talk is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelListing {
    /// The channel's room id.
    pub id: RoomId,
    /// Its unique name.
    pub name: String,
    /// How many members it has (online or not).
    pub members: u32,
}

/// What a stored message says: user text, or a membership notice that the client shows
/// inline. Notices are messages with seqs like any other, so history has one order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageKind {
    /// Text a user sent.
    Text,
    /// The sender joined the room (text is empty).
    Join,
    /// The sender left the room (text is empty).
    Leave,
}

/// One message of a room's history, exactly as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// The room it belongs to.
    pub room: RoomId,
    /// Its position in the room.
    pub seq: Seq,
    /// Who sent it (or who joined/left).
    pub sender: UserSummary,
    /// Server time of storing it.
    pub ts: Timestamp,
    /// Text or notice.
    pub kind: MessageKind,
    /// The text (empty for notices; may be empty when files are attached).
    pub text: String,
    /// Files sent with it (at most [`crate::MAX_ATTACHMENTS`]). Absent when none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<Attachment>,
    /// The people it mentions (at most [`crate::mention::MAX_MENTIONS`]). Absent when
    /// none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mentions: Vec<Mention>,
    /// The message this one answers, as it is now. Absent when it answers none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<ReplyPreview>,
    /// When its author last edited it. Absent when never edited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edited_at: Option<Timestamp>,
    /// Its author deleted it: a tombstone, with no text, files or reactions left.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deleted: bool,
    /// Reactions, one entry per emoji (at most [`crate::MAX_REACTION_KINDS`]), in the
    /// order they were first given. Absent when none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reactions: Vec<Reaction>,
    /// The seq of the newest change ([`crate::Change`]) this state includes; 0 (absent)
    /// when it was never changed. A client applies a live change only when its seq is
    /// above this, so a change never counts twice.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub rev: Seq,
}

fn is_zero(seq: &Seq) -> bool {
    *seq == 0
}

impl ChatMessage {
    /// A message as first stored: no reply, edit, reaction or change yet.
    pub fn new(
        room: RoomId,
        seq: Seq,
        sender: UserSummary,
        ts: Timestamp,
        kind: MessageKind,
        text: String,
    ) -> Self {
        ChatMessage {
            room,
            seq,
            sender,
            ts,
            kind,
            text,
            attachments: Vec::new(),
            mentions: Vec::new(),
            reply_to: None,
            edited_at: None,
            deleted: false,
            reactions: Vec::new(),
            rev: 0,
        }
    }

    /// Folds a change into this message (the caller checked `change_seq > rev`):
    /// what a client does with a live [`crate::ServerMsg::Changed`], and what the
    /// server's memory store does when storing one. `me` decides [`Reaction::me`].
    pub fn apply_change(
        &mut self,
        change: &Change,
        by: &UserSummary,
        ts: Timestamp,
        change_seq: Seq,
        me: Option<&UserId>,
    ) {
        self.rev = change_seq;
        match change {
            Change::Edit { text, mentions } => {
                self.text = text.clone();
                self.mentions = mentions.clone();
                self.edited_at = Some(ts);
            }
            Change::Delete => {
                self.text.clear();
                self.mentions.clear();
                self.attachments.clear();
                self.reactions.clear();
                self.edited_at = None;
                self.deleted = true;
            }
            Change::React { emoji } => {
                let mine = me == Some(&by.id);
                match self.reactions.iter_mut().find(|r| &r.emoji == emoji) {
                    Some(reaction) => {
                        reaction.count += 1;
                        reaction.me |= mine;
                        if reaction.users.len() < crate::REACTORS_LISTED {
                            reaction.users.push(by.clone());
                        }
                    }
                    None => self.reactions.push(Reaction {
                        emoji: emoji.clone(),
                        count: 1,
                        users: vec![by.clone()],
                        me: mine,
                    }),
                }
            }
            Change::Unreact { emoji } => {
                if let Some(at) = self.reactions.iter().position(|r| &r.emoji == emoji) {
                    let reaction = &mut self.reactions[at];
                    reaction.count = reaction.count.saturating_sub(1);
                    reaction.users.retain(|u| u.id != by.id);
                    if me == Some(&by.id) {
                        reaction.me = false;
                    }
                    if reaction.count == 0 {
                        self.reactions.remove(at);
                    }
                }
            }
        }
    }
}

impl ChatMessage {
    /// Does this message call for `me`'s attention: someone else's text that mentions
    /// me by name or mentions the whole room?
    pub fn mentions(&self, me: &UserId) -> bool {
        &self.sender.id != me
            && !self.deleted
            && self
                .mentions
                .iter()
                .any(|m| m.user.as_ref().is_none_or(|user| user == me))
    }
}

/// The message a reply answers, as a reply shows it: a one-line quote that leads to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplyPreview {
    /// The original's seq (in the same room).
    pub seq: Seq,
    /// Who wrote the original.
    pub sender: UserSummary,
    /// The start of its text now (at most [`crate::REPLY_PREVIEW_CHARS`] characters);
    /// empty when it only carries files or was deleted.
    pub text: String,
    /// The original was deleted since; the reply stays.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deleted: bool,
}

impl ReplyPreview {
    /// How a reply quotes `original` as it is now: the start of its text (empty once
    /// deleted), its author, whether it was deleted. One rule for the server storing
    /// a reply and reading history, and for the client writing one or following an
    /// edit of the original.
    pub fn of(original: &ChatMessage) -> Self {
        ReplyPreview {
            seq: original.seq,
            sender: original.sender.clone(),
            text: original
                .text
                .chars()
                .take(crate::REPLY_PREVIEW_CHARS)
                .collect(),
            deleted: original.deleted,
        }
    }
}

/// One emoji's reactions to a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reaction {
    /// The emoji.
    pub emoji: String,
    /// How many people reacted with it.
    pub count: u32,
    /// The first of them (at most [`crate::REACTORS_LISTED`]), earliest first, with
    /// the name each had when reacting: who a hover shows.
    pub users: Vec<UserSummary>,
    /// I am one of them. Set in history pages (which are read for one person); a live
    /// change says who reacted, so a client updates it itself.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub me: bool,
}

/// What a change does to the message it targets (see [`crate::ServerMsg::Changed`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum Change {
    /// Its author replaced the text.
    Edit {
        /// The new text.
        text: String,
        /// The mentions in it (resolved anew). Absent when none.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        mentions: Vec<Mention>,
    },
    /// Its author deleted it: text, files and reactions are gone.
    Delete,
    /// Someone reacted with an emoji.
    React {
        /// The emoji.
        emoji: String,
    },
    /// Someone took their reaction back.
    Unreact {
        /// The emoji.
        emoji: String,
    },
}

/// An uploaded file's id: 26 characters of lowercase base32 holding 128 random bits,
/// so it cannot be guessed. The file is served at `/api/files/{id}` (and a picture's
/// thumbnail at `/api/files/{id}/thumb`); see docs/protocol.md "Files".
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct FileId(pub String);

/// A file as a message carries it: what a client needs to show it before fetching it
/// (a picture's box is reserved from its width and height, so the list doesn't jump).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    /// The file.
    pub id: FileId,
    /// The name it was uploaded under (its extension follows the stored type).
    pub name: String,
    /// The type the server decided from the bytes, e.g. `image/jpeg`,
    /// `application/pdf`, `application/octet-stream`.
    pub mime: String,
    /// Size in bytes, as stored.
    pub size: u64,
    /// A picture's width in pixels, upright (after its EXIF orientation). Absent for
    /// other files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    /// A picture's height in pixels, upright.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
}

impl Attachment {
    /// A picture shown inline (with a thumbnail); every other file is a download.
    pub fn is_picture(&self) -> bool {
        self.width.is_some() && self.height.is_some()
    }
}

/// "I have everything in this room up to `seq`": sent in `hello` so the server replays
/// only what the client missed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResumePosition {
    /// The room.
    pub room: RoomId,
    /// The newest seq the client holds for it.
    pub seq: Seq,
}
