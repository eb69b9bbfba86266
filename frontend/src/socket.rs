//! The WebSocket to the server: the only code that touches it.
//!
//! [`Socket`] says `hello` on every (re)connect, presenting what its [`Listener`]
//! introduces (the guest credentials, the newest seq held per room), hands every
//! decoded [`ServerMsg`] to the listener, resends unacknowledged messages with their
//! original client ids when asked (the server stores each once), and reconnects with
//! full-jitter backoff when the socket drops. A 4001 close (the session ended) is not
//! retried: the listener decides whether another session carries on.
//!
//! It knows nothing of the chat state: the listener (the Leptos wrapper in
//! [`crate::chat`]) answers its questions and gets its news.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use leptos::prelude::*;
use natter_protocol::{
    ClientFrame, ClientMsg, GuestCredentials, ResumePosition, ServerMsg, CLOSE_SIGNED_OUT,
    PROTOCOL_VERSION,
};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;
use web_sys::{CloseEvent, MessageEvent, WebSocket};

use crate::logic::Backoff;
use crate::state::{form, Pending, PendingChange};

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

/// Who the socket presents in `hello`, asked afresh on every (re)connect.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Introduction {
    /// The guest identity to present; `None` when signed in (the cookie says who).
    pub credentials: Option<GuestCredentials>,
    /// The newest seq held per room, so only what was missed is sent.
    pub resume: Vec<ResumePosition>,
}

/// What the socket needs from the chat, and tells it.
pub trait Listener {
    /// Who to say `hello` as, right now.
    fn introduction(&self) -> Introduction;
    /// A frame from the server.
    fn receive(&self, msg: ServerMsg);
    /// The server closed the socket with 4001: the session it was opened with ended.
    fn session_ended(&self);
}

/// The live socket and the callbacks it needs kept alive.
struct Connection {
    /// The browser's socket.
    socket: WebSocket,
    /// Says hello once open.
    _on_open: Closure<dyn FnMut()>,
    /// Decodes frames for the listener.
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    /// Reconnects, or reports the end of the session.
    _on_close: Closure<dyn FnMut(CloseEvent)>,
}

/// The socket's bookkeeping (not reactive).
#[derive(Default)]
struct Wire {
    /// The open (or opening) socket.
    connection: Option<Connection>,
    /// Delays between reconnects; reset by a `ready`.
    backoff: Option<Backoff>,
    /// The name to say hello with; `None` after signing out (no reconnects).
    name: Option<String>,
    /// Bumped when a socket is dropped, so its callbacks do nothing any more.
    generation: u64,
    /// Who answers questions and gets frames; set once, right after creation.
    listener: Option<Rc<dyn Listener>>,
}

/// A handle on the connection; clones share it.
#[derive(Clone)]
pub struct Socket {
    /// Shared with the socket's own callbacks.
    wire: Rc<RefCell<Wire>>,
    /// What the header shows.
    status: RwSignal<Status>,
}

/// `ws://` or `wss://` on this page's host, at `/ws`.
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

impl Socket {
    /// A socket that is not connected yet and reports its state in `status`.
    pub fn new(status: RwSignal<Status>) -> Self {
        Socket {
            wire: Rc::new(RefCell::new(Wire::default())),
            status,
        }
    }

    /// Sets who answers the socket's questions and gets its frames.
    pub fn set_listener(&self, listener: Rc<dyn Listener>) {
        self.wire.borrow_mut().listener = Some(listener);
    }

    fn listener(&self) -> Option<Rc<dyn Listener>> {
        self.wire.borrow().listener.clone()
    }

    /// Connects (or says hello again on the open socket) as `name`.
    pub fn start(&self, name: String) {
        self.wire.borrow_mut().name = Some(name);
        let (open, connecting) = {
            let wire = self.wire.borrow();
            let open = wire
                .connection
                .as_ref()
                .is_some_and(|c| c.socket.ready_state() == WebSocket::OPEN);
            (open, wire.connection.is_some())
        };
        if open {
            self.say_hello();
        } else if !connecting {
            self.connect();
        }
    }

    /// Reconnects say hello under `name` from now on.
    pub fn set_name(&self, name: String) {
        self.wire.borrow_mut().name = Some(name);
    }

    /// Closes the socket (if any) and ignores everything it still says.
    pub fn close(&self) {
        let mut wire = self.wire.borrow_mut();
        wire.generation += 1;
        if let Some(connection) = wire.connection.take() {
            let _ = connection.socket.close();
        }
    }

    /// Closes the socket for good: no name to say hello with, no reconnects.
    pub fn stop(&self) {
        self.wire.borrow_mut().name = None;
        self.close();
        self.status.set(Status::Idle);
    }

    /// The server accepted `hello`: online, and the next drop starts the backoff over.
    pub fn session_ready(&self) {
        if let Some(backoff) = self.wire.borrow_mut().backoff.as_mut() {
            backoff.reset();
        }
        self.status.set(Status::Online);
    }

    fn connect(&self) {
        let generation = {
            let wire = self.wire.borrow();
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
        let this = self.clone();
        let current = move || this.wire.borrow().generation == generation;
        let on_open = {
            let (this, current) = (self.clone(), current.clone());
            Closure::<dyn FnMut()>::new(move || {
                if current() {
                    this.say_hello();
                }
            })
        };
        let on_message = {
            let (this, current) = (self.clone(), current.clone());
            Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
                if !current() {
                    return;
                }
                let Some(text) = event.data().as_string() else {
                    return;
                };
                match serde_json::from_str::<ServerMsg>(&text) {
                    Ok(msg) => {
                        if let Some(listener) = this.listener() {
                            listener.receive(msg);
                        }
                    }
                    Err(err) => leptos::logging::warn!("unreadable server frame: {err}"),
                }
            })
        };
        let on_close = {
            let this = self.clone();
            Closure::<dyn FnMut(CloseEvent)>::new(move |event: CloseEvent| {
                if !current() {
                    return;
                }
                this.wire.borrow_mut().connection = None;
                if event.code() == CLOSE_SIGNED_OUT {
                    // The session ended: signed out (here or in another tab), a password
                    // reset, or another tab signed in again (which replaces the cookie);
                    // the listener finds out which.
                    this.status.set(Status::Reconnecting);
                    if let Some(listener) = this.listener() {
                        listener.session_ended();
                    }
                } else {
                    this.schedule_reconnect();
                }
            })
        };
        socket.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        socket.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        socket.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        self.wire.borrow_mut().connection = Some(Connection {
            socket,
            _on_open: on_open,
            _on_message: on_message,
            _on_close: on_close,
        });
    }

    fn schedule_reconnect(&self) {
        if self.wire.borrow().name.is_none() {
            self.status.set(Status::Idle);
            return;
        }
        self.status.set(Status::Reconnecting);
        let delay = {
            let mut wire = self.wire.borrow_mut();
            let backoff = wire.backoff.get_or_insert_with(Backoff::reconnect);
            backoff.next_delay_ms(js_sys::Math::random())
        };
        let this = self.clone();
        set_timeout(move || this.connect(), Duration::from_millis(delay));
    }

    /// Says `hello` on the open socket as whoever the listener introduces now.
    pub fn say_hello(&self) {
        let Some(name) = self.wire.borrow().name.clone() else {
            return;
        };
        let introduction = self
            .listener()
            .map(|listener| listener.introduction())
            .unwrap_or_default();
        self.send(
            ClientMsg::Hello {
                version: PROTOCOL_VERSION,
                name,
                credentials: introduction.credentials,
                resume: introduction.resume,
            },
            Some(form::HELLO),
        );
    }

    /// Sends a request, tagged with the form that shows its error (if any), when the
    /// socket is open; returns whether it went out.
    pub fn send(&self, msg: ClientMsg, form: Option<&'static str>) -> bool {
        self.send_frame(ClientFrame {
            request_ref: form.map(str::to_string),
            msg,
        })
    }

    /// Sends a message or change with its client id as the frame's `ref`, so an error
    /// refusing it names it. False when the socket is not open.
    pub fn send_tagged(&self, msg: ClientMsg, client_id: String) -> bool {
        self.send_frame(ClientFrame {
            request_ref: Some(client_id),
            msg,
        })
    }

    fn send_frame(&self, frame: ClientFrame) -> bool {
        let wire = self.wire.borrow();
        match &wire.connection {
            Some(c) if c.socket.ready_state() == WebSocket::OPEN => {
                c.socket.send_with_str(&frame.to_json()).is_ok()
            }
            _ => false,
        }
    }

    /// Sends every unacknowledged message and change again with its original client
    /// id; the server stores each once, so this is always safe.
    pub fn resend(&self, pending: &[Pending], changes: &[PendingChange]) {
        for p in pending {
            self.send_tagged(p.request(), p.client_id.clone());
        }
        for change in changes {
            self.send_tagged(change.request.clone(), change.client_id.clone());
        }
    }
}
