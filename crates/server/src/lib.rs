//! natter-server: the WebSocket chat hub, its storage, and the web client's files.
//!
//! # Layout (by concern; each folder's `mod.rs` has its own map)
//! - [`http`]: the top — accept loop with timeouts, the routes, the checks every
//!   request gets (Origin, client address), the `/ws` upgrade, `/api`, the web client.
//! - [`connection`]: one WebSocket connection — frames, close codes, the connection
//!   task, and the conversation (what each request does).
//! - [`hub`]: [`hub::RoomHub`], the one door to the chat's shared state — who is online
//!   where, names, presence batching, per-room fan-out in seq order with gap fills,
//!   cluster reconciliation, sign-out watches, outboxes and the append queue.
//! - [`accounts`]: sign-up, sign-in, cookie sessions, password hashing, the mail queue.
//! - [`files`]: uploads — typed by their bytes, pictures re-encoded upright without
//!   metadata (with thumbnails), bytes kept once per content under `--files-dir`.
//! - [`broker`]: how deliveries and presence reach every node
//!   ([`broker::LocalBroker`] for one, [`broker::redis::RedisBroker`] for a cluster).
//! - [`store`]: persistence behind the [`store::Store`] trait (SQLite by default,
//!   PostgreSQL for a cluster, in-memory with `--database-url memory:`).
//! - [`telemetry`]: Prometheus metrics on their own listener (`--metrics-listen`).
//! - [`config`]: flags and `NATTER_*` environment variables; [`limits`]: token buckets
//!   and connection counts per IP; [`quota`]: what one person may create or try (rooms,
//!   direct rooms, room codes, uploads); [`clock`]: server time; [`secret`]: how secrets are
//!   stored (their digest).
//!
//! Dependencies point one way: `http` → `connection`, `accounts`, `files` → `hub` →
//! `broker`, `store`. `connection` and `accounts` never use each other.
//!
//! `main.rs` only parses configuration and calls [`run`]; tests call [`run`] with a
//! listener bound to `127.0.0.1:0`.

pub mod accounts;
pub mod broker;
pub mod clock;
pub mod config;
pub mod connection;
pub mod files;
pub mod http;
pub mod hub;
pub mod limits;
pub mod quota;
pub mod secret;
pub mod store;
pub mod telemetry;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use config::Config;
pub use http::app;

use crate::accounts::auth::{Auth, AuthSettings};
use crate::accounts::mail::{MailError, MailWorker};
use crate::broker::redis::RedisBroker;
use crate::broker::{Broker, BrokerError, LocalBroker};
use crate::files::Files;
use crate::http::request::HostNames;
use crate::hub::RoomHub;
use crate::limits::{HttpConnections, IpLimits};
use crate::quota::Quotas;
use crate::store::memory::{MemoryStore, MEMORY_URL};
use crate::store::postgres::PgStore;
use crate::store::sqlite::SqliteStore;
use crate::store::{Store, StoreError};

/// How long shutdown waits for connections to say goodbye before giving up on them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The database could not be opened or migrated.
    #[error("database: {0}")]
    Store(#[from] StoreError),
    /// Redis (for several nodes) could not be reached.
    #[error("cluster broker: {0}")]
    Broker(#[from] BrokerError),
    /// The settings contradict each other (the reason says how).
    #[error("{0}")]
    Misconfigured(&'static str),
    /// The mail settings are unusable.
    #[error("{0}")]
    Mail(#[from] MailError),
    /// The listening socket has no address.
    #[error("listener: {0}")]
    Listener(#[from] std::io::Error),
    /// The file storage settings are unusable (`--files-url`).
    #[error("files: {0}")]
    Files(String),
}

/// What every request handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The chat hub.
    pub hub: RoomHub,
    /// The configuration the server started with.
    pub config: Arc<Config>,
    /// Cancelled when the server shuts down; connections close with 1001.
    pub shutdown: CancellationToken,
    /// Every WebSocket connection task, so shutdown can wait for them.
    pub connections: TaskTracker,
    /// Per-IP connection counts and rate buckets.
    pub limits: IpLimits,
    /// Accounts and sessions.
    pub auth: Auth,
    /// The host names requests may name.
    pub hosts: HostNames,
    /// What one person may create or try (rooms, direct rooms, room codes, uploads).
    pub quotas: Quotas,
    /// Uploaded files.
    pub files: Files,
}

/// Opens the store a database URL names: `postgres://…` (or `postgresql://…`),
/// `memory:`, and anything else as SQLite.
pub async fn open_store(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    Ok(if url == MEMORY_URL {
        Arc::new(MemoryStore::new())
    } else if is_postgres(url) {
        Arc::new(PgStore::open(url).await?)
    } else {
        Arc::new(SqliteStore::open(url).await?)
    })
}

/// Does this database URL name PostgreSQL?
fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// Runs the server on `listener` until `shutdown` resolves; then closes every
/// connection with 1001 and stores everything already accepted before returning.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    if config.redis_url.is_some() && !is_postgres(&config.database_url) {
        // Nodes with a database each would each number the rooms' messages on their own.
        return Err(ServerError::Misconfigured(
            "--redis-url joins a cluster, whose nodes must share one database: \
             use --database-url postgres://…",
        ));
    }
    // Bound first: a taken metrics port is a configuration error, reported at once.
    let metrics = match telemetry::bind(config.metrics_listen).await? {
        Some(listener) => telemetry::install().map(|handle| (listener, handle)),
        None => None,
    };
    let store = open_store(&config.database_url).await?;
    let broker: Arc<dyn Broker> = match &config.redis_url {
        Some(url) => Arc::new(RedisBroker::connect(url, &config.redis_prefix).await?),
        None => Arc::new(LocalBroker::default()),
    };
    let hub = RoomHub::start(store.clone(), broker, config.hub_settings()).await?;
    if !config.static_dir.join("index.html").exists() {
        tracing::warn!(dir = %config.static_dir.display(), "no built web client here; only /ws, /api and /healthz are served");
    }
    let (mailer, mail_worker) = MailWorker::new(
        store.clone(),
        config.smtp_url.as_deref(),
        config.outbox_dir.clone(),
        &config.mail_from,
    )?;
    let public_url = match &config.public_url {
        Some(url) => url.trim_end_matches('/').to_string(),
        None => {
            let local = listener.local_addr()?;
            if local.ip().is_unspecified() {
                tracing::warn!(%local, "emailed links would point at an unspecified address: set --public-url to the address people use");
            }
            format!("http://{local}")
        }
    };
    let files = Files::new(config.file_settings(), store.clone()).map_err(ServerError::Files)?;
    let auth = Auth::new(
        store,
        hub.clone(),
        mailer,
        AuthSettings {
            public_url,
            session_idle: Duration::from_secs(config.session_idle_secs),
            session_max: Duration::from_secs(config.session_max_secs),
            verify_link: Duration::from_secs(config.verify_link_secs),
            reset_link: Duration::from_secs(config.reset_link_secs),
            guest_expiry: Duration::from_secs(config.guest_expiry_days.saturating_mul(24 * 3600)),
            hash_concurrency: config.hash_concurrency.unwrap_or_else(|| {
                std::thread::available_parallelism().map_or(1, |n| n.get().min(4))
            }),
        },
    );
    let state = AppState {
        auth: auth.clone(),
        hub: hub.clone(),
        limits: IpLimits::new(config.rate_settings()),
        hosts: config.host_names(),
        quotas: Quotas::new(config.quota_settings()),
        files: files.clone(),
        config: Arc::new(config),
        shutdown: CancellationToken::new(),
        connections: TaskTracker::new(),
    };
    let background = TaskTracker::new();
    if let Some((listener, handle)) = metrics {
        background.spawn(telemetry::serve(listener, handle, state.shutdown.clone()));
    }
    background.spawn(mail_worker.run(state.shutdown.clone()));
    background.spawn(housekeeping(auth, files, state.shutdown.clone()));
    background.close();
    let token = state.shutdown.clone();
    let stop = tokio::spawn(async move {
        shutdown.await;
        token.cancel();
    });
    let http = TaskTracker::new();
    http::serve::serve(
        listener,
        app(state.clone()),
        state.config.header_timeout(),
        HttpConnections::new(
            state.config.max_http_connections_per_ip,
            state.config.trusted_proxies.clone(),
        ),
        state.shutdown.clone(),
        http.clone(),
    )
    .await;
    stop.abort();
    http.close();
    state.connections.close();
    let everything = async {
        http.wait().await;
        state.connections.wait().await;
        background.wait().await;
    };
    if tokio::time::timeout(SHUTDOWN_GRACE, everything)
        .await
        .is_err()
    {
        tracing::warn!("some connections did not close in time");
    }
    hub.shutdown().await;
    Ok(())
}

/// How often expired sessions and tokens are deleted.
const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(3600);

/// Deletes expired sessions and tokens, guests gone for good, sign-ups never
/// verified, files never sent and the bytes of files gone, now and every hour until
/// `shutdown`.
async fn housekeeping(auth: Auth, files: Files, shutdown: CancellationToken) {
    loop {
        match files.sweep().await {
            Ok(0) => {}
            Ok(removed) => tracing::info!(removed, "the bytes of deleted files removed"),
            Err(err) => tracing::warn!(%err, "could not sweep the files"),
        }
        match auth.delete_expired().await {
            Ok(0) => {}
            Ok(deleted) => {
                tracing::info!(deleted, "expired sessions, links and identities deleted")
            }
            Err(err) => tracing::warn!(%err, "could not delete expired sessions"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(HOUSEKEEPING_EVERY) => {}
        }
    }
}
