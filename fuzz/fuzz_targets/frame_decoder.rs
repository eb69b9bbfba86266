//! Arbitrary bytes through the protocol's frame decoder alone: what every byte a
//! client sends meets first. No server around it, so it runs hundreds of thousands of
//! inputs a second; it must never panic, and anything it accepts must encode again.

#![no_main]

use libfuzzer_sys::fuzz_target;
use natter_protocol::decode_client_frame;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return; // the WebSocket layer closes non-UTF-8 text frames with 1007
    };
    if let Ok(frame) = decode_client_frame(text) {
        serde_json::to_string(&frame).expect("a decoded request encodes again");
    }
});
