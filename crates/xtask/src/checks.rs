//! External checks of the WebSocket layer and the protocol handling:
//!
//! - `autobahn`: Autobahn's WebSocket conformance cases (PyPI `kosoku`, no Docker)
//!   against `natter-echo`, which is natter's WebSocket layer as an echo server. The
//!   compression cases (12.*, 13.*: natter negotiates none) and the 9.* cases (messages
//!   up to 16 MiB, over natter's 64 KiB limit by design) are excluded.
//! - `fuzz`: cargo-fuzz for a given time on each target: `frame_decoder` (the protocol's
//!   decoder alone, hundreds of thousands of inputs a second) and `client_frames` (a
//!   decoded frame handled by a real conversation over the in-memory store).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::tools::{ensure_cargo_tool, ensure_venv, output};
use crate::{cargo, cmd, exec, root};

/// The kosoku release these checks were written against.
const KOSOKU_VERSION: &str = "0.1.0";
/// cargo-fuzz release that installs here.
const CARGO_FUZZ_VERSION: &str = "0.13.1";
/// The cargo-fuzz targets `cargo xtask fuzz` runs, each for the given time: the
/// decoder alone first (fast), then whole conversations.
const FUZZ_TARGETS: [&str; 2] = ["frame_decoder", "client_frames"];
/// Port of the echo server under test (outside the ephemeral range 32768–60999).
const ECHO_PORT: u16 = 19001;
/// Autobahn verdicts that count as passing.
const PASSING: [&str; 3] = ["OK", "NON-STRICT", "INFORMATIONAL"];

/// Kills the child when dropped, so a failed check never leaves a server behind.
struct Reaper(Child);

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A Python virtualenv with kosoku, made once under target/tools.
fn ensure_kosoku() -> Result<PathBuf> {
    let requirements = format!("kosoku=={KOSOKU_VERSION}\n");
    let venv = ensure_venv(
        "kosoku-venv",
        &requirements,
        &format!("kosoku {KOSOKU_VERSION}"),
    )?;
    Ok(venv.join("bin/kosoku"))
}

/// Runs Autobahn's cases against natter-echo; fails unless every case passes.
pub fn autobahn() -> Result<()> {
    let kosoku = ensure_kosoku()?;
    exec(cmd(
        &cargo(),
        &["build", "-p", "natter-server", "--bin", "natter-echo"],
    ))?;
    let addr = format!("127.0.0.1:{ECHO_PORT}");
    let echo = Command::new(root().join("target/debug/natter-echo"))
        .args(["--listen", &addr])
        .stdout(Stdio::null())
        .spawn()
        .context("starting natter-echo")?;
    let _echo = Reaper(echo);
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(&addr).is_err() {
        if Instant::now() > deadline {
            bail!("natter-echo did not start on {addr}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let reports = root().join("target/autobahn");
    let _ = std::fs::remove_dir_all(&reports);
    let mut run = Command::new(&kosoku);
    run.args(["-p", "2", "-x", "9.*", "-x", "12.*", "-x", "13.*", "-o"])
        .arg(&reports)
        .arg(&addr)
        .stdout(Stdio::null());
    exec(run)?;
    let index: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(reports.join("index.json"))?)?;
    let cases = index
        .as_object()
        .and_then(|agents| agents.values().next())
        .and_then(|cases| cases.as_object())
        .context("unexpected Autobahn report layout")?;
    let mut counts = std::collections::BTreeMap::<String, usize>::new();
    let mut failed = Vec::new();
    for (case, result) in cases {
        let behavior = result["behavior"].as_str().unwrap_or("?");
        let close = result["behaviorClose"].as_str().unwrap_or("?");
        *counts.entry(behavior.to_string()).or_default() += 1;
        if !PASSING.contains(&behavior) || !PASSING.contains(&close) {
            failed.push(format!("{case} ({behavior}, close {close})"));
        }
    }
    let summary: Vec<String> = counts.iter().map(|(k, v)| format!("{v} {k}")).collect();
    println!(
        "    Autobahn: {} cases: {}; report in target/autobahn/index.html",
        cases.len(),
        summary.join(", ")
    );
    if !failed.is_empty() {
        bail!(
            "{} Autobahn cases failed: {}",
            failed.len(),
            failed.join(", ")
        );
    }
    println!("{} passed, 0 failed", cases.len());
    Ok(())
}

/// Fuzzes client frame handling for `seconds`.
pub fn fuzz(seconds: u64) -> Result<()> {
    ensure_cargo_tool(
        "cargo-fuzz",
        "cargo-fuzz",
        CARGO_FUZZ_VERSION,
        &["--locked"],
        "about 4 minutes",
    )?;
    let has_nightly = output("rustup", &["toolchain", "list"])
        .is_some_and(|toolchains| toolchains.contains("nightly"));
    if !has_nightly {
        println!("    installing the nightly toolchain for libFuzzer (one-time)");
        exec(cmd(
            "rustup",
            &["toolchain", "install", "nightly", "--profile", "minimal"],
        ))?;
    }
    for target in FUZZ_TARGETS {
        println!(
            "    fuzzing {target} for {seconds} s (seeds in fuzz/seeds, corpus in fuzz/corpus/{target}, crashes in fuzz/artifacts)"
        );
        let corpus = format!("fuzz/corpus/{target}");
        std::fs::create_dir_all(root().join(&corpus))?;
        let mut run = cmd(
            "cargo",
            &[
                "+nightly",
                "fuzz",
                "run",
                target,
                &corpus,
                "fuzz/seeds",
                "--",
                &format!("-max_total_time={seconds}"),
                "-print_final_stats=1",
            ],
        );
        run.env_remove("CARGO").env_remove("RUSTUP_TOOLCHAIN");
        exec(run)?;
    }
    Ok(())
}
