//! Persistence behind one trait, so the hub does not know which database it has.
//!
//! [`Store`] is implemented by [`sqlite::SqliteStore`] (the default, embedded),
//! [`postgres::PgStore`] (shared by several nodes) and [`memory::MemoryStore`]. The
//! contract every implementation keeps:
//! - [`Store::append`] assigns each message the next seq of its room inside the same
//!   transaction that stores it, so seqs are gap-free and in commit order even with
//!   several writers (this is what lets several nodes share one database later);
//! - a message whose `(sender, client_id)` was stored before is not stored again: the
//!   original is returned as [`Appended::Duplicate`];
//! - an account's display name is unique among accounts and its email (any case) too
//!   ([`accounts::AccountStore`]);
//! - a message's files are tied to it in the transaction that stores it, so each
//!   upload is sent once ([`files::FileStore`]);
//! - an edit, deletion or reaction takes its room's next seq like a message, and its
//!   effect is written in the same transaction ([`changes::ChangeStore`]).

pub mod accounts;
pub mod attention;
pub mod batch;
pub mod changes;
pub mod files;
pub mod memory;
pub mod postgres;
mod sql;
pub mod sqlite;

use async_trait::async_trait;
use natter_protocol::{
    ChannelListing, ChatMessage, MessageKind, RoomId, Seq, Timestamp, UserId, UserSummary,
};

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique name, code or key is already taken.
    #[error("already exists")]
    Conflict,
    /// The row the operation needs does not exist (any more).
    #[error("not found")]
    NotFound,
    /// The database failed; the request may be retried.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// The schema could not be brought up to date.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// SQLite failed on the append writer's connection (rusqlite).
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The store cannot work as configured (the reason says why).
    #[error("{0}")]
    Unsupported(&'static str),
    /// The store's writer has stopped (the server is shutting down).
    #[error("the store has stopped")]
    Stopped,
}

/// Result of a store operation.
pub type StoreResult<T> = Result<T, StoreError>;

/// A user row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// Stable id.
    pub id: UserId,
    /// SHA-256 (hex) of the guest secret; the secret itself is never stored.
    pub secret_hash: String,
    /// Last display name used.
    pub name: String,
}

/// What kind of room a row is, with the kind-specific key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoomRecordKind {
    /// Public channel with its display name.
    Channel {
        /// The name as created.
        name: String,
    },
    /// Private room with its code.
    Code {
        /// 8 upper-case letters.
        code: String,
    },
    /// Direct room between two users (ordered by id).
    Direct {
        /// Both member ids, smaller first.
        members: [UserId; 2],
    },
}

/// A room row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomRecord {
    /// The room's id.
    pub id: RoomId,
    /// Channel, code room or direct room.
    pub kind: RoomRecordKind,
    /// Remove the room and its messages when its last member leaves.
    pub delete_when_empty: bool,
    /// Seq of the newest message, 0 when none.
    pub latest_seq: Seq,
}

/// A message to be stored; the store assigns its seq.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage {
    /// The room.
    pub room: RoomId,
    /// Who sent it, with the name at the time.
    pub sender: UserSummary,
    /// Server time.
    pub ts: Timestamp,
    /// Text or notice.
    pub kind: MessageKind,
    /// The text (empty for notices).
    pub text: String,
    /// The sender's idempotency key (notices have none).
    pub client_id: Option<String>,
    /// Files it carries: checked unsent and the sender's before; stored with it.
    pub attachments: Vec<natter_protocol::Attachment>,
    /// The message it answers (checked to exist in the room before); its seq is stored.
    pub reply_to: Option<natter_protocol::ReplyPreview>,
    /// Who it mentions (resolved to members before); stored with it, with a
    /// `mentions` row per person (see [`attention`]).
    pub mentions: Vec<natter_protocol::Mention>,
}

/// What [`Store::append`] did with one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Appended {
    /// Stored now with this seq.
    Stored(ChatMessage),
    /// Stored earlier under the same `(sender, client_id)`; this is that message.
    Duplicate(ChatMessage),
    /// The room no longer exists.
    NoSuchRoom,
}

/// How stale a user's stored last-seen time may be before a `hello` writes it anew.
pub const SEEN_EVERY_MS: i64 = 24 * 3600 * 1000;

/// Users [`Store::delete_stale`] deletes per statement batch (the rest go next time).
pub const STALE_BATCH: i64 = 1000;

/// What a member's leaving did to the room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Departure {
    /// Members left in the room.
    pub remaining: u64,
    /// The room was `delete_when_empty`, is empty now, and was deleted with its messages.
    pub room_deleted: bool,
}

/// What [`Store::block`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blocking {
    /// The block is stored now.
    Added,
    /// It was stored before; nothing changed.
    Already,
    /// The user blocks as many people as allowed; nothing changed.
    Full,
}

/// Durable state: users, rooms, memberships, blocks and message history — and, through
/// [`accounts::AccountStore`], accounts, sessions, emailed tokens and the mail queue.
#[async_trait]
pub trait Store:
    accounts::AccountStore
    + attention::AttentionStore
    + changes::ChangeStore
    + files::FileStore
    + Send
    + Sync
    + 'static
{
    /// Creates a guest user.
    async fn create_user(&self, user: &UserRecord) -> StoreResult<()>;
    /// Looks a user up by id.
    async fn find_user(&self, id: &UserId) -> StoreResult<Option<UserRecord>>;

    /// Creates a public channel; [`StoreError::Conflict`] when the name (any case) exists.
    async fn create_channel(&self, name: &str, delete_when_empty: bool) -> StoreResult<RoomRecord>;
    /// Finds a channel by name, any case.
    async fn find_channel(&self, name: &str) -> StoreResult<Option<RoomRecord>>;
    /// All public channels, oldest first.
    async fn list_channels(&self) -> StoreResult<Vec<RoomRecord>>;
    /// Every public channel with its member count, most members first (then by name):
    /// the channel browser's list.
    async fn channel_directory(&self) -> StoreResult<Vec<ChannelListing>>;
    /// Creates a code room; [`StoreError::Conflict`] when the code is taken.
    async fn create_code_room(
        &self,
        code: &str,
        delete_when_empty: bool,
    ) -> StoreResult<RoomRecord>;
    /// Finds a code room by its code (upper case).
    async fn find_code_room(&self, code: &str) -> StoreResult<Option<RoomRecord>>;
    /// The direct room of two users, if they have one.
    async fn find_direct(&self, a: &UserId, b: &UserId) -> StoreResult<Option<RoomRecord>>;
    /// Returns the direct room of two users, creating it (with both as members) if
    /// needed. The bool is true when it was created now.
    async fn open_direct(&self, a: &UserId, b: &UserId) -> StoreResult<(RoomRecord, bool)>;
    /// One room by id.
    async fn room(&self, id: RoomId) -> StoreResult<Option<RoomRecord>>;
    /// Adds a member; returns false when they already were one. A room deleted
    /// meanwhile is [`StoreError::NotFound`].
    async fn add_member(&self, room: RoomId, user: &UserId) -> StoreResult<bool>;
    /// Removes a member. A `delete_when_empty` room left empty is deleted with its
    /// messages **in the same transaction**, with the room locked: a join that commits
    /// first keeps it alive, one that comes after finds it gone — a room is never
    /// deleted under someone who just joined.
    async fn remove_member(&self, room: RoomId, user: &UserId) -> StoreResult<Departure>;
    /// Every room a user is a member of and sees: a direct room with someone they
    /// block is hidden from them (and comes back when they unblock).
    async fn rooms_of(&self, user: &UserId) -> StoreResult<Vec<RoomRecord>>;

    /// `user` blocks `other`, unless they already block `max` people. A user that does
    /// not exist (any more) is [`StoreError::NotFound`].
    async fn block(&self, user: &UserId, other: &UserId, max: usize) -> StoreResult<Blocking>;
    /// `user` no longer blocks `other`; false when they did not.
    async fn unblock(&self, user: &UserId, other: &UserId) -> StoreResult<bool>;
    /// Everyone `user` blocks, with their current names, longest blocked first.
    async fn blocked_by(&self, user: &UserId) -> StoreResult<Vec<UserSummary>>;
    /// Whether `user` blocks `other`.
    async fn blocks(&self, user: &UserId, other: &UserId) -> StoreResult<bool>;

    /// Records that `user` said hello at `now`; written only when the stored time is
    /// more than [`SEEN_EVERY_MS`] old, so connecting rarely writes.
    async fn seen(&self, user: &UserId, now: i64) -> StoreResult<()>;
    /// Deletes identities nobody uses: guests (users without an account) not seen
    /// since `guests_seen_before` — their memberships and blocks (both ways) go, and code rooms that were
    /// `delete_when_empty` and are left empty go with them; their messages stay, under
    /// the name they had — and accounts never verified that were created before
    /// `unverified_before`, with their user, so the name and email are free again.
    /// Returns how many users went.
    async fn delete_stale(
        &self,
        guests_seen_before: i64,
        unverified_before: i64,
    ) -> StoreResult<u64>;

    /// Stores messages in one transaction, in order, each with the next seq of its
    /// room. Returns one outcome per input, in the same order.
    async fn append(&self, batch: Vec<NewMessage>) -> StoreResult<Vec<Appended>>;
    /// Up to `limit` messages with seq below `before`, oldest first, in their current
    /// state as `viewer` sees them (whether each reaction is theirs).
    async fn history_before(
        &self,
        room: RoomId,
        before: Seq,
        limit: u32,
        viewer: &UserId,
    ) -> StoreResult<Vec<ChatMessage>>;
    /// The newest `limit` messages with seq above `after`, oldest first, in their
    /// current state as `viewer` sees them.
    async fn latest_after(
        &self,
        room: RoomId,
        after: Seq,
        limit: u32,
        viewer: &UserId,
    ) -> StoreResult<Vec<ChatMessage>>;

    /// The newest seq of each of `rooms` that still exists. Nodes of a cluster compare
    /// it with what they delivered, to notice a message pub/sub lost when no later one
    /// came to show the gap. (One query where the database is across the network.)
    async fn latest_seqs(&self, rooms: &[RoomId]) -> StoreResult<Vec<(RoomId, Seq)>> {
        let mut latest = Vec::with_capacity(rooms.len());
        for room in rooms {
            if let Some(record) = self.room(*room).await? {
                latest.push((record.id, record.latest_seq));
            }
        }
        Ok(latest)
    }
}

/// The wire name of a message kind, as stored.
pub(crate) fn kind_str(kind: MessageKind) -> &'static str {
    match kind {
        MessageKind::Text => "text",
        MessageKind::Join => "join",
        MessageKind::Leave => "leave",
    }
}

/// A stored message kind (anything unknown reads as text).
pub(crate) fn kind_from_str(kind: &str) -> MessageKind {
    match kind {
        "join" => MessageKind::Join,
        "leave" => MessageKind::Leave,
        _ => MessageKind::Text,
    }
}

/// The key of a direct room: the two ids in order, so (a, b) and (b, a) meet.
pub(crate) fn direct_key(a: &UserId, b: &UserId) -> String {
    if a <= b {
        format!("{a}|{b}")
    } else {
        format!("{b}|{a}")
    }
}

/// Splits a direct room's key back into its two members.
fn direct_members(key: &str) -> [UserId; 2] {
    let (a, b) = key.split_once('|').unwrap_or((key, ""));
    [UserId(a.to_string()), UserId(b.to_string())]
}

/// A unique-constraint violation is a [`StoreError::Conflict`]; anything else is a
/// database failure.
pub(crate) fn conflict_or_database(err: sqlx::Error) -> StoreError {
    match &err {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict,
        _ => err.into(),
    }
}

/// Errors where trying the same transaction again can succeed (PostgreSQL, several
/// nodes): a deadlock, a serialization failure, or a unique violation from a
/// concurrent resend (the retry finds the original and reports a duplicate).
pub(crate) fn worth_retrying(err: &StoreError) -> bool {
    match err {
        StoreError::Database(sqlx::Error::Database(db)) => {
            db.is_unique_violation()
                || matches!(db.code().as_deref(), Some("40P01") | Some("40001"))
        }
        _ => false,
    }
}

/// A foreign-key violation (the room or user a row points to is gone) is a
/// [`StoreError::NotFound`]; anything else is a database failure.
pub(crate) fn missing_or_database(err: sqlx::Error) -> StoreError {
    match &err {
        sqlx::Error::Database(db) if db.is_foreign_key_violation() => StoreError::NotFound,
        _ => err.into(),
    }
}

/// The `rooms` columns [`room_from_row`] reads, for `SELECT`s and `RETURNING`s.
pub(crate) const ROOM_COLUMNS: &str =
    "id, kind, name, code, direct_key, delete_when_empty, latest_seq";
/// The `messages` columns [`message_from_row`] reads.
pub(crate) const MESSAGE_COLUMNS: &str =
    "room_id, seq, sender_id, sender_name, ts, kind, text, attachments, mentions";

/// Reads messages in their current state for [`current_message_from_row`]: aliased
/// `m`, with the message each answers (`r`) joined for its reply preview. Append a
/// `WHERE` on `m`.
pub(crate) const CURRENT_MESSAGES: &str =
    "SELECT m.room_id, m.seq, m.sender_id, m.sender_name, m.ts, m.kind, \
     m.text, m.attachments, m.mentions, m.edited_at, m.deleted, m.rev, m.reply_to, m.reactions, \
     r.sender_id AS reply_sender_id, r.sender_name AS reply_sender_name, \
     substr(r.text, 1, 120) AS reply_text, r.deleted AS reply_deleted \
     FROM messages m LEFT JOIN messages r ON r.room_id = m.room_id AND r.seq = m.reply_to";

/// A `rooms` row (of [`ROOM_COLUMNS`]) from SQLite or PostgreSQL: the schemas have the
/// same columns, and sqlx decodes each backend's types into the same Rust ones.
pub(crate) fn room_from_row<'r, R>(row: &'r R) -> StoreResult<RoomRecord>
where
    R: sqlx::Row,
    &'static str: sqlx::ColumnIndex<R>,
    String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    bool: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let text_column = |name: &'static str| -> StoreResult<String> {
        Ok(row.try_get::<Option<String>, _>(name)?.unwrap_or_default())
    };
    let kind = match text_column("kind")?.as_str() {
        "channel" => RoomRecordKind::Channel {
            name: text_column("name")?,
        },
        "code" => RoomRecordKind::Code {
            code: text_column("code")?,
        },
        _ => RoomRecordKind::Direct {
            members: direct_members(&text_column("direct_key")?),
        },
    };
    Ok(RoomRecord {
        id: RoomId(row.try_get("id")?),
        kind,
        delete_when_empty: row.try_get("delete_when_empty")?,
        latest_seq: row.try_get::<i64, _>("latest_seq")? as Seq,
    })
}

/// A `messages` row (of [`MESSAGE_COLUMNS`]) from SQLite or PostgreSQL.
pub(crate) fn message_from_row<'r, R>(row: &'r R) -> StoreResult<ChatMessage>
where
    R: sqlx::Row,
    &'static str: sqlx::ColumnIndex<R>,
    String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let mut message = ChatMessage::new(
        RoomId(row.try_get("room_id")?),
        row.try_get::<i64, _>("seq")? as Seq,
        UserSummary {
            id: UserId(row.try_get("sender_id")?),
            name: row.try_get("sender_name")?,
        },
        row.try_get("ts")?,
        kind_from_str(&row.try_get::<String, _>("kind")?),
        row.try_get("text")?,
    );
    message.attachments = files::attachments_from_column(row.try_get("attachments")?);
    message.mentions = attention::mentions_from_column(row.try_get("mentions")?);
    Ok(message)
}

/// A row of [`CURRENT_MESSAGES`]: the message as it is now, with its reply preview and
/// reactions (whether each is the reader's is read apart, see [`changes`]).
pub(crate) fn current_message_from_row<'r, R>(row: &'r R) -> StoreResult<ChatMessage>
where
    R: sqlx::Row,
    &'static str: sqlx::ColumnIndex<R>,
    String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    bool: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let mut message = message_from_row(row)?;
    message.edited_at = row.try_get("edited_at")?;
    message.deleted = row.try_get("deleted")?;
    message.rev = row.try_get::<i64, _>("rev")? as Seq;
    message.reactions = changes::reactions_from_column(row.try_get("reactions")?);
    let reply_seq: Option<i64> = row.try_get("reply_to")?;
    message.reply_to = match (
        reply_seq,
        row.try_get::<Option<String>, _>("reply_sender_id")?,
    ) {
        (Some(seq), Some(sender_id)) => Some(natter_protocol::ReplyPreview {
            seq: seq as Seq,
            sender: UserSummary {
                id: UserId(sender_id),
                name: row
                    .try_get::<Option<String>, _>("reply_sender_name")?
                    .unwrap_or_default(),
            },
            text: row
                .try_get::<Option<String>, _>("reply_text")?
                .unwrap_or_default(),
            deleted: row
                .try_get::<Option<bool>, _>("reply_deleted")?
                .unwrap_or(false),
        }),
        // The original went with its room, or never was: show no quote.
        _ => None,
    };
    Ok(message)
}
