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
