//! The shared store: PostgreSQL through sqlx, for several natter nodes on one database.
//!
//! Chosen with `--database-url postgres://…`; migrations run at start-up (sqlx keeps
//! them idempotent and takes an advisory lock, so nodes starting together are fine).
//! To put natter in its own schema, add `?options[search_path]=myschema` to the URL.
//!
//! Appends are where nodes meet. A batch is one transaction of at most four
//! statements, each covering the whole batch (the database is a network hop away):
//! look up resent idempotency keys, lock the batch's rooms *in id order* and bump their
//! `latest_seq` by what each needs, insert every new row. A room's row lock makes a
//! second node wait until the first commits, so seqs are gap-free and in commit order;
//! the fixed lock order means two batches never deadlock. A batch that still loses a
//! race (the same resend on two nodes at once) is retried and then finds the original.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use natter_protocol::{ChatMessage, RoomId, Seq, UserId};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::Row;

use super::batch::AppendBatch;
use super::{
    conflict_or_database, direct_key, kind_str, message_from_row, room_from_row, Appended,
    NewMessage, RoomRecord, Store, StoreError, StoreResult, UserRecord, MESSAGE_COLUMNS,
    ROOM_COLUMNS,
};

/// How often a batch that lost a race (deadlock, serialization, a concurrent resend) is
/// tried again before the error is reported.
const APPEND_ATTEMPTS: usize = 3;

/// PostgreSQL-backed [`Store`].
#[derive(Clone)]
pub struct PgStore {
    /// Connection pool shared by reads, writes and appends.
    pool: PgPool,
}

super::accounts::sql_account_store!(PgStore);

impl PgStore {
    /// PostgreSQL takes concurrent writers itself (row locks); nothing to wait for.
    async fn write_turn(&self) {}

    /// Connects to `url` (`postgres://…`) and brings the schema up to date.
    pub async fn open(url: &str) -> StoreResult<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        Ok(PgStore { pool })
    }

    /// One transaction of [`Store::append`]; see the module docs.
    async fn append_once(&self, batch: &[NewMessage]) -> StoreResult<Vec<Appended>> {
        let mut plan = AppendBatch::new(batch.to_vec());
        let mut tx = self.pool.begin().await?;
        let (senders, client_ids): (Vec<String>, Vec<String>) = plan
            .idempotency_keys()
            .map(|(sender, client_id)| (sender.to_string(), client_id.to_string()))
            .unzip();
        if !senders.is_empty() {
            let rows = sqlx::query(
                "SELECT m.room_id, m.seq, m.sender_id, m.sender_name, m.ts, m.kind, m.text, \
                        m.client_id \
                 FROM messages m \
                 JOIN UNNEST($1::text[], $2::text[]) AS k(sender_id, client_id) \
                   ON m.sender_id = k.sender_id AND m.client_id = k.client_id",
            )
            .bind(&senders)
            .bind(&client_ids)
            .fetch_all(&mut *tx)
            .await?;
            let mut stored_before = HashMap::new();
            for row in &rows {
                let message = message_from_row(row)?;
                let client_id: String = row.try_get("client_id")?;
                stored_before.insert((message.sender.id.0.clone(), client_id), message);
            }
            plan.mark_resends(stored_before);
        }
        let demand = plan.seq_demand();
        let mut latest = HashMap::new();
        if !demand.is_empty() {
            let (rooms, counts): (Vec<i64>, Vec<i64>) = demand
                .iter()
                .map(|(room, count)| (room.0, i64::try_from(*count).unwrap_or(i64::MAX)))
                .unzip();
            let rows = sqlx::query(
                "WITH locked AS ( \
                     SELECT id FROM rooms WHERE id = ANY($1) ORDER BY id FOR UPDATE \
                 ) \
                 UPDATE rooms SET latest_seq = rooms.latest_seq + d.n \
                 FROM UNNEST($1::bigint[], $2::bigint[]) AS d(id, n) \
                 WHERE rooms.id = d.id AND rooms.id IN (SELECT id FROM locked) \
                 RETURNING rooms.id, rooms.latest_seq",
            )
            .bind(&rooms)
            .bind(&counts)
            .fetch_all(&mut *tx)
            .await?;
            for row in &rows {
                let newest: i64 = row.try_get("latest_seq")?;
                latest.insert(RoomId(row.try_get("id")?), newest as Seq);
            }
        }
        let (outcomes, new_rows) = plan.assign(&latest);
        if !new_rows.is_empty() {
            let mut columns = InsertColumns::with_capacity(new_rows.len());
            for row in &new_rows {
                if let Appended::Stored(message) = &outcomes[row.index] {
                    columns.push(message, row.client_id.clone());
                }
            }
            sqlx::query(
                "INSERT INTO messages \
                     (room_id, seq, sender_id, sender_name, ts, kind, text, client_id) \
                 SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::text[], $4::text[], \
                                      $5::bigint[], $6::text[], $7::text[], $8::text[])",
            )
            .bind(&columns.room)
            .bind(&columns.seq)
            .bind(&columns.sender_id)
            .bind(&columns.sender_name)
            .bind(&columns.ts)
            .bind(&columns.kind)
            .bind(&columns.text)
            .bind(&columns.client_id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(outcomes)
    }

    /// The newest `limit` messages of `room` whose seq passes `seq_condition` (against
    /// `$2`), oldest first.
    async fn newest_where(
        &self,
        room: RoomId,
        seq_condition: &str,
        bound: Seq,
        limit: u32,
    ) -> StoreResult<Vec<ChatMessage>> {
        let rows = sqlx::query(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE room_id = $1 AND {seq_condition} \
             ORDER BY seq DESC LIMIT $3"
        ))
        .bind(room.0)
        .bind(i64::try_from(bound).unwrap_or(i64::MAX))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().rev().map(message_from_row).collect()
    }

    async fn room_where(&self, clause: &str, bind: &str) -> StoreResult<Option<RoomRecord>> {
        let row = sqlx::query(&format!("SELECT {ROOM_COLUMNS} FROM rooms WHERE {clause}"))
            .bind(bind)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(room_from_row).transpose()
    }
}

/// The new rows of a batch as one array per column, for a single `INSERT … UNNEST`.
#[derive(Default)]
struct InsertColumns {
    room: Vec<i64>,
    seq: Vec<i64>,
    sender_id: Vec<String>,
    sender_name: Vec<String>,
    ts: Vec<i64>,
    kind: Vec<&'static str>,
    text: Vec<String>,
    client_id: Vec<Option<String>>,
}

impl InsertColumns {
    fn with_capacity(rows: usize) -> Self {
        InsertColumns {
            room: Vec::with_capacity(rows),
            seq: Vec::with_capacity(rows),
            sender_id: Vec::with_capacity(rows),
            sender_name: Vec::with_capacity(rows),
            ts: Vec::with_capacity(rows),
            kind: Vec::with_capacity(rows),
            text: Vec::with_capacity(rows),
            client_id: Vec::with_capacity(rows),
        }
    }

    fn push(&mut self, message: &ChatMessage, client_id: Option<String>) {
        self.room.push(message.room.0);
        self.seq
            .push(i64::try_from(message.seq).unwrap_or(i64::MAX));
        self.sender_id.push(message.sender.id.0.clone());
        self.sender_name.push(message.sender.name.clone());
        self.ts.push(message.ts);
        self.kind.push(kind_str(message.kind));
        self.text.push(message.text.clone());
        self.client_id.push(client_id);
    }
}

/// Errors where trying the same transaction again can succeed: a deadlock, a
/// serialization failure, or a unique violation from a concurrent resend (the retry
/// finds the original and reports a duplicate).
fn worth_retrying(err: &StoreError) -> bool {
    match err {
        StoreError::Database(sqlx::Error::Database(db)) => {
            db.is_unique_violation()
                || matches!(db.code().as_deref(), Some("40P01") | Some("40001"))
        }
        _ => false,
    }
}

#[async_trait]
impl Store for PgStore {
    async fn create_user(&self, user: &UserRecord) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO users (id, secret_hash, name, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(&user.id.0)
        .bind(&user.secret_hash)
        .bind(&user.name)
        .bind(crate::clock::now_ms())
        .execute(&self.pool)
        .await
        .map_err(conflict_or_database)?;
        Ok(())
    }

    async fn find_user(&self, id: &UserId) -> StoreResult<Option<UserRecord>> {
        let row = sqlx::query("SELECT id, secret_hash, name FROM users WHERE id = $1")
            .bind(&id.0)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| {
            Ok(UserRecord {
                id: UserId(row.try_get("id")?),
                secret_hash: row.try_get("secret_hash")?,
                name: row.try_get("name")?,
            })
        })
        .transpose()
    }

    async fn create_channel(&self, name: &str, delete_when_empty: bool) -> StoreResult<RoomRecord> {
        let row = sqlx::query(&format!(
            "INSERT INTO rooms (kind, name, name_key, delete_when_empty, created_at) \
             VALUES ('channel', $1, $2, $3, $4) RETURNING {ROOM_COLUMNS}"
        ))
        .bind(name)
        .bind(natter_protocol::validate::name_key(name))
        .bind(delete_when_empty)
        .bind(crate::clock::now_ms())
        .fetch_one(&self.pool)
        .await
        .map_err(conflict_or_database)?;
        room_from_row(&row)
    }

    async fn find_channel(&self, name: &str) -> StoreResult<Option<RoomRecord>> {
        self.room_where("name_key = $1", &natter_protocol::validate::name_key(name))
            .await
    }

    async fn list_channels(&self) -> StoreResult<Vec<RoomRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {ROOM_COLUMNS} FROM rooms WHERE kind = 'channel' ORDER BY id"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(room_from_row).collect()
    }

    async fn create_code_room(
        &self,
        code: &str,
        delete_when_empty: bool,
    ) -> StoreResult<RoomRecord> {
        let row = sqlx::query(&format!(
            "INSERT INTO rooms (kind, code, delete_when_empty, created_at) \
             VALUES ('code', $1, $2, $3) RETURNING {ROOM_COLUMNS}"
        ))
        .bind(code)
        .bind(delete_when_empty)
        .bind(crate::clock::now_ms())
        .fetch_one(&self.pool)
        .await
        .map_err(conflict_or_database)?;
        room_from_row(&row)
    }

    async fn find_code_room(&self, code: &str) -> StoreResult<Option<RoomRecord>> {
        self.room_where("code = $1", code).await
    }

    async fn open_direct(&self, a: &UserId, b: &UserId) -> StoreResult<(RoomRecord, bool)> {
        let key = direct_key(a, b);
        let mut tx = self.pool.begin().await?;
        // Two nodes opening the same pair at once: one inserts, the other finds it.
        let inserted = sqlx::query(&format!(
            "INSERT INTO rooms (kind, direct_key, created_at) VALUES ('direct', $1, $2) \
             ON CONFLICT (direct_key) DO NOTHING RETURNING {ROOM_COLUMNS}"
        ))
        .bind(&key)
        .bind(crate::clock::now_ms())
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = inserted else {
            tx.rollback().await?;
            let room = self
                .room_where("direct_key = $1", &key)
                .await?
                .ok_or(StoreError::NotFound)?;
            return Ok((room, false));
        };
        let room = room_from_row(&row)?;
        sqlx::query(
            "INSERT INTO members (room_id, user_id, joined_at) \
             SELECT $1, u, $3 FROM UNNEST($2::text[]) AS u",
        )
        .bind(room.id.0)
        .bind(vec![a.0.clone(), b.0.clone()])
        .bind(crate::clock::now_ms())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok((room, true))
    }

    async fn room(&self, id: RoomId) -> StoreResult<Option<RoomRecord>> {
        let row = sqlx::query(&format!("SELECT {ROOM_COLUMNS} FROM rooms WHERE id = $1"))
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(room_from_row).transpose()
    }

    async fn delete_room(&self, id: RoomId) -> StoreResult<()> {
        // Memberships and messages go with it (ON DELETE CASCADE).
        sqlx::query("DELETE FROM rooms WHERE id = $1")
            .bind(id.0)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn add_member(&self, room: RoomId, user: &UserId) -> StoreResult<bool> {
        let done = sqlx::query(
            "INSERT INTO members (room_id, user_id, joined_at) VALUES ($1, $2, $3) \
             ON CONFLICT DO NOTHING",
        )
        .bind(room.0)
        .bind(&user.0)
        .bind(crate::clock::now_ms())
        .execute(&self.pool)
        .await
        .map_err(|e| match &e {
            sqlx::Error::Database(db) if db.is_foreign_key_violation() => StoreError::NotFound,
            _ => e.into(),
        })?;
        Ok(done.rows_affected() == 1)
    }

    async fn remove_member(&self, room: RoomId, user: &UserId) -> StoreResult<u64> {
        let mut tx = self.pool.begin().await?;
        // Lock the room first so two members leaving at once on two nodes see each
        // other's delete: exactly one of them counts zero and deletes the room.
        sqlx::query("SELECT id FROM rooms WHERE id = $1 FOR UPDATE")
            .bind(room.0)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM members WHERE room_id = $1 AND user_id = $2")
            .bind(room.0)
            .bind(&user.0)
            .execute(&mut *tx)
            .await?;
        let remaining: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM members WHERE room_id = $1")
            .bind(room.0)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(remaining as u64)
    }

    async fn rooms_of(&self, user: &UserId) -> StoreResult<Vec<RoomRecord>> {
        let rows = sqlx::query(
            "SELECT rooms.id, rooms.kind, rooms.name, rooms.code, rooms.direct_key, \
                    rooms.delete_when_empty, rooms.latest_seq \
             FROM rooms JOIN members ON members.room_id = rooms.id \
             WHERE members.user_id = $1 ORDER BY members.joined_at, rooms.id",
        )
        .bind(&user.0)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(room_from_row).collect()
    }

    async fn append(&self, batch: Vec<NewMessage>) -> StoreResult<Vec<Appended>> {
        let mut attempt = 1;
        loop {
            match self.append_once(&batch).await {
                Err(err) if attempt < APPEND_ATTEMPTS && worth_retrying(&err) => {
                    tracing::debug!(%err, attempt, "append lost a race; trying again");
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    async fn history_before(
        &self,
        room: RoomId,
        before: Seq,
        limit: u32,
    ) -> StoreResult<Vec<ChatMessage>> {
        self.newest_where(room, "seq < $2", before, limit).await
    }

    async fn latest_after(
        &self,
        room: RoomId,
        after: Seq,
        limit: u32,
    ) -> StoreResult<Vec<ChatMessage>> {
        self.newest_where(room, "seq > $2", after, limit).await
    }

    async fn latest_seqs(&self, rooms: &[RoomId]) -> StoreResult<Vec<(RoomId, Seq)>> {
        let ids: Vec<i64> = rooms.iter().map(|r| r.0).collect();
        let rows = sqlx::query("SELECT id, latest_seq FROM rooms WHERE id = ANY($1)")
            .bind(&ids)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                Ok((
                    RoomId(row.try_get("id")?),
                    row.try_get::<i64, _>("latest_seq")? as Seq,
                ))
            })
            .collect()
    }
}
