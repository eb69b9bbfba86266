//! Changes to messages — edits, deletions, reactions — and reading messages as they
//! stand after them.
//!
//! A change is an event in its room's sequence: it takes the room's next seq (the
//! same `rooms.latest_seq` counter messages take theirs from), is stored once per
//! `(sender, client_id)`, and its effect on the message is written in the same
//! transaction. So a history page reads each message in its current state, without
//! replaying events, and a resume from seq N can ask which messages changed after N
//! (`messages.rev`, the seq of a message's newest change).
//!
//! [`ChangeStore`] is a supertrait of [`super::Store`]. SQLite and PostgreSQL share one
//! implementation ([`sql_change_store!`]); the in-memory store has its own.
//!
//! Checks that cannot go stale between reading and writing (the author, the edit
//! window: a message's sender and time never change) are the caller's, before it
//! queues a change; what can change meanwhile (the message was deleted, the 20th emoji
//! arrived) is checked again here, inside the transaction, before a seq is taken — a
//! refused change leaves no hole in the sequence.
//!
//! Why one long file: as in `sql.rs`, a `macro_rules!` body cannot be split across
//! files, and the statements are the point — one place shows every query a change
//! runs on both databases, beside the plain types and helpers they share.

use async_trait::async_trait;
use natter_protocol::{
    Change, ChatMessage, Reaction, RoomId, Seq, ServerMsg, Timestamp, UserId, UserSummary,
};

use super::StoreResult;

/// A change to be stored; the store assigns its seq.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewChange {
    /// The room.
    pub room: RoomId,
    /// The message changed.
    pub target: Seq,
    /// Who changes it, with their name now.
    pub by: UserSummary,
    /// Server time.
    pub ts: Timestamp,
    /// The changer's idempotency key.
    pub client_id: String,
    /// What changes.
    pub change: Change,
}

/// A stored change: what [`ServerMsg::Changed`] tells the room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeEvent {
    /// The room.
    pub room: RoomId,
    /// The change's own seq.
    pub seq: Seq,
    /// When it was stored.
    pub ts: Timestamp,
    /// Who made it.
    pub by: UserSummary,
    /// The message changed.
    pub target: Seq,
    /// What changed.
    pub change: Change,
}

impl ChangeEvent {
    /// The frame members receive.
    pub fn to_msg(&self) -> ServerMsg {
        ServerMsg::Changed {
            room: self.room,
            seq: self.seq,
            ts: self.ts,
            by: self.by.clone(),
            target: self.target,
            change: self.change.clone(),
        }
    }
}

/// Why a change was refused inside its transaction (no seq was taken).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeRefusal {
    /// No text message with that seq in the room (or it was deleted).
    NoSuchMessage,
    /// Someone else's message cannot be edited or deleted.
    NotAuthor,
    /// The message has [`natter_protocol::MAX_REACTION_KINDS`] emoji, not this one.
    TooManyReactions,
}

/// What [`ChangeStore::apply_changes`] did with one change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeOutcome {
    /// Stored now.
    Stored(ChangeEvent),
    /// Stored earlier under the same `(sender, client_id)`; this is that change (an
    /// edit with its message's current text).
    Duplicate(ChangeEvent),
    /// Nothing to change (a reaction already given, or one not given taken back): the
    /// message is as asked as of seq `seq`.
    Unchanged {
        /// The room.
        room: RoomId,
        /// The message's newest change (or its own seq when never changed).
        seq: Seq,
        /// The change's time.
        ts: Timestamp,
    },
    /// Refused; nothing stored.
    Refused(ChangeRefusal),
    /// The room no longer exists.
    NoSuchRoom,
}

/// One event of a room's sequence, as a node's gap fill reads it back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoomEvent {
    /// A message, in its current state.
    Message(ChatMessage),
    /// A change.
    Change(ChangeEvent),
}

impl RoomEvent {
    /// Its seq.
    pub fn seq(&self) -> Seq {
        match self {
            RoomEvent::Message(m) => m.seq,
            RoomEvent::Change(c) => c.seq,
        }
    }

    /// The frame it is delivered as.
    pub fn to_msg(&self) -> ServerMsg {
        match self {
            RoomEvent::Message(message) => ServerMsg::Message {
                message: message.clone(),
            },
            RoomEvent::Change(change) => change.to_msg(),
        }
    }
}

/// Durable changes to messages (see the module docs).
#[async_trait]
pub trait ChangeStore {
    /// Stores changes in one transaction, in order, each with the next seq of its room
    /// unless refused or a resend. One outcome per input, in the same order.
    async fn apply_changes(&self, batch: Vec<NewChange>) -> StoreResult<Vec<ChangeOutcome>>;
    /// One message as it stands (without reactions): to check a change or a reply
    /// before queueing it.
    async fn message_at(&self, room: RoomId, seq: Seq) -> StoreResult<Option<ChatMessage>>;
    /// Messages with seq at or below `after` that changed after it, in their current
    /// state as `viewer` sees them, oldest first: the newest `limit` changed ones.
    async fn changed_since(
        &self,
        room: RoomId,
        after: Seq,
        viewer: &UserId,
        limit: u32,
    ) -> StoreResult<Vec<ChatMessage>>;
    /// The newest `limit` events of `room` after `after`, in seq order: messages in
    /// their current state (reactions without [`Reaction::me`]: the frames are shared),
    /// changes as events. For a node filling a gap pub/sub left.
    async fn events_after(
        &self,
        room: RoomId,
        after: Seq,
        limit: u32,
    ) -> StoreResult<Vec<RoomEvent>>;
}

/// The stored name of a change's kind.
pub(crate) fn change_kind(change: &Change) -> (&'static str, Option<&str>) {
    match change {
        Change::Edit { .. } => ("edit", None),
        Change::Delete => ("delete", None),
        Change::React { emoji } => ("react", Some(emoji)),
        Change::Unreact { emoji } => ("unreact", Some(emoji)),
    }
}

/// A change back from its stored kind; an edit carries `text` and `mentions`, its
/// message's now.
pub(crate) fn change_from_stored(
    kind: &str,
    emoji: Option<String>,
    text: String,
    mentions: Vec<natter_protocol::Mention>,
) -> Change {
    let emoji = emoji.unwrap_or_default();
    match kind {
        "edit" => Change::Edit { text, mentions },
        "react" => Change::React { emoji },
        "unreact" => Change::Unreact { emoji },
        _ => Change::Delete,
    }
}

/// A `changes` row joined with its message's text (`room_id, seq, ts, sender_id,
/// sender_name, target, kind, emoji, text`) back as its event; an edit carries its
/// message's text now.
pub(crate) fn change_event_from_row<'r, R>(row: &'r R) -> StoreResult<ChangeEvent>
where
    R: sqlx::Row,
    &'static str: sqlx::ColumnIndex<R>,
    String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    Ok(ChangeEvent {
        room: RoomId(row.try_get("room_id")?),
        seq: row.try_get::<i64, _>("seq")? as Seq,
        ts: row.try_get("ts")?,
        by: UserSummary {
            id: UserId(row.try_get("sender_id")?),
            name: row.try_get("sender_name")?,
        },
        target: row.try_get::<i64, _>("target")? as Seq,
        change: change_from_stored(
            &row.try_get::<String, _>("kind")?,
            row.try_get("emoji")?,
            row.try_get::<Option<String>, _>("text")?
                .unwrap_or_default(),
            super::attention::mentions_from_column(row.try_get("mentions")?),
        ),
    })
}

/// A message's reaction summary as `messages.reactions` keeps it (JSON; `me` is never
/// stored — it depends on the reader). NULL when there are none.
pub(crate) fn reactions_column(reactions: &[Reaction]) -> Option<String> {
    (!reactions.is_empty())
        .then(|| serde_json::to_string(reactions).unwrap_or_else(|_| "[]".into()))
}

/// The summary a `messages.reactions` value holds (none for NULL or anything
/// unreadable, which only a hand-edited database could hold).
pub(crate) fn reactions_from_column(column: Option<String>) -> Vec<Reaction> {
    column
        .and_then(|json| serde_json::from_str(&json).ok())
        .unwrap_or_default()
}

/// Sets one emoji's entry of a summary after a reaction with it was added or taken
/// back: `count` people now, the first of them `listed` (earliest first). A new emoji
/// goes last; one nobody reacts with any more goes.
pub(crate) fn summarize(
    summary: &mut Vec<Reaction>,
    emoji: &str,
    count: u32,
    listed: Vec<UserSummary>,
) {
    let at = summary.iter().position(|r| r.emoji == emoji);
    match (at, count) {
        (Some(at), 0) => {
            summary.remove(at);
        }
        (Some(at), _) => {
            summary[at].count = count;
            summary[at].users = listed;
        }
        (None, 0) => {}
        (None, _) => summary.push(Reaction {
            emoji: emoji.to_string(),
            count,
            users: listed,
            me: false,
        }),
    }
}

/// Marks the reactions that are the reader's own: `mine` holds (message seq, emoji).
pub(crate) fn attach_mine(messages: &mut [ChatMessage], mine: &[(Seq, String)]) {
    for message in messages.iter_mut().filter(|m| !m.reactions.is_empty()) {
        for reaction in &mut message.reactions {
            reaction.me = mine
                .iter()
                .any(|(seq, emoji)| *seq == message.seq && *emoji == reaction.emoji);
        }
    }
}

/// Implements [`ChangeStore`] (and the reactions read the history methods use) for a
/// sqlx-backed store, as [`super::sql`] does for [`super::Store`]: with `pool`,
/// `read_snapshot()` (one consistent view for several reads), `write_transaction()`,
/// `lock_room()` and `forget_deleted()` (what the database must do so a deleted or
/// replaced text is gone from its files).
macro_rules! sql_change_store {
    ($store:ty, $db:ty) => {
        impl $store {
            /// Marks which reactions of `messages` (in seq order) are `viewer`'s, in the
            /// snapshot `tx` the messages were read in (so each message's `rev` and
            /// reactions agree). The summaries themselves come with the messages; a
            /// page without reactions costs no query.
            async fn with_mine(
                tx: &mut sqlx::Transaction<'static, $db>,
                mut messages: Vec<natter_protocol::ChatMessage>,
                viewer: Option<&natter_protocol::UserId>,
            ) -> $crate::store::StoreResult<Vec<natter_protocol::ChatMessage>> {
                let reacted = messages.iter().filter(|m| !m.reactions.is_empty());
                let (Some(viewer), Some(first), Some(last)) = (
                    viewer,
                    reacted.clone().map(|m| m.seq).min(),
                    reacted.map(|m| m.seq).max(),
                ) else {
                    return Ok(messages);
                };
                let Some(room) = messages.first().map(|m| m.room) else {
                    return Ok(messages);
                };
                let mine: Vec<(i64, String)> = sqlx::query_as(
                    "SELECT seq, emoji FROM reactions \
                     WHERE room_id = $1 AND user_id = $2 AND seq >= $3 AND seq <= $4",
                )
                .bind(room.0)
                .bind(&viewer.0)
                .bind(first as i64)
                .bind(last as i64)
                .fetch_all(&mut **tx)
                .await?;
                let mine: Vec<(natter_protocol::Seq, String)> = mine
                    .into_iter()
                    .map(|(seq, emoji)| (seq as natter_protocol::Seq, emoji))
                    .collect();
                $crate::store::changes::attach_mine(&mut messages, &mine);
                Ok(messages)
            }

            /// Messages in their current state: `clause` on `m` with `$1` the room and
            /// `$2` a seq, newest `limit` (`$3`) by `order`, returned oldest first —
            /// read in one snapshot with their reactions.
            async fn current_messages(
                &self,
                room: natter_protocol::RoomId,
                clause: &str,
                bound: natter_protocol::Seq,
                order: &str,
                limit: u32,
                viewer: Option<&natter_protocol::UserId>,
            ) -> $crate::store::StoreResult<Vec<natter_protocol::ChatMessage>> {
                let mut tx = self.read_snapshot().await?;
                let messages =
                    Self::current_messages_in(&mut tx, room, clause, bound, order, limit, viewer)
                        .await?;
                tx.commit().await?;
                Ok(messages)
            }

            /// [`Self::current_messages`] inside the snapshot `tx`.
            async fn current_messages_in(
                tx: &mut sqlx::Transaction<'static, $db>,
                room: natter_protocol::RoomId,
                clause: &str,
                bound: natter_protocol::Seq,
                order: &str,
                limit: u32,
                viewer: Option<&natter_protocol::UserId>,
            ) -> $crate::store::StoreResult<Vec<natter_protocol::ChatMessage>> {
                let rows = sqlx::query(&format!(
                    "{} WHERE m.room_id = $1 AND {clause} ORDER BY {order} DESC LIMIT $3",
                    $crate::store::CURRENT_MESSAGES
                ))
                .bind(room.0)
                .bind(i64::try_from(bound).unwrap_or(i64::MAX))
                .bind(i64::from(limit))
                .fetch_all(&mut **tx)
                .await?;
                let mut messages = rows
                    .iter()
                    .map($crate::store::current_message_from_row)
                    .collect::<Result<Vec<_>, _>>()?;
                messages.sort_by_key(|m| m.seq);
                Self::with_mine(tx, messages, viewer).await
            }

            /// One attempt at [`ChangeStore::apply_changes`]: the batch's rooms locked in
            /// id order first (as appends lock them), so two nodes never wait on each
            /// other in a circle.
            async fn apply_changes_once(
                &self,
                batch: Vec<$crate::store::changes::NewChange>,
            ) -> $crate::store::StoreResult<Vec<$crate::store::changes::ChangeOutcome>> {
                let mut tx = self.write_transaction().await?;
                let rooms: std::collections::BTreeSet<natter_protocol::RoomId> =
                    batch.iter().map(|c| c.room).collect();
                for room in rooms {
                    Self::lock_room(&mut tx, room).await?;
                }
                let mut outcomes = Vec::with_capacity(batch.len());
                let mut old_text = false;
                for change in batch {
                    let rewrites = matches!(
                        change.change,
                        natter_protocol::Change::Delete | natter_protocol::Change::Edit { .. }
                    );
                    let outcome = Self::apply_change(&mut tx, change).await?;
                    old_text |= rewrites
                        && matches!(outcome, $crate::store::changes::ChangeOutcome::Stored(_));
                    outcomes.push(outcome);
                }
                tx.commit().await?;
                if old_text {
                    self.forget_deleted().await;
                }
                Ok(outcomes)
            }

            /// Stores one change inside `tx` (see [`ChangeStore::apply_changes`]).
            async fn apply_change(
                tx: &mut sqlx::Transaction<'static, $db>,
                new: $crate::store::changes::NewChange,
            ) -> $crate::store::StoreResult<$crate::store::changes::ChangeOutcome> {
                use $crate::store::changes::{ChangeEvent, ChangeOutcome, ChangeRefusal};
                use natter_protocol::Change;
                use sqlx::Row;
                let resent = sqlx::query(
                    "SELECT c.room_id, c.seq, c.ts, c.sender_id, c.sender_name, c.target, \
                            c.kind, c.emoji, m.text, m.mentions \
                     FROM changes c LEFT JOIN messages m \
                       ON m.room_id = c.room_id AND m.seq = c.target \
                     WHERE c.sender_id = $1 AND c.client_id = $2",
                )
                .bind(&new.by.id.0)
                .bind(&new.client_id)
                .fetch_optional(&mut **tx)
                .await?;
                if let Some(row) = resent {
                    return Ok(ChangeOutcome::Duplicate(
                        $crate::store::changes::change_event_from_row(&row)?,
                    ));
                }
                let room = new.room;
                let target = new.target as i64;
                let Some(message) = sqlx::query(
                    "SELECT sender_id, kind, deleted, rev, reactions FROM messages \
                     WHERE room_id = $1 AND seq = $2",
                )
                .bind(room.0)
                .bind(target)
                .fetch_optional(&mut **tx)
                .await?
                else {
                    return Ok(ChangeOutcome::Refused(ChangeRefusal::NoSuchMessage));
                };
                let deleted: bool = message.try_get("deleted")?;
                if deleted || message.try_get::<String, _>("kind")? != "text" {
                    return Ok(ChangeOutcome::Refused(ChangeRefusal::NoSuchMessage));
                }
                let authored = message.try_get::<String, _>("sender_id")? == new.by.id.0;
                if matches!(new.change, Change::Edit { .. } | Change::Delete) && !authored {
                    return Ok(ChangeOutcome::Refused(ChangeRefusal::NotAuthor));
                }
                let unchanged = ChangeOutcome::Unchanged {
                    room,
                    seq: (message.try_get::<i64, _>("rev")?.max(target)) as natter_protocol::Seq,
                    ts: new.ts,
                };
                if let Change::React { emoji } | Change::Unreact { emoji } = &new.change {
                    let emojis: Vec<(String, i64)> = sqlx::query_as(
                        "SELECT emoji, CAST(MAX(CASE WHEN user_id = $3 THEN 1 ELSE 0 END) AS BIGINT) \
                         FROM reactions WHERE room_id = $1 AND seq = $2 GROUP BY emoji",
                    )
                    .bind(room.0)
                    .bind(target)
                    .bind(&new.by.id.0)
                    .fetch_all(&mut **tx)
                    .await?;
                    let given = emojis.iter().any(|(e, mine)| e == emoji && *mine == 1);
                    let adding = matches!(new.change, Change::React { .. });
                    if adding == given {
                        return Ok(unchanged);
                    }
                    let new_kind = !emojis.iter().any(|(e, _)| e == emoji);
                    if adding && new_kind && emojis.len() >= natter_protocol::MAX_REACTION_KINDS {
                        return Ok(ChangeOutcome::Refused(ChangeRefusal::TooManyReactions));
                    }
                }
                let Some(seq) = sqlx::query_scalar::<_, i64>(
                    "UPDATE rooms SET latest_seq = latest_seq + 1 WHERE id = $1 RETURNING latest_seq",
                )
                .bind(room.0)
                .fetch_optional(&mut **tx)
                .await?
                else {
                    return Ok(ChangeOutcome::NoSuchRoom);
                };
                let (kind, emoji) = $crate::store::changes::change_kind(&new.change);
                sqlx::query(
                    "INSERT INTO changes \
                       (room_id, seq, target, sender_id, sender_name, client_id, kind, emoji, ts) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                )
                .bind(room.0)
                .bind(seq)
                .bind(target)
                .bind(&new.by.id.0)
                .bind(&new.by.name)
                .bind(&new.client_id)
                .bind(kind)
                .bind(emoji)
                .bind(new.ts)
                .execute(&mut **tx)
                .await?;
                match &new.change {
                    Change::Edit { text, mentions } => {
                        sqlx::query(
                            "UPDATE messages SET text = $3, edited_at = $4, rev = $5, mentions = $6 \
                             WHERE room_id = $1 AND seq = $2",
                        )
                        .bind(room.0)
                        .bind(target)
                        .bind(text)
                        .bind(new.ts)
                        .bind(seq)
                        .bind($crate::store::attention::mentions_column(mentions))
                        .execute(&mut **tx)
                        .await?;
                        Self::write_mentions(tx, room, new.target, &new.by.id, mentions, true)
                            .await?;
                    }
                    Change::Delete => {
                        // Gone, not hidden: the text, the files (their blobs are swept
                        // once nothing refers to them) and the reactions.
                        sqlx::query(
                            "UPDATE messages SET text = '', attachments = NULL, edited_at = NULL, \
                                    reactions = NULL, mentions = NULL, deleted = TRUE, rev = $3 \
                             WHERE room_id = $1 AND seq = $2",
                        )
                        .bind(room.0)
                        .bind(target)
                        .bind(seq)
                        .execute(&mut **tx)
                        .await?;
                        for table in ["reactions", "files", "mentions"] {
                            sqlx::query(&format!(
                                "DELETE FROM {table} WHERE room_id = $1 AND seq = $2"
                            ))
                            .bind(room.0)
                            .bind(target)
                            .execute(&mut **tx)
                            .await?;
                        }
                    }
                    Change::React { emoji } => {
                        sqlx::query(
                            "INSERT INTO reactions (room_id, seq, emoji, user_id, user_name, added_seq) \
                             VALUES ($1, $2, $3, $4, $5, $6)",
                        )
                        .bind(room.0)
                        .bind(target)
                        .bind(emoji)
                        .bind(&new.by.id.0)
                        .bind(&new.by.name)
                        .bind(seq)
                        .execute(&mut **tx)
                        .await?;
                    }
                    Change::Unreact { emoji } => {
                        sqlx::query(
                            "DELETE FROM reactions \
                             WHERE room_id = $1 AND seq = $2 AND emoji = $3 AND user_id = $4",
                        )
                        .bind(room.0)
                        .bind(target)
                        .bind(emoji)
                        .bind(&new.by.id.0)
                        .execute(&mut **tx)
                        .await?;
                    }
                }
                if let Change::React { emoji } | Change::Unreact { emoji } = &new.change {
                    // The summary history shows: this emoji's count and first reactors
                    // now (the reactors from the index in reaction order), the others
                    // as they were.
                    let listed: Vec<(String, String)> = sqlx::query_as(
                        "SELECT user_id, user_name FROM reactions \
                         WHERE room_id = $1 AND seq = $2 AND emoji = $3 \
                         ORDER BY added_seq LIMIT $4",
                    )
                    .bind(room.0)
                    .bind(target)
                    .bind(emoji)
                    .bind(natter_protocol::REACTORS_LISTED as i64)
                    .fetch_all(&mut **tx)
                    .await?;
                    let mut summary = $crate::store::changes::reactions_from_column(
                        message.try_get("reactions")?,
                    );
                    // The summary is kept in step by every reaction, so the count is
                    // the one it held, one up or down (this one was checked to change it).
                    let before = summary
                        .iter()
                        .find(|r| &r.emoji == emoji)
                        .map_or(0, |r| r.count);
                    let count = match new.change {
                        Change::React { .. } => before.saturating_add(1),
                        _ => before.saturating_sub(1),
                    };
                    $crate::store::changes::summarize(
                        &mut summary,
                        emoji,
                        count,
                        listed
                            .into_iter()
                            .map(|(id, name)| natter_protocol::UserSummary {
                                id: natter_protocol::UserId(id),
                                name,
                            })
                            .collect(),
                    );
                    sqlx::query(
                        "UPDATE messages SET reactions = $3, rev = $4 WHERE room_id = $1 AND seq = $2",
                    )
                    .bind(room.0)
                    .bind(target)
                    .bind($crate::store::changes::reactions_column(&summary))
                    .bind(seq)
                    .execute(&mut **tx)
                    .await?;
                }
                Ok(ChangeOutcome::Stored(ChangeEvent {
                    room,
                    seq: seq as natter_protocol::Seq,
                    ts: new.ts,
                    by: new.by,
                    target: new.target,
                    change: new.change,
                }))
            }
        }

        #[async_trait::async_trait]
        impl $crate::store::changes::ChangeStore for $store {
            async fn apply_changes(
                &self,
                batch: Vec<$crate::store::changes::NewChange>,
            ) -> $crate::store::StoreResult<Vec<$crate::store::changes::ChangeOutcome>> {
                // Several nodes write one PostgreSQL: a deadlock or a resend stored by
                // another node at the same moment is worth another try, as for appends.
                let mut attempt = 1;
                loop {
                    match self.apply_changes_once(batch.clone()).await {
                        Err(err)
                            if attempt < 3 && $crate::store::worth_retrying(&err) =>
                        {
                            tracing::debug!(%err, attempt, "changes lost a race; trying again");
                            attempt += 1;
                        }
                        other => return other,
                    }
                }
            }

            async fn message_at(
                &self,
                room: natter_protocol::RoomId,
                seq: natter_protocol::Seq,
            ) -> $crate::store::StoreResult<Option<natter_protocol::ChatMessage>> {
                let row = sqlx::query(&format!(
                    "{} WHERE m.room_id = $1 AND m.seq = $2",
                    $crate::store::CURRENT_MESSAGES
                ))
                .bind(room.0)
                .bind(i64::try_from(seq).unwrap_or(i64::MAX))
                .fetch_optional(&self.pool)
                .await?;
                row.as_ref()
                    .map($crate::store::current_message_from_row)
                    .transpose()
            }

            async fn changed_since(
                &self,
                room: natter_protocol::RoomId,
                after: natter_protocol::Seq,
                viewer: &natter_protocol::UserId,
                limit: u32,
            ) -> $crate::store::StoreResult<Vec<natter_protocol::ChatMessage>> {
                self.current_messages(
                    room,
                    // (`rev > 0` too, in so many words: the partial index on rev needs it.)
                    "m.seq <= $2 AND m.rev > $2 AND m.rev > 0",
                    after,
                    "m.rev",
                    limit,
                    Some(viewer),
                )
                .await
            }

            async fn events_after(
                &self,
                room: natter_protocol::RoomId,
                after: natter_protocol::Seq,
                limit: u32,
            ) -> $crate::store::StoreResult<Vec<$crate::store::changes::RoomEvent>> {
                // Changes and messages from one snapshot: a change committed between two
                // reads could otherwise be skipped by a node filling its gap.
                let mut tx = self.read_snapshot().await?;
                let changes = sqlx::query(
                    "SELECT c.room_id, c.seq, c.ts, c.sender_id, c.sender_name, c.target, \
                            c.kind, c.emoji, m.text, m.mentions \
                     FROM changes c LEFT JOIN messages m \
                       ON m.room_id = c.room_id AND m.seq = c.target \
                     WHERE c.room_id = $1 AND c.seq > $2 ORDER BY c.seq DESC LIMIT $3",
                )
                .bind(room.0)
                .bind(i64::try_from(after).unwrap_or(i64::MAX))
                .bind(i64::from(limit))
                .fetch_all(&mut *tx)
                .await?;
                let messages =
                    Self::current_messages_in(&mut tx, room, "m.seq > $2", after, "m.seq", limit, None)
                        .await?;
                tx.commit().await?;
                let mut events: Vec<$crate::store::changes::RoomEvent> = messages
                    .into_iter()
                    .map($crate::store::changes::RoomEvent::Message)
                    .collect();
                for row in &changes {
                    events.push($crate::store::changes::RoomEvent::Change(
                        $crate::store::changes::change_event_from_row(row)?,
                    ));
                }
                events.sort_by_key(|e| e.seq());
                // The newest `limit` of both together.
                let excess = events.len().saturating_sub(limit as usize);
                events.drain(..excess);
                Ok(events)
            }
        }
    };
}

pub(crate) use sql_change_store;

#[cfg(test)]
mod tests {
    use natter_protocol::{MessageKind, UserId};

    use super::*;

    fn user(id: &str) -> UserSummary {
        UserSummary {
            id: UserId(id.into()),
            name: id.to_uppercase(),
        }
    }

    #[test]
    fn a_summary_keeps_each_emoji_in_the_order_first_given_and_drops_it_at_zero() {
        let mut summary = Vec::new();
        summarize(&mut summary, "👍", 1, vec![user("a")]);
        summarize(&mut summary, "🎉", 1, vec![user("b")]);
        summarize(&mut summary, "👍", 2, vec![user("a"), user("c")]);
        assert_eq!(
            summary
                .iter()
                .map(|r| (r.emoji.as_str(), r.count))
                .collect::<Vec<_>>(),
            [("👍", 2), ("🎉", 1)]
        );
        assert_eq!(summary[0].users, vec![user("a"), user("c")]);
        summarize(&mut summary, "👍", 0, vec![]);
        summarize(&mut summary, "👀", 0, vec![]);
        assert_eq!(summary.len(), 1);
        let stored = reactions_column(&summary);
        assert_eq!(reactions_from_column(stored), summary);
        assert_eq!(reactions_column(&[]), None);
        assert!(reactions_from_column(Some("not json".into())).is_empty());
    }

    #[test]
    fn only_the_readers_own_reactions_are_marked_theirs() {
        let mut messages: Vec<ChatMessage> = [2, 5]
            .into_iter()
            .map(|seq| {
                let mut m =
                    ChatMessage::new(RoomId(1), seq, user("a"), 0, MessageKind::Text, "x".into());
                summarize(&mut m.reactions, "👍", 3, vec![user("b")]);
                summarize(&mut m.reactions, "🎉", 1, vec![user("c")]);
                m
            })
            .collect();
        attach_mine(&mut messages, &[(2, "🎉".into()), (5, "👍".into())]);
        assert_eq!(
            messages
                .iter()
                .map(|m| m.reactions.iter().map(|r| r.me).collect::<Vec<_>>())
                .collect::<Vec<_>>(),
            [[false, true], [true, false]]
        );
    }

    #[test]
    fn stored_changes_read_back_as_they_were_made() {
        for change in [
            Change::Edit {
                text: "now".into(),
                mentions: vec![],
            },
            Change::Delete,
            Change::React {
                emoji: "👍".into()
            },
            Change::Unreact {
                emoji: "👍".into()
            },
        ] {
            let (kind, emoji) = change_kind(&change);
            let text = if kind == "edit" { "now" } else { "" };
            assert_eq!(
                change_from_stored(kind, emoji.map(String::from), text.into(), Vec::new()),
                change
            );
        }
    }
}
