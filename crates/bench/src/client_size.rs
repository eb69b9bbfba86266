//! What a visitor's browser downloads: the built web client fetched from a real
//! `natter-server` over HTTP, the way a browser asks for it.
//!
//! Each file of `dist/` (and the page) is requested three times — as a current
//! browser (`Accept-Encoding: br, gzip`), as one without brotli (`gzip`), and as one
//! that takes no compression — and the body bytes are added up. So the figure is what
//! the server really sends, precompressed files and all, not a size computed beside it.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Bytes of the page and its files as sent for each kind of browser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientSize {
    /// Sent to a browser that takes brotli (every current one).
    pub brotli: u64,
    /// Sent to a browser that takes only gzip.
    pub gzip: u64,
    /// Sent uncompressed.
    pub plain: u64,
}

/// Starts `natter` serving `dist` on `addr`, fetches everything, stops it. `None` when
/// `dist/` is not built.
pub async fn measure(natter: &Path, dist: &Path, addr: SocketAddr) -> Result<Option<ClientSize>> {
    if !dist.join("index.html").exists() {
        return Ok(None);
    }
    let mut paths = vec!["/".to_string()];
    for entry in std::fs::read_dir(dist)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        let served = [".js", ".wasm", ".css"]
            .iter()
            .any(|ext| name.ends_with(ext));
        if served {
            paths.push(format!("/{name}"));
        }
    }
    let server = std::process::Command::new(natter)
        .args(["--listen", &addr.to_string(), "--database-url", "memory:"])
        .arg("--static-dir")
        .arg(dist)
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", natter.display()))?;
    let _stop = KillOnDrop(server);
    wait_until_up(addr).await?;
    let mut size = ClientSize {
        brotli: 0,
        gzip: 0,
        plain: 0,
    };
    for path in &paths {
        size.brotli += fetch(addr, path, Some("br, gzip")).await?;
        size.gzip += fetch(addr, path, Some("gzip")).await?;
        size.plain += fetch(addr, path, None).await?;
    }
    Ok(Some(size))
}

/// Stops the server however the measurement ends.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn wait_until_up(addr: SocketAddr) -> Result<()> {
    for _ in 0..200 {
        if fetch(addr, "/healthz", None).await.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("natter-server did not answer on {addr}")
}

/// The body bytes of one `GET`, refusing anything but `200`.
async fn fetch(addr: SocketAddr, path: &str, encodings: Option<&str>) -> Result<u64> {
    let mut stream = TcpStream::connect(addr).await?;
    let accept = encodings
        .map(|e| format!("Accept-Encoding: {e}\r\n"))
        .unwrap_or_default();
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{accept}Connection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await?;
    let head_end = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("an incomplete answer")?;
    if !answer.starts_with(b"HTTP/1.1 200") {
        bail!(
            "GET {path}: {}",
            String::from_utf8_lossy(&answer[..head_end])
        );
    }
    Ok((answer.len() - head_end - 4) as u64)
}
