//! The S3-compatible server (`s3s-fs`) `cargo xtask test` starts for the tests that
//! keep files in an object store: on a free local port, over a fresh directory under
//! `target/tmp/s3`, with one bucket and fixed test credentials. It stops when dropped.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::root;

/// The bucket the tests use (a folder under the server's root).
const BUCKET: &str = "natter-test";
/// The test credentials (the server accepts only these).
const ACCESS_KEY: &str = "natter-test";
const SECRET_KEY: &str = "natter-test-secret";

/// A running s3s-fs.
pub struct S3Server {
    child: Child,
    endpoint: String,
}

impl S3Server {
    /// Starts s3s-fs and waits until it accepts connections.
    pub fn start() -> Result<Self> {
        let dir = root().join("target/tmp/s3");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join(BUCKET)).context("making the bucket folder")?;
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let child = Command::new("s3s-fs")
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting s3s-fs")?;
        let server = S3Server {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if started.elapsed() > Duration::from_secs(20) {
                bail!("s3s-fs did not listen on port {port} within 20 s");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        println!("    s3s-fs at {} (bucket {BUCKET})", server.endpoint);
        Ok(server)
    }

    /// Tells the tests run by `command` where the object store is.
    pub fn configure(&self, command: &mut Command) {
        command
            .env("NATTER_TEST_S3_ENDPOINT", &self.endpoint)
            .env("NATTER_TEST_S3_BUCKET", BUCKET)
            .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY);
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
