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

use natter_protocol::{ChatMessage, RoomId, Seq};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::Postgres;
use sqlx::Row;

use super::attention::mentions_column;
use super::batch::AppendBatch;
use super::files::attachments_column;
use super::{kind_str, message_from_row, worth_retrying, Appended, NewMessage, StoreResult};

/// How often a batch that lost a race (deadlock, serialization, a concurrent resend) is
/// tried again before the error is reported.
const APPEND_ATTEMPTS: usize = 3;

/// PostgreSQL-backed [`Store`](super::Store).
#[derive(Clone)]
pub struct PgStore {
    /// Connection pool shared by reads, writes and appends.
    pool: PgPool,
}

super::accounts::sql_account_store!(PgStore);
super::files::sql_file_store!(PgStore);
super::changes::sql_change_store!(PgStore, Postgres);
super::attention::sql_attention_store!(PgStore, Postgres);

impl PgStore {
    /// The pool writes go through: the one pool (PostgreSQL's row locks order writers).
    fn writer(&self) -> &sqlx::PgPool {
        &self.pool
    }

    /// After a message was deleted: nothing to do at once. Its old row version stays
    /// in the table file until autovacuum reclaims it; no query can read it.
    async fn forget_deleted(&self) {}

    /// A read-only snapshot: every statement in it sees the database as of its first
    /// (`REPEATABLE READ`), so a message and its reactions are read as one state.
    async fn read_snapshot(&self) -> StoreResult<sqlx::Transaction<'static, Postgres>> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await?;
        Ok(tx)
    }

    /// A write transaction: PostgreSQL's row locks order writers, so a plain `BEGIN`.
    async fn write_transaction(&self) -> StoreResult<sqlx::Transaction<'static, Postgres>> {
        Ok(self.pool.begin().await?)
    }

    /// Locks `room`'s row until the transaction ends, so two nodes changing its
    /// members at once take turns.
    async fn lock_room(
        tx: &mut sqlx::Transaction<'static, Postgres>,
        room: RoomId,
    ) -> StoreResult<()> {
        sqlx::query("SELECT id FROM rooms WHERE id = $1 FOR UPDATE")
            .bind(room.0)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

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

    /// One transaction of [`Store::append`](super::Store::append); see the module docs.
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
                        m.attachments, m.mentions, m.client_id \
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
                     (room_id, seq, sender_id, sender_name, ts, kind, text, client_id, attachments, \
                      reply_to, mentions) \
                 SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::text[], $4::text[], \
                                      $5::bigint[], $6::text[], $7::text[], $8::text[], $9::text[], \
                                      $10::bigint[], $11::text[])",
            )
            .bind(&columns.room)
            .bind(&columns.seq)
            .bind(&columns.sender_id)
            .bind(&columns.sender_name)
            .bind(&columns.ts)
            .bind(&columns.kind)
            .bind(&columns.text)
            .bind(&columns.client_id)
            .bind(&columns.attachments)
            .bind(&columns.reply_to)
            .bind(&columns.mentions)
            .execute(&mut *tx)
            .await?;
            for row in &new_rows {
                if let Appended::Stored(m) = &outcomes[row.index] {
                    if !m.mentions.is_empty() {
                        Self::write_mentions(
                            &mut tx,
                            m.room,
                            m.seq,
                            &m.sender.id,
                            &m.mentions,
                            false,
                        )
                        .await?;
                    }
                }
            }
            if !columns.files.is_empty() {
                // Each file is tied to its message once: only while still unsent.
                let (ids, (rooms, seqs)): (Vec<String>, (Vec<i64>, Vec<i64>)) = columns
                    .files
                    .into_iter()
                    .map(|(id, room, seq)| (id, (room, seq)))
                    .unzip();
                sqlx::query(
                    "UPDATE files SET room_id = d.room, seq = d.seq \
                     FROM UNNEST($1::text[], $2::bigint[], $3::bigint[]) AS d(id, room, seq) \
                     WHERE files.id = d.id AND files.room_id IS NULL",
                )
                .bind(&ids)
                .bind(&rooms)
                .bind(&seqs)
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok(outcomes)
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
    attachments: Vec<Option<String>>,
    reply_to: Vec<Option<i64>>,
    mentions: Vec<Option<String>>,
    /// `(file id, room, seq)` of every file the new messages carry.
    files: Vec<(String, i64, i64)>,
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
            attachments: Vec::with_capacity(rows),
            reply_to: Vec::with_capacity(rows),
            mentions: Vec::with_capacity(rows),
            files: Vec::new(),
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
        self.attachments
            .push(attachments_column(&message.attachments));
        self.reply_to
            .push(message.reply_to.as_ref().map(|r| r.seq as i64));
        self.mentions.push(mentions_column(&message.mentions));
        let seq = i64::try_from(message.seq).unwrap_or(i64::MAX);
        self.files.extend(
            message
                .attachments
                .iter()
                .map(|file| (file.id.0.clone(), message.room.0, seq)),
        );
    }
}

super::sql::sql_store!(PgStore, sqlx::Postgres, {
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
});
