//! The accept loop: HTTP/1.1 with a header-read timeout, a cap on plain HTTP
//! connections per IP, the peer address for per-IP limits, and graceful shutdown.
//!
//! `axum::serve` sets no header-read timeout, so a client sending headers one byte at
//! a time (slowloris) could hold a connection forever. Here every connection gets
//! hyper's `header_read_timeout`; upgraded WebSockets are then tracked by
//! [`crate::connection`]. A connection counts against its IP's
//! `--max-http-connections-per-ip` until it is upgraded or closed; over the cap it is
//! closed on accept (trusted proxies, which carry many clients, are not capped).

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use crate::limits::HttpConnections;
use crate::telemetry;

/// Pause after a failed `accept` (e.g. out of file descriptors) before trying again,
/// so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Serves `router` on `listener` until `shutdown` is cancelled, then lets in-flight
/// HTTP requests finish (connections are tracked by `tracker`).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    header_timeout: Duration,
    per_ip: HttpConnections,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .keep_alive(true);
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    tracing::warn!(%err, "accept failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
        };
        let Some(slot) = per_ip.open(peer.ip()) else {
            telemetry::refused("http_connections_per_ip");
            tracing::debug!(%peer, "too many HTTP connections from this address");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            request
                .extensions_mut()
                .insert(ConnectInfo::<SocketAddr>(peer));
            router.clone().oneshot(request)
        });
        let connection = builder
            .serve_connection(TokioIo::new(stream), service)
            .with_upgrades();
        let shutdown = shutdown.clone();
        tracker.spawn(async move {
            let _slot = slot;
            tokio::pin!(connection);
            let outcome = tokio::select! {
                outcome = connection.as_mut() => outcome,
                _ = shutdown.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(err) = outcome {
                tracing::debug!(%err, %peer, "http connection ended with an error");
            }
        });
    }
}
