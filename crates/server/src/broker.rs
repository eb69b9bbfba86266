//! Fan-out behind a trait: how an event reaches every node that has recipients for it.
//!
//! The hub never writes to other connections directly: it publishes a [`Delivery`] and
//! delivers what the broker hands back. [`LocalBroker`] (the default) hands every
//! delivery straight back to this process. A networked broker (Redis pub/sub, later)
//! also forwards it to the other nodes, whose hubs deliver to their own connections.

use std::sync::{Arc, RwLock};

use axum::extract::ws::Utf8Bytes;
use natter_protocol::{RoomId, UserId};

use crate::hub::ConnId;

/// Who should receive a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Every online member of a room.
    Room(RoomId),
    /// Every connection of one user.
    User(UserId),
    /// Every ready connection.
    Everyone,
}

/// One serialized event and its recipients. The frame is serialized once and the
/// same bytes are shared by every recipient.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// Recipients.
    pub target: Target,
    /// A connection to skip (the sender, who gets an ack instead).
    pub except: Option<ConnId>,
    /// The JSON text frame.
    pub frame: Utf8Bytes,
}

/// What a broker calls with each delivery for this process's connections.
pub type DeliverySink = Arc<dyn Fn(&Delivery) + Send + Sync>;

/// Carries deliveries to every node's hub (including this one).
pub trait Broker: Send + Sync + 'static {
    /// Sends a delivery on its way. Never blocks: fan-out must not stall the sender.
    fn publish(&self, delivery: Delivery);
    /// Registers this process's hub as the receiver of deliveries.
    fn subscribe(&self, sink: DeliverySink);
}

/// Single-process broker: a published delivery is handed to the local hub at once.
#[derive(Default)]
pub struct LocalBroker {
    /// The local hub's sink, set once at start-up.
    sink: RwLock<Option<DeliverySink>>,
}

impl Broker for LocalBroker {
    fn publish(&self, delivery: Delivery) {
        let sink = self.sink.read().ok().and_then(|s| s.clone());
        if let Some(sink) = sink {
            sink(&delivery);
        }
    }

    fn subscribe(&self, sink: DeliverySink) {
        if let Ok(mut slot) = self.sink.write() {
            *slot = Some(sink);
        }
    }
}
