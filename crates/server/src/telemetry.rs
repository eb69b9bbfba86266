//! What operators can watch: Prometheus metrics on a listener of their own.
//!
//! Off unless `--metrics-listen` is given (then served at `/metrics` there, never on the
//! public port). The code records through the `metrics` facade, whose macros do nothing
//! while no recorder is installed — a server without metrics pays nothing for them.
//! Labels never name a room or a user: a label value per room would grow the series
//! with every room ever made.
//!
//! | metric | type | what |
//! |---|---|---|
//! | `natter_connections` | gauge | open WebSocket connections |
//! | `natter_messages_received_total` | counter | chat messages accepted for storing |
//! | `natter_frames_sent_total` | counter | frames written to sockets |
//! | `natter_message_seconds` | histogram | a message from arrival to stored, fanned out here and acked |
//! | `natter_fanout_seconds` | histogram | handing one room message to this node's recipients |
//! | `natter_store_seconds{op}` | histogram | store calls: `append`, `history`, `rooms_of`, `latest_seqs` |
//! | `natter_closes_total{reason}` | counter | connections closed by the server, by reason |
//! | `natter_refusals_total{kind}` | counter | requests refused by a limit, by kind |
//! | `natter_redis_lag_seconds` | histogram | a delivery from another node, published → received (wall clocks) |
//! | `natter_mail_queue` | gauge | emails waiting to be sent |

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Open WebSocket connections.
pub const CONNECTIONS: &str = "natter_connections";
/// Chat messages accepted for storing.
pub const MESSAGES_RECEIVED: &str = "natter_messages_received_total";
/// Frames written to sockets.
pub const FRAMES_SENT: &str = "natter_frames_sent_total";
/// A message from arrival to stored, fanned out on this node and acked.
pub const MESSAGE_SECONDS: &str = "natter_message_seconds";
/// Handing one room message to this node's recipients.
pub const FANOUT_SECONDS: &str = "natter_fanout_seconds";
/// Store calls by operation.
pub const STORE_SECONDS: &str = "natter_store_seconds";
/// Connections the server closed, by reason.
pub const CLOSES: &str = "natter_closes_total";
/// Requests refused by a limit, by kind.
pub const REFUSALS: &str = "natter_refusals_total";
/// Deliveries from other nodes: published → received.
pub const REDIS_LAG_SECONDS: &str = "natter_redis_lag_seconds";
/// Emails waiting to be sent.
pub const MAIL_QUEUE: &str = "natter_mail_queue";

/// Histogram buckets in seconds: 100 µs to 10 s.
const BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// How often histograms are compacted (the exporter wants it when it serves no HTTP
/// of its own).
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// The process's recorder: installed once, by the first server that asks for metrics
/// (a process holds one global recorder; servers started later in it share it).
static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the recorder (once per process) and returns what renders it.
pub fn install() -> Option<PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new().set_buckets(BUCKETS);
            let handle = builder.and_then(|b| b.install_recorder());
            match handle {
                Ok(handle) => Some(handle),
                Err(err) => {
                    tracing::error!(%err, "could not install the metrics recorder");
                    None
                }
            }
        })
        .clone()
}

/// Serves `/metrics` on `listener` until `shutdown`.
pub async fn serve(listener: TcpListener, handle: PrometheusHandle, shutdown: CancellationToken) {
    let upkeep = handle.clone();
    let upkeep_stop = shutdown.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = upkeep_stop.cancelled() => return,
                _ = tokio::time::sleep(UPKEEP_EVERY) => upkeep.run_upkeep(),
            }
        }
    });
    let router = Router::new().route("/metrics", get(move || std::future::ready(handle.render())));
    if let Err(err) = axum::serve(listener, router)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
    {
        tracing::warn!(%err, "the metrics listener stopped");
    }
}

/// Binds the metrics listener, if one is configured.
pub async fn bind(addr: Option<SocketAddr>) -> std::io::Result<Option<TcpListener>> {
    match addr {
        Some(addr) => Ok(Some(TcpListener::bind(addr).await?)),
        None => Ok(None),
    }
}

/// Whether this process records metrics (a server asked for them).
pub fn enabled() -> bool {
    HANDLE.get().is_some_and(Option::is_some)
}

/// Counts a request refused by a limit (`kind` is one of a fixed set of names).
pub fn refused(kind: &'static str) {
    metrics::counter!(REFUSALS, "kind" => kind).increment(1);
}

/// Counts a connection the server closed (`reason` is one of a fixed set of names).
pub fn closed(reason: &'static str) {
    metrics::counter!(CLOSES, "reason" => reason).increment(1);
}

/// Records how long a store call took.
pub fn store_call(op: &'static str, started: Instant) {
    metrics::histogram!(STORE_SECONDS, "op" => op).record(started.elapsed());
}
