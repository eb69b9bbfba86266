//! What [`Chat`] offers about attention: unread and mention counts, mutes, who is
//! typing, the "new messages" line (all read from [`crate::state::ChatState`], see
//! `state/attention.rs`), and telling the server what was read, gathered so a busy
//! room costs a frame a second.

use std::time::Duration;

use leptos::prelude::*;
use natter_protocol::{ClientMsg, RoomId, Seq};

use super::Chat;
use crate::state::ChatState;

/// How long read positions gather before they are told to the server: reading a busy
/// room costs a frame a second, not one per message (the server stores them once a
/// second anyway).
const REPORT_READ_AFTER: Duration = Duration::from_secs(1);

impl Chat {
    /// Tells the server where I stopped reading, gathered for [`REPORT_READ_AFTER`].
    pub(super) fn report_read_soon(&self, room: RoomId, seq: Seq) {
        let first = self.unreported.try_update_value(|unreported| {
            let first = unreported.is_empty();
            let noted = unreported.entry(room).or_default();
            *noted = (*noted).max(seq);
            first
        });
        if first == Some(true) {
            let chat = *self;
            set_timeout(
                move || {
                    let unreported = chat
                        .unreported
                        .try_update_value(std::mem::take)
                        .unwrap_or_default();
                    for (room, seq) in unreported {
                        chat.socket().send(ClientMsg::MarkRead { room, seq }, None);
                    }
                },
                REPORT_READ_AFTER,
            );
        }
    }

    /// Subscribes to everything unread and mention counts are made of.
    fn track_counts(&self) {
        self.read.track();
        self.read_states.track();
        self.rooms.track();
        self.history.track();
        self.muted.track();
        self.blocked.track();
    }

    /// Unread messages in a room (reactive).
    pub fn unread(&self, room: RoomId) -> u64 {
        self.track_counts();
        self.state.with_untracked(|s| s.unread(room))
    }

    /// Unread messages that mention me in a room (reactive).
    pub fn mentions(&self, room: RoomId) -> u64 {
        self.track_counts();
        self.state.with_untracked(|s| s.mentions(room))
    }

    /// What the title and drawer button count (reactive; see
    /// [`ChatState::total_unread`]).
    pub fn total_unread(&self) -> u64 {
        self.track_counts();
        self.state.with_untracked(ChatState::total_unread)
    }

    /// Whether I muted `room` (reactive).
    pub fn is_muted(&self, room: RoomId) -> bool {
        self.muted.with(|muted| muted.contains(&room))
    }

    /// Mutes or unmutes `room`.
    pub fn toggle_mute(&self, room: RoomId) {
        self.change_and_perform(|s| s.toggle_mute(room));
    }

    /// Who is typing in `room`, as a line to show (reactive).
    pub fn typing_line(&self, room: RoomId) -> Option<String> {
        self.typing.track();
        self.state.with_untracked(|s| s.typing_line(room))
    }

    /// Where the "new messages" line goes in `room` (reactive).
    pub fn new_since(&self, room: RoomId) -> Option<Seq> {
        self.new_since.track();
        self.state.with_untracked(|s| s.new_since(room))
    }
}
