//! Machine-readable error codes carried by `ServerMsg::Error`.

use serde::{Deserialize, Serialize};

/// What went wrong with a request. A client switches on this; the accompanying message
/// is for people. Adding a code is a protocol change: document it in docs/protocol.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The frame was not valid JSON or not a known message; the connection stays open.
    BadFrame,
    /// The client's protocol version is not spoken by this server (reload the page).
    UnsupportedVersion,
    /// Only `hello` is allowed before the session is ready.
    HelloRequired,
    /// `hello` was sent twice on one connection.
    AlreadyReady,
    /// The guest credentials were not recognised; a new identity is issued instead of an
    /// error only when none were presented.
    BadCredentials,
    /// The display name breaks the naming rules.
    InvalidName,
    /// Someone else online uses that display name.
    NameTaken,
    /// That display name belongs to a registered account; only its owner, signed in,
    /// can use it.
    NameReserved,
    /// The channel name breaks the naming rules.
    InvalidChannelName,
    /// A channel with that name (in any case) already exists.
    ChannelExists,
    /// The room code is not 12 letters (or 8, an older room's).
    InvalidCode,
    /// No such room (or channel, or code).
    NoSuchRoom,
    /// No such user is known.
    NoSuchUser,
    /// The request needs membership of a room the client is not in.
    NotMember,
    /// Direct-message rooms cannot be left; close the popup instead.
    CannotLeaveDirect,
    /// A direct room needs two different users.
    CannotDirectSelf,
    /// Nobody can block themselves.
    CannotBlockSelf,
    /// The user blocks as many people as one may (`--max-blocks-per-user`);
    /// unblocking someone makes room.
    TooManyBlocks,
    /// I block this user: unblock them before opening a direct room with them.
    UserBlocked,
    /// The message text is empty or too long.
    InvalidText,
    /// A send names a file that is unknown, was uploaded by someone else, or was
    /// already sent in another room.
    NoSuchFile,
    /// A send carries more than [`crate::MAX_ATTACHMENTS`] files.
    TooManyFiles,
    /// The message to change or answer does not exist in that room (or is a join or
    /// leave notice, or was deleted).
    NoSuchMessage,
    /// Only a message's author may edit or delete it.
    NotAuthor,
    /// The message is older than the server's edit window (`--edit-window-secs`).
    EditWindowClosed,
    /// The message already has [`crate::MAX_REACTION_KINDS`] different emoji; react
    /// with one of those.
    TooManyReactions,
    /// `@room` is allowed only in rooms of at most `--mention-room-max-members`
    /// members; the message was not sent.
    MentionRoomNotAllowed,
    /// A reaction must be a single emoji.
    InvalidEmoji,
    /// The `client_id` of a send is empty or too long.
    InvalidClientId,
    /// Too many frames too fast; the error's `retry_after_ms` says when to try again.
    /// Nothing was done with the frame. Persistent abuse is closed with 1008.
    RateLimited,
    /// The user is in as many rooms as one person may be (`--max-rooms-per-user`);
    /// leaving one makes room.
    TooManyRooms,
    /// The server holds as many channels as it may (`--max-channels`).
    TooManyChannels,
    /// The user, or their IP address, used up an hourly quota: creating rooms,
    /// opening direct rooms, or trying wrong room codes. `retry_after_ms` says when
    /// the next one is allowed; the message says which.
    QuotaExceeded,
    /// Something failed on the server; the request may be retried.
    Internal,
}
