//! Where files' bytes are kept: the local directory ([`BlobDir`], one node's default),
//! or an S3-compatible object store shared by the nodes of a cluster
//! (`--files-url s3://bucket[/prefix]`), through the `object_store` crate.
//!
//! With an object store, the local directory is each node's cache: an upload is
//! written there first (streamed, never whole in memory), sent to the bucket as a
//! multipart upload, and kept; a file another node took in is fetched into the cache
//! the first time this node serves it. Blobs never change (they are named by their
//! SHA-256), so a cached copy is never stale; the hourly sweep drops copies and
//! objects no file uses any more.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, WriteMultipart};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::blobs::BlobDir;

/// Bytes read from disk per part of a multipart upload (S3's minimum part is 5 MiB).
const PART_BYTES: usize = 5 << 20;

/// Where the object store is and how to reach it (from [`crate::Config`]).
#[derive(Debug, Clone)]
pub struct RemoteSettings {
    /// `s3://bucket` or `s3://bucket/prefix`.
    pub url: String,
    /// The S3 API's address, for a store other than AWS (`http://…` allows plain HTTP).
    pub endpoint: Option<String>,
    /// The region to sign requests for.
    pub region: String,
}

/// The bytes of files.
#[derive(Debug, Clone)]
pub enum Storage {
    /// Only on this node's disk.
    Local(BlobDir),
    /// In an object store, with this node's disk as a cache.
    Remote {
        /// The cache (and where uploads are written first).
        cache: BlobDir,
        /// The bucket.
        store: Arc<dyn ObjectStore>,
        /// Key prefix inside the bucket (empty or ending in `/`).
        prefix: String,
    },
}

fn other(err: impl std::fmt::Display) -> io::Error {
    io::Error::other(err.to_string())
}

impl Storage {
    /// Storage in `dir`, or in the object store `remote` names with `dir` as cache.
    /// Credentials come from the environment (`AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY`, …), as every S3 tool takes them.
    pub fn open(dir: PathBuf, remote: Option<&RemoteSettings>) -> Result<Self, String> {
        let cache = BlobDir::new(dir);
        let Some(remote) = remote else {
            return Ok(Storage::Local(cache));
        };
        let rest = remote.url.strip_prefix("s3://").ok_or_else(|| {
            format!(
                "--files-url must be s3://bucket[/prefix], not {}",
                remote.url
            )
        })?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err("--files-url names no bucket".into());
        }
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .with_region(&remote.region);
        if let Some(endpoint) = &remote.endpoint {
            builder = builder
                .with_endpoint(endpoint)
                .with_allow_http(endpoint.starts_with("http://"));
        }
        let store = builder
            .build()
            .map_err(|err| format!("the object store: {err}"))?;
        let prefix = prefix.trim_matches('/');
        Ok(Storage::Remote {
            cache,
            store: Arc::new(store),
            prefix: if prefix.is_empty() {
                String::new()
            } else {
                format!("{prefix}/")
            },
        })
    }

    /// The local directory (the store itself, or the cache).
    fn dir(&self) -> &BlobDir {
        match self {
            Storage::Local(dir) | Storage::Remote { cache: dir, .. } => dir,
        }
    }

    /// A fresh local path for an upload on its way in.
    pub async fn temp_path(&self) -> io::Result<PathBuf> {
        self.dir().temp_path().await
    }

    fn key(prefix: &str, hash: &str) -> ObjectPath {
        ObjectPath::from(format!(
            "{prefix}blobs/{}/{hash}",
            hash.get(..2).unwrap_or("00")
        ))
    }

    /// Keeps the finished file at `source` as blob `hash` (sent to the bucket unless
    /// it is there already); `source` is moved or removed.
    pub async fn keep(&self, hash: &str, source: &Path) -> io::Result<()> {
        if let Storage::Remote { store, prefix, .. } = self {
            let key = Self::key(prefix, hash);
            if store.head(&key).await.is_err() {
                let upload = store.put_multipart(&key).await.map_err(other)?;
                let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_BYTES);
                if let Err(err) = send_parts(&mut writer, source).await {
                    // No half-sent parts left to be billed in the bucket.
                    let _ = writer.abort().await;
                    return Err(err);
                }
                writer.finish().await.map_err(other)?;
            }
        }
        self.dir().keep(hash, source).await
    }

    /// Whether blob `hash` still looks unused for `settled` (see [`BlobDir`]; in the
    /// bucket, a blob's time is its upload's).
    pub async fn still_settled(&self, hash: &str, settled: Duration) -> bool {
        self.dir().still_settled(hash, settled).await
    }

    /// Writes `bytes` as blob `hash`, unless it exists.
    pub async fn keep_bytes(&self, hash: &str, bytes: &[u8]) -> io::Result<()> {
        let temp = self.temp_path().await?;
        let mut file = tokio::fs::File::create(&temp).await?;
        file.write_all(bytes).await?;
        file.flush().await?;
        drop(file);
        self.keep(hash, &temp).await
    }

    /// A local path holding blob `hash`, fetching it from the bucket into the cache
    /// when this node does not have it; `None` when the blob exists nowhere.
    pub async fn local_path(&self, hash: &str) -> io::Result<Option<PathBuf>> {
        let path = self.dir().path(hash);
        if tokio::fs::try_exists(&path).await? {
            return Ok(Some(path));
        }
        let Storage::Remote {
            store,
            prefix,
            cache,
        } = self
        else {
            return Ok(None);
        };
        let found = match store.get(&Self::key(prefix, hash)).await {
            Ok(found) => found,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(err) => return Err(other(err)),
        };
        let temp = cache.temp_path().await?;
        let mut file = tokio::fs::File::create(&temp).await?;
        let mut stream = found.into_stream();
        while let Some(piece) = stream.next().await {
            file.write_all(&piece.map_err(other)?).await?;
        }
        file.flush().await?;
        drop(file);
        cache.keep(hash, &temp).await?;
        Ok(Some(path))
    }

    /// Deletes blob `hash` everywhere it is kept (gone already is fine).
    pub async fn remove(&self, hash: &str) -> io::Result<()> {
        if let Storage::Remote { store, prefix, .. } = self {
            match store.delete(&Self::key(prefix, hash)).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(err) => return Err(other(err)),
            }
        }
        self.dir().remove(hash).await
    }

    /// Every blob written more than `settled` ago — in the bucket and in this node's
    /// cache — for the sweep to check against the files still using them.
    pub async fn settled(&self, settled: Duration) -> io::Result<Vec<String>> {
        let mut hashes = self.dir().settled(settled).await?;
        if let Storage::Remote { store, prefix, .. } = self {
            let under = ObjectPath::from(format!("{prefix}blobs"));
            let cutoff = chrono_cutoff(settled);
            let mut listing = store.list(Some(&under));
            while let Some(meta) = listing.next().await {
                let meta = meta.map_err(other)?;
                if meta.last_modified.timestamp_millis() < cutoff {
                    if let Some(hash) = meta.location.filename() {
                        hashes.push(hash.to_string());
                    }
                }
            }
            hashes.sort();
            hashes.dedup();
        }
        Ok(hashes)
    }
}

/// Reads `source` from disk part by part into a multipart upload.
async fn send_parts(writer: &mut WriteMultipart, source: &Path) -> io::Result<()> {
    let mut file = tokio::fs::File::open(source).await?;
    let mut part = vec![0u8; PART_BYTES];
    loop {
        let read = file.read(&mut part).await?;
        if read == 0 {
            return Ok(());
        }
        writer.wait_for_capacity(4).await.map_err(other)?;
        writer.write(&part[..read]);
    }
}

/// The time (ms since the epoch) `age` ago.
fn chrono_cutoff(age: Duration) -> i64 {
    crate::clock::now_ms() - i64::try_from(age.as_millis()).unwrap_or(i64::MAX)
}
