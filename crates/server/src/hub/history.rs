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
    let changed = if after > 0 {
        store
            .changed_since(room, after, viewer, CHANGED_ON_RESUME)
            .await?
    } else {
        Vec::new()
    };
    // Everything up to `latest` was committed before these reads, and seqs commit in
    // order, so a message (or a change a message includes) above it is covered too.
    let through = messages
        .iter()
        .chain(&changed)
        .map(|m| m.seq.max(m.rev))
        .fold(latest.max(after), Seq::max);
    let frame = ServerMsg::History {
        room,
        messages,
        more_before,
        through: Some(through),
        changed,
    };
    Ok((frame, through))
}
