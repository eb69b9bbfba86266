//! natter's wire protocol, shared by the server and the browser client.
//!
//! This crate is the single source of truth for what travels over the WebSocket:
//! it knows nothing of tokio, axum or the browser, and builds for native targets and
//! `wasm32-unknown-unknown` alike.
//!
//! # Layout
//! - [`types`]: the nouns both sides talk about (users, rooms, messages) and their ids.
//! - [`messages`]: [`ClientMsg`] (client → server, wrapped in a [`ClientFrame`] that
//!   carries the request's `ref`) and [`ServerMsg`] (server → client). Every message is
//!   one JSON text frame, internally tagged by `"type"`, snake_case.
//! - [`error`]: [`ErrorCode`], the machine-readable half of every error frame.
//! - [`account`]: the JSON bodies of the account endpoints under `/api` (sign-up,
//!   verification, sign-in, recovery), which are HTTP rather than WebSocket frames.
//! - [`format`]: the small Markdown subset of message text, parsed into data (never
//!   HTML) for clients to render as elements.
//! - [`mention`]: where `@name` may stand in text, and how a client finds the mentions
//!   the server resolved.
//! - [`validate`]: length and character rules for names, channel names, room codes and
//!   message text, as plain functions so the client can check input before sending and
//!   the server enforces exactly the same rules.
//!
//! `docs/protocol.md` shows an example of every message; `tests/golden.rs` pins the JSON
//! so a change to the wire is always a deliberate one.

pub mod account;
pub mod error;
pub mod format;
pub mod mention;
pub mod messages;
pub mod types;
pub mod validate;

pub use error::ErrorCode;
pub use messages::{decode_client_frame, ClientFrame, ClientMsg, DecodeError, ServerMsg};
pub use types::*;

/// The protocol version this build speaks. A client sends it in `hello`; the server
/// refuses versions it does not know with [`ErrorCode::UnsupportedVersion`] instead of
/// guessing, so old clients get a clear "please reload" rather than odd behaviour.
///
/// Version 2 made edits, deletions and reactions events in a room's sequence: seqs no
/// longer all hold messages, so a version 1 client would see gaps everywhere. Version 3
/// added read positions, mentions and typing (`mark_read`, `typing`, `read`): frames a
/// version 2 client could not read.
pub const PROTOCOL_VERSION: u32 = 3;

/// Largest WebSocket message the server accepts, in bytes. Anything larger is closed
/// with code 1009 (message too big). Message text is far smaller (see
/// [`validate::MAX_MESSAGE_CHARS`]); the margin is for JSON escaping and resume lists.
pub const MAX_FRAME_BYTES: usize = 64 * 1024;

/// How many messages one history page holds at most: the server sends the last this
/// many when a room is opened, and the client pages further back in steps of this size.
pub const HISTORY_PAGE: u32 = 100;

/// WebSocket close code for "this session was signed out" (`POST /api/logout`, or a
/// password reset ended every session of the account). The client does not reconnect
/// with the same session; it shows the sign-in form.
pub const CLOSE_SIGNED_OUT: u16 = 4001;

/// The channel every server has from its first start, so a newcomer lands somewhere.
pub const DEFAULT_CHANNEL: &str = "general";

/// Most files one message carries.
pub const MAX_ATTACHMENTS: usize = 10;

/// Most different emoji one message can be reacted with.
pub const MAX_REACTION_KINDS: usize = 20;

/// How many of an emoji's reactors a message lists by name (the count says the rest).
pub const REACTORS_LISTED: usize = 10;

/// How much of the original's text a reply quotes, in characters.
pub const REPLY_PREVIEW_CHARS: usize = 120;

/// Most changed messages a resume sends back (the most recently changed): what a client
/// keeps of a room between visits. It bounds the frame too — each message can be 4000
/// characters with 20 emoji of reactions — well inside a connection's outbound bytes.
pub const CHANGED_ON_RESUME: u32 = 200;

/// Most entries in one snapshot frame after `ready` (users online, channels): about
/// 5 KB of JSON, so no connection's write buffer has to hold the whole list.
pub const SNAPSHOT_CHUNK: usize = 100;

/// Most unread messages a [`ReadState`] counts: a client shows "999+" beyond. Keeps the
/// count a bounded index read however long someone was away.
pub const MAX_UNREAD_COUNTED: u32 = 999;

/// While someone keeps typing, their client says so at most this often; the server
/// drops a `typing` that comes sooner after the last one it passed on.
pub const TYPING_INTERVAL_MS: u64 = 3_000;

/// A `typing` signal holds this long: a client that hears nothing more from the typist
/// within it stops showing them typing.
pub const TYPING_EXPIRY_MS: u64 = 6_000;
