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
/// The frame's `through` is the newer of that seq and the page's last message: the
/// page is read in one snapshot, and seqs commit in order, so every event up to its
/// last message — every change to the page's messages included — is in it; the
/// messages changed since `after` are read after the page, so they include every
/// change up to it as well. Live events above `through` follow (a change there that
/// the reads already saw is skipped by the client, by the message's `rev`); none at or
/// below it is sent again, so each message reaches the connection once.
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
    let (mut messages, mut changed) = (page_after(store, room, after, viewer).await?, Vec::new());
    let mut after = after;
    if after > 0 {
        // Read after the page: it includes every change the page's snapshot does.
        changed = store
            .changed_since(room, after, viewer, CHANGED_ON_RESUME + 1)
            .await?;
        if changed.len() > CHANGED_ON_RESUME as usize {
            // More held messages changed than one frame should carry: the newest page
            // as to a newcomer, and the client's older copies are to go (`more_before`).
            after = 0;
            changed.clear();
            messages = page_after(store, room, 0, viewer).await?;
        }
    }
    // One more than a page was read: if it came, messages were left out before it.
    let more_before = if messages.len() > HISTORY_PAGE as usize {
        messages.remove(0);
        true
    } else {
        // All messages after `after` are here; before it, the client has what it has
        // (nothing, when `after` is 0).
        false
    };
    let through = messages.last().map_or(0, |m| m.seq).max(latest).max(after);
    let frame = ServerMsg::History {
        room,
        messages,
        more_before,
        through: Some(through),
        changed,
    };
    Ok((frame, through))
}

/// The newest page after `after`, plus one message to tell whether it is all.
async fn page_after(
    store: &dyn Store,
    room: RoomId,
    after: Seq,
    viewer: &UserId,
) -> StoreResult<Vec<natter_protocol::ChatMessage>> {
    store
        .latest_after(room, after, HISTORY_PAGE + 1, viewer)
        .await
}
