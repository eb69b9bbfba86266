//! One WebSocket connection, from the upgraded socket to the hub.
//!
//! - [`ws`]: the only module that knows WebSocket frames — the connection task
//!   (frames in, the bounded outbound queue out, heartbeat, hello deadline, overflow,
//!   shutdown, session end), close codes, limits and buffer sizes, and the echo server
//!   Autobahn tests.
//! - [`order`]: exactly once and in order per connection — drops live messages the
//!   connection was already given, and holds a room's back while its history is on
//!   its way.
//! - [`conversation`]: what each decoded request does — validation, then hub and store
//!   calls, then replies and typed errors. Knows nothing of frames.
//!
//! The HTTP checks before an upgrade (Origin, per-IP cap, session cookie) are
//! [`crate::http::upgrade`]'s; a signed-in connection gets a [`SignedIn`] from there, so
//! nothing here depends on how accounts work.

pub mod conversation;
pub mod order;
pub mod ws;

use natter_protocol::UserId;
use tokio::time::Instant;

use crate::hub::SessionWatch;

/// A connection opened with a valid session cookie.
pub struct SignedIn {
    /// The account's user: the connection is them, under the account's name.
    pub user: UserId,
    /// Resolves when the session ends on any node. Taken out **before** the session
    /// was looked up, so a sign-out racing the upgrade is never missed: it either
    /// deleted the session before the lookup (no upgrade as this account) or ends this
    /// watch.
    pub watch: SessionWatch,
    /// When the session's absolute lifetime ends; the connection closes then.
    pub expires: Instant,
    /// Renews the session's idle expiry in the background. Called at most hourly while
    /// the connection is in use, so a session does not idle out under a person who is
    /// chatting.
    pub keep_alive: Box<dyn Fn() + Send + Sync>,
}
