//! What the components call: post, edit, delete, react, jump to a message, page back,
//! view, join, leave, open a direct room,
//! block and unblock, rename, create a channel or a code room, join by code, the popups, the drawer and
//! signing out.
//!
//! Each one either changes the [`crate::state::ChatState`] (and performs what that
//! calls for) or sends a request whose answer the reducer handles, tagged with the
//! form that shows its error. Starting a session (`start`, `signed_in`) lives in
//! [`crate::chat`] instead, because the socket's own events need it too.

use leptos::prelude::*;
use natter_protocol::{Attachment, ChannelInfo, ClientMsg, MessageKind, RoomId, Seq, UserId};

use crate::chat::Chat;
use crate::state::{form, Pending};

/// A fresh idempotency key for a message or change: time and randomness, unique enough
/// per sender.
fn new_client_id() -> String {
    format!(
        "{:x}-{:x}",
        js_sys::Date::now() as u64,
        (js_sys::Math::random() * 1e15) as u64
    )
}

impl Chat {
    /// Tells the room I am typing (or stopped: I cleared the box). The composer paces
    /// it (see `components/composer.rs`); the server drops what comes faster.
    pub fn say_typing(&self, room: RoomId, typing: bool) {
        self.socket().send(ClientMsg::Typing { room, typing }, None);
    }

    /// Who an `@query` being typed in `room` could mean (see
    /// [`crate::state::ChatState::mention_suggestions`]).
    pub fn mention_suggestions(&self, room: RoomId, query: &str) -> Vec<String> {
        self.with_state_untracked(|s| s.mention_suggestions(room, query))
    }

    /// Shows (or clears, with `None`) an inline error for a form.
    pub fn set_error(&self, form: &'static str, message: Option<String>) {
        self.change(|s| s.set_error(form, message));
    }

    /// Posts `text` to `room` (as a reply, if one is being written there). If the
    /// socket is down it goes out after reconnecting.
    pub fn post(&self, room: RoomId, text: String, attachments: Vec<Attachment>) {
        let client_id = new_client_id();
        let reply_to = self.replying.try_update(|r| r.remove(&room)).flatten();
        self.change_and_perform(|s| {
            s.post(Pending {
                client_id,
                room,
                text,
                attachments,
                reply_to,
            })
        });
    }

    /// Replaces the text of my message `seq` in `room`.
    pub fn edit_message(&self, room: RoomId, seq: Seq, text: String) {
        let client_id = new_client_id();
        let request = ClientMsg::Edit {
            room,
            client_id: client_id.clone(),
            seq,
            text,
        };
        self.change_and_perform(|s| s.change(client_id, request));
    }

    /// Deletes my message `seq` in `room` (the person confirmed it).
    pub fn delete_message(&self, room: RoomId, seq: Seq) {
        let client_id = new_client_id();
        let request = ClientMsg::Delete {
            room,
            client_id: client_id.clone(),
            seq,
        };
        self.change_and_perform(|s| s.change(client_id, request));
    }

    /// Adds my reaction with `emoji` to message `seq`, or takes it back if I gave it.
    pub fn toggle_reaction(&self, room: RoomId, seq: Seq, emoji: String) {
        let mine = self.with_state_untracked(|s| {
            s.history.get(&room).is_some_and(|h| {
                h.messages
                    .iter()
                    .any(|m| m.seq == seq && m.reactions.iter().any(|r| r.emoji == emoji && r.me))
            })
        });
        if !mine {
            crate::cache::count_emoji(&emoji);
        }
        let client_id = new_client_id();
        let request = if mine {
            ClientMsg::Unreact {
                room,
                client_id: client_id.clone(),
                seq,
                emoji,
            }
        } else {
            ClientMsg::React {
                room,
                client_id: client_id.clone(),
                seq,
                emoji,
            }
        };
        self.change_and_perform(|s| s.change(client_id, request));
    }

    /// Starts editing my newest message in `room` (↑ in an empty box); false when I
    /// have none there to edit.
    pub fn edit_last_mine(&self, room: RoomId) -> bool {
        let me = self
            .me
            .with_untracked(|me| me.as_ref().map(|m| m.id.clone()));
        let last = self.with_state_untracked(|s| {
            s.history.get(&room).and_then(|h| {
                h.messages
                    .iter()
                    .rev()
                    .find(|m| {
                        Some(&m.sender.id) == me.as_ref()
                            && m.kind == MessageKind::Text
                            && !m.deleted
                    })
                    .map(|m| m.seq)
            })
        });
        if let Some(seq) = last {
            self.editing.set(Some((room, seq)));
        }
        last.is_some()
    }

    /// Shows `seq` of `room`: scrolls to it, paging older history in until it is held.
    pub fn jump_to(&self, room: RoomId, seq: Seq) {
        self.jump.set(Some((room, seq)));
        let held = self.with_state_untracked(|s| {
            s.history
                .get(&room)
                .is_some_and(|h| h.messages.first().is_some_and(|m| m.seq <= seq))
        });
        if !held {
            self.load_older(room);
        }
    }

    /// Asks for the page before the oldest message held in `room`.
    pub fn load_older(&self, room: RoomId) {
        let Some(request) = self.with_state_untracked(|s| s.older_page(room)) else {
            return;
        };
        if self.socket().send(request, None) {
            self.change(|s| s.older_page_requested(room));
        }
    }

    /// Shows `room` in the main pane (or its popup, for a direct room).
    pub fn view(&self, room: RoomId) {
        self.change_and_perform(|s| s.view(room));
    }

    /// Joins a public channel (or just shows it if already a member).
    pub fn join_channel(&self, channel: &ChannelInfo) {
        self.change_and_perform(|s| s.join_channel(channel));
    }

    /// Opens the direct room with `user`; it pops up on both sides.
    pub fn open_direct(&self, user: &UserId) {
        self.change_and_perform(|s| s.open_direct(user));
    }

    /// Blocks `user`: no popup, no direct room, their messages hidden; they are not
    /// told. The server answers with the new block list.
    pub fn block(&self, user: &UserId) {
        self.socket()
            .send(ClientMsg::Block { user: user.clone() }, None);
    }

    /// Unblocks `user`; our direct room, if any, comes back.
    pub fn unblock(&self, user: &UserId) {
        self.socket()
            .send(ClientMsg::Unblock { user: user.clone() }, None);
    }

    /// Whether I block `user` (subscribes to the block list).
    pub fn blocks(&self, user: &UserId) -> bool {
        self.blocked.track();
        self.with_state_untracked(|s| s.blocks(user))
    }

    /// Asks to be called `name` from now on.
    pub fn rename(&self, name: String) {
        self.socket()
            .send(ClientMsg::Rename { name }, Some(form::RENAME));
    }

    /// Creates a public channel.
    pub fn create_channel(&self, name: String, delete_when_empty: bool) {
        self.socket().send(
            ClientMsg::CreateChannel {
                name,
                delete_when_empty,
            },
            Some(form::CHANNEL),
        );
    }

    /// Creates a private room with a fresh code.
    pub fn create_code_room(&self, delete_when_empty: bool) {
        self.socket().send(
            ClientMsg::CreateCodeRoom { delete_when_empty },
            Some(form::CODE),
        );
    }

    /// Joins a private room by its code.
    pub fn join_code(&self, code: String) {
        self.socket()
            .send(ClientMsg::JoinByCode { code }, Some(form::CODE));
    }

    /// Asks for every channel's member count (the channel browser opened).
    pub fn browse_channels(&self) {
        self.socket().send(ClientMsg::BrowseChannels, None);
    }

    /// Leaves a channel or code room.
    pub fn leave(&self, room: RoomId) {
        self.socket().send(ClientMsg::Leave { room }, None);
    }

    /// Opens (or unfolds) the popup of a direct room.
    pub fn show_popup(&self, room: RoomId) {
        self.change_and_perform(|s| s.show_popup(room));
    }

    /// Folds or unfolds a popup.
    pub fn toggle_popup(&self, room: RoomId) {
        self.change_and_perform(|s| s.toggle_popup(room));
    }

    /// Closes a popup; a new message in its room opens it again.
    pub fn close_popup(&self, room: RoomId) {
        self.change_and_perform(|s| s.close_popup(room));
    }

    /// Opens or closes the sidebar drawer (narrow screens).
    pub fn toggle_drawer(&self) {
        self.change(|s| s.toggle_drawer());
    }

    /// Closes the sidebar drawer (a tap beside it, Escape).
    pub fn close_drawer(&self) {
        self.change(|s| s.close_drawer());
    }

    /// Signs out: ends the account's session on the server (closing its sockets in
    /// every tab), and forgets this person in this browser — credentials, cached
    /// history and everything else stored for them — so the next person starts clean.
    pub fn sign_out(&self) {
        // The server frees my name at once instead of holding it for a reconnect.
        self.socket().send(ClientMsg::Goodbye, None);
        if self.account.get_untracked().is_some() {
            leptos::task::spawn_local(async {
                if let Err(err) = crate::account::sign_out().await {
                    leptos::logging::warn!("sign-out failed: {}", err.message);
                }
            });
        }
        self.forget_me();
    }
}
