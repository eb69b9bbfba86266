//! What the person does to the [`ChatState`]: view a room, fold or close a popup, post,
//! change a message,
//! join, open a direct room, page back; and putting a cached visit on screen or
//! forgetting the person. Requests that only go to the server (rename, create a room,
//! join by code, leave) change nothing here until the server answers.

use std::collections::HashMap;

use natter_protocol::{ChannelInfo, ClientMsg, RoomId, RoomKind, UserId, HISTORY_PAGE};

use super::{CachedVisit, ChatState, Effect, Pending, PendingChange, RoomHistory};
use crate::logic;

impl ChatState {
    /// Shows `room` in the main pane (or its popup, for a direct room).
    pub fn view(&mut self, room: RoomId) -> Vec<Effect> {
        let mut out = Vec::new();
        self.show(room, &mut out);
        out
    }

    /// Opens (or unfolds) the popup of a direct room; the drawer it was chosen from
    /// closes (on a phone the conversation takes the screen).
    pub fn show_popup(&mut self, room: RoomId) -> Vec<Effect> {
        let mut out = Vec::new();
        self.close_drawer();
        self.open_popup(room, &mut out);
        out
    }

    /// Folds or unfolds a popup.
    pub fn toggle_popup(&mut self, room: RoomId) -> Vec<Effect> {
        let mut out = Vec::new();
        if let Some(popup) = self.popups.edit().iter_mut().find(|p| p.room == room) {
            popup.minimized = !popup.minimized;
        }
        self.mark_read_if_visible(room, &mut out);
        self.save_profile(&mut out);
        out
    }

    /// Closes a popup; a new message in its room opens it again.
    pub fn close_popup(&mut self, room: RoomId) -> Vec<Effect> {
        let mut out = Vec::new();
        self.popups.edit().retain(|p| p.room != room);
        self.save_profile(&mut out);
        out
    }

    /// Opens or closes the sidebar drawer.
    pub fn toggle_drawer(&mut self) {
        let open = self.drawer_open.edit();
        *open = !*open;
    }

    /// Closes the drawer (a tap beside it, Escape, a room or person chosen).
    pub fn close_drawer(&mut self) {
        if *self.drawer_open {
            self.drawer_open.set(false);
        }
    }

    /// Shows (or clears, with `None`) an inline error for a form.
    pub fn set_error(&mut self, form: &'static str, message: Option<String>) {
        let errors = self.errors.edit();
        match message {
            Some(message) => {
                errors.insert(form, message);
            }
            None => {
                errors.remove(form);
            }
        }
    }

    /// Posts a message: it shows greyed until acknowledged, and goes out now if the
    /// socket is open (else it is resent after the next `ready`) — or, while sends are
    /// paced, when its turn comes.
    pub fn post(&mut self, sent: Pending) -> Vec<Effect> {
        let effect = Effect::SendTagged {
            request: sent.request(),
            client_id: sent.client_id.clone(),
        };
        self.pending.edit().push(sent);
        if self.throttled {
            return Vec::new();
        }
        vec![effect]
    }

    /// Sends a change to a message (edit, delete, react, unreact) under `client_id`;
    /// kept until acknowledged, and resent after a reconnect.
    pub fn change(&mut self, client_id: String, request: ClientMsg) -> Vec<Effect> {
        self.pending_changes.edit().push(PendingChange {
            client_id: client_id.clone(),
            request: request.clone(),
        });
        vec![Effect::SendTagged { request, client_id }]
    }

    /// One step of pacing: the oldest pending message goes out (again: the server
    /// stores each client id once), and the next step is scheduled — until nothing is
    /// pending, when sends go out at once again.
    pub fn pace(&mut self) -> Vec<Effect> {
        match self.pending.first() {
            Some(oldest) => vec![
                Effect::SendTagged {
                    request: oldest.request(),
                    client_id: oldest.client_id.clone(),
                },
                Effect::PaceAfter { ms: logic::PACE_MS },
            ],
            None => {
                self.throttled = false;
                Vec::new()
            }
        }
    }

    /// Joins a public channel, or just shows it if I am a member already.
    pub fn join_channel(&mut self, channel: &ChannelInfo) -> Vec<Effect> {
        if self.rooms.iter().any(|r| r.id == channel.id) {
            self.view(channel.id)
        } else {
            vec![Effect::Send(ClientMsg::JoinChannel {
                name: channel.name.clone(),
            })]
        }
    }

    /// Opens the direct room with `user`: its popup if the room exists, else asks the
    /// server to open it (it then pops up on both sides).
    pub fn open_direct(&mut self, user: &UserId) -> Vec<Effect> {
        let existing = self.rooms.iter().find_map(|room| match &room.kind {
            RoomKind::Direct { members } if members.iter().any(|m| &m.id == user) => Some(room.id),
            _ => None,
        });
        match existing {
            Some(room) => self.show_popup(room),
            None => {
                self.close_drawer();
                vec![Effect::Send(ClientMsg::OpenDirect { user: user.clone() })]
            }
        }
    }

    /// The request for the page before the oldest message held in `room`, if the server
    /// has older ones and none is on its way.
    pub fn older_page(&self, room: RoomId) -> Option<ClientMsg> {
        let before = self
            .history
            .get(&room)
            .filter(|h| h.more_before && !h.loading_older)
            .and_then(|h| h.messages.first().map(|m| m.seq))?;
        Some(ClientMsg::History {
            room,
            before,
            limit: HISTORY_PAGE,
        })
    }

    /// The [`ChatState::older_page`] request went out: wait for it.
    pub fn older_page_requested(&mut self, room: RoomId) {
        if let Some(held) = self.history.edit().get_mut(&room) {
            held.loading_older = true;
        }
    }

    /// Puts a cached visit on screen, before the server confirms or corrects it.
    pub fn restore(&mut self, visit: CachedVisit) {
        let history: HashMap<RoomId, RoomHistory> = visit
            .history
            .into_iter()
            .map(|(room, messages)| {
                // Held up to the newest cached message: a resume from there brings
                // the newer messages and the held ones changed since.
                let held = RoomHistory {
                    more_before: messages.first().is_some_and(|m| m.seq > 1),
                    through: messages.last().map_or(0, |m| m.seq),
                    messages,
                    loading_older: false,
                    catching_up: false,
                };
                (room, held)
            })
            .collect();
        self.history.set(history);
        self.rooms.set(visit.rooms);
        self.read.set(visit.read);
        self.muted.set(visit.muted);
        self.current.set(visit.current);
        self.popups.set(visit.popups);
        self.me.set(Some(visit.me));
    }

    /// Forgets the person: everything but the channel list (the next `ready` replaces
    /// it anyway) and whether the drawer is open.
    pub fn forget(&mut self) {
        self.me.set(None);
        self.people.set(Vec::new());
        self.rooms.set(Vec::new());
        self.history.set(HashMap::new());
        self.read.set(HashMap::new());
        self.current.set(None);
        self.popups.set(Vec::new());
        self.errors.set(HashMap::new());
        self.pending.set(Vec::new());
        self.pending_changes.set(Vec::new());
    }
}
