//! natter-server as a child process, for crash, signal and cluster tests.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::sqlite_url;

/// A natter-server process on a fixed port, for crash, signal and cluster tests.
/// Dropping it kills it (SIGKILL).
pub struct ServerProcess {
    pub child: Child,
    pub addr: SocketAddr,
}

impl ServerProcess {
    /// A server on the SQLite file `db`.
    pub fn spawn(addr: SocketAddr, db: &std::path::Path) -> ServerProcess {
        Self::spawn_with(addr, &sqlite_url(db), &[])
    }

    /// A server on `database_url` with extra `NATTER_*` settings.
    pub fn spawn_with(addr: SocketAddr, database_url: &str, env: &[(&str, &str)]) -> ServerProcess {
        let child = Command::new(env!("CARGO_BIN_EXE_natter-server"))
            .env("NATTER_LISTEN", addr.to_string())
            .env("NATTER_DATABASE_URL", database_url)
            .env("NATTER_STATIC_DIR", "does-not-exist")
            .env("NATTER_RATE_PER_CONNECTION", "100000")
            .env("NATTER_BURST_PER_CONNECTION", "100000")
            .env("NATTER_RATE_PER_IP", "100000")
            .env("NATTER_BURST_PER_IP", "100000")
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "error".into()),
            )
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            // NATTER_TEST_LOGS=1 shows the servers' logs (with RUST_LOG=info, say).
            .stderr(if std::env::var_os("NATTER_TEST_LOGS").is_some() {
                Stdio::inherit()
            } else {
                Stdio::null()
            })
            .spawn()
            .expect("server starts");
        ServerProcess { child, addr }
    }

    pub async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while tokio::net::TcpStream::connect(self.addr).await.is_err() {
            assert!(Instant::now() < deadline, "server never listened");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([format!("-{name}"), self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_addr() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr")
}
