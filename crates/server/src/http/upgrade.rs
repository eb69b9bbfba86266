//! `GET /ws`: the checks before a WebSocket upgrade, then the socket is
//! [`crate::connection`]'s.
//!
//! A browser's `Origin` must be the server's own or an `--allowed-origin` (else 403),
//! and the IP must be under its connection cap (else 429). A valid session cookie
//! signs the connection in to its account — the Origin check is what keeps another
//! site's page from riding on that cookie.

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio::time::Instant;

use super::request::{client_ip, origin_allowed};
use crate::accounts::auth::{session_cookie, Auth};
use crate::clock::{millis, now_ms};
use crate::connection::{ws, SignedIn};
use crate::hub::SessionWatch;
use crate::limits::ConnectionLimiter;
use crate::secret::digest;
use crate::store::accounts::SessionRecord;
use crate::{telemetry, AppState};

/// `GET /ws`: checks Origin and the per-IP cap, reads the session cookie, then
/// upgrades to a WebSocket with natter's limits and buffer sizes.
pub async fn upgrade(
    State(app): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    if !origin_allowed(&headers, &app.config.allowed_origins) {
        telemetry::refused("foreign_origin");
        return (
            StatusCode::FORBIDDEN,
            "this origin may not open natter's WebSocket",
        )
            .into_response();
    }
    let ip = client_ip(peer.ip(), &headers, &app.config.trusted_proxies);
    let Some(slot) = app.limits.connect(ip) else {
        telemetry::refused("ws_connections_per_ip");
        return (
            StatusCode::TOO_MANY_REQUESTS,
            "too many connections from your address",
        )
            .into_response();
    };
    let limiter = ConnectionLimiter::new(slot);
    // Watched before it is looked up: a sign-out between the lookup and the upgrade
    // would otherwise close nothing and leave this socket signed in.
    let watch = session_cookie(&headers).map(|id| app.hub.watch_session(&digest(id)));
    let signed_in = match app.auth.session(&headers).await {
        Ok(session) => session
            .zip(watch)
            .map(|(session, watch)| signed_in(&app.auth, session, watch)),
        Err(err) => {
            tracing::error!(%err, "could not read the session of an upgrade");
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                "could not check your session; try again",
            )
                .into_response();
        }
    };
    ws::configure(upgrade).on_upgrade(move |socket| {
        let tracker = app.connections.clone();
        tracker.track_future(ws::serve(socket, app, limiter, signed_in))
    })
}

/// What a connection needs of its session: who, until when, and how to keep it from
/// idling out while the person chats.
fn signed_in(auth: &Auth, session: SessionRecord, watch: SessionWatch) -> SignedIn {
    // A signed-in connection cannot outlive the cookie's absolute lifetime.
    let ends_at = session
        .created_at
        .saturating_add(millis(auth.settings().session_max));
    let left = Duration::from_millis(u64::try_from(ends_at.saturating_sub(now_ms())).unwrap_or(0));
    let auth = auth.clone();
    let id_hash = session.id_hash.clone();
    SignedIn {
        user: session.user_id,
        watch,
        // A lifetime configured beyond any clock is no lifetime at all.
        expires: Instant::now().checked_add(left).unwrap_or_else(far_future),
        keep_alive: Box::new(move || auth.touch_later(&id_hash)),
    }
}

/// An instant no connection lives to see (for a session lifetime too large to add).
fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(100 * 365 * 24 * 3600)
}
