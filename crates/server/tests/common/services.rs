//! The machine's PostgreSQL and Redis, and the S3-compatible store `cargo xtask test`
//! starts, for tests that are about them.
//!
//! Their addresses come from `NATTER_TEST_DATABASE_URL` (default
//! `postgres://127.0.0.1:5432/test`) and `NATTER_TEST_REDIS_URL` (default
//! `redis://127.0.0.1:6379`). When one is unreachable, the test says so loudly, leaves
//! a marker that `cargo xtask test` counts and lists as skipped, and returns — unless
//! `CI=true`, where it fails: CI has both services.

use std::time::Duration;

use sqlx::Connection;

/// Where the tests find PostgreSQL.
pub fn postgres_url() -> String {
    std::env::var("NATTER_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://127.0.0.1:5432/test".into())
}

/// Where the tests find Redis.
pub fn redis_url() -> String {
    std::env::var("NATTER_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// The S3-compatible object store `cargo xtask test` starts (s3s-fs): its endpoint and
/// bucket, from `NATTER_TEST_S3_ENDPOINT` and `NATTER_TEST_S3_BUCKET` (credentials in
/// `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`, which started nodes inherit) — or
/// `None` after [`skip`] when it is not there.
pub fn s3_store(test: &str) -> Option<(String, String)> {
    let endpoint = std::env::var("NATTER_TEST_S3_ENDPOINT").ok();
    let bucket = std::env::var("NATTER_TEST_S3_BUCKET").ok();
    match endpoint.zip(bucket) {
        Some(found) => Some(found),
        None => {
            skip(
                test,
                "no S3-compatible store (NATTER_TEST_S3_ENDPOINT; `cargo xtask test` starts s3s-fs)",
            );
            None
        }
    }
}

/// Gives up on a test whose service is missing: fails in CI, skips loudly elsewhere.
pub fn skip(test: &str, reason: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{test}: {reason} (CI=true: these services must be running)");
    }
    eprintln!("\n*** SKIPPED {test}: {reason} ***\n");
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("skipped-tests");
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(dir.join(test.replace("::", "-")), reason);
}

/// A schema of its own in the test database, dropped again when this goes out of scope.
pub struct PgSchema {
    /// Database URL whose connections use this schema (`options[search_path]`).
    pub url: String,
    name: String,
}

impl PgSchema {
    /// A fresh, empty schema — or `None` (after [`skip`]) when PostgreSQL is unreachable.
    pub async fn fresh(test: &str) -> Option<PgSchema> {
        let base = postgres_url();
        let connect =
            tokio::time::timeout(Duration::from_secs(5), sqlx::PgConnection::connect(&base));
        let mut conn = match connect.await {
            Ok(Ok(conn)) => conn,
            Ok(Err(err)) => {
                skip(
                    test,
                    &format!("PostgreSQL at {base} is not reachable: {err}"),
                );
                return None;
            }
            Err(_) => {
                skip(test, &format!("PostgreSQL at {base} did not answer in 5 s"));
                return None;
            }
        };
        let name = format!("natter_test_{}", hex_id());
        sqlx::query(&format!("CREATE SCHEMA {name}"))
            .execute(&mut conn)
            .await
            .expect("create a test schema");
        let separator = if base.contains('?') { '&' } else { '?' };
        Some(PgSchema {
            url: format!("{base}{separator}options[search_path]={name}"),
            name,
        })
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        // Drop runs outside async: a thread with its own runtime does the cleanup.
        let name = self.name.clone();
        let base = postgres_url();
        let _ = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async {
                if let Ok(mut conn) = sqlx::PgConnection::connect(&base).await {
                    let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"))
                        .execute(&mut conn)
                        .await;
                }
            });
        })
        .join();
    }
}

/// True when Redis answers PING at `url`; otherwise [`skip`]s `test`.
pub async fn redis_available(test: &str, url: &str) -> bool {
    let ping = async {
        let client = redis::Client::open(url)?;
        let mut conn = client.get_multiplexed_async_connection().await?;
        redis::cmd("PING").query_async::<String>(&mut conn).await
    };
    match tokio::time::timeout(Duration::from_secs(5), ping).await {
        Ok(Ok(_)) => true,
        Ok(Err(err)) => {
            skip(test, &format!("Redis at {url} is not reachable: {err}"));
            false
        }
        Err(_) => {
            skip(test, &format!("Redis at {url} did not answer in 5 s"));
            false
        }
    }
}

/// 16 random hex digits, for names no other test run uses.
pub fn hex_id() -> String {
    format!("{:016x}", rand::random::<u64>())
}
