//! `natter-bench`: runs the benchmark suite and writes its report. Normally started
//! by `cargo xtask bench`, which builds the release binaries and pins this process.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use clap::Parser;
use natter_bench::client_size;
use natter_bench::fleet::Attention;
use natter_bench::report::{self, best, Results};
use natter_bench::suite::{Bench, Binaries, Server};

/// Command line of the suite.
#[derive(Parser)]
struct Args {
    /// Directory with the release `natter-server` and `ceiling` binaries.
    #[arg(long, default_value = "target/release")]
    bin_dir: PathBuf,
    /// The peer servers' directory (socket.io's `node_modules` installed).
    #[arg(long, default_value = "crates/bench/peers")]
    peers: PathBuf,
    /// Python of the virtualenv with the Flask-SocketIO peer's requirements.
    #[arg(long, default_value = "target/tools/flask-peer/bin/python")]
    flask_python: PathBuf,
    /// Where to write the Markdown report.
    #[arg(long, default_value = "docs/benchmarks/results.md")]
    out: PathBuf,
    /// Smaller fleets, shorter steps, ceiling and natter only, no unpinned pass: a
    /// smoke run for development (about two minutes), not a measurement.
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
    /// Small-rooms traffic with clients coming and going and one that never reads.
    Churn,
    /// The small-rooms ramp again with the servers free to use every core.
    Unpinned,
    /// A page of history in a room full of edits and reactions, against a plain one.
    History,
    /// Small rooms on natter with everyone typing every 3 s and marking what they read
    /// as messages arrive, against the same ramp without.
    Attention,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let args = Args::parse();
    let bins = Binaries {
        natter: args.bin_dir.join("natter-server"),
        ceiling: args.bin_dir.join("ceiling"),
        peers: args.peers.clone(),
        flask_python: args.flask_python.clone(),
    };
    // Before the servers under load start on `args.port`, one serves the web client
    // there to be fetched as browsers fetch it.
    let web_client = client_size::measure(
        &bins.natter,
        std::path::Path::new("dist"),
        SocketAddr::from(([127, 0, 0, 1], args.port)),
    )
    .await?;
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
        vec![100.0, 200.0, 500.0, 1000.0]
    } else {
        vec![
            50.0, 100.0, 200.0, 500.0, 1000.0, 1500.0, 2000.0, 2500.0, 3000.0, 3500.0, 4000.0,
            4500.0, 5000.0, 5500.0, 6000.0, 7000.0, 8000.0, 9000.0, 10000.0, 12000.0,
        ]
    };
    let big = if args.quick { 200 } else { 2000 };
    let churn_secs = if args.quick { 3 } else { 15 };
    let servers = if !args.servers.is_empty() {
        args.servers.clone()
    } else if args.quick {
        vec![Server::Ceiling, Server::Natter]
    } else {
        vec![
            Server::Ceiling,
            Server::Natter,
            Server::NatterMemory,
            Server::Socketio,
            Server::Flask,
            Server::NatterPostgres,
            Server::NatterCluster,
        ]
    };
    // The quick run leaves out the unpinned pass unless asked for by name.
    let wants = |scenario| {
        if args.scenarios.is_empty() {
            !(args.quick && scenario == Scenario::Unpinned)
        } else {
            args.scenarios.contains(&scenario)
        }
    };
    let mut results = Results {
        setup: vec![
            format!("{} cores; servers pinned to core {}, generator on another core (when `taskset` exists)", machine_cores(), args.server_core),
            format!("small rooms: {rooms} rooms × {per_room} members, {secs} s per step, open loop"),
            format!("big room: 1 room × {big} members"),
            format!("churn: small-rooms traffic at half each server's best clean rate for {churn_secs} s, {CHURN_PER_SEC} connects/s (each stays 2 s), one client that never reads in room 0, which also carries 200 filler messages/s of 3.9 KB"),
            "unpinned: the servers free to use both cores; the generator stays on its core".to_string(),
            "natter on PostgreSQL (1 node) and on 2 nodes (PostgreSQL + Redis, member i of each room on node i mod 2, both nodes pinned to the one server core: the cost of clustering, not its gain) run small rooms only; PostgreSQL and Redis are the machine's services, unpinned, and their CPU is not in CPU µs/delivery".to_string(),
            format!(
                "run on {} as `natter-bench {}` (what `cargo xtask bench` passes on)",
                today(),
                std::env::args().skip(1).collect::<Vec<_>>().join(" ")
            ),
        ],
        idle: Vec::new(),
        small_rooms: Vec::new(),
        big_room: Vec::new(),
        churn: Vec::new(),
        unpinned: Vec::new(),
        history: None,
        attention: None,
        web_client,
    };

    for &server in servers
        .iter()
        .filter(|s| wants(Scenario::Idle) && !s.small_rooms_only())
    {
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
    let print_step = |s: &natter_bench::suite::Step| {
        println!(
            "    {:>6.0} msg/s: {:>7.0} deliveries/s, p99 {:>6.1} ms, lost {}, dup {}, unsent {}, {:.1} CPU-µs/delivery{}",
            s.rate, s.deliveries_per_sec, s.p99_ms, s.lost(), s.duplicates, s.not_sent, s.cpu_us_per_delivery,
            if s.clean() { "" } else { "  ✗ stop" }
        );
    };
    for &server in servers.iter().filter(|_| wants(Scenario::SmallRooms)) {
        println!(
            "==> small rooms: {} — {rooms} × {per_room}, stepping the rate",
            server.name()
        );
        let steps = bench
            .ramp(
                server,
                rooms,
                per_room,
                &rates,
                Duration::from_secs(secs),
                print_step,
            )
            .await?;
        results.small_rooms.push((server, steps));
    }
    for &server in servers
        .iter()
        .filter(|s| wants(Scenario::BigRoom) && !s.small_rooms_only())
    {
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

    for &server in servers
        .iter()
        .filter(|s| wants(Scenario::Churn) && !s.small_rooms_only())
    {
        let best = results
            .small_rooms
            .iter()
            .find(|(s, _)| *s == server)
            .and_then(|(_, steps)| best(steps))
            .map_or(rates[0], |s| s.rate);
        let rate = (best / 2.0).max(rates[0]);
        println!(
            "==> churn: {} — {rate:.0} msg/s, {CHURN_PER_SEC} connects/s, one client never reads",
            server.name()
        );
        let churn = bench
            .churn(
                server,
                rooms,
                per_room,
                rate,
                CHURN_PER_SEC,
                Duration::from_secs(churn_secs),
            )
            .await?;
        print_step(&churn.step);
        println!(
            "    presence p50/p99 {:?} ms, RSS {} → {} KiB, non-reader: {}",
            churn.presence_ms, churn.rss_kib.0, churn.rss_kib.1, churn.non_reader
        );
        results.churn.push((server, churn));
    }
    if wants(Scenario::History) && servers.contains(&Server::Natter) {
        println!("==> history: natter — a 100-message page, plain and after 10,000 reactions and 1,000 edits");
        let pages = bench.history_pages().await?;
        println!(
            "    plain p50 {:.2} ms p99 {:.2} ms; changed p50 {:.2} ms p99 {:.2} ms (seeded in {:.1} s)",
            pages.plain_ms.0, pages.plain_ms.1, pages.changed_ms.0, pages.changed_ms.1, pages.seed_secs
        );
        results.history = Some(pages);
    }
    if wants(Scenario::Attention) && servers.contains(&Server::Natter) {
        let mut runs = Vec::new();
        for attention in [Attention::Off, Attention::Active] {
            println!(
                "==> attention: natter — {rooms} × {per_room}, {}",
                match attention {
                    Attention::Off => "messages only",
                    Attention::Active => "everyone typing every 3 s and marking read",
                }
            );
            let steps = bench
                .ramp_with(
                    Server::Natter,
                    (rooms, per_room, attention),
                    &rates,
                    Duration::from_secs(secs),
                    print_step,
                )
                .await?;
            runs.push(steps);
        }
        let active = runs.pop().unwrap_or_default();
        let off = runs.pop().unwrap_or_default();
        results.attention = Some((off, active));
    }
    let unpinned = Bench {
        core: None,
        ..bench
    };
    let unpinned_servers = [Server::Ceiling, Server::Natter, Server::Socketio];
    for &server in servers
        .iter()
        .filter(|s| wants(Scenario::Unpinned) && unpinned_servers.contains(s))
    {
        println!("==> unpinned small rooms: {}", server.name());
        let steps = unpinned
            .ramp(
                server,
                rooms,
                per_room,
                &rates,
                Duration::from_secs(secs),
                print_step,
            )
            .await?;
        results.unpinned.push((server, steps));
    }

    let markdown = results.markdown();
    println!("\n{markdown}");
    if let Some(dir) = args.out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&args.out, markdown)?;
    let chart = args.out.with_file_name(report::CHART_FILE);
    std::fs::write(&chart, results.svg_chart())?;
    println!("chart written to {}", chart.display());
    println!("written to {}", args.out.display());
    Ok(())
}

/// Connects (and later disconnects) per second in the churn scenario.
const CHURN_PER_SEC: f64 = 20.0;

/// Today's date (UTC) for the report, from `date`.
fn today() -> String {
    std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d"])
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .map(|date| date.trim().to_string())
        .unwrap_or_else(|| "an unknown date".into())
}

/// Cores of the machine (not of this pinned process, which sees only its own).
fn machine_cores() -> usize {
    std::fs::read_to_string("/proc/cpuinfo")
        .map(|info| info.lines().filter(|l| l.starts_with("processor")).count())
        .unwrap_or(0)
}
