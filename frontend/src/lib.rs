//! natter-web: the browser client, a Leptos CSR app compiled to WASM by trunk.
//!
//! # Layout
//! - [`state`]: the chat's data and a pure reducer of every [`natter_protocol::ServerMsg`]
//!   and of what the person does, returning the effects to carry out; no browser, so it
//!   is unit-tested natively (`cargo test -p natter-web`).
//! - [`logic`]: pure helpers (history merge, storage keys, backoff, unread, colours,
//!   links), unit-tested natively.
//! - [`colour`]: a readable colour per person (WCAG AA on both themes), pure and
//!   unit-tested natively.
//! - [`conversation`]: how a room's messages are laid out (days, groups, collapsed
//!   notices), pure and unit-tested natively.
//! - [`socket`]: the WebSocket: hello and resume, reconnect with backoff, resending
//!   pending sends, the 4001 close.
//! - [`chat`]: [`chat::Chat`], the context components read: the state in one signal,
//!   read by parts; feeds frames to the reducer and performs its effects.
//! - [`actions`]: what components call on [`chat::Chat`] (post, view, join, leave,
//!   direct rooms, rename, popups, sign out, …).
//! - [`cache`]: what survives a browser restart, in localStorage (gloo-storage); owns
//!   the formats it stores.
//! - [`account`]: the account endpoints (`/api`) and links that arrive by email.
//! - [`upload`]: files going up to `/api/uploads`, with progress and cancel.
//! - [`components`]: what is on screen: header, welcome screen (guest name or
//!   account forms), sidebar (rooms, channels, people), the room in view,
//!   direct-message popups.
//!
//! Imports never go in a circle: `logic`, `colour` and `conversation` stand alone; `state` and `cache` use only
//! `logic`; `socket` uses `logic` and plain types of `state`; `chat` uses `state`,
//! `socket`, `cache` and `account`; `actions` adds methods to `chat::Chat`; components
//! use `chat`, `state::form`, `socket::Status`, `logic`, `colour`, `account` and
//! `upload` (which uses `cache`).
//!
//! `main.rs` only mounts [`App`].

pub mod account;
pub mod actions;
pub mod cache;
pub mod chat;
pub mod colour;
pub mod components;
pub mod conversation;
pub mod logic;
pub mod notify;
pub mod socket;
pub mod state;
pub mod upload;

use leptos::prelude::*;

use crate::chat::Chat;
use crate::components::{Header, Popups, RoomView, Sidebar, Welcome, COMPOSER_ID};

/// The whole app: the welcome screen (a guest name, or an account) until someone is
/// there, then the chat.
#[component]
pub fn App() -> impl IntoView {
    let chat = Chat::boot();
    provide_context(chat);
    // Escape closes the drawer wherever focus is.
    window_event_listener(leptos::ev::keydown, move |ev| {
        if ev.key() == "Escape" && chat.drawer_open.get_untracked() {
            chat.close_drawer();
        }
    });
    view! {
        <div class="app">
            // The first stop of the Tab key: straight to writing, past the header and
            // the sidebar's rooms and people.
            <Show when=move || chat.current.with(Option::is_some)>
                <a class="skip-link" href=format!("#{COMPOSER_ID}") on:click=focus_composer>"Skip to the message box"</a>
            </Show>
            <Header/>
            <Show when=move || chat.me.with(Option::is_some) fallback=|| view! { <Welcome/> }>
                <div class="layout" class=("drawer-open", move || chat.drawer_open.get())>
                    <Sidebar/>
                    // Narrow screens: the dimmed page beside the open drawer; a tap closes it.
                    <div class="backdrop" aria-hidden="true" on:click=move |_| chat.close_drawer()></div>
                    <RoomView/>
                    // Docked beside the room (never over its composer); full screen on
                    // a phone.
                    <Popups/>
                </div>
            </Show>
        </div>
    }
}

/// The skip link's click: focus the main message box (a fragment link alone would
/// scroll, and change the address, without reliably moving the focus).
fn focus_composer(ev: leptos::ev::MouseEvent) {
    ev.prevent_default();
    focus_main_composer();
}

/// Puts the keyboard focus in the main pane's message box, if one is on screen.
pub fn focus_main_composer() {
    focus_selector(&format!("#{COMPOSER_ID}"));
}

/// Puts the keyboard focus in the message box of `room` (the main pane's or a
/// popup's), if one is on screen.
pub fn focus_composer_of(room: natter_protocol::RoomId) {
    focus_selector(&format!("textarea[data-room=\"{room}\"]"));
}

fn focus_selector(selector: &str) {
    use wasm_bindgen::JsCast;
    let field = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.query_selector(selector).ok().flatten())
        .and_then(|el| el.dyn_into::<web_sys::HtmlElement>().ok());
    if let Some(field) = field {
        let _ = field.focus();
    }
}
