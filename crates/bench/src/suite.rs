//! The benchmark suite: starts each server (pinned to core 0 when `taskset` exists),
//! connects a fleet, steps the publish rate up, and reports.
//!
//! Scenarios implemented so far:
//! - `idle`: many connections over many rooms, nobody talking: RSS per connection and
//!   connect rate.
//! - `small-rooms`: rooms of 10, the rate stepped up until p99 ≥ 50 ms or a message is
//!   lost: the highest clean rate, CPU-µs per delivery.
//! - `big-room`: one room of many, a few messages per second: latency to everyone.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::fleet::{Fleet, Protocol, Shared};
use crate::measure::{cpu_time, rss_kib, settle, slab_kib, tcp_kernel_kib};

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
}

impl Server {
    /// Name in tables.
    pub fn name(self) -> &'static str {
        match self {
            Server::Ceiling => "ceiling (raw tungstenite)",
            Server::Natter => "natter (SQLite, presence)",
            Server::NatterMemory => "natter (in-memory store, presence)",
        }
    }

    fn protocol(self) -> Protocol {
        match self {
            Server::Ceiling => Protocol::Ceiling,
            Server::Natter | Server::NatterMemory => Protocol::Natter,
        }
    }
}

/// A running server process; killed on drop.
pub struct Running {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    _data: Option<PathBuf>,
}

impl Running {
    /// The process id (for CPU and memory readings).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(dir) = &self._data {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Where the release binaries are.
pub struct Binaries {
    /// `natter-server`.
    pub natter: PathBuf,
    /// `ceiling`.
    pub ceiling: PathBuf,
}

fn taskset_available() -> bool {
    Command::new("taskset")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Starts `server` on `addr`, pinned to `core` if given.
pub fn start(
    server: Server,
    bins: &Binaries,
    addr: SocketAddr,
    core: Option<usize>,
) -> Result<Running> {
    let (program, data) = match server {
        Server::Ceiling => (bins.ceiling.clone(), None),
        Server::Natter | Server::NatterMemory => {
            let dir = std::env::temp_dir().join(format!("natter-bench-{}", std::process::id()));
            std::fs::create_dir_all(&dir)?;
            (bins.natter.clone(), Some(dir))
        }
    };
    let mut command = match core.filter(|_| taskset_available()) {
        Some(core) => {
            let mut c = Command::new("taskset");
            c.args(["-c", &core.to_string()]).arg(&program);
            c
        }
        None => Command::new(&program),
    };
    command.args(["--listen", &addr.to_string()]);
    if let Some(dir) = &data {
        let database_url = match server {
            Server::NatterMemory => "memory:".to_string(),
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
            .env(
                "RUST_LOG",
                std::env::var("BENCH_SERVER_LOG").unwrap_or("error".into()),
            );
    }
    let child = command
        .stdout(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", program.display()))?;
    let running = Running {
        child,
        addr,
        _data: data,
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(addr).is_err() {
        if Instant::now() > deadline {
            bail!("{} did not listen on {addr}", server.name());
        }
        std::thread::sleep(Duration::from_millis(50));
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
    pid: u32,
    number: u64,
    rate: f64,
    duration: Duration,
) -> Step {
    shared.latency.reset();
    shared.counters.reset();
    shared.step.store(number, Ordering::Relaxed);
    let cpu_before = cpu_time(pid).unwrap_or_default();
    fleet.publish(shared, number, rate, duration).await;
    // Let the tail arrive.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let cpu = cpu_time(pid).unwrap_or_default().saturating_sub(cpu_before);
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
        let running = start(server, bins, addr, core)?;
        settle(running.pid(), SETTLE_LIMIT).await;
        let kernel = || slab_kib().unwrap_or(0) + tcp_kernel_kib().unwrap_or(0);
        let (rss_before, kernel_before) = (rss_kib(running.pid()).unwrap_or(0), kernel());
        let shared = Shared::new();
        let (fleet, took) =
            Fleet::connect(addr, server.protocol(), rooms, per_room, shared).await?;
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
        mut progress: impl FnMut(&Step),
    ) -> Result<Vec<Step>> {
        let addr = self.addr;
        let running = start(server, &self.bins, addr, self.core)?;
        let shared = Shared::new();
        let (fleet, _) =
            Fleet::connect(addr, server.protocol(), rooms, per_room, shared.clone()).await?;
        settle(running.pid(), SETTLE_LIMIT).await;
        // Warm-up at the first rate (step 0, not reported): connections, caches and
        // the database file reach their working size before anything is measured.
        if let Some(first) = rates.first() {
            step(&fleet, &shared, running.pid(), 0, *first, duration).await;
        }
        let mut steps = Vec::new();
        for (i, rate) in rates.iter().enumerate() {
            let result = step(
                &fleet,
                &shared,
                running.pid(),
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
}
