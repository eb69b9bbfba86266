//! The embedded default store: SQLite through sqlx, WAL journal, embedded migrations.
//!
//! WAL with `synchronous=NORMAL` keeps every committed transaction across a process
//! kill; only a power loss may roll back the last commits. Writes are batched by the
//! hub's append queue, so one transaction covers many messages; the WAL is copied into
//! the database file by a background checkpoint every second, never inside a commit.

use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use natter_protocol::{ChatMessage, RoomId, Seq, UserId, UserSummary};
use rusqlite::OptionalExtension;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqlitePool};
use tokio::sync::oneshot;

use super::attention::{mentions_column, mentions_from_column};
use super::batch::AppendBatch;
use super::files::{attachments_column, attachments_from_column};
use super::{
    kind_from_str, kind_str, Appended, NewMessage, StoreError, StoreResult, MESSAGE_COLUMNS,
};

/// SQLite-backed [`Store`](super::Store).
#[derive(Clone)]
pub struct SqliteStore {
    /// Connections for reads; readers run alongside the writer (WAL).
    pool: SqlitePool,
    /// One connection for every write but appends: writes queue for it in the pool,
    /// fairly, rather than each waiting in SQLite's busy handler — which sleeps 1, 2,
    /// 5 … 100 ms between tries, and under a burst of sign-ups cost a third of the
    /// connects a second. (A pool, not a lock of ours held across `.await`.)
    writes: SqlitePool,
    /// The connection messages are appended through.
    writer: Arc<AppendWriter>,
    /// A message was deleted: the next checkpoint empties the log (see
    /// `forget_deleted`).
    truncate_log: Arc<AtomicBool>,
}

/// A batch handed to the append writer, and where its outcome goes.
type AppendJob = (Vec<NewMessage>, oneshot::Sender<StoreResult<Vec<Appended>>>);

/// Message appends — the hot path — run on a thread of their own with one rusqlite
/// connection and cached prepared statements: a batch is one hand-off to the thread
/// and one back, whatever its size. (Through sqlx every statement is a round trip to
/// its worker thread; at a few thousand messages a second those thread switches cost
/// more than SQLite itself.) Other writes go through the pool and meet this
/// connection at SQLite's one write lock — with no lock of natter's around it, so a
/// write waiting its turn holds nothing anyone else waits for.
///
/// Messages come first: a pool connection that finds the write lock taken waits in
/// SQLite's own busy handler, which sleeps 1, 2, 5 … 100 ms between tries, while this
/// connection's handler ([`retry_soon`]) tries again within a fraction of a
/// millisecond. A burst of joins or guest sign-ups therefore waits for the messages,
/// not the other way round. (A gate that made every write take turns in arrival order
/// queued everyone's messages behind one user's writes.)
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
        conn.busy_handler(Some(retry_soon))?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
             PRAGMA foreign_keys = ON; PRAGMA wal_autocheckpoint = 0; \
             PRAGMA secure_delete = ON;",
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

/// Tries for SQLite's write lock spent on the append connection before giving up
/// (with [`retry_soon`]'s pauses, about five seconds, like the pool's busy timeout).
const APPEND_LOCK_TRIES: i32 = 6_500;

/// The append connection's busy handler: pauses of 50 µs growing to 800 µs, so a
/// batch of messages takes the write lock almost as soon as another write lets go.
fn retry_soon(tries: i32) -> bool {
    let pause = 50u64 << tries.clamp(0, 4);
    std::thread::sleep(Duration::from_micros(pause));
    tries < APPEND_LOCK_TRIES
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
                    let mut original = ChatMessage::new(
                        RoomId(row.get(0)?),
                        row.get::<_, i64>(1)? as Seq,
                        UserSummary {
                            id: UserId(row.get(2)?),
                            name: row.get(3)?,
                        },
                        row.get(4)?,
                        kind_from_str(&row.get::<_, String>(5)?),
                        row.get(6)?,
                    );
                    original.attachments = attachments_from_column(row.get(7)?);
                    original.mentions = mentions_from_column(row.get(8)?);
                    Ok(original)
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
            "INSERT INTO messages (room_id, seq, sender_id, sender_name, ts, kind, text, client_id, attachments, reply_to, mentions) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        )?;
        let mut mention_one = tx.prepare_cached(
            "INSERT INTO mentions (user_id, room_id, seq) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
        )?;
        let mut mention_everyone = tx.prepare_cached(
            "INSERT INTO mentions (user_id, room_id, seq) SELECT user_id, ?1, ?2 FROM members \
             WHERE room_id = ?1 AND user_id <> ?3 ON CONFLICT DO NOTHING",
        )?;
        let mut send_file = tx.prepare_cached(
            "UPDATE files SET room_id = ?1, seq = ?2 WHERE id = ?3 AND room_id IS NULL",
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
                    attachments_column(&m.attachments),
                    m.reply_to.as_ref().map(|r| r.seq as i64),
                    mentions_column(&m.mentions),
                ])?;
                for mention in &m.mentions {
                    match &mention.user {
                        Some(user) if *user != m.sender.id => {
                            mention_one.execute(rusqlite::params![
                                user.0,
                                m.room.0,
                                m.seq as i64
                            ])?;
                        }
                        Some(_) => {}
                        None => {
                            mention_everyone.execute(rusqlite::params![
                                m.room.0,
                                m.seq as i64,
                                m.sender.id.0
                            ])?;
                        }
                    }
                }
                for file in &m.attachments {
                    send_file.execute(rusqlite::params![m.room.0, m.seq as i64, file.id.0])?;
                }
            }
        }
    }
    tx.commit()?;
    Ok(outcomes)
}

super::accounts::sql_account_store!(SqliteStore);
super::files::sql_file_store!(SqliteStore);
super::changes::sql_change_store!(SqliteStore, Sqlite);
super::attention::sql_attention_store!(SqliteStore, Sqlite);

impl SqliteStore {
    /// The pool writes go through (see `writes`).
    fn writer(&self) -> &SqlitePool {
        &self.writes
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
            .pragma("journal_size_limit", "67108864")
            // A deleted message's text is overwritten with zeros, not left in a free
            // page of the file (see `forget_deleted`).
            .pragma("secure_delete", "ON");
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
            .connect_with(options.clone())
            .await?;
        let writes = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options.clone())
            .await?;
        let writer = Arc::new(AppendWriter::open(&path)?);
        let truncate_log = Arc::new(AtomicBool::new(false));
        tokio::spawn(checkpoint_in_background(pool.clone(), truncate_log.clone()));
        Ok(SqliteStore {
            pool,
            writes,
            writer,
            truncate_log,
        })
    }

    /// A read snapshot: SQLite (WAL) keeps one for a transaction from its first read
    /// to its end, so a message and its reactions are read as one state.
    async fn read_snapshot(&self) -> StoreResult<sqlx::Transaction<'static, Sqlite>> {
        Ok(self.pool.begin().await?)
    }

    /// After a message was deleted or edited: its old text may still sit in the write-ahead log
    /// (in the frame written when it was sent or edited) until the log is overwritten.
    /// The background checkpoint copies the log into the database (where
    /// `secure_delete` zeroed the text) and empties it within a second or so (see
    /// `checkpoint_in_background`).
    async fn forget_deleted(&self) {
        self.truncate_log.store(true, Ordering::Relaxed);
    }

    /// Starts a transaction that takes SQLite's write lock at once (`BEGIN IMMEDIATE`),
    /// waiting up to the busy timeout for it. A plain `BEGIN` that reads first and
    /// writes later fails outright (`SQLITE_BUSY_SNAPSHOT`) when another connection
    /// committed in between — a batch of messages would be refused for nothing.
    async fn write_transaction(&self) -> StoreResult<sqlx::Transaction<'static, Sqlite>> {
        Ok(self.writes.begin_with("BEGIN IMMEDIATE").await?)
    }

    /// Nothing to lock: [`SqliteStore::write_transaction`] already holds the
    /// database's write lock.
    async fn lock_room(
        _tx: &mut sqlx::Transaction<'static, Sqlite>,
        _room: RoomId,
    ) -> StoreResult<()> {
        Ok(())
    }
}

/// Copies the whole log into the database file and empties it, waiting at most a few
/// milliseconds for other connections; true when it was emptied.
async fn truncate_log(pool: &SqlitePool) -> StoreResult<bool> {
    let mut conn = pool.acquire().await?;
    sqlx::query("PRAGMA busy_timeout = 20")
        .execute(&mut *conn)
        .await?;
    let done = sqlx::query_as::<_, (i64, i64, i64)>("PRAGMA wal_checkpoint(TRUNCATE)")
        .fetch_one(&mut *conn)
        .await;
    // The connection goes back to the read pool: its usual patience first.
    sqlx::query("PRAGMA busy_timeout = 5000")
        .execute(&mut *conn)
        .await?;
    let (busy, log_frames, _) = done?;
    Ok(busy == 0 && log_frames == 0)
}

/// How often the write-ahead log is copied into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

/// Copies committed pages from the WAL into the database file, on a connection of
/// its own, without blocking writers (`PASSIVE`). Once every frame is copied, the next
/// writer starts the log from the beginning, so it stays about one interval's size.
/// Ends when the pool is closed.
///
/// After a message was deleted (`truncate` set), the checkpoint also empties the log
/// (`TRUNCATE`), so the deleted text's old frames leave the disk; it waits for
/// readers and writers only a few milliseconds (falling back to a passive checkpoint)
/// and tries again every second until it succeeds — a deletion never stalls messages.
async fn checkpoint_in_background(pool: SqlitePool, truncate: Arc<AtomicBool>) {
    let mut every = tokio::time::interval(CHECKPOINT_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        if pool.is_closed() {
            return;
        }
        let started = std::time::Instant::now();
        if truncate.load(Ordering::Relaxed) {
            match truncate_log(&pool).await {
                Ok(true) => truncate.store(false, Ordering::Relaxed),
                Ok(false) => tracing::debug!("the log is in use; truncating it next second"),
                Err(err) => {
                    tracing::warn!(%err, "could not truncate the log; retrying in a second")
                }
            }
            continue;
        }
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

super::sql::sql_store!(SqliteStore, sqlx::Sqlite, {
    async fn append(&self, batch: Vec<NewMessage>) -> StoreResult<Vec<Appended>> {
        self.writer.append(batch).await
    }

    async fn latest_seqs(&self, rooms: &[RoomId]) -> StoreResult<Vec<(RoomId, Seq)>> {
        // One query for any number of rooms (a user in thousands of them connects):
        // the ids travel as one JSON array.
        let ids = format!(
            "[{}]",
            rooms
                .iter()
                .map(|r| r.0.to_string())
                .collect::<Vec<_>>()
                .join(",")
        );
        let rows = sqlx::query(
            "SELECT id, latest_seq FROM rooms WHERE id IN (SELECT value FROM json_each($1))",
        )
        .bind(ids)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok((
                    RoomId(sqlx::Row::try_get(row, "id")?),
                    sqlx::Row::try_get::<i64, _>(row, "latest_seq")? as Seq,
                ))
            })
            .collect()
    }
});
