//! Accounts beside the chat: what `/api` signs up, confirms, signs in and out, recovers.
//!
//! - [`auth`]: [`auth::Auth`] — sign-up, verification, sign-in with its failure limit,
//!   cookie sessions (stored as SHA-256, idle and absolute expiry), recovery and reset.
//! - [`password`]: argon2id hashing on blocking threads, capped, in reused memory.
//! - [`mail`]: the durable outgoing-mail queue and its worker (SMTP or an outbox
//!   directory).
//!
//! The HTTP handlers are in [`crate::http::api`]; the WebSocket upgrade reads the session
//! cookie through [`auth::Auth::session`]. Accounts reach the chat through two `RoomHub`
//! methods only: whether a name is free online, and closing an ended session's sockets.
//! Nothing here knows WebSocket connections, and `connection/` knows nothing of this.

pub mod auth;
pub mod mail;
pub mod password;
