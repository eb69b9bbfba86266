//! Uploaded files: who uploaded what, under which name and type, where its bytes are
//! kept, and which message carries it — the durable half of [`crate::files`].
//!
//! [`FileStore`] is a supertrait of [`super::Store`]. SQLite and PostgreSQL share one
//! implementation ([`sql_file_store!`]); the in-memory store has its own. A file row is
//! tied to its message when the message is stored, in the same transaction (see the
//! append paths), so a file is sent exactly once.

use async_trait::async_trait;
use natter_protocol::{Attachment, FileId, RoomId, UserId};

use super::StoreResult;

/// One upload as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRecord {
    /// The capability id in its URL.
    pub id: FileId,
    /// Who uploaded it: the only one who may send it.
    pub uploader: UserId,
    /// Hex SHA-256 of the bytes served, the key of its blob.
    pub blob: String,
    /// The thumbnail's blob, for a picture larger than a thumbnail.
    pub thumb: Option<String>,
    /// The name shown (its extension follows `mime`).
    pub name: String,
    /// The type decided from the bytes.
    pub mime: String,
    /// Bytes stored.
    pub size: u64,
    /// A picture's upright width.
    pub width: Option<u32>,
    /// A picture's upright height.
    pub height: Option<u32>,
    /// Upload time (ms since the epoch).
    pub created_at: i64,
    /// The room of the message that carries it; `None` while unsent.
    pub room: Option<RoomId>,
}

impl FileRecord {
    /// How a message carries this file.
    pub fn attachment(&self) -> Attachment {
        Attachment {
            id: self.id.clone(),
            name: self.name.clone(),
            mime: self.mime.clone(),
            size: self.size,
            width: self.width,
            height: self.height,
        }
    }
}

/// Durable state of uploads.
#[async_trait]
pub trait FileStore {
    /// Records a new upload (unsent).
    async fn create_file(&self, file: &FileRecord) -> StoreResult<()>;
    /// A file by id.
    async fn file(&self, id: &FileId) -> StoreResult<Option<FileRecord>>;
    /// Notes that `user` uploaded `bytes` at `at` (ms), whatever becomes of the file.
    async fn log_upload(&self, user: &UserId, at: i64, bytes: u64) -> StoreResult<()>;
    /// Bytes `user` uploaded at or after `since` (ms), for the daily quota — from the
    /// upload log, so deleting the files does not give the bytes back.
    async fn uploaded_bytes_since(&self, user: &UserId, since: i64) -> StoreResult<u64>;
    /// Deletes the files never sent that were uploaded before `before` (and the upload
    /// log from before then), and returns the blobs those files used (bytes and
    /// thumbnails) for the storage to drop those no other file uses.
    async fn delete_unsent_files(&self, before: i64) -> StoreResult<Vec<String>>;
    /// Whether any file still uses `blob`, as its bytes or its thumbnail.
    async fn blob_in_use(&self, blob: &str) -> StoreResult<bool>;
}

/// The `files` columns [`file_from_row`] reads.
pub(crate) const FILE_COLUMNS: &str =
    "id, uploader, blob, thumb, name, mime, size, width, height, created_at, room_id";

/// A `files` row (of [`FILE_COLUMNS`]) from SQLite or PostgreSQL.
pub(crate) fn file_from_row<'r, R>(row: &'r R) -> StoreResult<FileRecord>
where
    R: sqlx::Row,
    &'static str: sqlx::ColumnIndex<R>,
    String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let dimension = |name: &'static str| -> StoreResult<Option<u32>> {
        Ok(row
            .try_get::<Option<i64>, _>(name)?
            .and_then(|v| u32::try_from(v).ok()))
    };
    Ok(FileRecord {
        id: FileId(row.try_get("id")?),
        uploader: UserId(row.try_get("uploader")?),
        blob: row.try_get("blob")?,
        thumb: row.try_get("thumb")?,
        name: row.try_get("name")?,
        mime: row.try_get("mime")?,
        size: u64::try_from(row.try_get::<i64, _>("size")?).unwrap_or(0),
        width: dimension("width")?,
        height: dimension("height")?,
        created_at: row.try_get("created_at")?,
        room: row.try_get::<Option<i64>, _>("room_id")?.map(RoomId),
    })
}

/// A message's attachments as the `messages.attachments` column keeps them: a JSON
/// array, or NULL for none.
pub(crate) fn attachments_column(attachments: &[Attachment]) -> Option<String> {
    (!attachments.is_empty())
        .then(|| serde_json::to_string(attachments).unwrap_or_else(|_| "[]".into()))
}

/// The attachments a `messages.attachments` value holds (none for NULL or anything
/// unreadable, which only a hand-edited database could hold).
pub(crate) fn attachments_from_column(column: Option<String>) -> Vec<Attachment> {
    column
        .and_then(|json| serde_json::from_str(&json).ok())
        .unwrap_or_default()
}

/// Implements [`FileStore`] for a sqlx-backed store with a `pool` (reads) and a
/// `writer()` (writes), in portable SQL.
macro_rules! sql_file_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::files::FileStore for $store {
            async fn create_file(
                &self,
                file: &$crate::store::files::FileRecord,
            ) -> $crate::store::StoreResult<()> {
                sqlx::query(
                    "INSERT INTO files (id, uploader, blob, thumb, name, mime, size, width, height, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                )
                .bind(&file.id.0)
                .bind(&file.uploader.0)
                .bind(&file.blob)
                .bind(&file.thumb)
                .bind(&file.name)
                .bind(&file.mime)
                .bind(i64::try_from(file.size).unwrap_or(i64::MAX))
                .bind(file.width.map(i64::from))
                .bind(file.height.map(i64::from))
                .bind(file.created_at)
                .execute(self.writer())
                .await
                .map_err($crate::store::conflict_or_database)?;
                Ok(())
            }

            async fn file(
                &self,
                id: &natter_protocol::FileId,
            ) -> $crate::store::StoreResult<Option<$crate::store::files::FileRecord>> {
                let row = sqlx::query(&format!(
                    "SELECT {} FROM files WHERE id = $1",
                    $crate::store::files::FILE_COLUMNS
                ))
                .bind(&id.0)
                .fetch_optional(&self.pool)
                .await?;
                row.as_ref()
                    .map($crate::store::files::file_from_row)
                    .transpose()
            }

            async fn log_upload(
                &self,
                user: &natter_protocol::UserId,
                at: i64,
                bytes: u64,
            ) -> $crate::store::StoreResult<()> {
                sqlx::query("INSERT INTO upload_log (user_id, at, bytes) VALUES ($1, $2, $3)")
                    .bind(&user.0)
                    .bind(at)
                    .bind(i64::try_from(bytes).unwrap_or(i64::MAX))
                    .execute(self.writer())
                    .await?;
                Ok(())
            }

            async fn uploaded_bytes_since(
                &self,
                user: &natter_protocol::UserId,
                since: i64,
            ) -> $crate::store::StoreResult<u64> {
                let (bytes,): (Option<i64>,) = sqlx::query_as(
                    "SELECT CAST(SUM(bytes) AS BIGINT) FROM upload_log WHERE user_id = $1 AND at >= $2",
                )
                .bind(&user.0)
                .bind(since)
                .fetch_one(&self.pool)
                .await?;
                Ok(u64::try_from(bytes.unwrap_or(0)).unwrap_or(0))
            }

            async fn delete_unsent_files(
                &self,
                before: i64,
            ) -> $crate::store::StoreResult<Vec<String>> {
                let rows: Vec<(String, Option<String>)> = sqlx::query_as(
                    "DELETE FROM files WHERE room_id IS NULL AND created_at < $1 \
                     RETURNING blob, thumb",
                )
                .bind(before)
                .fetch_all(self.writer())
                .await?;
                sqlx::query("DELETE FROM upload_log WHERE at < $1")
                    .bind(before)
                    .execute(self.writer())
                    .await?;
                Ok(rows
                    .into_iter()
                    .flat_map(|(blob, thumb)| std::iter::once(blob).chain(thumb))
                    .collect())
            }

            async fn blob_in_use(&self, blob: &str) -> $crate::store::StoreResult<bool> {
                let found: Option<(i64,)> = sqlx::query_as(
                    "SELECT CAST(1 AS BIGINT) FROM files WHERE blob = $1 OR thumb = $1 LIMIT 1",
                )
                .bind(blob)
                .fetch_optional(&self.pool)
                .await?;
                Ok(found.is_some())
            }
        }
    };
}

pub(crate) use sql_file_store;
