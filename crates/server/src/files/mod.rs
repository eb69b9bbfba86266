//! Pictures and files: taking an upload in, deciding what it is, making pictures safe,
//! keeping the bytes once, and finding them again to serve.
//!
//! - [`sniff`]: the type from the first bytes, never the name or the client's header;
//! - [`picture`]: refuse by the header's pixel count, decode within bounds, turn
//!   upright, re-encode without metadata, make a thumbnail;
//! - [`blobs`]: the bytes on disk, one file per distinct SHA-256;
//! - [`storage`]: that directory alone, or an S3-compatible bucket shared by a
//!   cluster with the directory as each node's cache;
//! - here: [`Files`], the upload path (quota, streaming to disk with the size limit,
//!   sniffing, pictures on blocking threads under a concurrency cap, the row in the
//!   store) and the hourly sweep.
//!
//! The HTTP side (`POST /api/uploads`, `GET /api/files/…`, who the uploader is, the
//! response headers) is [`crate::http::files`]'s.

pub mod blobs;
pub mod picture;
pub mod sniff;
pub mod storage;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use futures_util::StreamExt;
use natter_protocol::{FileId, UserId};
use rand::Rng;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use tokio::sync::Semaphore;

use self::picture::PictureError;
use self::sniff::{Sniffed, SNIFF_BYTES};
use self::storage::{RemoteSettings, Storage};
use crate::clock::now_ms;
use crate::store::files::FileRecord;
use crate::store::{Store, StoreError};

/// How long a file may stay unsent before the sweep deletes it.
pub const UNSENT_KEPT: Duration = Duration::from_secs(24 * 3600);
/// The window of the daily upload quota.
const QUOTA_WINDOW: Duration = Duration::from_secs(24 * 3600);
/// Longest pause between two pieces of an upload's body before it is given up.
pub const BODY_IDLE: Duration = Duration::from_secs(30);
/// Longest an upload may take in all (25 MB at about 30 KB/s): a trickle of a byte
/// every few seconds cannot hold a connection and a temporary file for ever.
pub const UPLOAD_DEADLINE: Duration = Duration::from_secs(15 * 60);
/// Most characters of a file name kept.
const MAX_NAME_CHARS: usize = 120;

/// The limits uploads run under (from [`crate::Config`]).
#[derive(Debug, Clone)]
pub struct FileSettings {
    /// Where blobs and uploads in progress are kept.
    pub dir: PathBuf,
    /// Largest upload, in bytes.
    pub max_upload_bytes: u64,
    /// Bytes one person may upload in 24 hours.
    pub bytes_per_day: u64,
    /// Largest picture decoded, in pixels.
    pub max_image_pixels: u64,
    /// Pictures processed at once.
    pub image_concurrency: usize,
    /// The object store shared by a cluster's nodes, if any (else `dir` alone).
    pub remote: Option<RemoteSettings>,
}

/// Why an upload was refused.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// Over `--max-upload-bytes`.
    #[error("files are at most {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: u64,
    },
    /// The daily byte quota is used up.
    #[error("daily upload quota used up")]
    OverDailyQuota {
        /// The quota.
        limit: u64,
    },
    /// The picture was refused.
    #[error(transparent)]
    Picture(#[from] PictureError),
    /// The client stopped sending, or the connection broke mid-body.
    #[error("the upload did not arrive: {0}")]
    Interrupted(String),
    /// The disk failed.
    #[error("could not store the file: {0}")]
    Disk(#[from] std::io::Error),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Uploads and their storage; cheap to clone.
#[derive(Clone)]
pub struct Files {
    inner: Arc<FilesInner>,
}

struct FilesInner {
    settings: FileSettings,
    store: Arc<dyn Store>,
    blobs: Storage,
    /// Pictures decoded at once. A permit travels with the blocking job: a client that
    /// goes away mid-decode frees nothing until the decode ends.
    pictures: Arc<Semaphore>,
}

/// A file ready to be served: where its bytes are and how to present them.
#[derive(Debug)]
pub struct Served {
    /// The blob on disk.
    pub path: PathBuf,
    /// The file's row.
    pub file: FileRecord,
    /// Whether these bytes are the thumbnail (a picture's smaller copy).
    pub thumbnail: bool,
}

impl Files {
    /// Uploads into `settings.dir` (or the object store of `settings.remote`),
    /// recorded in `store`. Fails only on an unusable `--files-url`.
    pub fn new(settings: FileSettings, store: Arc<dyn Store>) -> Result<Self, String> {
        let blobs = Storage::open(settings.dir.clone(), settings.remote.as_ref())?;
        let pictures = Arc::new(Semaphore::new(settings.image_concurrency.max(1)));
        Ok(Files {
            inner: Arc::new(FilesInner {
                settings,
                store,
                blobs,
                pictures,
            }),
        })
    }

    /// The settings.
    pub fn settings(&self) -> &FileSettings {
        &self.inner.settings
    }

    /// Takes one upload by `uploader` named `name`: streams `body` to disk (refusing it
    /// past the size limit or the day's quota), types it by its bytes, makes a picture
    /// safe, keeps the bytes once and records the file, unsent.
    pub async fn upload(
        &self,
        uploader: &UserId,
        name: &str,
        body: Body,
    ) -> Result<FileRecord, UploadError> {
        let settings = &self.inner.settings;
        let since = now_ms() - i64::try_from(QUOTA_WINDOW.as_millis()).unwrap_or(i64::MAX);
        let used = self
            .inner
            .store
            .uploaded_bytes_since(uploader, since)
            .await?;
        if used >= settings.bytes_per_day {
            return Err(UploadError::OverDailyQuota {
                limit: settings.bytes_per_day,
            });
        }
        let room_today = settings.bytes_per_day - used;
        // Removed however this ends — an error, or the client going away mid-body,
        // which drops this future.
        let temp = TempFile(self.inner.blobs.temp_path().await?);
        let received = self.receive(body, &temp.0, room_today).await?;
        // Counted as soon as it arrived, whatever becomes of the file.
        self.inner
            .store
            .log_upload(uploader, now_ms(), received.size)
            .await?;
        let stored = self.store_bytes(&temp.0, &received).await?;
        drop(temp);
        let file = FileRecord {
            id: new_file_id(),
            uploader: uploader.clone(),
            name: file_name(name, stored.extension),
            blob: stored.blob,
            thumb: stored.thumb,
            mime: stored.mime.into(),
            size: stored.size,
            width: stored.dimensions.map(|(w, _)| w),
            height: stored.dimensions.map(|(_, h)| h),
            created_at: now_ms(),
            room: None,
        };
        self.inner.store.create_file(&file).await?;
        Ok(file)
    }

    /// Writes the body to `temp`, hashing it and keeping its first bytes, within the
    /// size limit and what is left of the day's quota.
    async fn receive(
        &self,
        body: Body,
        temp: &std::path::Path,
        room_today: u64,
    ) -> Result<Received, UploadError> {
        let limit = self.inner.settings.max_upload_bytes;
        let mut out = tokio::fs::File::create(temp).await?;
        let mut hasher = Sha256::new();
        let mut head = Vec::with_capacity(SNIFF_BYTES);
        let mut size: u64 = 0;
        let mut stream = body.into_data_stream();
        let deadline = tokio::time::Instant::now() + UPLOAD_DEADLINE;
        loop {
            let wait =
                BODY_IDLE.min(deadline.saturating_duration_since(tokio::time::Instant::now()));
            let piece = match tokio::time::timeout(wait, stream.next()).await {
                Ok(Some(Ok(piece))) => piece,
                Ok(None) => break,
                Ok(Some(Err(err))) => return Err(UploadError::Interrupted(err.to_string())),
                Err(_) => {
                    return Err(UploadError::Interrupted(
                        "it stalled for 30 s, or took longer than 15 minutes".into(),
                    ))
                }
            };
            size += piece.len() as u64;
            if size > limit {
                return Err(UploadError::TooLarge { limit });
            }
            if size > room_today {
                return Err(UploadError::OverDailyQuota {
                    limit: self.inner.settings.bytes_per_day,
                });
            }
            if head.len() < SNIFF_BYTES {
                let wanted = (SNIFF_BYTES - head.len()).min(piece.len());
                head.extend_from_slice(&piece[..wanted]);
            }
            hasher.update(&piece);
            out.write_all(&piece).await?;
        }
        out.flush().await?;
        out.sync_all().await?;
        Ok(Received {
            sniffed: sniff::sniff(&head),
            hash: hex::encode(hasher.finalize()),
            size,
        })
    }

    /// Keeps what arrived in `temp` as a blob: a picture re-encoded (and its
    /// thumbnail), anything else as it is.
    async fn store_bytes(
        &self,
        temp: &std::path::Path,
        received: &Received,
    ) -> Result<Stored, UploadError> {
        let blobs = &self.inner.blobs;
        match received.sniffed {
            Sniffed::Other { mime, extension } => {
                blobs.keep(&received.hash, temp).await?;
                Ok(Stored {
                    blob: received.hash.clone(),
                    thumb: None,
                    mime,
                    extension,
                    size: received.size,
                    dimensions: None,
                })
            }
            Sniffed::Picture(format) => {
                let turn = self
                    .inner
                    .pictures
                    .clone()
                    .acquire_owned()
                    .await
                    .map_err(|_| UploadError::Interrupted("shutting down".into()))?;
                let path = temp.to_path_buf();
                let max_pixels = self.inner.settings.max_image_pixels;
                let processed = tokio::task::spawn_blocking(move || {
                    let _turn = turn;
                    picture::process(&path, format, max_pixels)
                })
                .await
                .map_err(|_| {
                    UploadError::Picture(PictureError::Unreadable("its decoder failed".into()))
                })??;
                let blob = hex::encode(Sha256::digest(&processed.bytes));
                blobs.keep_bytes(&blob, &processed.bytes).await?;
                let thumb = match &processed.thumbnail {
                    Some(bytes) => {
                        let hash = hex::encode(Sha256::digest(bytes));
                        blobs.keep_bytes(&hash, bytes).await?;
                        Some(hash)
                    }
                    None => None,
                };
                Ok(Stored {
                    blob,
                    thumb,
                    mime: processed.mime,
                    extension: Some(processed.extension),
                    size: processed.bytes.len() as u64,
                    dimensions: Some((processed.width, processed.height)),
                })
            }
        }
    }

    /// The file `id` to serve (its thumbnail with `thumbnail`: a picture's smaller copy,
    /// or the picture itself when it is small), fetched into this node's cache first
    /// when its bytes are in the object store; `None` when there is no such file.
    pub async fn served(
        &self,
        id: &FileId,
        thumbnail: bool,
    ) -> Result<Option<Served>, UploadError> {
        let Some(file) = self.inner.store.file(id).await? else {
            return Ok(None);
        };
        let blob = match (thumbnail, &file.thumb) {
            (false, _) => file.blob.clone(),
            (true, Some(thumb)) => thumb.clone(),
            (true, None) if file.width.is_some() => file.blob.clone(),
            (true, None) => return Ok(None),
        };
        let Some(path) = self.inner.blobs.local_path(&blob).await? else {
            tracing::error!(file = %id.0, %blob, "a file's bytes are missing");
            return Ok(None);
        };
        Ok(Some(Served {
            path,
            thumbnail: thumbnail && file.thumb.is_some(),
            file,
        }))
    }

    /// Deletes files never sent within [`UNSENT_KEPT`], then every blob no file uses
    /// any more (a room deleted with its messages leaves its files' blobs behind).
    /// Returns how many blobs went.
    pub async fn sweep(&self) -> Result<usize, UploadError> {
        let before = now_ms() - i64::try_from(UNSENT_KEPT.as_millis()).unwrap_or(i64::MAX);
        self.inner.store.delete_unsent_files(before).await?;
        let mut removed = 0;
        // An hour's margin: a blob that new may belong to an upload still on its way
        // to the database.
        let margin = Duration::from_secs(3600);
        for hash in self.inner.blobs.settled(margin).await? {
            // Checked again just before: an upload of the same bytes refreshes the
            // blob's time when it reuses it, before its row is stored.
            if !self.inner.store.blob_in_use(&hash).await?
                && self.inner.blobs.still_settled(&hash, margin).await
            {
                self.inner.blobs.remove(&hash).await?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}

/// An upload's file under `tmp/`, deleted when dropped (it may have been moved into
/// place already: then there is nothing left to delete).
struct TempFile(std::path::PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// What arrived: its type, hash and size.
struct Received {
    sniffed: Sniffed,
    hash: String,
    size: u64,
}

/// What was kept of an upload.
struct Stored {
    blob: String,
    thumb: Option<String>,
    mime: &'static str,
    extension: Option<&'static str>,
    size: u64,
    dimensions: Option<(u32, u32)>,
}

/// A fresh file id: 128 random bits as 26 characters of lowercase base32.
pub fn new_file_id() -> FileId {
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let bits: u128 = rand::thread_rng().gen();
    let id = (0..26)
        .map(|i| ALPHABET[((bits >> (i * 5)) & 31) as usize] as char)
        .collect();
    FileId(id)
}

/// Whether `id` has the shape of a file id (checked before any lookup).
pub fn is_file_id(id: &str) -> bool {
    id.len() == 26
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b))
}

/// The name a file is shown under: the last part of what the client said (no
/// folders), without control or invisible characters (a direction override can make
/// `.exe` look like `.jpg`), at most [`MAX_NAME_CHARS`] characters, and
/// with the extension of the type its bytes have when that type has one.
pub fn file_name(raw: &str, extension: Option<&str>) -> String {
    let last = raw.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = last
        .chars()
        .filter(|c| !c.is_control() && !natter_protocol::validate::is_invisible(*c))
        .collect::<String>()
        .trim()
        .trim_start_matches('.')
        .chars()
        .take(MAX_NAME_CHARS)
        .collect();
    let stem = match cleaned.rsplit_once('.') {
        Some((stem, _)) if extension.is_some() && !stem.is_empty() => stem.to_string(),
        _ => cleaned.clone(),
    };
    let stem = if stem.is_empty() {
        "file".to_string()
    } else {
        stem
    };
    match extension {
        Some(ext) => format!("{stem}.{ext}"),
        None => stem,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_ids_are_26_base32_characters_and_differ() {
        let a = new_file_id();
        let b = new_file_id();
        assert!(is_file_id(&a.0), "{a:?}");
        assert_ne!(a, b);
        assert!(!is_file_id("../../etc/passwd"));
        assert!(!is_file_id(&"A".repeat(26)));
    }

    #[test]
    fn names_lose_folders_and_control_characters_and_follow_the_type() {
        assert_eq!(file_name("../../etc/passwd", None), "passwd");
        assert_eq!(
            file_name("C:\\Users\\me\\beach.JPG", Some("jpg")),
            "beach.jpg"
        );
        assert_eq!(file_name("notes.txt", Some("png")), "notes.png");
        // A direction override would show "evil\u{202e}gpj.exe" as "evilexe.jpg".
        assert_eq!(file_name("evil\u{202e}gpj.exe", None), "evilgpj.exe");
        assert_eq!(file_name("a\nb.pdf", Some("pdf")), "ab.pdf");
        assert_eq!(file_name("", Some("png")), "file.png");
        assert_eq!(file_name(".htaccess", None), "htaccess");
        assert_eq!(
            file_name(&"x".repeat(500), None).chars().count(),
            MAX_NAME_CHARS
        );
    }
}
