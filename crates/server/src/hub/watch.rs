//! Sign-out watches: a connection opened with a session cookie closes when that
//! session ends on any node.
//!
//! Ending a session publishes `Effect::SessionEnded` to every node; each node's hub
//! cancels the token its connections of that session hold ([`SessionWatch::ended`]),
//! and they close with 4001. Accounts reach this through one method,
//! [`RoomHub::end_sessions`].

use axum::extract::ws::Utf8Bytes;
use tokio_util::sync::CancellationToken;

use super::{HubState, RoomHub};
use crate::broker::{Delivery, Effect, Target};

/// The connections of one signed-in session on this node.
#[derive(Debug)]
pub(super) struct SessionConnections {
    /// Cancelled when the session ends.
    ended: CancellationToken,
    /// How many connections hold a [`SessionWatch`] for it.
    connections: usize,
}

/// Held by a connection opened with a session cookie: `ended()` resolves when the
/// session is signed out on any node. Dropping it forgets the connection.
pub struct SessionWatch {
    /// The hub to tell when this connection goes.
    hub: RoomHub,
    /// The session's id hash.
    session: String,
    /// Cancelled when the session ends.
    ended: CancellationToken,
}

impl SessionWatch {
    /// Resolves once the session has ended.
    pub fn ended(&self) -> &CancellationToken {
        &self.ended
    }
}

impl Drop for SessionWatch {
    fn drop(&mut self) {
        let mut state = self.hub.write();
        if let Some(entry) = state.sessions.get_mut(&self.session) {
            entry.connections = entry.connections.saturating_sub(1);
            if entry.connections == 0 {
                state.sessions.remove(&self.session);
            }
        }
    }
}

impl RoomHub {
    /// Registers a connection opened with a signed-in session, so ending the session
    /// (on any node) closes it.
    pub fn watch_session(&self, session: &str) -> SessionWatch {
        let mut state = self.inner.write();
        let entry = state
            .sessions
            .entry(session.to_string())
            .or_insert_with(|| SessionConnections {
                ended: CancellationToken::new(),
                connections: 0,
            });
        entry.connections += 1;
        SessionWatch {
            hub: self.clone(),
            session: session.to_string(),
            ended: entry.ended.clone(),
        }
    }

    /// Closes every connection, on every node, opened with one of these sessions.
    pub fn end_sessions(&self, sessions: Vec<String>) {
        for session in sessions {
            self.inner.broker.publish(Delivery {
                target: Target::Nobody,
                except: None,
                seq: None,
                effect: Some(Effect::SessionEnded { session }),
                catch_up: None,
                frame: Utf8Bytes::from_static(""),
            });
        }
    }
}

impl HubState {
    /// A session ended: its connections here close.
    pub(super) fn end_session(&mut self, session: &str) {
        if let Some(ended) = self.sessions.remove(session) {
            ended.ended.cancel();
        }
    }
}
