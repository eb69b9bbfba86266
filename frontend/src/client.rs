//! The connection to the server and the chat state it feeds.
//!
//! [`Chat`] is a bundle of signals (cheap to copy, provided as context) that the
//! components read. Only this module touches the WebSocket: it says `hello` on every
//! (re)connect with the stored guest credentials, applies each [`ServerMsg`] to the
//! signals, and reconnects with full-jitter backoff when the socket drops.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use gloo_storage::{LocalStorage as BrowserStorage, Storage};
use leptos::prelude::*;
use natter_protocol::{
    ChannelInfo, ChatMessage, ClientFrame, ClientMsg, ErrorCode, GuestCredentials, MessageKind,
    RoomId, RoomInfo, RoomKind, ServerMsg, UserSummary, DEFAULT_CHANNEL, PROTOCOL_VERSION,
};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;
use web_sys::{CloseEvent, MessageEvent, WebSocket};

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

/// A message the user sent that the server has not acknowledged yet.
#[derive(Debug, Clone)]
struct Pending {
    room: RoomId,
    text: String,
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
    pending: HashMap<String, Pending>,
    backoff: Option<Backoff>,
    /// The name to say hello with (set once the person picked one).
    name: Option<String>,
}

/// The chat state every component reads; cheap to copy.
#[derive(Clone, Copy)]
pub struct Chat {
    /// Connection state for the header.
    pub status: RwSignal<Status>,
    /// Who I am, once the server said `ready`.
    pub me: RwSignal<Option<UserSummary>>,
    /// Everyone online.
    pub online: RwSignal<Vec<UserSummary>>,
    /// Every public channel.
    pub channels: RwSignal<Vec<ChannelInfo>>,
    /// Rooms I am in.
    pub rooms: RwSignal<Vec<RoomInfo>>,
    /// Messages per room, seq-ordered without duplicates.
    pub history: RwSignal<HashMap<RoomId, Vec<ChatMessage>>>,
    /// The room on screen.
    pub current: RwSignal<Option<RoomId>>,
    /// Why the chosen name was refused (shown in the name prompt).
    pub name_error: RwSignal<Option<String>>,
    /// The latest error from the server, shown until the next action.
    pub notice: RwSignal<Option<String>>,
    /// Socket and bookkeeping (not reactive).
    wire: StoredValue<Rc<RefCell<Wire>>, LocalStorage>,
}

/// This page's origin, the namespace of everything natter keeps in localStorage.
pub fn origin() -> String {
    web_sys::window()
        .and_then(|w| w.location().origin().ok())
        .unwrap_or_default()
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

impl Chat {
    /// Empty state; nothing connects until [`Chat::start`].
    pub fn new() -> Self {
        Chat {
            status: RwSignal::new(Status::Idle),
            me: RwSignal::new(None),
            online: RwSignal::new(Vec::new()),
            channels: RwSignal::new(Vec::new()),
            rooms: RwSignal::new(Vec::new()),
            history: RwSignal::new(HashMap::new()),
            current: RwSignal::new(None),
            name_error: RwSignal::new(None),
            notice: RwSignal::new(None),
            wire: StoredValue::new_local(Rc::new(RefCell::new(Wire::default()))),
        }
    }

    fn wire(&self) -> Rc<RefCell<Wire>> {
        self.wire.get_value()
    }

    /// The name this browser used last time on this server, if any.
    pub fn remembered_name() -> Option<String> {
        BrowserStorage::get::<String>(logic::name_key(&origin())).ok()
    }

    /// Connects (or says hello again on the open socket) as `name`.
    pub fn start(&self, name: String) {
        self.name_error.set(None);
        let wire = self.wire();
        wire.borrow_mut().name = Some(name);
        let open = wire
            .borrow()
            .connection
            .as_ref()
            .is_some_and(|c| c.socket.ready_state() == WebSocket::OPEN);
        if open {
            self.say_hello();
        } else if wire.borrow().connection.is_none() {
            self.connect();
        }
    }

    fn connect(&self) {
        self.status.set(Status::Connecting);
        let socket = match WebSocket::new(&socket_url()) {
            Ok(socket) => socket,
            Err(_) => {
                self.schedule_reconnect();
                return;
            }
        };
        let chat = *self;
        let on_open = Closure::<dyn FnMut()>::new(move || chat.say_hello());
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
            if let Some(text) = event.data().as_string() {
                match serde_json::from_str::<ServerMsg>(&text) {
                    Ok(msg) => chat.apply(msg),
                    Err(err) => leptos::logging::warn!("unreadable server frame: {err}"),
                }
            }
        });
        let on_close = Closure::<dyn FnMut(CloseEvent)>::new(move |_event: CloseEvent| {
            chat.wire().borrow_mut().connection = None;
            chat.schedule_reconnect();
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
        let origin = origin();
        let credentials =
            BrowserStorage::get::<GuestCredentials>(logic::credentials_key(&origin)).ok();
        self.send(ClientMsg::Hello {
            version: PROTOCOL_VERSION,
            name,
            credentials,
            resume: Vec::new(),
        });
    }

    /// Sends a request if the socket is open; returns whether it went out.
    pub fn send(&self, msg: ClientMsg) -> bool {
        let wire = self.wire();
        let wire = wire.borrow();
        match &wire.connection {
            Some(c) if c.socket.ready_state() == WebSocket::OPEN => c
                .socket
                .send_with_str(&ClientFrame::from(msg).to_json())
                .is_ok(),
            _ => false,
        }
    }

    /// Posts `text` to the current room.
    pub fn post(&self, text: String) {
        let Some(room) = self.current.get_untracked() else {
            return;
        };
        let client_id = format!(
            "{:x}{:x}",
            js_sys::Date::now() as u64,
            (js_sys::Math::random() * 1e12) as u64
        );
        self.wire().borrow_mut().pending.insert(
            client_id.clone(),
            Pending {
                room,
                text: text.clone(),
            },
        );
        if !self.send(ClientMsg::Send {
            room,
            client_id,
            text,
        }) {
            self.notice
                .set(Some("Not connected: the message was not sent.".into()));
        }
    }

    fn apply(&self, msg: ServerMsg) {
        match msg {
            ServerMsg::Ready {
                me,
                credentials,
                rooms,
                online,
                channels,
            } => {
                let origin = origin();
                let _ = BrowserStorage::set(logic::credentials_key(&origin), &credentials);
                let _ = BrowserStorage::set(logic::name_key(&origin), &me.name);
                if let Some(backoff) = self.wire().borrow_mut().backoff.as_mut() {
                    backoff.reset();
                }
                let in_default = rooms.iter().find(
                    |r| matches!(&r.kind, RoomKind::Channel { name } if name == DEFAULT_CHANNEL),
                );
                match in_default {
                    Some(room) => {
                        if self.current.get_untracked().is_none() {
                            self.current.set(Some(room.id));
                        }
                    }
                    None => {
                        self.send(ClientMsg::JoinChannel {
                            name: DEFAULT_CHANNEL.into(),
                        });
                    }
                }
                self.me.set(Some(me));
                self.rooms.set(rooms);
                self.online.set(online);
                self.channels.set(channels);
                self.status.set(Status::Online);
            }
            ServerMsg::UserOnline { user } => {
                self.online
                    .update(|online| match online.iter_mut().find(|u| u.id == user.id) {
                        Some(existing) => *existing = user,
                        None => online.push(user),
                    })
            }
            ServerMsg::UserOffline { user } => {
                self.online.update(|online| online.retain(|u| u.id != user))
            }
            ServerMsg::ChannelAdded { channel } => self.channels.update(|c| c.push(channel)),
            ServerMsg::ChannelRemoved { room } => {
                self.channels.update(|c| c.retain(|ch| ch.id != room))
            }
            ServerMsg::Joined { room, .. } => {
                let id = room.id;
                self.rooms
                    .update(|rooms| match rooms.iter_mut().find(|r| r.id == id) {
                        Some(existing) => *existing = room,
                        None => rooms.push(room),
                    });
                if self.current.get_untracked().is_none() {
                    self.current.set(Some(id));
                }
            }
            ServerMsg::Left { room } => {
                self.rooms.update(|rooms| rooms.retain(|r| r.id != room));
                if self.current.get_untracked() == Some(room) {
                    self.current.set(None);
                }
            }
            ServerMsg::History { room, messages, .. } => self.add_messages(room, messages),
            ServerMsg::Message { message } => self.add_messages(message.room, vec![message]),
            ServerMsg::Ack {
                client_id,
                room,
                seq,
                ts,
            } => {
                let pending = self.wire().borrow_mut().pending.remove(&client_id);
                if let (Some(pending), Some(me)) = (pending, self.me.get_untracked()) {
                    let message = ChatMessage {
                        room: pending.room,
                        seq,
                        sender: me,
                        ts,
                        kind: MessageKind::Text,
                        text: pending.text,
                    };
                    self.add_messages(room, vec![message]);
                }
            }
            ServerMsg::Error { code, message, .. } => match code {
                ErrorCode::NameTaken | ErrorCode::InvalidName
                    if self.me.get_untracked().is_none() =>
                {
                    self.name_error.set(Some(message));
                }
                ErrorCode::BadCredentials => {
                    // This server does not know us (its database was reset): start afresh.
                    BrowserStorage::delete(logic::credentials_key(&origin()));
                    self.say_hello();
                }
                _ => self.notice.set(Some(message)),
            },
        }
    }

    fn add_messages(&self, room: RoomId, messages: Vec<ChatMessage>) {
        self.history.update(|history| {
            let list = history.entry(room).or_default();
            logic::merge_history(list, messages);
        });
    }
}

impl Default for Chat {
    fn default() -> Self {
        Self::new()
    }
}
