//! The connection to the server and the chat state it feeds.
//!
//! [`Chat`] is a bundle of signals (cheap to copy, provided as context) that the
//! components read, plus the actions they call. Only this module touches the
//! WebSocket: it says `hello` on every (re)connect with the stored guest credentials
//! and the newest seq held per room, applies each [`ServerMsg`] to the signals,
//! resends unacknowledged messages with their original client ids (the server stores
//! each once), and reconnects with full-jitter backoff when the socket drops.
//!
//! What survives a browser restart lives in localStorage (see [`crate::cache`]).

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use leptos::prelude::*;
use natter_protocol::account::Account;
use natter_protocol::{
    ChannelInfo, ChatMessage, ClientFrame, ClientMsg, ErrorCode, MessageKind, ResumePosition,
    RoomId, RoomInfo, RoomKind, Seq, ServerMsg, UserId, UserSummary, CLOSE_SIGNED_OUT,
    DEFAULT_CHANNEL, HISTORY_PAGE, PROTOCOL_VERSION,
};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;
use web_sys::{CloseEvent, MessageEvent, WebSocket};

use crate::cache::{self, Profile};
use crate::logic::{self, Backoff};

/// What the connection is doing, shown in the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// No name chosen yet, so no connection.
    Idle,
    /// Opening the socket or waiting for `ready`.
    Connecting,
    /// `ready` received: chatting.
    Online,
    /// The socket dropped; a reconnect is scheduled.
    Reconnecting,
}

impl Status {
    /// Words for the header.
    pub fn label(self) -> &'static str {
        match self {
            Status::Idle => "not connected",
            Status::Connecting => "connecting…",
            Status::Online => "online",
            Status::Reconnecting => "reconnecting…",
        }
    }
}

/// Which form an error belongs to: sent as the request's `ref`, echoed by the server.
pub mod form {
    /// The name prompt.
    pub const HELLO: &str = "hello";
    /// Renaming from the header.
    pub const RENAME: &str = "rename";
    /// The new-channel form.
    pub const CHANNEL: &str = "channel";
    /// The join-by-code form.
    pub const CODE: &str = "code";
    /// Anything else (shown above the composer).
    pub const GENERAL: &str = "general";
    /// News for the welcome screen's account forms ("you were signed out").
    pub const ACCOUNT: &str = "account";
}

/// A direct-message popup on screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Popup {
    /// The direct room.
    pub room: RoomId,
    /// Folded to its title bar.
    pub minimized: bool,
}

/// A room's messages as the client holds them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RoomHistory {
    /// One seq-ordered run without duplicates (see [`logic::apply_batch`]).
    pub messages: Vec<ChatMessage>,
    /// The server has older messages than the first one here.
    pub more_before: bool,
    /// An older page has been asked for and not arrived yet.
    pub loading_older: bool,
}

/// A person in the user list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    /// The user.
    pub user: UserSummary,
    /// Online now (or within the grace period).
    pub online: bool,
}

/// A message the user sent that the server has not acknowledged yet (shown greyed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// Its idempotency key: resent as is after a reconnect.
    pub client_id: String,
    /// The room.
    pub room: RoomId,
    /// The text.
    pub text: String,
}

/// The live socket and the callbacks it needs kept alive.
struct Connection {
    socket: WebSocket,
    _on_open: Closure<dyn FnMut()>,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_close: Closure<dyn FnMut(CloseEvent)>,
}

/// Non-reactive client state: the socket, unacknowledged sends, the backoff.
#[derive(Default)]
struct Wire {
    connection: Option<Connection>,
    backoff: Option<Backoff>,
    /// The name to say hello with; `None` after signing out (no reconnects).
    name: Option<String>,
    /// Bumped on sign-out so callbacks of an old socket do nothing.
    generation: u64,
}

/// The chat state every component reads; cheap to copy.
#[derive(Clone, Copy)]
pub struct Chat {
    /// Connection state for the header.
    pub status: RwSignal<Status>,
    /// Who I am: from the cache at start, confirmed by `ready`.
    pub me: RwSignal<Option<UserSummary>>,
    /// Everyone seen since the page loaded, online or not.
    pub people: RwSignal<Vec<Person>>,
    /// Every public channel.
    pub channels: RwSignal<Vec<ChannelInfo>>,
    /// Rooms I am in.
    pub rooms: RwSignal<Vec<RoomInfo>>,
    /// Messages per room.
    pub history: RwSignal<HashMap<RoomId, RoomHistory>>,
    /// Newest seq read per room.
    pub read: RwSignal<HashMap<RoomId, Seq>>,
    /// The channel or code room in the main pane.
    pub current: RwSignal<Option<RoomId>>,
    /// Direct-message popups, oldest first.
    pub popups: RwSignal<Vec<Popup>>,
    /// Errors by form (see [`form`]), shown inline next to it.
    pub errors: RwSignal<HashMap<&'static str, String>>,
    /// Sent but not acknowledged, in sending order.
    pub pending: RwSignal<Vec<Pending>>,
    /// Whether the sidebar drawer is open (narrow screens).
    pub drawer_open: RwSignal<bool>,
    /// The account this browser is signed in to; `None` for a guest.
    pub account: RwSignal<Option<Account>>,
    /// Socket and bookkeeping (not reactive).
    wire: StoredValue<Rc<RefCell<Wire>>, LocalStorage>,
}

fn socket_url() -> String {
    let location = web_sys::window().map(|w| w.location());
    let host = location
        .as_ref()
        .and_then(|l| l.host().ok())
        .unwrap_or_default();
    let scheme = match location.and_then(|l| l.protocol().ok()).as_deref() {
        Some("https:") => "wss",
        _ => "ws",
    };
    format!("{scheme}://{host}/ws")
}

fn form_of(request_ref: Option<&str>) -> &'static str {
    match request_ref {
        Some(form::HELLO) => form::HELLO,
        Some(form::RENAME) => form::RENAME,
        Some(form::CHANNEL) => form::CHANNEL,
        Some(form::CODE) => form::CODE,
        _ => form::GENERAL,
    }
}

impl Chat {
    /// State restored from this browser's cache; connects if a name was chosen before.
    pub fn boot() -> Self {
        let chat = Chat {
            status: RwSignal::new(Status::Idle),
            me: RwSignal::new(None),
            people: RwSignal::new(Vec::new()),
            channels: RwSignal::new(Vec::new()),
            rooms: RwSignal::new(Vec::new()),
            history: RwSignal::new(HashMap::new()),
            read: RwSignal::new(HashMap::new()),
            current: RwSignal::new(None),
            popups: RwSignal::new(Vec::new()),
            errors: RwSignal::new(HashMap::new()),
            pending: RwSignal::new(Vec::new()),
            drawer_open: RwSignal::new(false),
            account: RwSignal::new(None),
            wire: StoredValue::new_local(Rc::new(RefCell::new(Wire::default()))),
        };
        if let Some(profile) = cache::load_profile() {
            // A guest: show the last session at once; the server confirms or corrects it.
            chat.restore(profile);
        }
        // A session cookie (invisible to this code) makes the connection an account's;
        // ask who that is, and connect as them if no guest identity is waiting.
        leptos::task::spawn_local(async move {
            if let Some(account) = crate::account::current_session().await {
                chat.signed_in(account);
            }
        });
        chat
    }

    /// Puts a cached profile on screen and connects as its owner.
    fn restore(&self, profile: Profile) {
        let mut history = HashMap::new();
        for room in &profile.rooms {
            let messages = cache::load_history(&profile.me.id, room.id);
            history.insert(
                room.id,
                RoomHistory {
                    more_before: messages.first().is_some_and(|m| m.seq > 1),
                    messages,
                    loading_older: false,
                },
            );
        }
        self.history.set(history);
        self.rooms.set(profile.rooms);
        self.read.set(profile.read.into_iter().collect());
        self.current.set(profile.current);
        self.popups.set(profile.popups);
        self.me.set(Some(profile.me.clone()));
        self.start(profile.me.name);
    }

    /// The browser is signed in to `account` (just now, or by a cookie from before):
    /// show its cached profile and (re)connect, so the upgrade carries the cookie.
    pub fn signed_in(&self, account: Account) {
        let same = self
            .me
            .with_untracked(|me| me.as_ref().is_some_and(|m| m.id == account.user_id));
        self.account.set(Some(account.clone()));
        self.set_error(form::ACCOUNT, None);
        if same && self.status.get_untracked() == Status::Online {
            return;
        }
        self.drop_connection();
        match cache::load_profile_of(&account.user_id) {
            Some(profile) => self.restore(profile),
            None => self.start(account.name),
        }
    }

    /// Closes the socket (if any) and ignores everything it still says.
    fn drop_connection(&self) {
        let wire = self.wire();
        let mut wire = wire.borrow_mut();
        wire.generation += 1;
        if let Some(connection) = wire.connection.take() {
            let _ = connection.socket.close();
        }
    }

    fn wire(&self) -> Rc<RefCell<Wire>> {
        self.wire.get_value()
    }

    /// Shows (or clears, with `None`) an inline error for a form.
    pub fn set_error(&self, form: &'static str, message: Option<String>) {
        self.errors.update(|errors| match message {
            Some(message) => {
                errors.insert(form, message);
            }
            None => {
                errors.remove(form);
            }
        });
    }

    /// The inline error of a form, if any.
    pub fn error(&self, form: &'static str) -> Option<String> {
        self.errors.with(|errors| errors.get(form).cloned())
    }

    /// Connects (or says hello again on the open socket) as `name`.
    pub fn start(&self, name: String) {
        self.set_error(form::HELLO, None);
        let wire = self.wire();
        wire.borrow_mut().name = Some(name);
        let open = wire
            .borrow()
            .connection
            .as_ref()
            .is_some_and(|c| c.socket.ready_state() == WebSocket::OPEN);
        let connecting = wire.borrow().connection.is_some();
        if open {
            self.say_hello();
        } else if !connecting {
            self.connect();
        }
    }

    fn connect(&self) {
        let generation = {
            let wire = self.wire();
            let wire = wire.borrow();
            if wire.name.is_none() {
                return;
            }
            wire.generation
        };
        self.status.set(Status::Connecting);
        let Ok(socket) = WebSocket::new(&socket_url()) else {
            self.schedule_reconnect();
            return;
        };
        let chat = *self;
        let current = move || chat.wire().borrow().generation == generation;
        let on_open = Closure::<dyn FnMut()>::new(move || {
            if current() {
                chat.say_hello();
            }
        });
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
            if !current() {
                return;
            }
            if let Some(text) = event.data().as_string() {
                match serde_json::from_str::<ServerMsg>(&text) {
                    Ok(msg) => chat.apply(msg),
                    Err(err) => leptos::logging::warn!("unreadable server frame: {err}"),
                }
            }
        });
        let on_close = Closure::<dyn FnMut(CloseEvent)>::new(move |event: CloseEvent| {
            if !current() {
                return;
            }
            chat.wire().borrow_mut().connection = None;
            if event.code() == CLOSE_SIGNED_OUT {
                // The session ended: signed out (here or in another tab), a password
                // reset, or another tab signed in again (which replaces the cookie, so
                // then carry on with the new session).
                chat.status.set(Status::Reconnecting);
                leptos::task::spawn_local(async move {
                    match crate::account::current_session().await {
                        Some(account) => chat.signed_in(account),
                        None => {
                            chat.forget_me();
                            chat.set_error(form::ACCOUNT, Some("You were signed out.".into()));
                        }
                    }
                });
            } else {
                chat.schedule_reconnect();
            }
        });
        socket.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        socket.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        socket.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        self.wire().borrow_mut().connection = Some(Connection {
            socket,
            _on_open: on_open,
            _on_message: on_message,
            _on_close: on_close,
        });
    }

    fn schedule_reconnect(&self) {
        if self.wire().borrow().name.is_none() {
            self.status.set(Status::Idle);
            return;
        }
        self.status.set(Status::Reconnecting);
        let delay = {
            let wire = self.wire();
            let mut wire = wire.borrow_mut();
            let backoff = wire.backoff.get_or_insert_with(Backoff::reconnect);
            backoff.next_delay_ms(js_sys::Math::random())
        };
        let chat = *self;
        set_timeout(move || chat.connect(), Duration::from_millis(delay));
    }

    fn say_hello(&self) {
        let Some(name) = self.wire().borrow().name.clone() else {
            return;
        };
        // Signed in, the cookie says who we are; otherwise the guest identity does.
        let account = self.account.get_untracked().map(|a| a.user_id);
        let credentials = match account {
            Some(_) => None,
            None => cache::load_credentials(),
        };
        let identity = account.or_else(|| credentials.as_ref().map(|c| c.user_id.clone()));
        // Resume only rooms cached for the identity we present.
        let resume = match identity {
            Some(id)
                if self
                    .me
                    .with_untracked(|me| me.as_ref().is_some_and(|m| m.id == id)) =>
            {
                self.history.with_untracked(|history| {
                    history
                        .iter()
                        .filter_map(|(room, h)| {
                            logic::resume_seq(&h.messages)
                                .map(|seq| ResumePosition { room: *room, seq })
                        })
                        .collect()
                })
            }
            _ => Vec::new(),
        };
        self.send_with_ref(
            ClientMsg::Hello {
                version: PROTOCOL_VERSION,
                name,
                credentials,
                resume,
            },
            Some(form::HELLO),
        );
    }

    /// Sends a request if the socket is open; returns whether it went out.
    pub fn send(&self, msg: ClientMsg) -> bool {
        self.send_with_ref(msg, None)
    }

    /// Sends a request tagged with the form that should show its error.
    pub fn send_with_ref(&self, msg: ClientMsg, form: Option<&'static str>) -> bool {
        let frame = ClientFrame {
            request_ref: form.map(str::to_string),
            msg,
        };
        let wire = self.wire();
        let wire = wire.borrow();
        match &wire.connection {
            Some(c) if c.socket.ready_state() == WebSocket::OPEN => {
                c.socket.send_with_str(&frame.to_json()).is_ok()
            }
            _ => false,
        }
    }

    /// Posts `text` to `room`. If the socket is down it goes out after reconnecting.
    pub fn post(&self, room: RoomId, text: String) {
        let client_id = format!(
            "{:x}-{:x}",
            js_sys::Date::now() as u64,
            (js_sys::Math::random() * 1e15) as u64
        );
        self.pending.update(|p| {
            p.push(Pending {
                client_id: client_id.clone(),
                room,
                text: text.clone(),
            })
        });
        self.send(ClientMsg::Send {
            room,
            client_id,
            text,
        });
    }

    /// Asks for the page before the oldest message held in `room`.
    pub fn load_older(&self, room: RoomId) {
        let before = self.history.with_untracked(|h| {
            h.get(&room)
                .filter(|h| h.more_before && !h.loading_older)
                .and_then(|h| h.messages.first().map(|m| m.seq))
        });
        if let Some(before) = before {
            let sent = self.send(ClientMsg::History {
                room,
                before,
                limit: HISTORY_PAGE,
            });
            if sent {
                self.history.update(|h| {
                    if let Some(h) = h.get_mut(&room) {
                        h.loading_older = true;
                    }
                });
            }
        }
    }

    /// Shows `room` in the main pane (or its popup, for a direct room).
    pub fn view(&self, room: RoomId) {
        if self.is_direct(room) {
            self.show_popup(room);
        } else {
            self.current.set(Some(room));
            self.drawer_open.set(false);
            self.mark_read(room);
            self.save_profile();
        }
    }

    /// Joins a public channel (or just shows it if already a member).
    pub fn join_channel(&self, channel: &ChannelInfo) {
        if self
            .rooms
            .with_untracked(|r| r.iter().any(|r| r.id == channel.id))
        {
            self.view(channel.id);
        } else {
            self.send(ClientMsg::JoinChannel {
                name: channel.name.clone(),
            });
        }
    }

    /// Opens the direct room with `user`; it pops up on both sides.
    pub fn open_direct(&self, user: &UserId) {
        let existing = self.rooms.with_untracked(|rooms| {
            rooms.iter().find_map(|room| match &room.kind {
                RoomKind::Direct { members } if members.iter().any(|m| &m.id == user) => {
                    Some(room.id)
                }
                _ => None,
            })
        });
        match existing {
            Some(room) => self.show_popup(room),
            None => {
                self.send(ClientMsg::OpenDirect { user: user.clone() });
            }
        }
    }

    /// Asks to be called `name` from now on.
    pub fn rename(&self, name: String) {
        self.send_with_ref(ClientMsg::Rename { name }, Some(form::RENAME));
    }

    /// Creates a public channel.
    pub fn create_channel(&self, name: String, delete_when_empty: bool) {
        self.send_with_ref(
            ClientMsg::CreateChannel {
                name,
                delete_when_empty,
            },
            Some(form::CHANNEL),
        );
    }

    /// Creates a private room with a fresh code.
    pub fn create_code_room(&self, delete_when_empty: bool) {
        self.send_with_ref(
            ClientMsg::CreateCodeRoom { delete_when_empty },
            Some(form::CODE),
        );
    }

    /// Joins a private room by its code.
    pub fn join_code(&self, code: String) {
        self.send_with_ref(ClientMsg::JoinByCode { code }, Some(form::CODE));
    }

    /// Leaves a channel or code room.
    pub fn leave(&self, room: RoomId) {
        self.send(ClientMsg::Leave { room });
    }

    fn is_direct(&self, room: RoomId) -> bool {
        self.rooms.with_untracked(|rooms| {
            rooms
                .iter()
                .any(|r| r.id == room && matches!(r.kind, RoomKind::Direct { .. }))
        })
    }

    /// Opens (or unfolds) the popup of a direct room.
    pub fn show_popup(&self, room: RoomId) {
        self.popups
            .update(|popups| match popups.iter_mut().find(|p| p.room == room) {
                Some(popup) => popup.minimized = false,
                None => popups.push(Popup {
                    room,
                    minimized: false,
                }),
            });
        self.mark_read(room);
        self.save_profile();
    }

    /// Folds or unfolds a popup.
    pub fn toggle_popup(&self, room: RoomId) {
        self.popups.update(|popups| {
            if let Some(popup) = popups.iter_mut().find(|p| p.room == room) {
                popup.minimized = !popup.minimized;
            }
        });
        self.mark_read_if_visible(room);
        self.save_profile();
    }

    /// Closes a popup; a new message in its room opens it again.
    pub fn close_popup(&self, room: RoomId) {
        self.popups
            .update(|popups| popups.retain(|p| p.room != room));
        self.save_profile();
    }

    /// Signs out: ends the account's session on the server (closing its sockets in
    /// every tab), and forgets this person in this browser — credentials, cached
    /// history and everything else stored for them — so the next person starts clean.
    pub fn sign_out(&self) {
        if self.account.get_untracked().is_some() {
            leptos::task::spawn_local(async {
                if let Err(err) = crate::account::sign_out().await {
                    leptos::logging::warn!("sign-out failed: {}", err.message);
                }
            });
        }
        self.forget_me();
    }

    /// Forgets who is using this browser and everything kept for them.
    fn forget_me(&self) {
        self.wire().borrow_mut().name = None;
        self.drop_connection();
        self.account.set(None);
        if let Some(me) = self.me.get_untracked() {
            cache::forget_user(&me.id);
        }
        cache::forget_credentials();
        self.me.set(None);
        self.people.set(Vec::new());
        self.rooms.set(Vec::new());
        self.history.set(HashMap::new());
        self.read.set(HashMap::new());
        self.current.set(None);
        self.popups.set(Vec::new());
        self.errors.set(HashMap::new());
        self.pending.set(Vec::new());
        self.status.set(Status::Idle);
    }

    /// Rooms whose messages are on screen: the main pane and unfolded popups.
    fn is_visible(&self, room: RoomId) -> bool {
        self.current.get_untracked() == Some(room)
            || self
                .popups
                .with_untracked(|p| p.iter().any(|p| p.room == room && !p.minimized))
    }

    /// How a room is called on my screen (reactive).
    pub fn room_title(&self, room: RoomId) -> String {
        let me = self.me.with(|me| me.as_ref().map(|m| m.id.clone()));
        self.rooms.with(|rooms| {
            rooms
                .iter()
                .find(|r| r.id == room)
                .map(|r| crate::logic::room_title(r, me.as_ref()))
                .unwrap_or_default()
        })
    }

    /// Ids of my rooms: direct-message rooms or the others (reactive).
    pub fn room_ids(&self, direct: bool) -> Vec<RoomId> {
        self.rooms.with(|rooms| {
            rooms
                .iter()
                .filter(|r| matches!(r.kind, RoomKind::Direct { .. }) == direct)
                .map(|r| r.id)
                .collect()
        })
    }

    /// The newest seq known in a room (from its info or its messages).
    pub fn latest_seq(&self, room: RoomId) -> Seq {
        let from_info = self.rooms.with(|rooms| {
            rooms
                .iter()
                .find(|r| r.id == room)
                .map_or(0, |r| r.latest_seq)
        });
        let from_history = self.history.with(|h| {
            h.get(&room)
                .and_then(|h| h.messages.last())
                .map_or(0, |m| m.seq)
        });
        from_info.max(from_history)
    }

    /// Unread messages in a room.
    pub fn unread(&self, room: RoomId) -> u64 {
        let read = self.read.with(|r| r.get(&room).copied().unwrap_or(0));
        logic::unread(self.latest_seq(room), read)
    }

    fn mark_read(&self, room: RoomId) {
        let latest = untrack(|| self.latest_seq(room));
        let changed = self.read.with_untracked(|r| r.get(&room) != Some(&latest));
        if changed {
            self.read.update(|r| {
                r.insert(room, latest);
            });
            self.save_profile();
        }
    }

    fn mark_read_if_visible(&self, room: RoomId) {
        if self.is_visible(room) {
            self.mark_read(room);
        }
    }

    fn save_profile(&self) {
        let Some(me) = self.me.get_untracked() else {
            return;
        };
        cache::save_profile(&Profile {
            me,
            rooms: self.rooms.get_untracked(),
            read: self
                .read
                .with_untracked(|r| r.iter().map(|(k, v)| (*k, *v)).collect()),
            current: self.current.get_untracked(),
            popups: self.popups.get_untracked(),
        });
    }

    fn apply(&self, msg: ServerMsg) {
        match msg {
            ServerMsg::Ready {
                me,
                credentials,
                rooms,
            } => self.on_ready(me, credentials, rooms),
            ServerMsg::Presence { online, offline } => self.on_presence(online, offline),
            ServerMsg::Channels { channels } => self.add_channels(channels),
            ServerMsg::ChannelAdded { channel } => self.add_channels(vec![channel]),
            ServerMsg::ChannelRemoved { room } => {
                self.channels.update(|c| c.retain(|ch| ch.id != room))
            }
            ServerMsg::Joined { room, by } => self.on_joined(room, by),
            ServerMsg::Left { room } => {
                self.rooms.update(|rooms| rooms.retain(|r| r.id != room));
                self.history.update(|h| {
                    h.remove(&room);
                });
                if let Some(me) = self.me.get_untracked() {
                    cache::forget_room(&me.id, room);
                }
                if self.current.get_untracked() == Some(room) {
                    self.current.set(self.first_main_room());
                }
                self.save_profile();
            }
            ServerMsg::History {
                room,
                messages,
                more_before,
            } => {
                let batch_first = messages.first().map(|m| m.seq);
                self.history.update(|h| {
                    let entry = h.entry(room).or_default();
                    logic::apply_batch(&mut entry.messages, messages, more_before);
                    // `more_before` describes what lies before this batch: it is the
                    // room's answer only if the batch now starts what we hold.
                    if batch_first.is_some() && entry.messages.first().map(|m| m.seq) == batch_first
                    {
                        entry.more_before = more_before;
                        entry.loading_older = false;
                    } else if batch_first.is_none() {
                        entry.more_before = more_before && !entry.messages.is_empty();
                        entry.loading_older = false;
                    }
                });
                self.after_messages(room);
            }
            ServerMsg::Message { message } => self.on_message(message),
            ServerMsg::Ack {
                client_id,
                room,
                seq,
                ts,
            } => {
                let pending = self.pending.try_update(|p| {
                    let at = p.iter().position(|p| p.client_id == client_id);
                    at.map(|at| p.remove(at))
                });
                let pending = pending.flatten();
                if let (Some(pending), Some(me)) = (pending, self.me.get_untracked()) {
                    self.on_message(ChatMessage {
                        room,
                        seq,
                        sender: me,
                        ts,
                        kind: MessageKind::Text,
                        text: pending.text,
                    });
                }
            }
            ServerMsg::Error {
                code,
                message,
                request_ref,
                retry_after_ms,
            } => self.on_error(code, message, request_ref, retry_after_ms),
        }
    }

    fn on_presence(&self, online: Vec<UserSummary>, offline: Vec<UserId>) {
        let my_id = self
            .me
            .with_untracked(|me| me.as_ref().map(|me| me.id.clone()));
        if let Some(me) = online.iter().find(|u| Some(&u.id) == my_id.as_ref()) {
            self.set_error(form::RENAME, None);
            // Reconnects say hello under the new name.
            self.wire().borrow_mut().name = Some(me.name.clone());
            self.me.set(Some(me.clone()));
            self.save_profile();
        }
        self.people.update(|people| {
            for user in online {
                match people.iter_mut().find(|p| p.user.id == user.id) {
                    Some(person) => {
                        person.user = user;
                        person.online = true;
                    }
                    None => people.push(Person { user, online: true }),
                }
            }
            for user in offline {
                if let Some(person) = people.iter_mut().find(|p| p.user.id == user) {
                    person.online = false;
                }
            }
        });
    }

    /// Adds channels to the list (snapshot frames after `ready`, or one created live).
    fn add_channels(&self, channels: Vec<ChannelInfo>) {
        self.channels.update(|list| {
            for channel in channels {
                if !list.iter().any(|ch| ch.id == channel.id) {
                    list.push(channel);
                }
            }
        });
    }

    fn on_ready(
        &self,
        me: UserSummary,
        credentials: Option<natter_protocol::GuestCredentials>,
        rooms: Vec<RoomInfo>,
    ) {
        let previous = self.me.get_untracked();
        if previous.as_ref().is_some_and(|p| p.id != me.id) {
            // A different identity than the cache was for: drop what was shown.
            self.history.set(HashMap::new());
            self.read.set(HashMap::new());
            self.popups.set(Vec::new());
            self.current.set(None);
        }
        if let Some(credentials) = &credentials {
            cache::save_credentials(credentials);
        }
        if let Some(backoff) = self.wire().borrow_mut().backoff.as_mut() {
            backoff.reset();
        }
        // Rooms left elsewhere while away are gone from the cache too.
        self.history
            .update(|h| h.retain(|id, _| rooms.iter().any(|r| r.id == *id)));
        self.read.update(|read| {
            for room in &rooms {
                // A room never seen before starts read: no flood of old unread.
                read.entry(room.id).or_insert(room.latest_seq);
            }
        });
        let current_ok = self.current.get_untracked().is_some_and(|c| {
            rooms
                .iter()
                .any(|r| r.id == c && !matches!(r.kind, RoomKind::Direct { .. }))
        });
        let in_default = rooms
            .iter()
            .any(|r| matches!(&r.kind, RoomKind::Channel { name } if name == DEFAULT_CHANNEL));
        self.popups
            .update(|p| p.retain(|p| rooms.iter().any(|r| r.id == p.room)));
        // The snapshot that follows `ready` says who is online and which channels
        // exist; until then, nobody is known to be online and no channel is listed.
        self.people
            .update(|people| people.iter_mut().for_each(|p| p.online = false));
        self.me.set(Some(me));
        self.rooms.set(rooms);
        self.channels.set(Vec::new());
        if !current_ok {
            self.current.set(self.first_main_room());
        }
        if self.current.get_untracked().is_none() && !in_default {
            self.send(ClientMsg::JoinChannel {
                name: DEFAULT_CHANNEL.into(),
            });
        }
        self.status.set(Status::Online);
        self.save_profile();
        // Anything not acknowledged before the drop goes out again, same client ids.
        self.resend_pending();
    }

    /// Sends every unacknowledged message again with its original client id; the
    /// server stores each once, so this is always safe.
    fn resend_pending(&self) {
        for p in self.pending.get_untracked() {
            self.send(ClientMsg::Send {
                room: p.room,
                client_id: p.client_id,
                text: p.text,
            });
        }
    }

    fn first_main_room(&self) -> Option<RoomId> {
        self.rooms.with_untracked(|rooms| {
            rooms
                .iter()
                .find(|r| !matches!(r.kind, RoomKind::Direct { .. }))
                .map(|r| r.id)
        })
    }

    fn on_joined(&self, room: RoomInfo, by: UserId) {
        let id = room.id;
        let direct = matches!(room.kind, RoomKind::Direct { .. });
        let latest = room.latest_seq;
        self.rooms
            .update(|rooms| match rooms.iter_mut().find(|r| r.id == id) {
                Some(existing) => *existing = room,
                None => rooms.push(room),
            });
        self.read.update(|read| {
            read.entry(id).or_insert(latest);
        });
        let mine = self
            .me
            .with_untracked(|me| me.as_ref().is_some_and(|me| me.id == by));
        if direct {
            self.show_popup(id);
        } else if mine {
            self.set_error(form::CHANNEL, None);
            self.set_error(form::CODE, None);
            self.view(id);
        }
        self.save_profile();
    }

    fn on_message(&self, message: ChatMessage) {
        let room = message.room;
        let seq = message.seq;
        // A gap before a live message (missed while away): fetch exactly what is missing.
        let held_until = self
            .history
            .with_untracked(|h| h.get(&room).and_then(|h| logic::resume_seq(&h.messages)));
        if let Some(end) = held_until.filter(|end| seq > end + 1) {
            let missing = u32::try_from(seq - end - 1)
                .unwrap_or(u32::MAX)
                .min(HISTORY_PAGE);
            self.send(ClientMsg::History {
                room,
                before: seq,
                limit: missing,
            });
        }
        self.history.update(|h| {
            logic::merge_history(&mut h.entry(room).or_default().messages, [message]);
        });
        self.rooms.update(|rooms| {
            if let Some(info) = rooms.iter_mut().find(|r| r.id == room) {
                info.latest_seq = info.latest_seq.max(seq);
            }
        });
        // A new message in a closed direct room brings its popup back.
        if self.is_direct(room)
            && !self
                .popups
                .with_untracked(|p| p.iter().any(|p| p.room == room))
        {
            self.popups.update(|p| {
                p.push(Popup {
                    room,
                    minimized: false,
                })
            });
        }
        self.after_messages(room);
    }

    fn after_messages(&self, room: RoomId) {
        self.mark_read_if_visible(room);
        if let Some(me) = self.me.get_untracked() {
            self.history.with_untracked(|h| {
                if let Some(h) = h.get(&room) {
                    cache::save_history(&me.id, room, &h.messages);
                }
            });
        }
    }

    fn on_error(
        &self,
        code: ErrorCode,
        message: String,
        request_ref: Option<String>,
        retry_after_ms: Option<u64>,
    ) {
        match code {
            ErrorCode::BadCredentials => {
                // This server does not know us (its database was reset): start afresh.
                if let Some(me) = self.me.get_untracked() {
                    cache::forget_user(&me.id);
                }
                cache::forget_credentials();
                self.say_hello();
            }
            ErrorCode::RateLimited => {
                // Sends refused for speed stay pending; try them again when allowed.
                let chat = *self;
                let wait = retry_after_ms.unwrap_or(1000);
                set_timeout(move || chat.resend_pending(), Duration::from_millis(wait));
                self.set_error(form::GENERAL, Some(message));
            }
            ErrorCode::NameTaken | ErrorCode::NameReserved | ErrorCode::InvalidName
                if request_ref.as_deref() == Some(form::HELLO) =>
            {
                // Refused at hello: back to the name prompt with the reason.
                self.me.set(None);
                self.set_error(form::HELLO, Some(message));
            }
            _ => self.set_error(form_of(request_ref.as_deref()), Some(message)),
        }
    }
}
