//! The benchmark suite: starts each server (pinned to core 0 when `taskset` exists),
//! connects a fleet, steps the publish rate up, and reports.
//!
//! Scenarios implemented so far:
//! - `idle`: many connections over many rooms, nobody talking: RSS per connection and
//!   connect rate.
//! - `small-rooms`: rooms of 10, the rate stepped up until p99 ≥ 50 ms or a message is
//!   lost: the highest clean rate, CPU-µs per delivery.
//! - `big-room`: one room of many, a few messages per second: latency to everyone.
//! - `churn`: small-rooms traffic with people coming and going and a client that
//!   never reads.
//!
//! natter also runs small rooms on PostgreSQL, as one node and as a two-node cluster
//! (PostgreSQL + Redis, members of each room spread over both nodes), in a fresh
//! schema of the database at `NATTER_BENCH_DATABASE_URL` (default
//! `postgres://127.0.0.1:5432/test`) and the Redis at `NATTER_BENCH_REDIS_URL`
//! (default `redis://127.0.0.1:6379`).
//!
//! Why one long file: each scenario starts its servers, steps its rates and records its
//! rows the same way; side by side they stay comparable.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::fleet::{join, watch_presence, Attention, Fleet, Protocol, Shared};
use crate::measure::Histogram;
use crate::measure::{cpu_time, rss_kib, settle, slab_kib, tcp_kernel_kib};

/// Filler messages per second into room 0 during the churn scenario.
const FILLER_PER_SEC: f64 = 200.0;

/// Longest wait for a server to finish one phase's work before the next is measured.
const SETTLE_LIMIT: Duration = Duration::from_secs(120);

/// A server under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Server {
    /// The raw tokio-tungstenite broadcast server in this crate.
    Ceiling,
    /// natter with its default SQLite store and presence.
    Natter,
    /// natter with the in-memory store: what persistence costs.
    NatterMemory,
    /// socket.io 4.8 on Node (`crates/bench/peers/socketio`).
    Socketio,
    /// Flask-SocketIO 5 in gevent mode (`crates/bench/peers/flask`).
    Flask,
    /// One natter node on PostgreSQL (what the shared database costs).
    NatterPostgres,
    /// Two natter nodes on PostgreSQL and Redis, every room spread over both.
    NatterCluster,
}

impl Server {
    /// Name in tables.
    pub fn name(self) -> &'static str {
        match self {
            Server::Ceiling => "ceiling (raw tungstenite)",
            Server::Natter => "natter (SQLite, presence)",
            Server::NatterMemory => "natter (in-memory store, presence)",
            Server::Socketio => "socket.io 4.8 (Node)",
            Server::Flask => "Flask-SocketIO 5 (gevent)",
            Server::NatterPostgres => "natter (PostgreSQL, 1 node)",
            Server::NatterCluster => "natter (2 nodes: PostgreSQL + Redis)",
        }
    }

    /// How many processes serve (each on its own port, from the bench port up).
    fn nodes(self) -> usize {
        match self {
            Server::NatterCluster => 2,
            _ => 1,
        }
    }

    /// Measured in the small-rooms scenario only (the clustered setups).
    pub fn small_rooms_only(self) -> bool {
        matches!(self, Server::NatterPostgres | Server::NatterCluster)
    }

    fn protocol(self) -> Protocol {
        match self {
            Server::Ceiling => Protocol::Ceiling,
            Server::Natter
            | Server::NatterMemory
            | Server::NatterPostgres
            | Server::NatterCluster => Protocol::Natter,
            Server::Socketio | Server::Flask => Protocol::SocketIo,
        }
    }
}

/// A running server (one process per node); killed on drop.
pub struct Running {
    children: Vec<Child>,
    /// Where each node listens; clients are spread over them.
    pub addrs: Vec<SocketAddr>,
    _data: Option<PathBuf>,
    /// The PostgreSQL schema the nodes share, dropped afterwards.
    schema: Option<PgSchema>,
}

impl Running {
    /// The first node's process id (for memory readings).
    pub fn pid(&self) -> u32 {
        self.pids()[0]
    }

    /// Every node's process id (CPU time is summed over them).
    pub fn pids(&self) -> Vec<u32> {
        self.children.iter().map(Child::id).collect()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(dir) = &self._data {
            let _ = std::fs::remove_dir_all(dir);
        }
        if let Some(schema) = self.schema.take() {
            schema.drop_now();
        }
    }
}

/// A fresh schema in the benchmark's PostgreSQL database.
struct PgSchema {
    /// The server URL, with the schema as search path.
    url: String,
    base: String,
    name: String,
}

impl PgSchema {
    async fn create() -> Result<PgSchema> {
        use sqlx::Connection;
        let base = std::env::var("NATTER_BENCH_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://127.0.0.1:5432/test".into());
        let mut conn = sqlx::PgConnection::connect(&base)
            .await
            .with_context(|| format!("PostgreSQL at {base} (set NATTER_BENCH_DATABASE_URL)"))?;
        let name = format!("natter_bench_{}", std::process::id());
        for statement in [
            format!("DROP SCHEMA IF EXISTS {name} CASCADE"),
            format!("CREATE SCHEMA {name}"),
        ] {
            sqlx::query(&statement).execute(&mut conn).await?;
        }
        let separator = if base.contains('?') { '&' } else { '?' };
        Ok(PgSchema {
            url: format!("{base}{separator}options[search_path]={name}"),
            base,
            name,
        })
    }

    /// Drops the schema (from a thread of its own: this runs inside `Drop`).
    fn drop_now(self) {
        let _ = std::thread::spawn(move || {
            use sqlx::Connection;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let Ok(runtime) = runtime {
                runtime.block_on(async {
                    if let Ok(mut conn) = sqlx::PgConnection::connect(&self.base).await {
                        let drop = format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name);
                        let _ = sqlx::query(&drop).execute(&mut conn).await;
                    }
                });
            }
        })
        .join();
    }
}

/// Where the servers under test are.
pub struct Binaries {
    /// `natter-server` (release).
    pub natter: PathBuf,
    /// `ceiling` (release).
    pub ceiling: PathBuf,
    /// `crates/bench/peers`, with the socket.io peer's `node_modules` installed.
    pub peers: PathBuf,
    /// The Python of the virtualenv holding the Flask-SocketIO peer's requirements.
    pub flask_python: PathBuf,
}

fn taskset_available() -> bool {
    Command::new("taskset")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Starts `server` on `addr` (a cluster's further nodes on the ports after it), pinned
/// to `core` if given.
pub async fn start(
    server: Server,
    bins: &Binaries,
    addr: SocketAddr,
    core: Option<usize>,
) -> Result<Running> {
    let (program, script, data) = match server {
        Server::Ceiling => (bins.ceiling.clone(), None, None),
        Server::Natter | Server::NatterMemory | Server::NatterPostgres | Server::NatterCluster => {
            let dir = std::env::temp_dir().join(format!("natter-bench-{}", std::process::id()));
            std::fs::create_dir_all(&dir)?;
            (bins.natter.clone(), None, Some(dir))
        }
        Server::Socketio => (
            PathBuf::from("node"),
            Some(bins.peers.join("socketio/server.js")),
            None,
        ),
        Server::Flask => (
            bins.flask_python.clone(),
            Some(bins.peers.join("flask/server.py")),
            None,
        ),
    };
    let schema = match server {
        Server::NatterPostgres | Server::NatterCluster => Some(PgSchema::create().await?),
        _ => None,
    };
    let redis_prefix = format!("natter-bench-{}", std::process::id());
    let addrs: Vec<SocketAddr> = (0..server.nodes())
        .map(|n| SocketAddr::new(addr.ip(), addr.port() + n as u16))
        .collect();
    let mut running = Running {
        children: Vec::new(),
        addrs: addrs.clone(),
        _data: data.clone(),
        schema,
    };
    for node_addr in &addrs {
        let mut command = match core.filter(|_| taskset_available()) {
            Some(core) => {
                let mut c = Command::new("taskset");
                c.args(["-c", &core.to_string()]).arg(&program);
                c
            }
            None => Command::new(&program),
        };
        command
            .args(script.iter())
            .args(["--listen", &node_addr.to_string()]);
        if let Some(dir) = &data {
            let database_url = match (server, &running.schema) {
                (Server::NatterMemory, _) => "memory:".to_string(),
                (_, Some(schema)) => schema.url.clone(),
                _ => format!("sqlite://{}/bench.db", dir.display()),
            };
            command
                .env("NATTER_DATABASE_URL", database_url)
                .env("NATTER_STATIC_DIR", "none")
                .env("NATTER_MAX_CONNECTIONS_PER_IP", "1000000")
                .env("NATTER_RATE_PER_CONNECTION", "1000000")
                .env("NATTER_BURST_PER_CONNECTION", "1000000")
                .env("NATTER_RATE_PER_IP", "10000000")
                .env("NATTER_BURST_PER_IP", "10000000")
                // Every simulated client comes from 127.0.0.1.
                .env("NATTER_MAX_HTTP_CONNECTIONS_PER_IP", "1000000")
                .env("NATTER_ROOMS_CREATED_PER_HOUR", "10000000")
                .env("NATTER_DIRECTS_OPENED_PER_HOUR", "10000000")
                // The idle scenario puts one client in thousands of rooms.
                .env("NATTER_MAX_ROOMS_PER_USER", "10000000")
                .env("NATTER_MAX_CHANNELS", "10000000")
                .env("RUST_LOG", "error");
            if server == Server::NatterCluster {
                let redis = std::env::var("NATTER_BENCH_REDIS_URL")
                    .unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
                command
                    .env("NATTER_REDIS_URL", redis)
                    .env("NATTER_REDIS_PREFIX", &redis_prefix);
            }
        }
        let child = command
            .stdout(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", program.display()))?;
        running.children.push(child);
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    for node_addr in &addrs {
        while std::net::TcpStream::connect(node_addr).is_err() {
            if Instant::now() > deadline {
                bail!("{} did not listen on {node_addr}", server.name());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    if server.nodes() > 1 {
        // Let every node subscribe to the others before clients arrive.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Ok(running)
}

/// One measured step.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Step {
    /// Published messages per second.
    pub rate: f64,
    /// Deliveries expected (published × other members).
    pub expected: u64,
    /// Deliveries received.
    pub received: u64,
    /// Published messages the generator could not queue.
    pub not_sent: u64,
    /// Duplicate deliveries.
    pub duplicates: u64,
    /// Deliveries out of order.
    pub out_of_order: u64,
    /// Latency percentiles in milliseconds.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
    /// Server CPU time per delivery, microseconds.
    pub cpu_us_per_delivery: f64,
    /// Deliveries per second achieved.
    pub deliveries_per_sec: f64,
}

impl Step {
    /// Deliveries missing.
    pub fn lost(&self) -> u64 {
        self.expected.saturating_sub(self.received)
    }

    /// Within the scenario's bar: p99 under 50 ms and nothing lost.
    pub fn clean(&self) -> bool {
        self.p99_ms < 50.0 && self.lost() == 0 && self.not_sent == 0 && self.duplicates == 0
    }
}

/// Runs one step on a connected fleet.
pub async fn step(
    fleet: &Fleet,
    shared: &Arc<Shared>,
    pids: &[u32],
    number: u64,
    rate: f64,
    duration: Duration,
) -> Step {
    shared.latency.reset();
    shared.counters.reset();
    shared.step.store(number, Ordering::Relaxed);
    let cpu_of_all = || -> Duration { pids.iter().filter_map(|pid| cpu_time(*pid)).sum() };
    let cpu_before = cpu_of_all();
    fleet.publish(shared, number, rate, duration).await;
    // Let the tail arrive.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let cpu = cpu_of_all().saturating_sub(cpu_before);
    let c = &shared.counters;
    let sent = c.sent.load(Ordering::Relaxed);
    let received = c.received.load(Ordering::Relaxed);
    let ms = |q: f64| shared.latency.quantile(q).as_secs_f64() * 1000.0;
    Step {
        rate,
        expected: sent * (fleet.per_room as u64 - 1),
        received,
        not_sent: c.not_sent.load(Ordering::Relaxed),
        duplicates: c.duplicates.load(Ordering::Relaxed),
        out_of_order: c.out_of_order.load(Ordering::Relaxed),
        p50_ms: ms(0.5),
        p99_ms: ms(0.99),
        p999_ms: ms(0.999),
        cpu_us_per_delivery: if received == 0 {
            0.0
        } else {
            cpu.as_secs_f64() * 1e6 / received as f64
        },
        deliveries_per_sec: received as f64 / duration.as_secs_f64().max(1e-9),
    }
}

/// Idle scenario result.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Idle {
    /// Connections opened.
    pub connections: usize,
    /// Server RSS per connection, KiB.
    pub rss_kib_per_conn: f64,
    /// Kernel memory per connection, KiB: slab and TCP buffer growth, both ends of
    /// each loopback connection together.
    pub kernel_kib_per_conn: f64,
    /// Seconds until the server went quiet after the last connect.
    pub settle_secs: f64,
    /// Connections (with join) per second.
    pub connects_per_sec: f64,
}

/// Churn scenario result: scenario 2's traffic plus people coming and going, plus one
/// client that never reads.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Churn {
    /// The small-rooms traffic during the churn.
    pub step: Step,
    /// Connects (each followed by a disconnect) per second.
    pub churn_per_sec: f64,
    /// Presence latency (connect started → `online` seen by another client), p50 and
    /// p99 in ms; `None` for servers without presence.
    pub presence_ms: Option<(f64, f64)>,
    /// Churners whose `online` was seen / churners started.
    pub presence_seen: (u64, u64),
    /// Server RSS before and after the churn period, KiB.
    pub rss_kib: (u64, u64),
    /// What became of the client that never reads.
    pub non_reader: String,
}

/// Where and how the servers under test run.
pub struct Bench {
    /// The release binaries.
    pub bins: Binaries,
    /// The address each server listens on (one at a time).
    pub addr: SocketAddr,
    /// The core servers are pinned to, if any.
    pub core: Option<usize>,
}

impl Bench {
    /// Connects an idle fleet and measures memory and connect rate.
    pub async fn idle(&self, server: Server, rooms: usize, per_room: usize) -> Result<Idle> {
        let addr = self.addr;
        let core = self.core;
        let bins = &self.bins;
        let running = start(server, bins, addr, core).await?;
        settle(running.pid(), SETTLE_LIMIT).await;
        let kernel = || slab_kib().unwrap_or(0) + tcp_kernel_kib().unwrap_or(0);
        let (rss_before, kernel_before) = (rss_kib(running.pid()).unwrap_or(0), kernel());
        let shared = Shared::new();
        let (fleet, took) = Fleet::connect(
            &running.addrs,
            server.protocol(),
            rooms,
            per_room,
            shared,
            Attention::Off,
        )
        .await?;
        let connected = Instant::now();
        settle(running.pid(), SETTLE_LIMIT).await;
        let settle_secs = connected.elapsed().as_secs_f64();
        let (rss_after, kernel_after) = (rss_kib(running.pid()).unwrap_or(0), kernel());
        let connections = fleet.members.len();
        let per_conn =
            |after: u64, before: u64| after.saturating_sub(before) as f64 / connections as f64;
        Ok(Idle {
            connections,
            rss_kib_per_conn: per_conn(rss_after, rss_before),
            kernel_kib_per_conn: per_conn(kernel_after, kernel_before),
            settle_secs,
            connects_per_sec: connections as f64 / took.as_secs_f64(),
        })
    }

    /// Steps the rate up on one fleet until a step is not clean; returns every step.
    pub async fn ramp(
        &self,
        server: Server,
        rooms: usize,
        per_room: usize,
        rates: &[f64],
        duration: Duration,
        progress: impl FnMut(&Step),
    ) -> Result<Vec<Step>> {
        let shape = (rooms, per_room, Attention::Off);
        self.ramp_with(server, shape, rates, duration, progress)
            .await
    }

    /// [`Bench::ramp`] with `rooms × per_room` members whose `attention` is given:
    /// with [`Attention::Active`] they also type and mark what they read.
    pub async fn ramp_with(
        &self,
        server: Server,
        (rooms, per_room, attention): (usize, usize, Attention),
        rates: &[f64],
        duration: Duration,
        mut progress: impl FnMut(&Step),
    ) -> Result<Vec<Step>> {
        let addr = self.addr;
        let running = start(server, &self.bins, addr, self.core).await?;
        let shared = Shared::new();
        let (fleet, _) = Fleet::connect(
            &running.addrs,
            server.protocol(),
            rooms,
            per_room,
            shared.clone(),
            attention,
        )
        .await?;
        settle(running.pid(), SETTLE_LIMIT).await;
        // Warm-up at the first rate (step 0, not reported): connections, caches and
        // the database file reach their working size before anything is measured.
        if let Some(first) = rates.first() {
            step(&fleet, &shared, &running.pids(), 0, *first, duration).await;
        }
        let mut steps = Vec::new();
        for (i, rate) in rates.iter().enumerate() {
            let result = step(
                &fleet,
                &shared,
                &running.pids(),
                i as u64 + 1,
                *rate,
                duration,
            )
            .await;
            progress(&result);
            let clean = result.clean();
            steps.push(result);
            if !clean {
                break;
            }
        }
        Ok(steps)
    }

    /// Runs small-rooms traffic at `rate` while `churn_per_sec` clients connect, join a
    /// room, stay two seconds and leave, and one client joins room 0 — which also
    /// carries a stream of 3.9 KB filler messages — and never reads.
    pub async fn churn(
        &self,
        server: Server,
        rooms: usize,
        per_room: usize,
        rate: f64,
        churn_per_sec: f64,
        duration: Duration,
    ) -> Result<Churn> {
        let addr = self.addr;
        let protocol = server.protocol();
        let running = start(server, &self.bins, addr, self.core).await?;
        let shared = Shared::new();
        let (fleet, _) = Fleet::connect(
            &running.addrs,
            protocol,
            rooms,
            per_room,
            shared.clone(),
            Attention::Off,
        )
        .await?;
        settle(running.pid(), SETTLE_LIMIT).await;
        step(&fleet, &shared, &running.pids(), 0, rate, duration).await;

        let started: Arc<std::sync::Mutex<HashMap<String, Instant>>> = Arc::default();
        let presence = Arc::new(Histogram::default());
        let watcher = match protocol {
            Protocol::Natter => {
                Some(watch_presence(addr, started.clone(), presence.clone()).await?)
            }
            _ => None,
        };
        // Joins room 0 (the busiest rooms are all alike) and is never read again.
        let (non_reader, _) = join(addr, protocol, 900_000, 0).await?;
        let rss_before = rss_kib(running.pid()).unwrap_or(0);

        let churners = (churn_per_sec * duration.as_secs_f64()).round() as usize;
        let churn = async {
            let begin = Instant::now();
            for n in 0..churners {
                let due = begin + Duration::from_secs_f64(n as f64 / churn_per_sec);
                tokio::time::sleep_until(due.into()).await;
                let index = 1_000_000 + n;
                if let Ok(mut started) = started.lock() {
                    started.insert(format!("b{index}"), Instant::now());
                }
                tokio::spawn(async move {
                    if let Ok((ws, _)) = join(addr, protocol, index, n % rooms).await {
                        // Read (and drop) whatever arrives for two seconds, then leave.
                        let (_, mut stream) = futures_util::StreamExt::split(ws);
                        let _ = tokio::time::timeout(Duration::from_secs(2), async {
                            while futures_util::StreamExt::next(&mut stream).await.is_some() {}
                        })
                        .await;
                    }
                });
            }
        };
        // Room 0 also carries 3.9 KB filler messages at FILLER_PER_SEC, so the client that
        // never reads falls behind by about 0.8 MB a second.
        let filler = async {
            let mut every = tokio::time::interval(Duration::from_secs_f64(1.0 / FILLER_PER_SEC));
            for n in 0..(FILLER_PER_SEC * duration.as_secs_f64()) as u64 {
                every.tick().await;
                fleet.send_filler(0, n);
            }
        };
        let pids = running.pids();
        let (traffic, (), ()) = tokio::join!(
            step(&fleet, &shared, &pids, 1, rate, duration),
            churn,
            filler
        );
        let rss_after = rss_kib(running.pid()).unwrap_or(0);
        let seen = churners as u64 - started.lock().map(|s| s.len() as u64).unwrap_or(0);
        if let Some(watcher) = watcher {
            watcher.abort();
        }
        let ms = |q: f64| presence.quantile(q).as_secs_f64() * 1000.0;
        Ok(Churn {
            step: traffic,
            churn_per_sec,
            presence_ms: (protocol == Protocol::Natter).then(|| (ms(0.5), ms(0.99))),
            presence_seen: (seen, churners as u64),
            rss_kib: (rss_before, rss_after),
            non_reader: non_reader_fate(non_reader).await,
        })
    }
}

/// Reads what the never-reading client was sent until the server closed it (or ten
/// seconds pass): was it cut off, and how.
async fn non_reader_fate(
    mut ws: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
) -> String {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    let fate = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Close(Some(frame)))) => {
                    break format!("closed by the server ({})", u16::from(frame.code));
                }
                Some(Ok(Message::Close(None))) => break "closed by the server".to_string(),
                Some(Ok(_)) => {}
                Some(Err(_)) | None => break "connection dropped by the server".to_string(),
            }
        }
    })
    .await;
    fate.unwrap_or_else(|_| "still connected, buffered".to_string())
}
