//! Every external tool natter's build needs, at pinned versions, installed when missing.
//!
//! - the `wasm32-unknown-unknown` Rust target (rustup);
//! - `trunk` [`TRUNK_VERSION`] (0.22 needs a newer rustc than these machines have);
//! - `wasm-bindgen-cli` at exactly the version of the `wasm-bindgen` crate in Cargo.lock
//!   (trunk cannot download it here, and a mismatch fails the build);
//! - binaryen's `wasm-opt` 132 from npm (`wasm-opt/package.json`), which the release
//!   build shrinks the `.wasm` with (Debian's binaryen 108 predates this wasm-bindgen's
//!   reference-types output and produced a module that failed to load);
//! - `s3s-fs` [`S3S_FS_VERSION`] from crates.io, the S3-compatible server the
//!   object-store tests run against;
//! - Debian's `chromium` and the Playwright npm package for the browser tests
//!   (`npx playwright install` cannot work here; Playwright drives /usr/bin/chromium),
//!   and Debian's colour emoji font for the screenshots they take.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};

use crate::{cmd, exec, root};

/// The trunk release that builds on these machines.
pub const TRUNK_VERSION: &str = "0.21.14";

/// Where the browser tests find chromium unless `CHROMIUM_PATH` says otherwise.
const DEFAULT_CHROMIUM: &str = "/usr/bin/chromium";

/// The wasm target, trunk, wasm-bindgen-cli and wasm-opt.
pub fn ensure_client_toolchain() -> Result<()> {
    ensure_wasm_target()?;
    ensure_cargo_tool(
        "trunk",
        "trunk",
        TRUNK_VERSION,
        &["--locked"],
        "about 15 minutes on 2 cores",
    )?;
    let bindgen = wasm_bindgen_version()?;
    check_trunk_pin(&bindgen)?;
    // No --locked: its lock file names a crate version the registry mirror lacks.
    ensure_cargo_tool(
        "wasm-bindgen",
        "wasm-bindgen-cli",
        &bindgen,
        &[],
        "about 5 minutes on 2 cores",
    )?;
    ensure_npm_packages(&wasm_opt_dir(), "binaryen's wasm-opt 132")
}

/// Where the pinned wasm-opt (npm's `binaryen`) is installed; see `wasm-opt/package.json`.
fn wasm_opt_dir() -> PathBuf {
    root().join("crates/xtask/wasm-opt")
}

/// `trunk` with `args`, finding the pinned wasm-opt first on its PATH (Trunk.toml asks
/// for exactly that version, and trunk cannot download one here).
pub fn trunk(args: &[&str]) -> Command {
    let mut trunk = cmd("trunk", args);
    let bin = wasm_opt_dir().join("node_modules/.bin");
    let path = std::env::var_os("PATH").unwrap_or_default();
    let paths = std::iter::once(bin).chain(std::env::split_paths(&path));
    if let Ok(joined) = std::env::join_paths(paths) {
        trunk.env("PATH", joined);
    }
    trunk
}

fn ensure_wasm_target() -> Result<()> {
    let installed = output("rustup", &["target", "list", "--installed"]).unwrap_or_default();
    if installed
        .lines()
        .any(|l| l.trim() == "wasm32-unknown-unknown")
    {
        println!("    ok: rust target wasm32-unknown-unknown");
        return Ok(());
    }
    println!("    installing rust target wasm32-unknown-unknown (one-time, under a minute)");
    exec(cmd("rustup", &["target", "add", "wasm32-unknown-unknown"]))
}

/// Installs `krate` at `version` unless `bin --version` already reports it.
pub fn ensure_cargo_tool(
    bin: &str,
    krate: &str,
    version: &str,
    extra: &[&str],
    takes: &str,
) -> Result<()> {
    let found = output(bin, &["--version"]).unwrap_or_default();
    if found.split_whitespace().any(|word| word == version) {
        println!("    ok: {bin} {version}");
        return Ok(());
    }
    let had = found.trim();
    if had.is_empty() {
        println!("    installing {krate} {version} (one-time, {takes})");
    } else {
        println!("    replacing {had} with {krate} {version} (one-time, {takes})");
    }
    let started = Instant::now();
    let mut args = vec!["install", krate, "--version", version, "--force"];
    args.extend_from_slice(extra);
    exec(cmd(&crate::cargo(), &args))?;
    println!(
        "    installed {krate} {version} in {:.0?}",
        started.elapsed()
    );
    Ok(())
}

/// The `wasm-bindgen` crate version in Cargo.lock.
pub fn wasm_bindgen_version() -> Result<String> {
    let lock = std::fs::read_to_string(root().join("Cargo.lock")).context("reading Cargo.lock")?;
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line.trim() == "name = \"wasm-bindgen\"" {
            if let Some(version) = lines
                .next()
                .and_then(|l| l.trim().strip_prefix("version = \""))
                .and_then(|v| v.strip_suffix('"'))
            {
                return Ok(version.to_string());
            }
        }
    }
    bail!("no wasm-bindgen package in Cargo.lock")
}

/// Trunk.toml pins the wasm-bindgen it expects; it must agree with Cargo.lock.
fn check_trunk_pin(bindgen: &str) -> Result<()> {
    let trunk_toml =
        std::fs::read_to_string(root().join("Trunk.toml")).context("reading Trunk.toml")?;
    let pinned = trunk_toml
        .lines()
        .find_map(|l| l.trim().strip_prefix("wasm_bindgen = \""))
        .and_then(|v| v.strip_suffix('"'));
    match pinned {
        Some(pin) if pin == bindgen => Ok(()),
        Some(pin) => bail!(
            "Trunk.toml pins wasm_bindgen = \"{pin}\" but Cargo.lock has wasm-bindgen {bindgen}: \
             set Trunk.toml [tools] wasm_bindgen = \"{bindgen}\""
        ),
        None => bail!("Trunk.toml has no [tools] wasm_bindgen pin"),
    }
}

/// Chromium from apt and the Playwright npm package.
pub fn ensure_browser_tools() -> Result<()> {
    let chromium = chromium_path();
    if chromium.exists() {
        println!("    ok: {}", chromium.display());
    } else if std::env::var_os("CHROMIUM_PATH").is_some() {
        bail!("CHROMIUM_PATH={} does not exist", chromium.display());
    } else if is_root() {
        println!("    installing Debian's chromium with apt (one-time, 1–3 minutes)");
        apt_install(&["chromium"])?;
    } else {
        bail!(
            "the browser tests need Debian's chromium: run `sudo apt-get install -y chromium` \
             (or set CHROMIUM_PATH to a Chromium binary)"
        );
    }
    ensure_emoji_font()?;
    ensure_npm_packages(&root().join("tests/e2e"), "the Playwright npm package")
}

/// Where Debian's colour emoji font lands.
const EMOJI_FONT: &str = "/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf";

/// Debian's colour emoji font, so reactions in the screenshots the browser tests take
/// are emoji and not empty boxes (a person's own browser has one). Not needed for the
/// tests to pass: without root it is only suggested.
fn ensure_emoji_font() -> Result<()> {
    if Path::new(EMOJI_FONT).exists() {
        println!("    ok: {EMOJI_FONT}");
    } else if is_root() {
        println!("    installing Debian's emoji font with apt (one-time, seconds)");
        apt_install(&["fonts-noto-color-emoji"])?;
    } else {
        println!(
            "    note: without `sudo apt-get install -y fonts-noto-color-emoji` emoji show \
             as boxes in screenshots"
        );
    }
    Ok(())
}

/// `npm ci` in `dir` unless its `node_modules` matches its lock file.
pub fn ensure_npm_packages(dir: &Path, what: &str) -> Result<()> {
    if npm_install_needed(dir) {
        println!("    installing {what} from npm (one-time, seconds)");
        let mut npm = cmd("npm", &["ci", "--no-audit", "--no-fund"]);
        npm.current_dir(dir);
        exec(npm)?;
    } else {
        println!("    ok: {}", dir.join("node_modules").display());
    }
    Ok(())
}

/// A Python virtualenv under `target/tools/<name>` holding `requirements` (pip's
/// requirements-file syntax), made once: a copy of the requirements installed last
/// is kept inside, and the venv is only rebuilt when they change. Returns the venv.
pub fn ensure_venv(name: &str, requirements: &str, what: &str) -> Result<PathBuf> {
    let venv = root().join("target/tools").join(name);
    let installed = venv.join("natter-requirements.txt");
    if std::fs::read_to_string(&installed).is_ok_and(|done| done == requirements) {
        println!("    ok: {what} in target/tools/{name}");
        return Ok(venv);
    }
    println!("    installing {what} into target/tools/{name} (one-time, seconds to a minute)");
    std::fs::create_dir_all(root().join("target/tools"))?;
    let make_venv = || {
        Command::new("python3")
            .args(["-m", "venv", "--clear"])
            .arg(&venv)
            .status()
            .is_ok_and(|s| s.success())
    };
    if !make_venv() {
        if !is_root() {
            bail!("python3 with venv is needed for {what}: `sudo apt-get install -y python3-venv`");
        }
        println!("    installing python3-venv with apt (one-time)");
        apt_install(&["python3", "python3-venv"])?;
        if !make_venv() {
            bail!("could not create a Python virtualenv in {}", venv.display());
        }
    }
    let wanted = venv.join("requirements.txt");
    std::fs::write(&wanted, requirements)?;
    let mut install = Command::new(venv.join("bin/pip"));
    install.args(["install", "-q", "-r"]).arg(&wanted);
    exec(install)?;
    std::fs::write(&installed, requirements)?;
    Ok(venv)
}

/// The aiosmtpd release (and its dependencies) the account tests receive email with.
const SMTP_SINK_REQUIREMENTS: &str = "aiosmtpd==1.4.6\natpublic==9.0.0\nattrs==26.1.0\n";

/// A virtualenv with aiosmtpd, the real SMTP server the account tests (Rust and
/// browser) send to; returns its Python, which the tests find in
/// `NATTER_TEST_SMTP_PYTHON`.
pub fn ensure_smtp_sink() -> Result<PathBuf> {
    let venv = ensure_venv("smtp-sink", SMTP_SINK_REQUIREMENTS, "aiosmtpd 1.4.6")?;
    Ok(venv.join("bin/python"))
}

/// The s3s-fs release the object-store tests run against (0.15 and later need a newer
/// rustc than these machines have).
const S3S_FS_VERSION: &str = "0.14.1";

/// `s3s-fs`, a real S3-compatible server over a directory, from crates.io: the cluster
/// tests keep their files in it as several nodes would in S3.
pub fn ensure_s3_server() -> Result<()> {
    ensure_cargo_tool(
        "s3s-fs",
        "s3s-fs",
        S3S_FS_VERSION,
        &["--locked", "--features", "binary"],
        "about 3 minutes on 2 cores",
    )
}

/// Whether this process may install system packages.
pub fn is_root() -> bool {
    output("id", &["-u"]).as_deref().map(str::trim) == Some("0")
}

/// Installs Debian packages (as root).
pub fn apt_install(packages: &[&str]) -> Result<()> {
    exec(cmd("apt-get", &["update", "-qq"]))?;
    let mut install = cmd("apt-get", &["install", "-y", "-qq"]);
    install
        .args(packages)
        .env("DEBIAN_FRONTEND", "noninteractive");
    exec(install)
}

fn chromium_path() -> PathBuf {
    std::env::var_os("CHROMIUM_PATH")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CHROMIUM))
}

/// npm writes `node_modules/.package-lock.json` on install; reinstall when it is
/// missing or older than the committed lock file.
fn npm_install_needed(dir: &Path) -> bool {
    let modified = |p: PathBuf| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    match (
        modified(dir.join("node_modules/.package-lock.json")),
        modified(dir.join("package-lock.json")),
    ) {
        (Some(installed), Some(wanted)) => installed < wanted,
        _ => true,
    }
}

/// A command's stdout, or None if it could not run or failed.
pub fn output(program: impl AsRef<std::ffi::OsStr>, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}
