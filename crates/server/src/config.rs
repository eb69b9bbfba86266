//! Server configuration: every setting is a flag and a `NATTER_*` environment variable.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

/// How this server runs. `main.rs` parses it; tests build it with [`Config::for_tests`].
#[derive(Debug, Clone, Parser)]
#[command(
    name = "natter-server",
    version,
    about = "natter: self-hosted real-time chat"
)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "NATTER_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Database to use: `sqlite://path` (created with its directory if missing), or
    /// `memory:` to keep everything in memory (lost on restart; for tests and benchmarks).
    #[arg(
        long,
        env = "NATTER_DATABASE_URL",
        default_value = "sqlite://data/natter.db"
    )]
    pub database_url: String,

    /// Address to serve Prometheus metrics on (`/metrics`), e.g. `127.0.0.1:9090`.
    /// Off when unset. Keep it off the public port: metrics are for operators.
    #[arg(long, env = "NATTER_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,

    /// Redis to share fan-out and presence with other natter nodes (`redis://host:port`).
    /// Without it this node works alone. Every node of a cluster needs the same Redis,
    /// the same `--redis-prefix` and the same PostgreSQL `--database-url`.
    #[arg(long, env = "NATTER_REDIS_URL")]
    pub redis_url: Option<String>,

    /// Prefix of natter's Redis keys and channel, so several clusters can share a Redis.
    #[arg(long, env = "NATTER_REDIS_PREFIX", default_value = "natter")]
    pub redis_prefix: String,

    /// Directory of the built web client (trunk's `dist/`), served at `/`.
    #[arg(long, env = "NATTER_STATIC_DIR", default_value = "dist")]
    pub static_dir: PathBuf,

    /// How long a user whose last connection dropped still shows as online, so a
    /// reconnect (a reload, a flaky network) does not flicker to everyone.
    #[arg(long, env = "NATTER_PRESENCE_GRACE_MS", default_value_t = 5000)]
    pub presence_grace_ms: u64,

    /// A connection that has not sent a valid `hello` this long after the upgrade is
    /// closed, so idle sockets cannot pile up.
    #[arg(long, env = "NATTER_HELLO_TIMEOUT_MS", default_value_t = 10_000)]
    pub hello_timeout_ms: u64,

    /// Interval of server pings; a connection silent for two intervals is closed.
    #[arg(long, env = "NATTER_HEARTBEAT_MS", default_value_t = 20_000)]
    pub heartbeat_ms: u64,

    /// Origins (scheme://host[:port]) allowed to open the WebSocket besides the
    /// server's own; a browser page from anywhere else gets HTTP 403. Comma-separated
    /// in the environment variable.
    #[arg(
        long = "allowed-origin",
        env = "NATTER_ALLOWED_ORIGINS",
        value_delimiter = ','
    )]
    pub allowed_origins: Vec<String>,

    /// Host names this server answers to besides `localhost` and the host of
    /// `--public-url` (an IP address is always accepted). A request naming any other
    /// host gets 421: that is how a page on another domain re-pointed at this server
    /// (DNS rebinding) is stopped. Comma-separated in the environment variable.
    #[arg(
        long = "allowed-host",
        env = "NATTER_ALLOWED_HOSTS",
        value_delimiter = ','
    )]
    pub allowed_hosts: Vec<String>,

    /// Reverse proxies (load balancers) in front of this server, by IP. For connections
    /// from them, per-IP limits apply to the client address they put in
    /// `X-Forwarded-For` instead of their own. Comma-separated in the environment variable.
    #[arg(
        long = "trusted-proxy",
        env = "NATTER_TRUSTED_PROXIES",
        value_delimiter = ','
    )]
    pub trusted_proxies: Vec<std::net::IpAddr>,

    /// Time a client has to send a request's headers; slower connections are closed
    /// (slowloris protection).
    #[arg(long, env = "NATTER_HEADER_TIMEOUT_MS", default_value_t = 5_000)]
    pub header_timeout_ms: u64,

    /// Time a client has to send an `/api` request's body once its headers arrived;
    /// slower requests get 408.
    #[arg(long, env = "NATTER_BODY_TIMEOUT_MS", default_value_t = 10_000)]
    pub body_timeout_ms: u64,

    /// Plain HTTP connections (page, files, `/api`, upgrades not yet upgraded) one IP
    /// address may hold open at once; more are closed on accept. A browser opens at
    /// most six.
    #[arg(long, env = "NATTER_MAX_HTTP_CONNECTIONS_PER_IP", default_value_t = 32)]
    pub max_http_connections_per_ip: u32,

    /// WebSocket connections one IP address may hold open.
    #[arg(long, env = "NATTER_MAX_CONNECTIONS_PER_IP", default_value_t = 64)]
    pub max_connections_per_ip: u32,

    /// Frames per second one connection may send, sustained.
    #[arg(long, env = "NATTER_RATE_PER_CONNECTION", default_value_t = 20)]
    pub rate_per_connection: u32,

    /// Frames one connection may send in a burst.
    #[arg(long, env = "NATTER_BURST_PER_CONNECTION", default_value_t = 40)]
    pub burst_per_connection: u32,

    /// Frames per second all connections of one IP may send together, sustained.
    #[arg(long, env = "NATTER_RATE_PER_IP", default_value_t = 60)]
    pub rate_per_ip: u32,

    /// Frames all connections of one IP may send together in a burst.
    #[arg(long, env = "NATTER_BURST_PER_IP", default_value_t = 120)]
    pub burst_per_ip: u32,

    /// Rooms one user may be a member of (channels, code rooms and direct rooms);
    /// joining, creating or opening one more is refused with `too_many_rooms`.
    #[arg(long, env = "NATTER_MAX_ROOMS_PER_USER", default_value_t = 500)]
    pub max_rooms_per_user: usize,

    /// Channels the server holds at most (every `hello` lists them all); creating
    /// one more is refused with `too_many_channels`.
    #[arg(long, env = "NATTER_MAX_CHANNELS", default_value_t = 1000)]
    pub max_channels: usize,

    /// People one user may block; blocking one more is refused with `too_many_blocks`.
    #[arg(long, env = "NATTER_MAX_BLOCKS_PER_USER", default_value_t = 1000)]
    pub max_blocks_per_user: usize,

    /// How long after sending a message its author may still edit it, in seconds
    /// (0: always). Editing later is refused with `edit_window_closed`; deleting is
    /// always allowed.
    #[arg(long, env = "NATTER_EDIT_WINDOW_SECS", default_value_t = 0)]
    pub edit_window_secs: u64,

    /// `@room` (notifying every member) is allowed in rooms of at most this many
    /// members; in bigger ones a message using it is refused with
    /// `mention_room_not_allowed`.
    #[arg(long, env = "NATTER_MENTION_ROOM_MAX_MEMBERS", default_value_t = 50)]
    pub mention_room_max_members: u32,

    /// Typing indicators are passed on only in rooms of at most this many members (in
    /// a bigger one, everyone typing would be noise and traffic for all).
    #[arg(long, env = "NATTER_TYPING_MAX_MEMBERS", default_value_t = 100)]
    pub typing_max_members: u32,

    /// Channels and code rooms one user, and one IP, may create per hour (all at once,
    /// then evenly spread).
    #[arg(long, env = "NATTER_ROOMS_CREATED_PER_HOUR", default_value_t = 20)]
    pub rooms_created_per_hour: u32,

    /// New direct rooms one user, and one IP, may open per hour (opening an existing
    /// one is free).
    #[arg(long, env = "NATTER_DIRECTS_OPENED_PER_HOUR", default_value_t = 30)]
    pub directs_opened_per_hour: u32,

    /// Wrong room codes one user, and one IP, may try per hour.
    #[arg(long, env = "NATTER_FAILED_CODES_PER_HOUR", default_value_t = 20)]
    pub failed_codes_per_hour: u32,

    /// The address people reach this server at (`https://chat.example.org`), for the
    /// links in emails. Never taken from a request's `Host` header, which anyone can
    /// set (a reset link pointing at someone else's site). Default: `http://` and the
    /// listening address.
    #[arg(long, env = "NATTER_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// SMTP server for verification and recovery emails: `smtp://host:25` (plain, for
    /// a local relay), `smtp://user:pass@host:587?tls=required` (STARTTLS) or
    /// `smtps://user:pass@host:465`. Without it, emails are written to `--outbox-dir`
    /// and their links logged.
    #[arg(long, env = "NATTER_SMTP_URL")]
    pub smtp_url: Option<String>,

    /// Where emails go when no SMTP server is configured: one `.eml` file each.
    #[arg(long, env = "NATTER_OUTBOX_DIR", default_value = "data/outbox")]
    pub outbox_dir: PathBuf,

    /// The sender of natter's emails.
    #[arg(
        long,
        env = "NATTER_MAIL_FROM",
        default_value = "natter <natter@localhost>"
    )]
    pub mail_from: String,

    /// A signed-in session not used for this long ends (idle expiry), in seconds.
    #[arg(long, env = "NATTER_SESSION_IDLE_SECS", default_value_t = 14 * 24 * 3600)]
    pub session_idle_secs: u64,

    /// Every session ends this long after signing in, used or not, in seconds.
    #[arg(long, env = "NATTER_SESSION_MAX_SECS", default_value_t = 30 * 24 * 3600)]
    pub session_max_secs: u64,

    /// How long an emailed verification link works, in seconds.
    #[arg(long, env = "NATTER_VERIFY_LINK_SECS", default_value_t = 24 * 3600)]
    pub verify_link_secs: u64,

    /// How long an emailed password-reset link works, in seconds.
    #[arg(long, env = "NATTER_RESET_LINK_SECS", default_value_t = 3600)]
    pub reset_link_secs: u64,

    /// Where uploaded files are kept: one file per distinct content (named by its
    /// SHA-256), plus `tmp/` for uploads on their way in.
    #[arg(long, env = "NATTER_FILES_DIR", default_value = "data/files")]
    pub files_dir: PathBuf,

    /// An S3-compatible object store for the files, shared by the nodes of a cluster:
    /// `s3://bucket` or `s3://bucket/prefix`. Credentials come from the environment
    /// (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`); `--files-dir` is then each
    /// node's cache. Without it, files stay in `--files-dir` (one node).
    #[arg(long, env = "NATTER_FILES_URL")]
    pub files_url: Option<String>,

    /// The object store's S3 API address, for a store other than AWS (MinIO, Garage,
    /// s3s-fs, …); an `http://` address allows plain HTTP.
    #[arg(long, env = "NATTER_S3_ENDPOINT")]
    pub s3_endpoint: Option<String>,

    /// The region S3 requests are signed for.
    #[arg(long, env = "NATTER_S3_REGION", default_value = "us-east-1")]
    pub s3_region: String,

    /// Largest file one upload may be, in bytes (refused with `413 too_large`, while
    /// it streams in — never held in memory).
    #[arg(long, env = "NATTER_MAX_UPLOAD_BYTES", default_value_t = 25_000_000)]
    pub max_upload_bytes: u64,

    /// Bytes one person may upload in 24 hours (`429 quota_exceeded`).
    #[arg(
        long,
        env = "NATTER_UPLOAD_BYTES_PER_DAY",
        default_value_t = 500_000_000
    )]
    pub upload_bytes_per_day: u64,

    /// Files one person, and one IP, may upload per minute (`429 quota_exceeded`).
    #[arg(long, env = "NATTER_UPLOADS_PER_MINUTE", default_value_t = 20)]
    pub uploads_per_minute: u32,

    /// Largest picture decoded, in pixels (width × height; refused from its header with
    /// `422 too_many_pixels`, before any decoding — a small file can declare a huge
    /// picture).
    #[arg(long, env = "NATTER_MAX_IMAGE_PIXELS", default_value_t = 40_000_000)]
    pub max_image_pixels: u64,

    /// Pictures decoded and re-encoded at once (each takes one core and up to about
    /// 4 bytes a pixel); more wait their turn. Default: the number of cores, at most 4.
    #[arg(long, env = "NATTER_IMAGE_CONCURRENCY")]
    pub image_concurrency: Option<usize>,

    /// A guest identity not used (no `hello`) for this many days is deleted: its
    /// memberships go, its messages stay under its name. Sign-ups never verified go
    /// once their link expires (`--verify-link-secs`), freeing the name and email.
    #[arg(long, env = "NATTER_GUEST_EXPIRY_DAYS", default_value_t = 30)]
    pub guest_expiry_days: u64,

    /// Password hashes computed at once (each argon2id hash takes 19 MiB, kept for
    /// reuse, and tens of milliseconds of one core); more requests wait their turn.
    /// Default: the number of cores, at most 4.
    #[arg(long, env = "NATTER_HASH_CONCURRENCY")]
    pub hash_concurrency: Option<usize>,

    /// Frames that may wait for one connection; a client this far behind is cut off
    /// (close 1013) and resumes on reconnect, instead of growing server memory.
    #[arg(long, env = "NATTER_OUTBOUND_QUEUE", default_value_t = 1024)]
    pub outbound_queue: usize,

    /// Bytes that may wait for one connection (with `--outbound-queue`, whichever is
    /// reached first): a client this far behind is cut off (close 1013).
    #[arg(long, env = "NATTER_OUTBOUND_QUEUE_BYTES", default_value_t = 8 * 1024 * 1024)]
    pub outbound_queue_bytes: usize,

    /// How long a socket write may make no progress before the connection is dropped:
    /// a peer that stops reading (its TCP window closed) is cut off after this, and
    /// shown offline after the presence grace.
    #[arg(long, env = "NATTER_WRITE_TIMEOUT_MS", default_value_t = 30_000)]
    pub write_timeout_ms: u64,
}

impl Config {
    /// A configuration for tests: the given database, no static files, short timers,
    /// and rate limits high enough that only tests about limits meet them.
    pub fn for_tests(database_url: impl Into<String>) -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            database_url: database_url.into(),
            metrics_listen: None,
            redis_url: None,
            redis_prefix: "natter".into(),
            static_dir: PathBuf::from("does-not-exist"),
            presence_grace_ms: 300,
            hello_timeout_ms: 10_000,
            heartbeat_ms: 20_000,
            outbound_queue: 1024,
            outbound_queue_bytes: 8 * 1024 * 1024,
            write_timeout_ms: 30_000,
            allowed_origins: Vec::new(),
            allowed_hosts: Vec::new(),
            trusted_proxies: Vec::new(),
            header_timeout_ms: 5_000,
            body_timeout_ms: 10_000,
            max_http_connections_per_ip: 1000,
            max_connections_per_ip: 1000,
            rate_per_connection: 10_000,
            burst_per_connection: 10_000,
            rate_per_ip: 10_000,
            burst_per_ip: 10_000,
            max_rooms_per_user: 500,
            max_channels: 1000,
            max_blocks_per_user: 1000,
            edit_window_secs: 0,
            mention_room_max_members: 50,
            typing_max_members: 100,
            rooms_created_per_hour: 10_000,
            directs_opened_per_hour: 10_000,
            failed_codes_per_hour: 10_000,
            public_url: None,
            smtp_url: None,
            outbox_dir: PathBuf::from("data/outbox"),
            mail_from: "natter <natter@localhost>".into(),
            session_idle_secs: 14 * 24 * 3600,
            session_max_secs: 30 * 24 * 3600,
            verify_link_secs: 24 * 3600,
            reset_link_secs: 3600,
            guest_expiry_days: 30,
            hash_concurrency: None,
            files_dir: std::env::temp_dir().join("natter-test-files"),
            files_url: None,
            s3_endpoint: None,
            s3_region: "us-east-1".into(),
            max_upload_bytes: 25_000_000,
            upload_bytes_per_day: 500_000_000,
            uploads_per_minute: 10_000,
            max_image_pixels: 40_000_000,
            image_concurrency: None,
        }
    }

    /// The rate limits as the limiter wants them.
    pub fn rate_settings(&self) -> crate::limits::RateSettings {
        crate::limits::RateSettings {
            conn_per_sec: self.rate_per_connection,
            conn_burst: self.burst_per_connection,
            ip_per_sec: self.rate_per_ip,
            ip_burst: self.burst_per_ip,
            max_conns_per_ip: self.max_connections_per_ip,
        }
    }

    /// Where uploads go and the limits they run under.
    pub fn file_settings(&self) -> crate::files::FileSettings {
        crate::files::FileSettings {
            dir: self.files_dir.clone(),
            max_upload_bytes: self.max_upload_bytes,
            bytes_per_day: self.upload_bytes_per_day,
            max_image_pixels: self.max_image_pixels,
            image_concurrency: self.image_concurrency.unwrap_or_else(|| {
                std::thread::available_parallelism().map_or(1, |n| n.get().min(4))
            }),
            remote: self
                .files_url
                .as_ref()
                .map(|url| crate::files::storage::RemoteSettings {
                    url: url.clone(),
                    endpoint: self.s3_endpoint.clone(),
                    region: self.s3_region.clone(),
                }),
        }
    }

    /// The limits on what one person may create or try.
    pub fn quota_settings(&self) -> crate::quota::QuotaSettings {
        let per_hour = |count: u32| crate::limits::Allowance {
            burst: count.max(1),
            every: Duration::from_secs(3600) / count.max(1),
        };
        crate::quota::QuotaSettings {
            max_rooms_per_user: self.max_rooms_per_user,
            max_channels: self.max_channels,
            max_blocks_per_user: self.max_blocks_per_user,
            edit_window: (self.edit_window_secs > 0)
                .then(|| Duration::from_secs(self.edit_window_secs)),
            mention_room_max_members: self.mention_room_max_members,
            typing_max_members: self.typing_max_members,
            rooms_created: per_hour(self.rooms_created_per_hour),
            directs_opened: per_hour(self.directs_opened_per_hour),
            failed_codes: per_hour(self.failed_codes_per_hour),
            uploads: crate::limits::Allowance {
                burst: self.uploads_per_minute.max(1),
                every: Duration::from_secs(60) / self.uploads_per_minute.max(1),
            },
        }
    }

    /// [`Self::header_timeout_ms`] as a duration.
    pub fn header_timeout(&self) -> Duration {
        Duration::from_millis(self.header_timeout_ms.max(1))
    }

    /// [`Self::body_timeout_ms`] as a duration.
    pub fn body_timeout(&self) -> Duration {
        Duration::from_millis(self.body_timeout_ms.max(1))
    }

    /// The host names requests may name (see [`Self::allowed_hosts`]).
    pub fn host_names(&self) -> crate::http::request::HostNames {
        crate::http::request::HostNames::new(self.public_url.as_deref(), &self.allowed_hosts)
    }

    /// [`Self::presence_grace_ms`] as a duration.
    pub fn presence_grace(&self) -> Duration {
        Duration::from_millis(self.presence_grace_ms)
    }

    /// [`Self::hello_timeout_ms`] as a duration.
    pub fn hello_timeout(&self) -> Duration {
        Duration::from_millis(self.hello_timeout_ms)
    }

    /// [`Self::write_timeout_ms`] as a duration (at least 100 ms).
    pub fn write_timeout(&self) -> Duration {
        Duration::from_millis(self.write_timeout_ms.max(100))
    }

    /// What the hub needs of this configuration.
    pub fn hub_settings(&self) -> crate::hub::HubSettings {
        crate::hub::HubSettings {
            presence_grace: self.presence_grace(),
            outbound_queue: self.outbound_queue,
            outbound_queue_bytes: self.outbound_queue_bytes,
        }
    }

    /// [`Self::heartbeat_ms`] as a duration (at least 100 ms).
    pub fn heartbeat(&self) -> Duration {
        Duration::from_millis(self.heartbeat_ms.max(100))
    }
}
