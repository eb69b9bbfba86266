//! Arbitrary bytes as a client's text frame: decoded by the protocol, then handled by
//! a real conversation (hub + the in-memory store) that has already said hello, so every
//! request type is reachable. Nothing a client sends may panic the server.

#![no_main]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use natter_protocol::{decode_client_frame, ClientMsg, PROTOCOL_VERSION};
use natter_server::broker::LocalBroker;
use natter_server::hub::RoomHub;
use natter_server::connection::conversation::Conversation;
use natter_server::store::memory::MemoryStore;
use tokio::runtime::Runtime;

struct World {
    runtime: Runtime,
    hub: RoomHub,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let hub = runtime.block_on(async {
            RoomHub::start(
                Arc::new(MemoryStore::new()),
                Arc::new(LocalBroker::default()),
                Duration::from_millis(10),
                64,
            )
            .await
            .expect("hub")
        });
        World { runtime, hub }
    })
}

/// Every iteration is a new guest with a unique name (names are unique while online).
static NEXT_NAME: AtomicU64 = AtomicU64::new(0);

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return; // the WebSocket layer closes non-UTF-8 text frames with 1007
    };
    let world = world();
    world.runtime.block_on(async {
        let (outbox, mut queue) = world.hub.open_outbox();
        let mut conversation = Conversation::new(world.hub.clone(), outbox, None);
        let hello = ClientMsg::Hello {
            version: PROTOCOL_VERSION,
            name: format!("fuzz{}", NEXT_NAME.fetch_add(1, Ordering::Relaxed)),
            credentials: None,
            resume: vec![],
        };
        conversation.handle(hello.into()).await;
        match decode_client_frame(text) {
            Ok(frame) => session.handle(frame).await,
            Err(err) => session.reject_frame(&err.reason, err.request_ref),
        }
        conversation.disconnect();
        while queue.try_recv().is_ok() {}
    });
});
