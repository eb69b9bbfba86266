//! The embedded default store: SQLite through sqlx, WAL journal, embedded migrations.
//!
//! WAL with `synchronous=NORMAL` keeps every committed transaction across a process
//! kill; only a power loss may roll back the last commits. Writes are batched by the
//! hub's append queue, so one transaction covers many messages; the WAL is copied into
//! the database file by a background checkpoint every second, never inside a commit.

use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use natter_protocol::{ChatMessage, RoomId, Seq, UserId, UserSummary};
use rusqlite::OptionalExtension;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, Sqlite, SqlitePool};
use tokio::sync::oneshot;

use super::batch::AppendBatch;
use super::{
    conflict_or_database, direct_key, kind_from_str, kind_str, message_from_row, room_from_row,
    Appended, NewMessage, RoomRecord, Store, StoreError, StoreResult, UserRecord, MESSAGE_COLUMNS,
    ROOM_COLUMNS,
};

/// SQLite-backed [`Store`].
#[derive(Clone)]
pub struct SqliteStore {
    /// Connection pool for everything but appends; SQLite allows one writer at a
    /// time, readers run alongside (WAL).
    pool: SqlitePool,
    /// The connection messages are appended through.
    writer: Arc<AppendWriter>,
    /// Held by every write, on either connection. SQLite has one write lock, and a
    /// connection that finds it taken waits in SQLite's busy handler, which *sleeps*
    /// (1, 2, 5 … 100 ms) rather than waking when the lock frees: with people joining
    /// while messages flow, appends stalled for seconds. Taking turns here first means
    /// SQLite's lock is always free when asked for.
    write_gate: Arc<tokio::sync::Mutex<()>>,
}

/// A batch handed to the append writer, and where its outcome goes.
type AppendJob = (Vec<NewMessage>, oneshot::Sender<StoreResult<Vec<Appended>>>);

/// Message appends — the hot path — run on a thread of their own with one rusqlite
/// connection and cached prepared statements: a batch is one hand-off to the thread
/// and one back, whatever its size. (Through sqlx every statement is a round trip to
/// its worker thread; at a few thousand messages a second those thread switches cost
/// more than SQLite itself.) Other writes go through the pool and take turns with
/// this connection on SQLite's write lock.
struct AppendWriter {
    jobs: std::sync::mpsc::Sender<AppendJob>,
}

impl AppendWriter {
    /// Opens the database file (already migrated) and starts the thread, which ends
    /// when the store is dropped.
    fn open(path: &Path) -> StoreResult<Self> {
        let mut conn = rusqlite::Connection::open(path)?;
        // Before anything else: even the pragmas below may have to wait for a lock
        // another connection holds, and must wait rather than fail.
        conn.busy_timeout(Duration::from_secs(5))?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
             PRAGMA foreign_keys = ON; PRAGMA wal_autocheckpoint = 0;",
        )?;
        let (jobs, queue) = std::sync::mpsc::channel::<AppendJob>();
        std::thread::Builder::new()
            .name("natter-append".into())
            .spawn(move || {
                while let Ok((batch, reply)) = queue.recv() {
                    let _ = reply.send(append_batch(&mut conn, batch));
                }
            })
            .map_err(|e| StoreError::Database(e.into()))?;
        Ok(AppendWriter { jobs })
    }

    async fn append(&self, batch: Vec<NewMessage>) -> StoreResult<Vec<Appended>> {
        let (reply, outcome) = oneshot::channel();
        self.jobs
            .send((batch, reply))
            .map_err(|_| StoreError::Stopped)?;
        outcome.await.map_err(|_| StoreError::Stopped)?
    }
}

/// Stores one batch in one `BEGIN IMMEDIATE` transaction (see [`super::batch`]).
fn append_batch(
    conn: &mut rusqlite::Connection,
    batch: Vec<NewMessage>,
) -> StoreResult<Vec<Appended>> {
    let mut batch = AppendBatch::new(batch);
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let mut stored_before = HashMap::new();
    {
        let mut find = tx.prepare_cached(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE sender_id = ?1 AND client_id = ?2"
        ))?;
        for (sender, client_id) in batch.idempotency_keys() {
            let found = find
                .query_row(rusqlite::params![sender, client_id], |row| {
                    Ok(ChatMessage {
                        room: RoomId(row.get(0)?),
                        seq: row.get::<_, i64>(1)? as Seq,
                        sender: UserSummary {
                            id: UserId(row.get(2)?),
                            name: row.get(3)?,
                        },
                        ts: row.get(4)?,
                        kind: kind_from_str(&row.get::<_, String>(5)?),
                        text: row.get(6)?,
                    })
                })
                .optional()?;
            if let Some(original) = found {
                stored_before.insert((sender.to_string(), client_id.to_string()), original);
            }
        }
    }
    batch.mark_resends(stored_before);
    let mut latest = HashMap::new();
    {
        let mut reserve = tx.prepare_cached(
            "UPDATE rooms SET latest_seq = latest_seq + ?1 WHERE id = ?2 RETURNING latest_seq",
        )?;
        for (room, count) in batch.seq_demand() {
            let newest: Option<i64> = reserve
                .query_row(rusqlite::params![count as i64, room.0], |row| row.get(0))
                .optional()?;
            if let Some(newest) = newest {
                latest.insert(room, newest as Seq);
            }
        }
    }
    let (outcomes, rows) = batch.assign(&latest);
    {
        let mut insert = tx.prepare_cached(
            "INSERT INTO messages (room_id, seq, sender_id, sender_name, ts, kind, text, client_id) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?;
        for row in &rows {
            if let Appended::Stored(m) = &outcomes[row.index] {
                insert.execute(rusqlite::params![
                    m.room.0,
                    m.seq as i64,
                    m.sender.id.0,
                    m.sender.name,
                    m.ts,
                    kind_str(m.kind),
                    m.text,
                    row.client_id,
                ])?;
            }
        }
    }
    tx.commit()?;
    Ok(outcomes)
}

super::accounts::sql_account_store!(SqliteStore);

impl SqliteStore {
    /// Waits for this store's turn to write (see `write_gate`); the guard holds it.
    async fn write_turn(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.write_gate.lock().await
    }

    /// Opens (creating if missing, with its parent directory) the database at `url`
    /// (`sqlite://path`), brings the schema up to date and starts the append writer.
    pub async fn open(url: &str) -> StoreResult<Self> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5))
            // Checkpoints run in the background (see `checkpoint_in_background`), not
            // inside whichever commit crosses the threshold: that commit — and every
            // message queued behind it — would wait for the copy into the main file.
            .pragma("wal_autocheckpoint", "0")
            // After a checkpoint resets the log, keep at most this much of the file.
            .pragma("journal_size_limit", "67108864");
        if url.contains(":memory:") || url.contains("mode=memory") {
            return Err(StoreError::Unsupported(
                "SQLite needs a file here (its append writer has its own connection); \
                 use `memory:` for a store in memory",
            ));
        }
        let path = Path::new(options.get_filename()).to_path_buf();
        if let Some(parent) = path.parent() {
            if !parent.as_os_str().is_empty() {
                std::fs::create_dir_all(parent).map_err(|e| StoreError::Database(e.into()))?;
            }
        }
        // The schema is brought up to date over one connection of its own, before any
        // other opens: no connection of the pool can meet the migrations' locks (a
        // server once failed to start with "database is locked" in the browser tests).
        let migrator = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&migrator).await?;
        migrator.close().await;
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await?;
        let writer = Arc::new(AppendWriter::open(&path)?);
        tokio::spawn(checkpoint_in_background(pool.clone()));
        Ok(SqliteStore {
            pool,
            writer,
            write_gate: Arc::default(),
        })
    }

    /// Starts a transaction that takes SQLite's write lock at once (`BEGIN IMMEDIATE`),
    /// waiting up to the busy timeout for it. A plain `BEGIN` that reads first and
    /// writes later fails outright (`SQLITE_BUSY_SNAPSHOT`) when another connection
    /// committed in between — a batch of messages would be refused for nothing.
    async fn write_transaction(&self) -> StoreResult<sqlx::Transaction<'static, Sqlite>> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }

    /// The newest `limit` messages of `room` whose seq passes `seq_condition` (with
    /// `bound` bound to its `?`), oldest first.
    async fn newest_where(
        &self,
        room: RoomId,
        seq_condition: &str,
        bound: Seq,
        limit: u32,
    ) -> StoreResult<Vec<ChatMessage>> {
        let rows = sqlx::query(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE room_id = ? AND {seq_condition} \
             ORDER BY seq DESC LIMIT ?"
        ))
        .bind(room.0)
        .bind(i64::try_from(bound).unwrap_or(i64::MAX))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().rev().map(message_from_row).collect()
    }

    /// Inserts a room of `kind` with its identifying columns (fixed names, bound
    /// values); a taken name or code is [`StoreError::Conflict`].
    async fn insert_room(
        &self,
        kind: &str,
        keys: &[(&str, &str)],
        delete_when_empty: bool,
    ) -> StoreResult<RoomRecord> {
        let _one_writer = self.write_turn().await;
        let columns: String = keys
            .iter()
            .map(|(column, _)| format!("{column}, "))
            .collect();
        let marks = "?, ".repeat(keys.len());
        let sql = format!(
            "INSERT INTO rooms (kind, {columns}delete_when_empty, created_at) \
             VALUES (?, {marks}?, ?) RETURNING {ROOM_COLUMNS}"
        );
        let mut query = sqlx::query(&sql).bind(kind);
        for (_, value) in keys {
            query = query.bind(*value);
        }
        let row = query
            .bind(delete_when_empty)
            .bind(now_ms())
            .fetch_one(&self.pool)
            .await
            .map_err(conflict_or_database)?;
        room_from_row(&row)
    }

    async fn room_where(&self, clause: &str, bind: &str) -> StoreResult<Option<RoomRecord>> {
        let row = sqlx::query(&format!("SELECT {ROOM_COLUMNS} FROM rooms WHERE {clause}"))
            .bind(bind)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(room_from_row).transpose()
    }
}

/// How often the write-ahead log is copied into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

/// Copies committed pages from the WAL into the database file, on a connection of
/// its own, without blocking writers (`PASSIVE`). Once every frame is copied, the next
/// writer starts the log from the beginning, so it stays about one interval's size.
/// Ends when the pool is closed.
async fn checkpoint_in_background(pool: SqlitePool) {
    let mut every = tokio::time::interval(CHECKPOINT_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        if pool.is_closed() {
            return;
        }
        let started = std::time::Instant::now();
        match sqlx::query_as::<_, (i64, i64, i64)>("PRAGMA wal_checkpoint(PASSIVE)")
            .fetch_one(&pool)
            .await
        {
            Ok((_, log_frames, copied_frames)) => {
                tracing::debug!(log_frames, copied_frames, took = ?started.elapsed(), "WAL checkpoint");
            }
            Err(err) => tracing::warn!(%err, "WAL checkpoint failed; retrying in a second"),
        }
    }
}

fn now_ms() -> i64 {
    crate::clock::now_ms()
}

#[async_trait]
impl Store for SqliteStore {
    async fn create_user(&self, user: &UserRecord) -> StoreResult<()> {
        let _one_writer = self.write_turn().await;
        sqlx::query("INSERT INTO users (id, secret_hash, name, created_at) VALUES (?, ?, ?, ?)")
            .bind(&user.id.0)
            .bind(&user.secret_hash)
            .bind(&user.name)
            .bind(now_ms())
            .execute(&self.pool)
            .await
            .map_err(conflict_or_database)?;
        Ok(())
    }

    async fn find_user(&self, id: &UserId) -> StoreResult<Option<UserRecord>> {
        let row = sqlx::query("SELECT id, secret_hash, name FROM users WHERE id = ?")
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
        let key = natter_protocol::validate::name_key(name);
        self.insert_room(
            "channel",
            &[("name", name), ("name_key", &key)],
            delete_when_empty,
        )
        .await
    }

    async fn find_channel(&self, name: &str) -> StoreResult<Option<RoomRecord>> {
        self.room_where("name_key = ?", &natter_protocol::validate::name_key(name))
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
        self.insert_room("code", &[("code", code)], delete_when_empty)
            .await
    }

    async fn find_code_room(&self, code: &str) -> StoreResult<Option<RoomRecord>> {
        self.room_where("code = ?", code).await
    }

    async fn open_direct(&self, a: &UserId, b: &UserId) -> StoreResult<(RoomRecord, bool)> {
        let _one_writer = self.write_turn().await;
        let key = direct_key(a, b);
        let mut tx = self.write_transaction().await?;
        let existing = sqlx::query(&format!(
            "SELECT {ROOM_COLUMNS} FROM rooms WHERE direct_key = ?"
        ))
        .bind(&key)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(row) = existing {
            return Ok((room_from_row(&row)?, false));
        }
        let row = sqlx::query(&format!(
            "INSERT INTO rooms (kind, direct_key, created_at) VALUES ('direct', ?, ?) RETURNING {ROOM_COLUMNS}"
        ))
        .bind(&key)
        .bind(now_ms())
        .fetch_one(&mut *tx)
        .await?;
        let room = room_from_row(&row)?;
        for user in [a, b] {
            sqlx::query("INSERT INTO members (room_id, user_id, joined_at) VALUES (?, ?, ?)")
                .bind(room.id.0)
                .bind(&user.0)
                .bind(now_ms())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok((room, true))
    }

    async fn room(&self, id: RoomId) -> StoreResult<Option<RoomRecord>> {
        let row = sqlx::query(&format!("SELECT {ROOM_COLUMNS} FROM rooms WHERE id = ?"))
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(room_from_row).transpose()
    }

    async fn delete_room(&self, id: RoomId) -> StoreResult<()> {
        let _one_writer = self.write_turn().await;
        // Memberships and messages go with it (ON DELETE CASCADE).
        sqlx::query("DELETE FROM rooms WHERE id = ?")
            .bind(id.0)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn add_member(&self, room: RoomId, user: &UserId) -> StoreResult<bool> {
        let _one_writer = self.write_turn().await;
        let done = sqlx::query(
            "INSERT INTO members (room_id, user_id, joined_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
        )
        .bind(room.0)
        .bind(&user.0)
        .bind(now_ms())
        .execute(&self.pool)
        .await
        .map_err(|e| match &e {
            sqlx::Error::Database(db) if db.is_foreign_key_violation() => StoreError::NotFound,
            _ => e.into(),
        })?;
        Ok(done.rows_affected() == 1)
    }

    async fn remove_member(&self, room: RoomId, user: &UserId) -> StoreResult<u64> {
        let _one_writer = self.write_turn().await;
        let mut tx = self.write_transaction().await?;
        sqlx::query("DELETE FROM members WHERE room_id = ? AND user_id = ?")
            .bind(room.0)
            .bind(&user.0)
            .execute(&mut *tx)
            .await?;
        let remaining: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM members WHERE room_id = ?")
            .bind(room.0)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(remaining as u64)
    }

    async fn rooms_of(&self, user: &UserId) -> StoreResult<Vec<RoomRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {ROOM_COLUMNS} FROM rooms JOIN members ON members.room_id = rooms.id \
             WHERE members.user_id = ? ORDER BY members.joined_at, rooms.id"
        ))
        .bind(&user.0)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(room_from_row).collect()
    }

    async fn append(&self, batch: Vec<NewMessage>) -> StoreResult<Vec<Appended>> {
        let _one_writer = self.write_turn().await;
        self.writer.append(batch).await
    }

    async fn history_before(
        &self,
        room: RoomId,
        before: Seq,
        limit: u32,
    ) -> StoreResult<Vec<ChatMessage>> {
        self.newest_where(room, "seq < ?", before, limit).await
    }

    async fn latest_after(
        &self,
        room: RoomId,
        after: Seq,
        limit: u32,
    ) -> StoreResult<Vec<ChatMessage>> {
        self.newest_where(room, "seq > ?", after, limit).await
    }
}
