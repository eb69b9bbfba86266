//! Where files' bytes live: a directory (`--files-dir`), one file per distinct content,
//! named by its SHA-256 — identical bytes uploaded twice are stored once. Uploads are
//! written under `tmp/` first and moved into place, so a blob is never seen half
//! written.

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rand::Rng;

/// The blob directory.
#[derive(Debug, Clone)]
pub struct BlobDir {
    root: PathBuf,
}

impl BlobDir {
    /// The blobs under `root` (created on first use).
    pub fn new(root: PathBuf) -> Self {
        BlobDir { root }
    }

    /// A fresh path under `tmp/` for an upload on its way in.
    pub async fn temp_path(&self) -> io::Result<PathBuf> {
        let dir = self.root.join("tmp");
        tokio::fs::create_dir_all(&dir).await?;
        let name: u64 = rand::thread_rng().gen();
        Ok(dir.join(format!("{name:016x}.part")))
    }

    /// Where the blob with this hex SHA-256 is (whether or not it exists).
    pub fn path(&self, hash: &str) -> PathBuf {
        let fan = hash.get(..2).unwrap_or("00");
        self.root.join("blobs").join(fan).join(hash)
    }

    /// Moves the finished file at `source` into place as blob `hash`; when that blob
    /// exists already (the same bytes came before) `source` is just removed.
    pub async fn keep(&self, hash: &str, source: &Path) -> io::Result<()> {
        let target = self.path(hash);
        if tokio::fs::try_exists(&target).await? {
            // Reused: its time is refreshed, so the sweep leaves it to the new file.
            let touched = target.clone();
            let _ = tokio::task::spawn_blocking(move || {
                std::fs::File::options()
                    .write(true)
                    .open(&touched)
                    .and_then(|f| f.set_modified(SystemTime::now()))
            })
            .await;
            return tokio::fs::remove_file(source).await;
        }
        if let Some(dir) = target.parent() {
            tokio::fs::create_dir_all(dir).await?;
        }
        tokio::fs::rename(source, &target).await
    }

    /// Deletes blob `hash` (gone already is fine).
    pub async fn remove(&self, hash: &str) -> io::Result<()> {
        match tokio::fs::remove_file(self.path(hash)).await {
            Err(err) if err.kind() != io::ErrorKind::NotFound => Err(err),
            _ => Ok(()),
        }
    }

    /// Whether blob `hash` was still last written more than `settled` ago (a missing
    /// one counts as settled: there is nothing left to keep).
    pub async fn still_settled(&self, hash: &str, settled: Duration) -> bool {
        match tokio::fs::metadata(self.path(hash)).await {
            Ok(meta) => meta
                .modified()
                .ok()
                .and_then(|m| m.elapsed().ok())
                .is_some_and(|age| age > settled),
            Err(_) => true,
        }
    }

    /// Every blob's hash last written more than `settled` ago (a newer one may belong
    /// to an upload whose row is not stored yet), and every leftover in `tmp/` older
    /// than that (an upload cut off by a crash) is deleted on the way.
    pub async fn settled(&self, settled: Duration) -> io::Result<Vec<String>> {
        let old_enough = |modified: io::Result<SystemTime>| {
            modified
                .ok()
                .and_then(|m| m.elapsed().ok())
                .is_some_and(|age| age > settled)
        };
        let mut hashes = Vec::new();
        let mut fans = match tokio::fs::read_dir(self.root.join("blobs")).await {
            Ok(fans) => fans,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(hashes),
            Err(err) => return Err(err),
        };
        while let Some(fan) = fans.next_entry().await? {
            let mut blobs = tokio::fs::read_dir(fan.path()).await?;
            while let Some(blob) = blobs.next_entry().await? {
                if old_enough(blob.metadata().await.and_then(|m| m.modified())) {
                    hashes.push(blob.file_name().to_string_lossy().into_owned());
                }
            }
        }
        if let Ok(mut temps) = tokio::fs::read_dir(self.root.join("tmp")).await {
            while let Some(temp) = temps.next_entry().await? {
                if old_enough(temp.metadata().await.and_then(|m| m.modified())) {
                    let _ = tokio::fs::remove_file(temp.path()).await;
                }
            }
        }
        Ok(hashes)
    }
}
