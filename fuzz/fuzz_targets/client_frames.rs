//! Arbitrary bytes as a client's text frame: decoded by the protocol, then handled by
//! a real conversation (hub + the in-memory store) that has already said hello, so every
//! request type is reachable. Nothing a client sends may panic the server.
//!
//! Every input is a new guest, so the world (hub and store) is replaced every
//! [`WORLD_INPUTS`] inputs: a world that only grows would make each run slower than the
//! last and the process larger, and find less.

#![no_main]

use std::cell::RefCell;
use std::sync::Arc;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use natter_protocol::{decode_client_frame, ClientMsg, PROTOCOL_VERSION};
use natter_server::broker::LocalBroker;
use natter_server::connection::conversation::Conversation;
use natter_server::hub::{HubSettings, RoomHub};
use natter_server::quota::Quotas;
use natter_server::store::memory::MemoryStore;
use natter_server::Config;
use tokio::runtime::Runtime;

/// Inputs handled by one hub and store before they are replaced by fresh ones.
const WORLD_INPUTS: u64 = 2_000;

/// A hub over an in-memory store, the quotas, and how many inputs it has seen.
struct World {
    hub: RoomHub,
    quotas: Quotas,
    inputs: u64,
}

impl World {
    fn new(runtime: &Runtime) -> World {
        let hub = runtime.block_on(async {
            let settings = HubSettings {
                presence_grace: Duration::from_millis(10),
                outbound_queue: 64,
                outbound_queue_bytes: 1 << 20,
            };
            RoomHub::start(
                Arc::new(MemoryStore::new()),
                Arc::new(LocalBroker::default()),
                settings,
            )
            .await
            .expect("hub")
        });
        // The tests' generous quotas: every request kind stays reachable.
        let quotas = Quotas::new(Config::for_tests("memory:").quota_settings());
        World {
            hub,
            quotas,
            inputs: 0,
        }
    }
}

thread_local! {
    static RUNTIME: Runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    static WORLD: RefCell<Option<World>> = const { RefCell::new(None) };
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return; // the WebSocket layer closes non-UTF-8 text frames with 1007
    };
    RUNTIME.with(|runtime| {
        let (hub, quotas) = WORLD.with_borrow_mut(|world| {
            let world = match world {
                Some(world) if world.inputs < WORLD_INPUTS => world,
                _ => world.insert(World::new(runtime)),
            };
            world.inputs += 1;
            (world.hub.clone(), world.quotas.clone())
        });
        runtime.block_on(async {
            let (outbox, mut queue) = hub.open_outbox();
            let ip = std::net::IpAddr::from([127, 0, 0, 1]);
            let mut conversation = Conversation::new(hub.clone(), outbox, None, quotas, ip);
            let hello = ClientMsg::Hello {
                version: PROTOCOL_VERSION,
                name: format!("fuzz{}", next_name()),
                credentials: None,
                resume: vec![],
            };
            conversation.handle(hello.into()).await;
            match decode_client_frame(text) {
                Ok(frame) => conversation.handle(frame).await,
                Err(err) => conversation.reject_frame(&err.reason, err.request_ref),
            }
            conversation.disconnect();
            while queue.try_recv().is_some() {}
        });
    });
});

/// A name no other guest of this world has (names are unique while online).
fn next_name() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}
