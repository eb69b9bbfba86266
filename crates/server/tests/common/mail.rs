//! A real SMTP server for the account tests: PyPI's `aiosmtpd` (aio-libs), started per
//! test on its own port, storing what it receives in a Maildir that the test reads.
//!
//! `cargo xtask test` installs it in a virtualenv and names its Python in
//! `NATTER_TEST_SMTP_PYTHON`; without that, a `python3` that can import `aiosmtpd` is
//! used, and otherwise the test is skipped (or fails with `CI=true`).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

use super::process::free_addr;
use super::services::skip;

/// A running SMTP sink.
pub struct SmtpSink {
    child: Child,
    /// `smtp://127.0.0.1:<port>` for `--smtp-url`.
    pub url: String,
    /// The port it listens on.
    pub port: u16,
    maildir: PathBuf,
    _dir: tempfile::TempDir,
}

/// The Python to run aiosmtpd with, if there is one.
fn python() -> Option<String> {
    if let Ok(python) = std::env::var("NATTER_TEST_SMTP_PYTHON") {
        return Some(python);
    }
    let importable = std::process::Command::new("python3")
        .args(["-c", "import aiosmtpd"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    importable.then(|| "python3".to_string())
}

impl SmtpSink {
    /// A sink on a fresh port — or `None` (after [`skip`]) without aiosmtpd.
    pub async fn start(test: &str) -> Option<SmtpSink> {
        Self::start_on(test, free_addr().port()).await
    }

    /// A sink on `port` (to bring a "down" SMTP server up where natter expects it).
    pub async fn start_on(test: &str, port: u16) -> Option<SmtpSink> {
        let Some(python) = python() else {
            skip(
                test,
                "no aiosmtpd (run `cargo xtask test`, or pip install aiosmtpd, or set NATTER_TEST_SMTP_PYTHON)",
            );
            return None;
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let maildir = dir.path().join("maildir");
        let child = Command::new(python)
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&maildir)
            .kill_on_drop(true)
            .stdout(Stdio::null())
            .spawn()
            .expect("aiosmtpd starts");
        let deadline = Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(
                Instant::now() < deadline,
                "aiosmtpd did not listen on {port}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Some(SmtpSink {
            child,
            url: format!("smtp://127.0.0.1:{port}"),
            port,
            maildir,
            _dir: dir,
        })
    }

    /// Every email received so far, raw, oldest first.
    pub fn emails(&self) -> Vec<String> {
        emails_in(&self.maildir.join("new"))
    }

    /// Waits for the `n`th (1-based) email to `to`.
    pub async fn nth_email_to(&self, to: &str, n: usize) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let found: Vec<String> = self
                .emails()
                .into_iter()
                .filter(|mail| is_to(mail, to))
                .collect();
            if found.len() >= n {
                return found[n - 1].clone();
            }
            assert!(Instant::now() < deadline, "no email #{n} to {to} arrived");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits for the first email to `to`.
    pub async fn email_to(&self, to: &str) -> String {
        self.nth_email_to(to, 1).await
    }

    /// Stops the sink.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// Raw emails in a directory (a Maildir's `new/`, or natter's outbox), oldest first.
pub fn emails_in(dir: &std::path::Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<(std::time::SystemTime, String, PathBuf)> = entries
        .flatten()
        .map(|e| {
            let modified = e
                .metadata()
                .and_then(|m| m.modified())
                .unwrap_or(std::time::UNIX_EPOCH);
            (
                modified,
                e.file_name().to_string_lossy().into_owned(),
                e.path(),
            )
        })
        .collect();
    files.sort();
    files
        .into_iter()
        .filter_map(|(_, _, path)| std::fs::read_to_string(path).ok())
        .collect()
}

/// Whether a raw email is addressed to `to`.
pub fn is_to(mail: &str, to: &str) -> bool {
    mail.lines()
        .any(|line| line.to_ascii_lowercase().starts_with("to:") && line.contains(to))
}

/// The subject line of a raw email.
pub fn subject(mail: &str) -> String {
    mail.lines()
        .find_map(|line| line.strip_prefix("Subject: "))
        .unwrap_or_default()
        .to_string()
}

/// The token of the `#<kind>=` link in a raw email (quoted-printable undone).
pub fn link_token(mail: &str, kind: &str) -> String {
    let text = mail.replace("=\r\n", "").replace("=3D", "=");
    let marker = format!("#{kind}=");
    let start = text
        .find(&marker)
        .unwrap_or_else(|| panic!("no {marker} link in:\n{mail}"))
        + marker.len();
    text[start..]
        .chars()
        .take_while(|c| c.is_ascii_hexdigit())
        .collect()
}
