//! `natter-bench`: runs the benchmark suite and writes its report. Normally started
//! by `cargo xtask bench`, which builds the release binaries and pins this process.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use clap::Parser;
use natter_bench::report::Results;
use natter_bench::suite::{Bench, Binaries, Server};

/// Command line of the suite.
#[derive(Parser)]
struct Args {
    /// Directory with the release `natter-server` and `ceiling` binaries.
    #[arg(long, default_value = "target/release")]
    bin_dir: PathBuf,
    /// Where to write the Markdown report.
    #[arg(long, default_value = "docs/benchmarks/results.md")]
    out: PathBuf,
    /// Smaller fleets and shorter steps (a smoke run, not a measurement).
    #[arg(long)]
    quick: bool,
    /// Core to pin servers to (the generator should run on another one).
    #[arg(long, default_value_t = 0)]
    server_core: usize,
    /// Port for the servers (outside the ephemeral range 32768–60999).
    #[arg(long, default_value_t = 19300)]
    port: u16,
    /// Run only these scenarios (repeatable; default: all). For development: the
    /// report then holds only what ran.
    #[arg(long = "scenario", value_enum)]
    scenarios: Vec<Scenario>,
    /// Measure only these servers (repeatable; default: all).
    #[arg(long = "server", value_enum)]
    servers: Vec<Server>,
    /// Publish rates for the small-rooms ramp, instead of the default steps.
    #[arg(long, value_delimiter = ',')]
    rates: Vec<f64>,
}

/// The scenarios of the suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Scenario {
    /// Many idle connections: memory and connect rate.
    Idle,
    /// 1000 rooms of 10, rate stepped up.
    SmallRooms,
    /// One room of 2000.
    BigRoom,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let args = Args::parse();
    let bins = Binaries {
        natter: args.bin_dir.join("natter-server"),
        ceiling: args.bin_dir.join("ceiling"),
    };
    let bench = Bench {
        bins,
        addr: SocketAddr::from(([127, 0, 0, 1], args.port)),
        core: Some(args.server_core),
    };
    let (rooms, per_room, secs) = if args.quick {
        (100, 10, 2)
    } else {
        (1000, 10, 5)
    };
    let rates: Vec<f64> = if !args.rates.is_empty() {
        args.rates.clone()
    } else if args.quick {
        vec![200.0, 500.0, 1000.0]
    } else {
        vec![
            500.0, 1000.0, 2000.0, 3000.0, 4000.0, 5000.0, 6000.0, 7000.0, 8000.0, 9000.0, 10000.0,
            12000.0,
        ]
    };
    let big = if args.quick { 200 } else { 2000 };
    let servers = if args.servers.is_empty() {
        vec![Server::Ceiling, Server::Natter]
    } else {
        args.servers.clone()
    };
    let wants = |scenario| args.scenarios.is_empty() || args.scenarios.contains(&scenario);
    let mut results = Results {
        setup: vec![
            format!("{} cores; servers pinned to core {}, generator on another core (when `taskset` exists)", machine_cores(), args.server_core),
            format!("small rooms: {rooms} rooms × {per_room} members, {secs} s per step, open loop"),
            format!("big room: 1 room × {big} members"),
        ],
        idle: Vec::new(),
        small_rooms: Vec::new(),
        big_room: Vec::new(),
    };

    for &server in servers.iter().filter(|_| wants(Scenario::Idle)) {
        println!(
            "==> idle: {} — {} connections",
            server.name(),
            rooms * per_room
        );
        let idle = bench.idle(server, rooms, per_room).await?;
        println!(
            "    {:.1} KiB per connection, {:.0} connects/s",
            idle.rss_kib_per_conn, idle.connects_per_sec
        );
        results.idle.push((server, idle));
    }
    for &server in servers.iter().filter(|_| wants(Scenario::SmallRooms)) {
        println!(
            "==> small rooms: {} — {rooms} × {per_room}, stepping the rate",
            server.name()
        );
        let steps = bench.ramp(server, rooms, per_room, &rates, Duration::from_secs(secs), |s| {
            println!(
                "    {:>6.0} msg/s: {:>7.0} deliveries/s, p99 {:>6.1} ms, lost {}, dup {}, unsent {}, {:.1} CPU-µs/delivery{}",
                s.rate, s.deliveries_per_sec, s.p99_ms, s.lost(), s.duplicates, s.not_sent, s.cpu_us_per_delivery,
                if s.clean() { "" } else { "  ✗ stop" }
            );
        })
        .await?;
        results.small_rooms.push((server, steps));
    }
    for &server in servers.iter().filter(|_| wants(Scenario::BigRoom)) {
        println!("==> big room: {} — 1 × {big}", server.name());
        let steps = bench
            .ramp(
                server,
                1,
                big,
                &[1.0, 10.0, 50.0],
                Duration::from_secs(secs),
                |s| {
                    println!(
                        "    {:>4.0} msg/s: p99 {:.1} ms, p99.9 {:.1} ms, lost {}",
                        s.rate,
                        s.p99_ms,
                        s.p999_ms,
                        s.lost()
                    );
                },
            )
            .await?;
        results.big_room.push((server, steps));
    }

    let markdown = results.markdown();
    println!("\n{markdown}");
    if let Some(dir) = args.out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&args.out, markdown)?;
    println!("written to {}", args.out.display());
    Ok(())
}

/// Cores of the machine (not of this pinned process, which sees only its own).
fn machine_cores() -> usize {
    std::fs::read_to_string("/proc/cpuinfo")
        .map(|info| info.lines().filter(|l| l.starts_with("processor")).count())
        .unwrap_or(0)
}
