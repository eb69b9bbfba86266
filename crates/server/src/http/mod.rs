//! Everything that arrives over HTTP, and the checks every request goes through.
//!
//! - [`serve`]: the accept loop — HTTP/1.1 with a header-read timeout, a cap on plain
//!   HTTP connections per IP, peer addresses, graceful shutdown.
//! - [`request`]: what every request is checked for: the `Host` it names (DNS
//!   rebinding), the `Origin` of a browser's request, and the client address per-IP
//!   limits apply to.
//! - [`upgrade`]: `GET /ws` — Origin, the per-IP connection cap and the session cookie,
//!   then the socket is handed to [`crate::connection`].
//! - [`api`]: the account endpoints under `/api` (JSON), which call
//!   [`crate::accounts`].
//! - [`files`]: uploads (`POST /api/uploads`) and serving files (`/api/files/…`), which
//!   call [`crate::files`].
//! - [`site`]: the web client's page (with its Content-Security-Policy) and its
//!   precompressed, immutable files.
//! - [`app`] (here): the routes, `/healthz`, and [`guard`]: the `Host` check and the
//!   headers every answer carries.
//!
//! `http/` is the top of the server: it may use `connection/`, `accounts/` and the hub;
//! none of them uses it.

pub mod api;
pub mod files;
pub mod request;
pub mod serve;
pub mod site;
pub mod upgrade;

use axum::extract::{Request, State};
use axum::http::header::{
    CONTENT_SECURITY_POLICY, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use natter_protocol::account::{ApiError, ApiErrorCode};

use crate::AppState;

/// The policy of every answer that is not the page (JSON, files, errors): nothing in
/// it may load or run anything, nor be framed.
const NOTHING_RUNS: &str = "default-src 'none'; frame-ancestors 'none'";

/// The HTTP routes: `/ws`, `/api/…`, `/healthz`, and the web client with SPA fallback,
/// all behind [`guard`].
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/ws", get(upgrade::upgrade))
        .route("/healthz", get(|| async { "ok" }))
        .merge(files::routes())
        .merge(api::routes())
        .merge(site::routes(state.config.static_dir.clone()))
        .layer(middleware::from_fn_with_state(state.clone(), guard))
        .with_state(state)
}

/// Refuses a request for a name this server does not answer to (`421`, before any
/// route sees it), and gives every answer the headers that keep browsers from
/// sniffing types, framing the page or sending the URL elsewhere as a referrer.
async fn guard(State(app): State<AppState>, request: Request, next: Next) -> Response {
    let mut response = match app.hosts.allow(request.headers()) {
        Ok(()) => next.run(request).await,
        Err(message) => {
            crate::telemetry::refused("unknown_host");
            (
                StatusCode::MISDIRECTED_REQUEST,
                Json(ApiError {
                    code: ApiErrorCode::UnknownHost,
                    message,
                    field: None,
                    retry_after_ms: None,
                }),
            )
                .into_response()
        }
    };
    let headers = response.headers_mut();
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !headers.contains_key(CONTENT_SECURITY_POLICY) {
        headers.insert(
            CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(NOTHING_RUNS),
        );
    }
    response
}
