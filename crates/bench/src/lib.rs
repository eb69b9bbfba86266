//! natter-bench: natter's load generator and the baseline it is compared with.
//!
//! # Layout
//! - [`client_size`]: the web client as a browser downloads it from a real server.
//! - [`fleet`]: WebSocket clients spread over rooms, speaking natter's protocol or the
//!   ceiling's, and the open-loop publisher.
//! - [`history`]: a page of history in a room full of edits and reactions.
//! - [`measure`]: latency histogram, delivery counters, server CPU and RSS from /proc.
//! - [`suite`]: starting servers (pinned with `taskset`), the scenarios, the steps.
//! - [`report`]: tables, the chart and docs/benchmarks/results.md.
//! - `bin/ceiling.rs`: the raw tokio-tungstenite broadcast server (the ceiling).
//!
//! Run it with `cargo xtask bench` (it builds release binaries and pins the generator
//! to the other core).

pub mod client_size;
pub mod fleet;
pub mod history;
pub mod measure;
pub mod report;
pub mod suite;
