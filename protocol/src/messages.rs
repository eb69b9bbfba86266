//! The messages themselves: [`ClientMsg`] in, [`ServerMsg`] out.
//!
//! Every frame is one JSON object with a `"type"` field. Client frames may also carry a
//! `"ref"` string of the client's choosing; an error caused by that frame echoes it, so
//! the client knows which request failed (a form field, a pending send).

use serde::{Deserialize, Serialize};

use crate::error::ErrorCode;
use crate::types::*;

/// A client frame: the request plus the optional `ref` the server echoes in errors.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientFrame {
    /// Client-chosen tag for this request, echoed by an error it causes.
    #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
    pub request_ref: Option<String>,
    /// The request.
    #[serde(flatten)]
    pub msg: ClientMsg,
}

impl From<ClientMsg> for ClientFrame {
    fn from(msg: ClientMsg) -> Self {
        ClientFrame {
            request_ref: None,
            msg,
        }
    }
}

/// Everything a client can ask of the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMsg {
    /// The first frame on every connection: who I am and what I already have.
    /// Answered by [`ServerMsg::Ready`] or an error (and the client may try again).
    Hello {
        /// Must be [`crate::PROTOCOL_VERSION`].
        version: u32,
        /// The display name to appear under (a signed-in account appears under its own
        /// name; this one is ignored).
        name: String,
        /// The guest identity issued earlier, if this browser has one. Ignored on a
        /// connection signed in by its session cookie: the account decides who this is.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        credentials: Option<GuestCredentials>,
        /// Newest seq held per room, so only missed messages are sent.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        resume: Vec<ResumePosition>,
    },
    /// Change my display name.
    Rename {
        /// The new name.
        name: String,
    },
    /// Create a public channel and join it.
    CreateChannel {
        /// Unique (case-insensitively) channel name.
        name: String,
        /// Delete the channel and its messages when its last member leaves.
        #[serde(default)]
        delete_when_empty: bool,
    },
    /// Join a public channel by name.
    JoinChannel {
        /// The channel's name (any case).
        name: String,
    },
    /// Create a private room with a fresh random code and join it.
    CreateCodeRoom {
        /// Delete the room and its messages when its last member leaves.
        #[serde(default)]
        delete_when_empty: bool,
    },
    /// Join a private room by its code.
    JoinByCode {
        /// The 8-letter code (any case).
        code: String,
    },
    /// Leave a room (not possible for direct-message rooms).
    Leave {
        /// The room.
        room: RoomId,
    },
    /// Open (or reopen) the direct-message room with a user; both sides are told —
    /// unless they block me: then it opens for me only, and they are not told.
    OpenDirect {
        /// The other user.
        user: UserId,
    },
    /// Stop seeing someone: their direct room with me is hidden from me and no longer
    /// pops up, and clients hide their messages everywhere. They are not told.
    /// Answered by [`ServerMsg::Blocked`] to all my connections.
    Block {
        /// Whom to block.
        user: UserId,
    },
    /// Undo [`ClientMsg::Block`]: our direct room, if there is one, comes back with its
    /// history. Answered by [`ServerMsg::Blocked`] (unblocking someone not blocked
    /// changes nothing and is answered the same way).
    Unblock {
        /// Whom to unblock.
        user: UserId,
    },
    /// Post a message. Answered by [`ServerMsg::Ack`] once it is stored.
    Send {
        /// The room.
        room: RoomId,
        /// Client-generated id, unique per sender: a resend with the same id is
        /// acknowledged with the original seq and stored only once.
        client_id: String,
        /// The text (may be empty when files are attached).
        text: String,
        /// Files uploaded earlier (`POST /api/uploads`) by me and not yet sent, at most
        /// [`crate::MAX_ATTACHMENTS`].
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        attachments: Vec<FileId>,
        /// The seq of a message in the same room that this one answers.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reply_to: Option<Seq>,
    },
    /// Replace the text of my message `seq`. Like every change it is answered by
    /// [`ServerMsg::Ack`] once stored, reaches every member (me included) as
    /// [`ServerMsg::Changed`], and is stored once per `client_id`.
    Edit {
        /// The room.
        room: RoomId,
        /// Idempotency key, as for `send`.
        client_id: String,
        /// The message to edit: mine, not deleted, inside the server's edit window.
        seq: Seq,
        /// The new text (the same rules as for sending).
        text: String,
    },
    /// Delete my message `seq`: its text and files are removed from the server, and
    /// everyone sees a tombstone in its place.
    Delete {
        /// The room.
        room: RoomId,
        /// Idempotency key, as for `send`.
        client_id: String,
        /// The message to delete (mine).
        seq: Seq,
    },
    /// Add my reaction with `emoji` to message `seq` (reacting twice with one emoji
    /// changes nothing and is acknowledged all the same).
    React {
        /// The room.
        room: RoomId,
        /// Idempotency key, as for `send`.
        client_id: String,
        /// The message (anyone's, not deleted, not a notice).
        seq: Seq,
        /// One emoji (see [`crate::validate::emoji`]).
        emoji: String,
    },
    /// Take my reaction with `emoji` back from message `seq` (taking back one I did
    /// not give changes nothing and is acknowledged all the same).
    Unreact {
        /// The room.
        room: RoomId,
        /// Idempotency key, as for `send`.
        client_id: String,
        /// The message.
        seq: Seq,
        /// The emoji.
        emoji: String,
    },
    /// Bring me up to date in a room after seq `after`, as a resume in `hello` does:
    /// for a client that finds a gap in a room's seqs. Answered by a
    /// [`ServerMsg::History`] with `through` set; the room's live events wait for it.
    CatchUp {
        /// The room.
        room: RoomId,
        /// The newest seq the client holds everything up to.
        after: Seq,
    },
    /// I have read room `room` up to seq `seq`: stored as my read position (it only
    /// moves forward; a seq past the room's newest counts as the newest) and sent to
    /// all my connections as [`ServerMsg::Read`]. Not answered otherwise.
    MarkRead {
        /// The room.
        room: RoomId,
        /// The newest seq read.
        seq: Seq,
    },
    /// I am typing in `room` (`typing: true`, repeated at most every
    /// [`crate::TYPING_INTERVAL_MS`] while I keep typing), or stopped (`false`: I
    /// cleared the box). Passed on to the room's members as [`ServerMsg::Typing`],
    /// never stored; dropped when sent too often or in a room too big for it.
    Typing {
        /// The room.
        room: RoomId,
        /// Typing or stopped.
        typing: bool,
    },
    /// Browse the public channels: answered by [`ServerMsg::ChannelDirectory`] frames
    /// listing every channel with its member count. The counts are at most a few seconds
    /// old (the server counts once for everyone who asks in that time).
    BrowseChannels,
    /// I am closing this connection for good (a guest signing out): when it closes and
    /// it was my last connection, I go offline at once instead of after the grace period,
    /// so my name is free at once — for the next person typing it, myself included.
    Goodbye,
    /// Ask for older messages.
    History {
        /// The room.
        room: RoomId,
        /// Return messages with seq below this one.
        before: Seq,
        /// At most this many (capped at [`crate::HISTORY_PAGE`]).
        #[serde(default = "default_page")]
        limit: u32,
    },
}

fn default_page() -> u32 {
    crate::HISTORY_PAGE
}

/// Everything the server tells a client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMsg {
    /// Answer to `hello`: who I am and my rooms. The rest of the snapshot follows in
    /// bounded frames, before any live event: everyone online as [`ServerMsg::Presence`]
    /// frames and every public channel as [`ServerMsg::Channels`] frames (at most
    /// [`crate::SNAPSHOT_CHUNK`] entries each), then [`ServerMsg::History`] per room.
    /// Bounded frames keep a big server's snapshot from costing every connection a
    /// buffer the size of the whole user list.
    Ready {
        /// Who I am.
        me: UserSummary,
        /// A guest's identity: keep it and present it in the next `hello`. Absent when
        /// the connection is signed in to an account (the session cookie says who).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        credentials: Option<GuestCredentials>,
        /// Rooms I am a member of (a direct room with someone I block is not listed).
        rooms: Vec<RoomInfo>,
        /// The people I block, whose messages a client hides. Absent when none.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        blocked: Vec<UserSummary>,
    },
    /// Part of the snapshot after `ready`: public channels that exist. The client's
    /// channel list after `ready` is the union of these frames (plus later
    /// `channel_added` / `channel_removed`).
    Channels {
        /// Up to [`crate::SNAPSHOT_CHUNK`] channels.
        channels: Vec<ChannelInfo>,
    },
    /// Presence changes since the previous presence frame: users who came online (after
    /// being offline past the grace period) or changed their name, and users who went
    /// offline. The server collects changes for a short window and sends them as one
    /// frame, so a crowd connecting at once costs each client one frame per window.
    Presence {
        /// Users now online, with their current names.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        online: Vec<UserSummary>,
        /// Users now offline.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        offline: Vec<UserId>,
    },
    /// Answer to [`ClientMsg::BrowseChannels`], in frames of at most
    /// [`crate::SNAPSHOT_CHUNK`] channels; the last one has `complete`.
    ChannelDirectory {
        /// Channels with their member counts, most members first.
        channels: Vec<ChannelListing>,
        /// True on the answer's last frame.
        complete: bool,
    },
    /// A public channel was created.
    ChannelAdded {
        /// The channel.
        channel: ChannelInfo,
    },
    /// A public channel was deleted (it was delete-when-empty and its last member left).
    ChannelRemoved {
        /// The channel's id.
        room: RoomId,
    },
    /// I am now a member of this room (I joined or created it, or a direct room was
    /// opened with me). A [`ServerMsg::History`] with its latest messages follows.
    Joined {
        /// The room.
        room: RoomInfo,
        /// Who caused it: myself, or the other user opening a direct room with me.
        by: UserId,
    },
    /// I am no longer a member of this room.
    Left {
        /// The room.
        room: RoomId,
    },
    /// A batch of a room's history, oldest first, every message in its current state
    /// (edits, deletions and reactions applied): on join, on resume, or a requested
    /// page. Seqs taken by changes ([`ServerMsg::Changed`]) hold no message, so the
    /// messages' seqs can skip; every message between the first and the last is here.
    History {
        /// The room.
        room: RoomId,
        /// Messages in ascending seq order.
        messages: Vec<ChatMessage>,
        /// True when older messages exist before the first one here.
        more_before: bool,
        /// Set on a catch-up (join, resume, `catch_up`): the client now holds the room
        /// up to this seq, every change included — live events follow from the next
        /// seq. Absent on a page of older messages.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        through: Option<Seq>,
        /// On a resume: messages at or before the resume point that changed after it,
        /// in their current state, to replace the client's copies (at most
        /// [`crate::CHANGED_ON_RESUME`], the newest). Absent when none.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        changed: Vec<ChatMessage>,
    },
    /// A new message in a room I am in (including my own, from my other tabs).
    Message {
        /// The message.
        message: ChatMessage,
    },
    /// A message of a room I am in was changed (edited, deleted, reacted to): an event
    /// with the room's next seq, like a message. Apply it to message `target` when
    /// `seq` is above that message's `rev` (see [`ChatMessage::apply_change`]).
    Changed {
        /// The room.
        room: RoomId,
        /// The change's own seq.
        seq: Seq,
        /// Server time of the change.
        ts: Timestamp,
        /// Who changed it, with their current name.
        by: UserSummary,
        /// The seq of the message changed.
        target: Seq,
        /// What changed.
        #[serde(flatten)]
        change: Change,
    },
    /// My read position in a room moved (on this device or another): the new state.
    /// A client keeps the newer of this and what it has.
    Read {
        /// The room.
        room: RoomId,
        /// The read position and what came after it.
        state: ReadState,
    },
    /// Someone in a room I am in started typing or stopped. A client shows them typing
    /// until they send, say they stopped, or [`crate::TYPING_EXPIRY_MS`] pass without
    /// another signal. Not sent in rooms with more than `--typing-max-members` members.
    Typing {
        /// The room.
        room: RoomId,
        /// Who, with their current name.
        user: UserSummary,
        /// Typing or stopped.
        typing: bool,
    },
    /// My message or change is stored; it has this seq and time. (A change that
    /// changed nothing — a reaction already given — is acknowledged with the seq of
    /// its message's newest change.)
    Ack {
        /// The `client_id` of the `send` (or change) being acknowledged.
        client_id: String,
        /// The room.
        room: RoomId,
        /// Its seq.
        seq: Seq,
        /// Its server time.
        ts: Timestamp,
        /// For a message: the mentions the server resolved in it (my own copy comes
        /// from this ack, not from a `message` frame). Absent when none.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        mentions: Vec<Mention>,
    },
    /// Everyone I block, sent to all my connections after each `block` or `unblock`
    /// (the whole list: at most `--max-blocks-per-user` people).
    Blocked {
        /// The people I block, longest blocked first.
        users: Vec<UserSummary>,
    },
    /// A request failed; nothing was changed by it.
    Error {
        /// What went wrong, for code.
        code: ErrorCode,
        /// What went wrong, for people.
        message: String,
        /// The `ref` of the request this answers, when it had one.
        #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
        request_ref: Option<String>,
        /// For `rate_limited`: wait this long before sending again.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after_ms: Option<u64>,
    },
}

/// Why a text frame could not be read as a [`ClientFrame`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    /// The frame's `ref`, when the frame was at least a JSON object with one.
    pub request_ref: Option<String>,
    /// What was wrong, for the error frame's message.
    pub reason: String,
}

/// Parses one client text frame. On failure, still recovers the `ref` when possible so
/// the error can name the request it answers.
pub fn decode_client_frame(text: &str) -> Result<ClientFrame, DecodeError> {
    serde_json::from_str(text).map_err(|err| {
        #[derive(Deserialize)]
        struct RefOnly {
            #[serde(rename = "ref")]
            request_ref: Option<String>,
        }
        let request_ref = serde_json::from_str::<RefOnly>(text)
            .ok()
            .and_then(|r| r.request_ref);
        DecodeError {
            request_ref,
            reason: err.to_string(),
        }
    })
}

impl ServerMsg {
    /// Shorthand for an error frame.
    pub fn error(code: ErrorCode, message: impl Into<String>, request_ref: Option<String>) -> Self {
        ServerMsg::Error {
            code,
            message: message.into(),
            request_ref,
            retry_after_ms: None,
        }
    }

    /// The frame as JSON text. Serializing these types cannot fail (no maps with
    /// non-string keys, no custom serializers), so this returns a plain `String`.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| {
            // Unreachable for these types; kept total so no caller needs to handle it.
            r#"{"type":"error","code":"internal","message":"could not encode a frame"}"#.into()
        })
    }
}

impl ClientFrame {
    /// The frame as JSON text (see [`ServerMsg::to_json`] on why this cannot fail).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}
