//! Everything that arrives over HTTP, and the checks every request goes through.
//!
//! - [`serve`]: the accept loop — HTTP/1.1 with a header-read timeout, peer addresses,
//!   graceful shutdown.
//! - [`request`]: what `/ws` and `/api` both check: the `Origin` of a browser's request
//!   and the client address per-IP limits apply to.
//! - [`upgrade`]: `GET /ws` — Origin, the per-IP connection cap and the session cookie,
//!   then the socket is handed to [`crate::connection`].
//! - [`api`]: the account endpoints under `/api` (JSON), which call
//!   [`crate::accounts`].
//! - [`app`] (here): the routes, `/healthz`, and the web client's files with an SPA
//!   fallback.
//!
//! `http/` is the top of the server: it may use `connection/`, `accounts/` and the hub;
//! none of them uses it.

pub mod api;
pub mod request;
pub mod serve;
pub mod upgrade;

use axum::routing::get;
use axum::Router;
use tower_http::services::{ServeDir, ServeFile};

use crate::AppState;

/// The HTTP routes: `/ws`, `/api/…`, `/healthz`, and the web client with SPA fallback.
pub fn app(state: AppState) -> Router {
    let static_dir = &state.config.static_dir;
    let client = ServeDir::new(static_dir).fallback(ServeFile::new(static_dir.join("index.html")));
    Router::new()
        .route("/ws", get(upgrade::upgrade))
        .route("/healthz", get(|| async { "ok" }))
        .merge(api::routes())
        .fallback_service(client)
        .with_state(state)
}
