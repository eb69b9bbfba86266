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

/// A change back from its stored kind; an edit carries `text`, its message's text now.
pub(crate) fn change_from_stored(kind: &str, emoji: Option<String>, text: String) -> Change {
    let emoji = emoji.unwrap_or_default();
    match kind {
        "edit" => Change::Edit { text },
        "react" => Change::React { emoji },
        "unreact" => Change::Unreact { emoji },
        _ => Change::Delete,
    }
}

/// One row of the reactions query: a reactor listed under an emoji of a message.
pub(crate) struct ReactorRow {
    /// The message.
    pub seq: Seq,
    /// The emoji.
    pub emoji: String,
    /// The reactor.
    pub user: UserSummary,
    /// How many reacted with this emoji.
    pub count: u32,
    /// The viewer is one of them.
    pub mine: bool,
}

/// Puts reactor rows (ordered by message, then by each emoji's first reaction, then
/// by reaction) onto their messages.
pub(crate) fn attach_reactions(messages: &mut [ChatMessage], rows: Vec<ReactorRow>) {
    let mut at = 0;
    for row in rows {
        while at < messages.len() && messages[at].seq < row.seq {
            at += 1;
        }
        let Some(message) = messages.get_mut(at).filter(|m| m.seq == row.seq) else {
            continue;
        };
        match message.reactions.last_mut() {
            Some(reaction) if reaction.emoji == row.emoji => reaction.users.push(row.user),
            _ => message.reactions.push(Reaction {
                emoji: row.emoji,
                count: row.count,
                users: vec![row.user],
                me: row.mine,
            }),
        }
    }
}

/// Implements [`ChangeStore`] (and the reactions read the history methods use) for a
/// sqlx-backed store, as [`super::sql`] does for [`super::Store`]: with `pool`,
/// `write_transaction()`, `lock_room()` and `forget_deleted()` (what the database
/// must do so a deleted text is gone from its files).
macro_rules! sql_change_store {
    ($store:ty, $db:ty) => {
        impl $store {
            /// Fills in the reactions of `messages` (in seq order), with `me` for
            /// `viewer`. Messages never changed have none, so a page of those costs
            /// no query.
            async fn with_reactions(
                &self,
                mut messages: Vec<natter_protocol::ChatMessage>,
                viewer: Option<&natter_protocol::UserId>,
            ) -> $crate::store::StoreResult<Vec<natter_protocol::ChatMessage>> {
                let changed = messages.iter().filter(|m| m.rev > 0);
                let (Some(first), Some(last)) =
                    (changed.clone().map(|m| m.seq).min(), changed.map(|m| m.seq).max())
                else {
                    return Ok(messages);
                };
                let Some(room) = messages.first().map(|m| m.room) else {
                    return Ok(messages);
                };
                // Per emoji of each message: its first REACTORS_LISTED reactors, the
                // count, and whether the viewer is among them — ranked in the database,
                // so only the listed rows come back however many reacted.
                let rows = sqlx::query(
                    "SELECT seq, emoji, user_id, user_name, cnt, mine FROM ( \
                       SELECT seq, emoji, user_id, user_name, \
                         ROW_NUMBER() OVER (PARTITION BY seq, emoji ORDER BY added_seq) AS rn, \
                         COUNT(*) OVER (PARTITION BY seq, emoji) AS cnt, \
                         CAST(MAX(CASE WHEN user_id = $4 THEN 1 ELSE 0 END) \
                           OVER (PARTITION BY seq, emoji) AS BIGINT) AS mine, \
                         MIN(added_seq) OVER (PARTITION BY seq, emoji) AS first_added \
                       FROM reactions WHERE room_id = $1 AND seq >= $2 AND seq <= $3 \
                     ) ranked WHERE rn <= $5 ORDER BY seq, first_added, rn",
                )
                .bind(room.0)
                .bind(first as i64)
                .bind(last as i64)
                .bind(viewer.map_or("", |v| v.0.as_str()))
                .bind(natter_protocol::REACTORS_LISTED as i64)
                .fetch_all(&self.pool)
                .await?;
                let mut reactors = Vec::with_capacity(rows.len());
                for row in &rows {
                    use sqlx::Row;
                    reactors.push($crate::store::changes::ReactorRow {
                        seq: row.try_get::<i64, _>("seq")? as natter_protocol::Seq,
                        emoji: row.try_get("emoji")?,
                        user: natter_protocol::UserSummary {
                            id: natter_protocol::UserId(row.try_get("user_id")?),
                            name: row.try_get("user_name")?,
                        },
                        count: u32::try_from(row.try_get::<i64, _>("cnt")?).unwrap_or(u32::MAX),
                        mine: row.try_get::<i64, _>("mine")? == 1,
                    });
                }
                $crate::store::changes::attach_reactions(&mut messages, reactors);
                Ok(messages)
            }

            /// Messages in their current state: `clause` on `m` with `$1` the room and
            /// `$2` a seq, newest `limit` (`$3`) by `order`, returned oldest first.
            async fn current_messages(
                &self,
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
                .fetch_all(&self.pool)
                .await?;
                let mut messages = rows
                    .iter()
                    .map($crate::store::current_message_from_row)
                    .collect::<Result<Vec<_>, _>>()?;
                messages.sort_by_key(|m| m.seq);
                self.with_reactions(messages, viewer).await
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
                            c.kind, c.emoji, m.text \
                     FROM changes c LEFT JOIN messages m \
                       ON m.room_id = c.room_id AND m.seq = c.target \
                     WHERE c.sender_id = $1 AND c.client_id = $2",
                )
                .bind(&new.by.id.0)
                .bind(&new.client_id)
                .fetch_optional(&mut **tx)
                .await?;
                if let Some(row) = resent {
                    return Ok(ChangeOutcome::Duplicate(ChangeEvent {
                        room: natter_protocol::RoomId(row.try_get("room_id")?),
                        seq: row.try_get::<i64, _>("seq")? as natter_protocol::Seq,
                        ts: row.try_get("ts")?,
                        by: natter_protocol::UserSummary {
                            id: natter_protocol::UserId(row.try_get("sender_id")?),
                            name: row.try_get("sender_name")?,
                        },
                        target: row.try_get::<i64, _>("target")? as natter_protocol::Seq,
                        change: $crate::store::changes::change_from_stored(
                            &row.try_get::<String, _>("kind")?,
                            row.try_get("emoji")?,
                            row.try_get::<Option<String>, _>("text")?.unwrap_or_default(),
                        ),
                    }));
                }
                let room = new.room;
                let target = new.target as i64;
                Self::lock_room(tx, room).await?;
                let Some(message) = sqlx::query(
                    "SELECT sender_id, kind, deleted, rev FROM messages \
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
                    Change::Edit { text } => {
                        sqlx::query(
                            "UPDATE messages SET text = $3, edited_at = $4, rev = $5 \
                             WHERE room_id = $1 AND seq = $2",
                        )
                        .bind(room.0)
                        .bind(target)
                        .bind(text)
                        .bind(new.ts)
                        .bind(seq)
                        .execute(&mut **tx)
                        .await?;
                    }
                    Change::Delete => {
                        // Gone, not hidden: the text, the files (their blobs are swept
                        // once nothing refers to them) and the reactions.
                        sqlx::query(
                            "UPDATE messages SET text = '', attachments = NULL, edited_at = NULL, \
                                    deleted = TRUE, rev = $3 \
                             WHERE room_id = $1 AND seq = $2",
                        )
                        .bind(room.0)
                        .bind(target)
                        .bind(seq)
                        .execute(&mut **tx)
                        .await?;
                        for table in ["reactions", "files"] {
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
                if matches!(new.change, Change::React { .. } | Change::Unreact { .. }) {
                    sqlx::query("UPDATE messages SET rev = $3 WHERE room_id = $1 AND seq = $2")
                        .bind(room.0)
                        .bind(target)
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
                let mut tx = self.write_transaction().await?;
                let mut outcomes = Vec::with_capacity(batch.len());
                let mut deleted = false;
                for change in batch {
                    let deleting = matches!(change.change, natter_protocol::Change::Delete);
                    let outcome = Self::apply_change(&mut tx, change).await?;
                    deleted |= deleting
                        && matches!(outcome, $crate::store::changes::ChangeOutcome::Stored(_));
                    outcomes.push(outcome);
                }
                tx.commit().await?;
                if deleted {
                    self.forget_deleted().await;
                }
                Ok(outcomes)
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
                    "m.seq <= $2 AND m.rev > $2",
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
                use sqlx::Row;
                let changes = sqlx::query(
                    "SELECT c.room_id, c.seq, c.ts, c.sender_id, c.sender_name, c.target, \
                            c.kind, c.emoji, m.text \
                     FROM changes c LEFT JOIN messages m \
                       ON m.room_id = c.room_id AND m.seq = c.target \
                     WHERE c.room_id = $1 AND c.seq > $2 ORDER BY c.seq DESC LIMIT $3",
                )
                .bind(room.0)
                .bind(i64::try_from(after).unwrap_or(i64::MAX))
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?;
                let messages = self
                    .current_messages(room, "m.seq > $2", after, "m.seq", limit, None)
                    .await?;
                let mut events: Vec<$crate::store::changes::RoomEvent> = messages
                    .into_iter()
                    .map($crate::store::changes::RoomEvent::Message)
                    .collect();
                for row in &changes {
                    events.push($crate::store::changes::RoomEvent::Change(
                        $crate::store::changes::ChangeEvent {
                            room,
                            seq: row.try_get::<i64, _>("seq")? as natter_protocol::Seq,
                            ts: row.try_get("ts")?,
                            by: natter_protocol::UserSummary {
                                id: natter_protocol::UserId(row.try_get("sender_id")?),
                                name: row.try_get("sender_name")?,
                            },
                            target: row.try_get::<i64, _>("target")? as natter_protocol::Seq,
                            change: $crate::store::changes::change_from_stored(
                                &row.try_get::<String, _>("kind")?,
                                row.try_get("emoji")?,
                                row.try_get::<Option<String>, _>("text")?.unwrap_or_default(),
                            ),
                        },
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

    fn row(seq: Seq, emoji: &str, who: &str, count: u32, mine: bool) -> ReactorRow {
        ReactorRow {
            seq,
            emoji: emoji.into(),
            user: user(who),
            count,
            mine,
        }
    }

    #[test]
    fn reactor_rows_land_on_their_messages_grouped_by_emoji_in_order() {
        let mut messages: Vec<ChatMessage> = [2, 5, 9]
            .into_iter()
            .map(|seq| {
                ChatMessage::new(RoomId(1), seq, user("a"), 0, MessageKind::Text, "x".into())
            })
            .collect();
        attach_reactions(
            &mut messages,
            vec![
                row(2, "👍", "b", 2, true),
                row(2, "👍", "c", 2, true),
                row(2, "🎉", "c", 1, false),
                row(4, "👀", "x", 1, false), // no such message here: dropped
                row(9, "👍", "a", 7, false),
            ],
        );
        assert_eq!(messages[0].reactions.len(), 2);
        assert_eq!(messages[0].reactions[0].emoji, "👍");
        assert_eq!(messages[0].reactions[0].count, 2);
        assert!(messages[0].reactions[0].me);
        assert_eq!(messages[0].reactions[0].users, vec![user("b"), user("c")]);
        assert_eq!(messages[0].reactions[1].emoji, "🎉");
        assert!(messages[1].reactions.is_empty());
        assert_eq!(messages[2].reactions[0].count, 7);
        assert_eq!(messages[2].reactions[0].users, vec![user("a")]);
    }

    #[test]
    fn stored_changes_read_back_as_they_were_made() {
        for change in [
            Change::Edit { text: "now".into() },
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
                change_from_stored(kind, emoji.map(String::from), text.into()),
                change
            );
        }
    }
}
