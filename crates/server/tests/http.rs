//! HTTP hygiene over real sockets: the page's security headers and policy, compressed
//! and cached files, honest 404s, the Host allowlist (DNS rebinding), every `/api`
//! refusal in the one JSON shape, body deadlines, and the cap on HTTP connections.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine;
use common::http::{exchange, request, Response};
use common::*;
use natter_protocol::account::{ApiError, ApiErrorCode};
use natter_server::Config;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// trunk's bootstrap, as an inline script of the page.
const BOOTSTRAP: &str = "import init from '/natter-web-0123456789abcdef.js';init();";
const WASM: &str = "natter-web-0123456789abcdef_bg.wasm";

/// A built client as trunk and `cargo xtask` leave it: the page, a hashed file and
/// its precompressed twins.
fn write_site(dir: &Path) {
    let page = format!(
        "<!DOCTYPE html><html><head><script type=\"module\">{BOOTSTRAP}</script>\
         <link rel=\"preload\" href=\"/{WASM}\"></head><body></body></html>"
    );
    std::fs::write(dir.join("index.html"), page).expect("page");
    std::fs::write(dir.join(WASM), "plain wasm bytes").expect("wasm");
    std::fs::write(dir.join(format!("{WASM}.br")), "brotli bytes").expect("br");
    std::fs::write(dir.join(format!("{WASM}.gz")), "gzip bytes").expect("gz");
}

async fn get(server: &TestServer, path: &str, headers: &[(&str, &str)]) -> Response {
    request(server.addr, "GET", path, headers, None).await
}

fn api_error(response: &Response) -> ApiErrorCode {
    assert_eq!(
        response.header("content-type"),
        Some("application/json"),
        "{response:?}"
    );
    response.json::<ApiError>().code
}

#[tokio::test]
async fn the_page_has_a_strict_policy_and_files_are_compressed_and_cached() {
    let site = tempfile::tempdir().expect("dir");
    write_site(site.path());
    let mut config = Config::for_tests("memory:");
    config.static_dir = site.path().to_path_buf();
    let server = TestServer::start_with(config).await;

    let page = get(&server, "/", &[]).await;
    assert_eq!(page.status, 200);
    let policy = page.header("content-security-policy").expect("a policy");
    let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(BOOTSTRAP));
    assert!(policy.contains(&format!("'sha256-{hash}'")), "{policy}");
    assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
    assert!(policy.contains("object-src 'none'"), "{policy}");
    assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(page.header("referrer-policy"), Some("no-referrer"));
    assert_eq!(page.header("x-frame-options"), Some("DENY"));
    assert_eq!(page.header("cache-control"), Some("no-cache"));
    // The SPA's own routes are the page too.
    let route = get(&server, "/reset?token=abc", &[]).await;
    assert_eq!(route.status, 200);
    assert_eq!(route.body, page.body);

    let path = format!("/{WASM}");
    let compressed = get(&server, &path, &[("Accept-Encoding", "gzip, br")]).await;
    assert_eq!(compressed.status, 200);
    assert_eq!(compressed.header("content-encoding"), Some("br"));
    assert_eq!(compressed.body, "brotli bytes");
    assert_eq!(compressed.header("content-type"), Some("application/wasm"));
    assert_eq!(
        compressed.header("cache-control"),
        Some("public, max-age=31536000, immutable")
    );
    assert_eq!(compressed.header("vary"), Some("accept-encoding"));
    assert_eq!(compressed.header("x-content-type-options"), Some("nosniff"));
    let gzip = get(&server, &path, &[("Accept-Encoding", "gzip")]).await;
    assert_eq!(gzip.header("content-encoding"), Some("gzip"));
    assert_eq!(gzip.body, "gzip bytes");
    let plain = get(&server, &path, &[]).await;
    assert_eq!(plain.header("content-encoding"), None);
    assert_eq!(plain.body, "plain wasm bytes");

    // A missing file is missing, not the page.
    for missing in ["/favicon.ico", "/natter-web-ffffffffffffffff.js"] {
        let answer = get(&server, missing, &[]).await;
        assert_eq!(answer.status, 404, "{missing}");
        assert!(!answer.body.contains("<html"), "{missing}");
    }
    server.stop().await;
}

#[tokio::test]
async fn a_name_the_server_does_not_answer_to_is_refused_everywhere() {
    let mut config = Config::for_tests("memory:");
    config.allowed_hosts = vec!["chat.example.org".into()];
    let server = TestServer::start_with(config).await;
    let port = server.addr.port();
    // DNS rebinding: evil.example now resolves to this server; the page's requests
    // name evil.example as both Host and Origin.
    let evil = format!("evil.example:{port}");
    let evil_origin = format!("http://{evil}");
    let rebinding = [("Host", evil.as_str()), ("Origin", evil_origin.as_str())];
    for path in ["/", "/api/session", "/healthz"] {
        let answer = get(&server, path, &rebinding).await;
        assert_eq!(answer.status, 421, "{path}");
        assert_eq!(api_error(&answer), ApiErrorCode::UnknownHost, "{path}");
    }
    let upgrade = get(
        &server,
        "/ws",
        &[
            ("Host", evil.as_str()),
            ("Origin", evil_origin.as_str()),
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Version", "13"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ],
    )
    .await;
    assert_eq!(upgrade.status, 421);

    // Its own names and any address are served.
    for host in [
        format!("localhost:{port}"),
        format!("chat.example.org:{port}"),
        format!("127.0.0.1:{port}"),
    ] {
        let answer = get(&server, "/api/session", &[("Host", host.as_str())]).await;
        assert_eq!(answer.status, 204, "{host}: {answer:?}");
    }
    server.stop().await;
}

#[tokio::test]
async fn every_api_refusal_is_the_documented_json() {
    let server = TestServer::start_with(Config::for_tests("memory:")).await;
    let big = format!("{{\"email\":\"{}\"}}", "a".repeat(20_000));

    // A foreign page is refused before its body is even looked at.
    let foreign = request(
        server.addr,
        "POST",
        "/api/login",
        &[("Origin", "https://evil.example")],
        Some(&big),
    )
    .await;
    assert_eq!(foreign.status, 403);
    assert_eq!(api_error(&foreign), ApiErrorCode::ForeignOrigin);

    let too_large = request(server.addr, "POST", "/api/login", &[], Some(&big)).await;
    assert_eq!(too_large.status, 413);
    assert_eq!(api_error(&too_large), ApiErrorCode::TooLarge);

    // Without a length up front, the limit holds while streaming.
    let chunk = "x".repeat(20_000);
    let chunked = format!(
        "POST /api/login HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\
         Transfer-Encoding: chunked\r\n\r\n{:x}\r\n{chunk}\r\n0\r\n\r\n",
        server.addr,
        chunk.len()
    );
    let streamed = exchange(server.addr, chunked.as_bytes()).await;
    assert_eq!(streamed.status, 413);
    assert_eq!(api_error(&streamed), ApiErrorCode::TooLarge);

    let wrong_method = get(&server, "/api/login", &[]).await;
    assert_eq!(wrong_method.status, 405);
    assert_eq!(api_error(&wrong_method), ApiErrorCode::MethodNotAllowed);

    for path in ["/api", "/api/", "/api/nothing/here"] {
        let missing = get(&server, path, &[]).await;
        assert_eq!(missing.status, 404, "{path}");
        assert_eq!(api_error(&missing), ApiErrorCode::NotFound, "{path}");
        assert_eq!(
            missing.header("content-security-policy"),
            Some("default-src 'none'; frame-ancestors 'none'")
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn a_body_sent_too_slowly_gets_408() {
    let mut config = Config::for_tests("memory:");
    config.body_timeout_ms = 300;
    let server = TestServer::start_with(config).await;
    let mut stream = TcpStream::connect(server.addr).await.expect("connects");
    let head = format!(
        "POST /api/login HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: 40\r\n\r\n{{\"em",
        server.addr
    );
    stream.write_all(head.as_bytes()).await.expect("writes");
    let started = Instant::now();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer))
        .await
        .expect("answered before the test's patience ran out")
        .expect("reads");
    let answer = common::http::parse(&answer);
    assert_eq!(answer.status, 408);
    assert_eq!(api_error(&answer), ApiErrorCode::Timeout);
    assert!(started.elapsed() >= Duration::from_millis(250));
    server.stop().await;
}

#[tokio::test]
async fn plain_http_connections_per_ip_are_capped() {
    let mut config = Config::for_tests("memory:");
    config.max_http_connections_per_ip = 3;
    let server = TestServer::start_with(config).await;
    let mut idle = Vec::new();
    for _ in 0..3 {
        idle.push(TcpStream::connect(server.addr).await.expect("connects"));
    }
    // The fourth is closed at once, without an answer.
    let mut fourth = TcpStream::connect(server.addr).await.expect("tcp accepts");
    let request = format!(
        "GET /healthz HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        server.addr
    );
    let _ = fourth.write_all(request.as_bytes()).await;
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), fourth.read_to_end(&mut answer))
        .await
        .expect("closed promptly");
    assert!(
        read.is_err() || answer.is_empty(),
        "over the cap, yet answered: {}",
        String::from_utf8_lossy(&answer)
    );
    // One closes; the next is served.
    drop(idle.pop());
    let served = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            // Until the server has seen the close, a new connection is still refused.
            let mut stream = TcpStream::connect(server.addr).await.expect("connects");
            let _ = stream.write_all(request.as_bytes()).await;
            let mut answer = Vec::new();
            let _ = stream.read_to_end(&mut answer).await;
            if answer.starts_with(b"HTTP/1.1 200") {
                return common::http::parse(&answer);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    assert_eq!(served.await.expect("served again").body, "ok");
    server.stop().await;
}
