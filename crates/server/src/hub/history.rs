//! Catch-up histories: what a client that holds a room up to some seq is missing, as
//! one `history` frame — for `ready`'s snapshot, a join, a `catch_up` request and a
//! node reconciling after Redis was away.
//!
//! Since changes (edits, deletions, reactions) take seqs too, a catch-up is two reads:
//! the newest page of messages after the client's seq, in their current state, and
//! the messages at or before it that changed after it. `through` tells the client
//! which seq it then holds everything up to, so it can tell a live event it already
//! has from one it lacks.

use natter_protocol::{RoomId, Seq, ServerMsg, UserId, CHANGED_ON_RESUME, HISTORY_PAGE};

use crate::store::{Store, StoreResult};

/// A catch-up `history` frame for `viewer` in `room` after seq `after`, and the seq it
/// brings the connection to. `known_latest` is the room's newest seq read after the
/// connection started following the room (any event after it arrives live); `None`
/// reads it now.
///
/// The frame's `through` is that newest seq, read before the history: everything up to
/// it was committed before the reads, so the history includes it. An event after it
/// may be in the history too (committed between the reads) and also arrives live —
/// a message the client merges by seq, a change it skips by the message's `rev`.
pub async fn catch_up(
    store: &dyn Store,
    room: RoomId,
    after: Seq,
    known_latest: Option<Seq>,
    viewer: &UserId,
) -> StoreResult<(ServerMsg, Seq)> {
    let latest = match known_latest {
        Some(latest) => latest,
        None => store
            .latest_seqs(&[room])
            .await?
            .first()
            .map_or(0, |(_, seq)| *seq),
    };
    let mut after = after;
    let mut changed = if after > 0 {
        store
            .changed_since(room, after, viewer, CHANGED_ON_RESUME + 1)
            .await?
    } else {
        Vec::new()
    };
    if changed.len() > CHANGED_ON_RESUME as usize {
        // More held messages changed than one frame should carry: start over from the
        // newest page, and say the client's older copies are to go (`more_before`).
        after = 0;
        changed.clear();
    }
    // One more than a page: if it comes, messages were left out before the page.
    let mut messages = store
        .latest_after(room, after, HISTORY_PAGE + 1, viewer)
        .await?;
    let more_before = if messages.len() > HISTORY_PAGE as usize {
        messages.remove(0);
        true
    } else {
        // All messages after `after` are here; before it, the client has what it has
        // (nothing, when `after` is 0).
        false
    };
    let through = latest.max(after);
    let frame = ServerMsg::History {
        room,
        messages,
        more_before,
        through: Some(through),
        changed,
    };
    Ok((frame, through))
}
