//! natter's project scripts, run as `cargo xtask <command>`.
//!
//! - `run`: install missing tools, build the web client, start the server on :8080.
//! - `dev`: the server plus `trunk serve` on :8081 with live reload (proxying /ws).
//! - `test`: everything CI runs — fmt, clippy, all tests, the WASM build, browser tests,
//!   Autobahn's WebSocket conformance cases.
//! - `bench`: the load benchmarks (crates/bench), servers and generator pinned apart.
//! - `autobahn`: just the Autobahn cases; `fuzz [seconds]`: fuzz the frame decoder, then client frame handling, each that long.
//!
//! Every tool version lives in [`tools`]; an install is skipped when the right version
//! is already there, so only the first run on a machine is slow.

mod checks;
mod compress;
mod s3;
mod tools;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

use anyhow::{bail, Context, Result};

const USAGE: &str = "\
usage: cargo xtask <command> [args]

commands:
  run [server args]   install missing tools, build the web client (release),
                      start the server at http://127.0.0.1:8080
  dev                 server on :8080 plus `trunk serve` on :8081 with live reload
  test                fmt check, clippy -D warnings, all tests, WASM build,
                      browser end-to-end tests, Autobahn cases (what CI runs)
  bench [--quick]     benchmark natter against a raw tungstenite ceiling; writes
                      docs/benchmarks/results.md
  autobahn            Autobahn WebSocket conformance cases against natter-echo
  fuzz [seconds]      fuzz the frame decoder, then client frame handling, each for
                      that long (cargo-fuzz; default 60 s)
";

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let command = args.next();
    let rest: Vec<String> = args.collect();
    let outcome = match command.as_deref() {
        Some("run") => run(&rest),
        Some("dev") => dev(),
        Some("test") => test(),
        Some("bench") => bench(&rest),
        Some("autobahn") => step("Autobahn WebSocket conformance (kosoku)", checks::autobahn),
        Some("fuzz") => match rest.first().map(|s| s.parse::<u64>()) {
            None => step("fuzz client frames", || checks::fuzz(60)),
            Some(Ok(seconds)) => step("fuzz client frames", || checks::fuzz(seconds)),
            Some(Err(_)) => {
                eprint!("fuzz takes a number of seconds\n\n{USAGE}");
                return ExitCode::from(2);
            }
        },
        Some("-h" | "--help" | "help") | None => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Some(other) => {
            eprint!("unknown command {other:?}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("\nxtask: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root (where Cargo.toml with `[workspace]` is).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// A command that runs in the workspace root.
fn cmd(program: &str, args: &[&str]) -> Command {
    let mut command = Command::new(program);
    command.args(args).current_dir(root());
    command
}

/// Runs a command to completion, failing with its command line if it fails.
fn exec(mut command: Command) -> Result<()> {
    let shown = format!("{command:?}");
    let status = command
        .status()
        .with_context(|| format!("could not start {shown}"))?;
    if !status.success() {
        bail!("{shown} failed ({status})");
    }
    Ok(())
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

/// Builds the web client into dist/ (the toolchain step must have run first), with a
/// `.br` and `.gz` beside each file for the server to send.
fn build_client() -> Result<()> {
    exec(tools::trunk(&["build", "--release", "--offline"]))?;
    println!("    precompressing dist/ (brotli 11, gzip 9):");
    compress::precompress(&root().join("dist"))?;
    Ok(())
}

fn run(server_args: &[String]) -> Result<()> {
    step("install missing tools", tools::ensure_client_toolchain)?;
    step("build the web client (trunk, release)", build_client)?;
    println!("\n==> starting natter at http://127.0.0.1:8080 (Ctrl-C stops it)\n");
    let mut command = cmd(&cargo(), &["run", "--release", "-p", "natter-server", "--"]);
    // `cargo xtask run -- --listen …` and `cargo xtask run --listen …` both work.
    command.args(server_args.iter().skip_while(|arg| *arg == "--"));
    exec(command)
}

fn bench(args: &[String]) -> Result<()> {
    step(
        "build release binaries (natter-server, ceiling, natter-bench)",
        || {
            exec(cmd(
                &cargo(),
                &[
                    "build",
                    "--release",
                    "-p",
                    "natter-server",
                    "-p",
                    "natter-bench",
                ],
            ))
        },
    )?;
    step(
        "install the peer servers (socket.io from npm, Flask-SocketIO from PyPI)",
        || {
            let peers = root().join("crates/bench/peers");
            tools::ensure_npm_packages(&peers.join("socketio"), "socket.io 4.8")?;
            let requirements = std::fs::read_to_string(peers.join("flask/requirements.txt"))?;
            tools::ensure_venv("flask-peer", &requirements, "Flask-SocketIO 5")?;
            Ok(())
        },
    )?;
    if !root().join("dist/index.html").exists() {
        println!("    note: dist/ is not built, so the report cannot size the web client (cargo xtask run builds it)");
    }
    let generator = root().join("target/release/natter-bench");
    // Servers run on core 0 (the suite pins them); the generator on core 1.
    let pinned = Command::new("taskset").arg("--version").output().is_ok();
    let mut command = if pinned {
        let mut c = cmd("taskset", &["-c", "1"]);
        c.arg(&generator);
        c
    } else {
        println!("    taskset not found: running unpinned");
        Command::new(&generator)
    };
    command.current_dir(root()).args(args);
    step("benchmark suite", || exec(command))
}

fn dev() -> Result<()> {
    step("install missing tools", tools::ensure_client_toolchain)?;
    step("build the server", || {
        exec(cmd(&cargo(), &["build", "-p", "natter-server"]))
    })?;
    let server_bin = root().join("target/debug/natter-server");
    // The page comes from trunk on :8081, so the server must accept that Origin.
    let mut server = Command::new(&server_bin)
        .args([
            "--allowed-origin",
            "http://127.0.0.1:8081,http://localhost:8081",
            // Emailed links lead to the page trunk serves.
            "--public-url",
            "http://127.0.0.1:8081",
        ])
        .current_dir(root())
        .spawn()
        .with_context(|| format!("could not start {}", server_bin.display()))?;
    println!(
        "\n==> server on :8080; trunk serves the client with reload at http://127.0.0.1:8081\n"
    );
    let trunk = exec(tools::trunk(&["serve", "--offline"]));
    let _ = server.kill();
    let _ = server.wait();
    trunk
}

fn test() -> Result<()> {
    let started = Instant::now();
    let mut timings = Vec::new();
    let mut timed = |name: &'static str, f: &dyn Fn() -> Result<()>| -> Result<()> {
        let t = Instant::now();
        step(name, f)?;
        timings.push((name, t.elapsed()));
        Ok(())
    };
    timed("cargo fmt --check", &|| {
        exec(cmd(&cargo(), &["fmt", "--all", "--check"]))
    })?;
    timed("cargo clippy (warnings denied)", &|| {
        exec(cmd(
            &cargo(),
            &[
                "clippy",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ],
        ))
    })?;
    // Tests whose PostgreSQL or Redis is unreachable leave a marker here (see
    // crates/server/tests/common/services.rs); they are listed at the end.
    let skipped_dir = root().join("target/tmp/skipped-tests");
    let _ = std::fs::remove_dir_all(&skipped_dir);
    let smtp_python = std::cell::OnceCell::new();
    timed("SMTP server for the account tests (aiosmtpd)", &|| {
        let _ = smtp_python.set(tools::ensure_smtp_sink()?);
        Ok(())
    })?;
    let smtp_python = smtp_python.get().cloned().unwrap_or_default();
    let s3 = std::cell::OnceCell::new();
    timed("S3-compatible server for the file tests (s3s-fs)", &|| {
        tools::ensure_s3_server()?;
        let _ = s3.set(s3::S3Server::start()?);
        Ok(())
    })?;
    timed("cargo test (unit, integration, client logic)", &|| {
        let mut command = cmd(&cargo(), &["test", "--workspace"]);
        command.env("NATTER_TEST_SMTP_PYTHON", &smtp_python);
        if let Some(s3) = s3.get() {
            s3.configure(&mut command);
        }
        exec(command)
    })?;
    drop(s3);
    let skipped = skipped_tests(&skipped_dir);
    // What `cargo xtask run` does, minus serving: catches a server that cargo cannot
    // pick or that fails to parse its own configuration.
    timed("cargo run -p natter-server -- --version", &|| {
        exec(cmd(
            &cargo(),
            &["run", "--quiet", "-p", "natter-server", "--", "--version"],
        ))
    })?;
    timed("install missing tools", &tools::ensure_client_toolchain)?;
    timed(
        "WASM build of the web client (trunk, release)",
        &build_client,
    )?;
    timed(
        "browser tools (chromium, Playwright)",
        &tools::ensure_browser_tools,
    )?;
    timed("browser end-to-end tests (Playwright + chromium)", &|| {
        exec(cmd(&cargo(), &["build", "-p", "natter-server"]))?;
        let mut command = cmd("npx", &["playwright", "test"]);
        command
            .current_dir(root().join("tests/e2e"))
            .env(
                "NATTER_SERVER_BIN",
                root().join("target/debug/natter-server"),
            )
            .env("NATTER_TEST_SMTP_PYTHON", &smtp_python);
        exec(command)
    })?;
    timed("Autobahn WebSocket conformance (kosoku)", &checks::autobahn)?;
    println!("\n==> all checks passed in {:.0?}", started.elapsed());
    for (name, took) in timings {
        println!("    {:>7.1?}  {name}", took);
    }
    if !skipped.is_empty() {
        println!(
            "\n==> {} tests SKIPPED (their service is not reachable here; CI runs them):",
            skipped.len()
        );
        for (test, reason) in &skipped {
            println!("    {test}: {reason}");
        }
    }
    Ok(())
}

/// The tests that skipped themselves, with their reasons.
fn skipped_tests(dir: &std::path::Path) -> Vec<(String, String)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut skipped: Vec<(String, String)> = entries
        .flatten()
        .map(|entry| {
            let reason = std::fs::read_to_string(entry.path()).unwrap_or_default();
            (entry.file_name().to_string_lossy().into_owned(), reason)
        })
        .collect();
    skipped.sort();
    skipped
}

/// Runs one named step, announcing it and how long it took.
fn step(name: &str, f: impl FnOnce() -> Result<()>) -> Result<()> {
    println!("\n==> {name}");
    let t = Instant::now();
    f().with_context(|| format!("step failed: {name}"))?;
    println!("    done: {name} ({:.1?})", t.elapsed());
    Ok(())
}
