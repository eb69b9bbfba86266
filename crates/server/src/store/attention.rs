//! What tells a person where to look: who a message mentions, where each person
//! stopped reading, and how big a room is (for `@room` and typing).
//!
//! [`AttentionStore`] is a supertrait of [`super::Store`] with one portable-SQL
//! implementation ([`sql_attention_store!`]); the in-memory store has its own.
//!
//! Mentions are stored twice, for two readers: as JSON in `messages.mentions` (history
//! shows them without a join) and as one `mentions` row per person mentioned, `@room`
//! expanded to the members when the message is stored, so a mention count is an index
//! range. Read positions (`read_positions`) only move forward; the hub coalesces them
//! and writes them at most about once a second per person and room
//! ([`crate::hub::reading`]).

use async_trait::async_trait;
use natter_protocol::{Mention, ReadState, RoomId, Seq, UserId, UserSummary, MAX_UNREAD_COUNTED};

use super::StoreResult;

/// One person's read position in one room, as the hub hands it to be stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadPosition {
    /// Whose.
    pub user: UserId,
    /// Which room.
    pub room: RoomId,
    /// The newest seq read.
    pub seq: Seq,
}

/// Mentions, read positions and room sizes. See the module docs.
#[async_trait]
pub trait AttentionStore {
    /// The members of `room` whose name is one of `names` (exactly, or in other ASCII
    /// case): who a message's `@names` can mean.
    async fn members_named(&self, room: RoomId, names: &[&str]) -> StoreResult<Vec<UserSummary>>;
    /// How many members `room` has (online or not).
    async fn member_count(&self, room: RoomId) -> StoreResult<u32>;
    /// Stores read positions, each only where it is newer than the stored one and the
    /// person is still a member, and never past the room's newest seq. One
    /// transaction.
    async fn save_read_positions(&self, positions: &[ReadPosition]) -> StoreResult<()>;
    /// `user`'s read state in every room they are in: one statement, so each room's
    /// counts and `through` agree.
    async fn read_states(&self, user: &UserId) -> StoreResult<Vec<(RoomId, ReadState)>>;
    /// `user`'s read state in `room` as if they had read up to at least `seq` (the
    /// stored position wins when newer); `None` when they are not a member.
    async fn read_state(
        &self,
        user: &UserId,
        room: RoomId,
        seq: Seq,
    ) -> StoreResult<Option<ReadState>>;
}

/// The JSON a `messages.mentions` column holds (NULL when none).
pub(crate) fn mentions_column(mentions: &[Mention]) -> Option<String> {
    (!mentions.is_empty()).then(|| serde_json::to_string(mentions).unwrap_or_else(|_| "[]".into()))
}

/// The mentions a `messages.mentions` value holds (none for NULL or anything
/// unreadable, which only a hand-edited database could hold).
pub(crate) fn mentions_from_column(column: Option<String>) -> Vec<Mention> {
    column
        .and_then(|json| serde_json::from_str(&json).ok())
        .unwrap_or_default()
}

/// A read state from its parts as [`READ_STATES`] selects them, the position clamped to
/// the room's newest seq (a client may claim more than there is).
pub(crate) fn read_state_of(latest: i64, read: i64, unread: i64, mentions: i64) -> ReadState {
    let through = latest.max(0) as Seq;
    ReadState {
        seq: (read.max(0) as Seq).min(through),
        unread: u32::try_from(unread).unwrap_or(MAX_UNREAD_COUNTED),
        mentions: u32::try_from(mentions).unwrap_or(u32::MAX),
        through,
    }
}

/// Read positions stored by one statement (three parameters each).
pub(crate) const READ_POSITIONS_PER_STATEMENT: usize = 200;

/// The upsert of `rows` read positions, bound as `(user, room, seq)` each: only for
/// members, never past the room's newest seq (a claim beyond it would mark every later
/// message read), and only forward.
pub(crate) fn save_read_positions_sql(rows: usize) -> String {
    let values: Vec<String> = (0..rows)
        .map(|row| {
            let n = row * 3;
            format!(
                "(CAST(${} AS TEXT), CAST(${} AS BIGINT), CAST(${} AS BIGINT))",
                n + 1,
                n + 2,
                n + 3
            )
        })
        .collect();
    format!(
        "INSERT INTO read_positions (user_id, room_id, seq) \
         SELECT p.column1, r.id, \
                CASE WHEN p.column3 > r.latest_seq THEN r.latest_seq ELSE p.column3 END \
         FROM (VALUES {}) AS p JOIN rooms r ON r.id = p.column2 \
         WHERE EXISTS (SELECT 1 FROM members m WHERE m.room_id = r.id AND m.user_id = p.column1) \
         ON CONFLICT (user_id, room_id) DO UPDATE SET seq = excluded.seq \
         WHERE excluded.seq > read_positions.seq",
        values.join(", ")
    )
}

/// Every room of `$1` with its newest seq, the read position (at least `$2`), the
/// unread messages by others after it (counted up to [`MAX_UNREAD_COUNTED`]) and the
/// mentions of `$1` after it — neither from people `$1` blocks (their messages are not
/// shown) — — in one statement, so the counts go exactly up to
/// `latest_seq`. `$3` is one room, or 0 for all. Selects `room_id, latest_seq,
/// read_seq, unread, mentioned`.
pub(crate) const READ_STATES: &str = "WITH mine AS ( \
       SELECT r.id AS room_id, r.latest_seq, \
              CASE WHEN COALESCE(p.seq, 0) > CAST($2 AS BIGINT) THEN COALESCE(p.seq, 0) \
                   ELSE CAST($2 AS BIGINT) END AS read_seq \
       FROM members m JOIN rooms r ON r.id = m.room_id \
       LEFT JOIN read_positions p ON p.user_id = m.user_id AND p.room_id = m.room_id \
       WHERE m.user_id = $1 AND (m.room_id = CAST($3 AS BIGINT) OR CAST($3 AS BIGINT) = 0)) \
     SELECT room_id, latest_seq, read_seq, \
       (SELECT COUNT(*) FROM (SELECT 1 FROM messages x \
           WHERE x.room_id = mine.room_id AND x.seq > mine.read_seq \
             AND x.seq <= mine.latest_seq AND x.sender_id <> $1 \
             AND x.kind = 'text' AND NOT x.deleted \
             AND NOT EXISTS (SELECT 1 FROM blocks b WHERE b.user_id = $1 AND b.blocked_id = x.sender_id) \
           LIMIT 999) c) AS unread, \
       (SELECT COUNT(*) FROM mentions n JOIN messages x ON x.room_id = n.room_id AND x.seq = n.seq \
           WHERE n.user_id = $1 AND n.room_id = mine.room_id \
             AND n.seq > mine.read_seq AND n.seq <= mine.latest_seq \
             AND NOT EXISTS (SELECT 1 FROM blocks b WHERE b.user_id = $1 AND b.blocked_id = x.sender_id)) \
           AS mentioned \
     FROM mine";

/// Implements [`AttentionStore`] for a sqlx-backed store with a `pool` (reads), a
/// `writer()` and `write_transaction()`, in portable SQL; and `write_mentions`, which
/// the append and edit transactions call.
macro_rules! sql_attention_store {
    ($store:ty, $db:ty) => {
        impl $store {
            /// Writes the `mentions` rows of message `seq` of `room` (sent by `sender`),
            /// replacing any it had: one per person mentioned other than the sender,
            /// every other member for `@room`.
            async fn write_mentions(
                tx: &mut sqlx::Transaction<'static, $db>,
                room: natter_protocol::RoomId,
                seq: natter_protocol::Seq,
                sender: &natter_protocol::UserId,
                mentions: &[natter_protocol::Mention],
                replacing: bool,
            ) -> $crate::store::StoreResult<()> {
                let seq = i64::try_from(seq).unwrap_or(i64::MAX);
                if replacing {
                    sqlx::query("DELETE FROM mentions WHERE room_id = $1 AND seq = $2")
                        .bind(room.0)
                        .bind(seq)
                        .execute(&mut **tx)
                        .await?;
                }
                for mention in mentions {
                    let query = match &mention.user {
                        Some(user) if user != sender => sqlx::query(
                            "INSERT INTO mentions (user_id, room_id, seq) VALUES ($1, $2, $3) \
                             ON CONFLICT DO NOTHING",
                        )
                        .bind(&user.0)
                        .bind(room.0)
                        .bind(seq),
                        Some(_) => continue,
                        None => sqlx::query(
                            "INSERT INTO mentions (user_id, room_id, seq) \
                             SELECT user_id, CAST($1 AS BIGINT), CAST($2 AS BIGINT) FROM members \
                             WHERE room_id = $1 AND user_id <> $3 ON CONFLICT DO NOTHING",
                        )
                        .bind(room.0)
                        .bind(seq)
                        .bind(&sender.0),
                    };
                    query.execute(&mut **tx).await?;
                }
                Ok(())
            }
        }

        #[async_trait::async_trait]
        impl $crate::store::attention::AttentionStore for $store {
            async fn members_named(
                &self,
                room: natter_protocol::RoomId,
                names: &[&str],
            ) -> $crate::store::StoreResult<Vec<natter_protocol::UserSummary>> {
                if names.is_empty() {
                    return Ok(Vec::new());
                }
                let exact: Vec<String> = (0..names.len()).map(|n| format!("${}", n + 2)).collect();
                let folded: Vec<String> = (0..names.len())
                    .map(|n| format!("${}", n + 2 + names.len()))
                    .collect();
                // Users by name first (indexed, as written and in lower case), then
                // membership: a big room is not scanned for every `@`.
                let sql = format!(
                    "SELECT u.id, u.name FROM users u JOIN members m ON m.user_id = u.id \
                     WHERE m.room_id = $1 AND (u.name IN ({}) OR lower(u.name) IN ({}))",
                    exact.join(", "),
                    folded.join(", ")
                );
                let mut query = sqlx::query_as::<_, (String, String)>(&sql).bind(room.0);
                for name in names {
                    query = query.bind(*name);
                }
                for name in names {
                    query = query.bind(name.to_lowercase());
                }
                let rows = query.fetch_all(&self.pool).await?;
                Ok(rows
                    .into_iter()
                    .map(|(id, name)| natter_protocol::UserSummary {
                        id: natter_protocol::UserId(id),
                        name,
                    })
                    .collect())
            }

            async fn member_count(
                &self,
                room: natter_protocol::RoomId,
            ) -> $crate::store::StoreResult<u32> {
                let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM members WHERE room_id = $1")
                    .bind(room.0)
                    .fetch_one(&self.pool)
                    .await?;
                Ok(u32::try_from(count).unwrap_or(u32::MAX))
            }

            async fn save_read_positions(
                &self,
                positions: &[$crate::store::attention::ReadPosition],
            ) -> $crate::store::StoreResult<()> {
                if positions.is_empty() {
                    return Ok(());
                }
                let mut tx = self.write_transaction().await?;
                // A statement per chunk, not per row: a busy second's positions cost a
                // few round trips to the database, not thousands.
                for chunk in positions.chunks($crate::store::attention::READ_POSITIONS_PER_STATEMENT) {
                    let sql = $crate::store::attention::save_read_positions_sql(chunk.len());
                    let mut query = sqlx::query(&sql);
                    for position in chunk {
                        query = query
                            .bind(&position.user.0)
                            .bind(position.room.0)
                            .bind(i64::try_from(position.seq).unwrap_or(i64::MAX));
                    }
                    query.execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn read_states(
                &self,
                user: &natter_protocol::UserId,
            ) -> $crate::store::StoreResult<Vec<(natter_protocol::RoomId, natter_protocol::ReadState)>> {
                let rows = sqlx::query_as::<_, (i64, i64, i64, i64, i64)>(
                    $crate::store::attention::READ_STATES,
                )
                .bind(&user.0)
                .bind(0_i64)
                .bind(0_i64)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows
                    .into_iter()
                    .map(|(room, latest, read, unread, mentioned)| {
                        (
                            natter_protocol::RoomId(room),
                            $crate::store::attention::read_state_of(latest, read, unread, mentioned),
                        )
                    })
                    .collect())
            }

            async fn read_state(
                &self,
                user: &natter_protocol::UserId,
                room: natter_protocol::RoomId,
                seq: natter_protocol::Seq,
            ) -> $crate::store::StoreResult<Option<natter_protocol::ReadState>> {
                let row = sqlx::query_as::<_, (i64, i64, i64, i64, i64)>(
                    $crate::store::attention::READ_STATES,
                )
                .bind(&user.0)
                .bind(i64::try_from(seq).unwrap_or(i64::MAX))
                .bind(room.0)
                .fetch_optional(&self.pool)
                .await?;
                Ok(row.map(|(_, latest, read, unread, mentioned)| {
                    $crate::store::attention::read_state_of(latest, read, unread, mentioned)
                }))
            }
        }
    };
}

pub(crate) use sql_attention_store;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unread_counting_stops_at_the_protocols_cap() {
        assert!(READ_STATES.contains(&format!("LIMIT {MAX_UNREAD_COUNTED})")));
    }

    #[test]
    fn a_read_position_never_passes_the_rooms_newest_seq() {
        let state = read_state_of(10, 50, 0, 0);
        assert_eq!((state.seq, state.through), (10, 10));
    }
}
