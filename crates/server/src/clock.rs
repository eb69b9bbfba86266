//! Server time: one clock so every timestamp natter hands out has the same meaning, and
//! one conversion of durations into the milliseconds the store keeps times in.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch, UTC. A clock before 1970 reads as 0 rather than
/// failing: a wrong timestamp is better than a lost message.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// A duration in whole milliseconds, as the store's times are (saturating: no
/// configured lifetime can overflow).
pub fn millis(duration: std::time::Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}
