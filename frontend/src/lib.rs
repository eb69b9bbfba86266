//! natter-web: the browser client, a Leptos CSR app compiled to WASM by trunk.
//!
//! # Layout
//! - [`state`]: the chat's data and a pure reducer of every [`natter_protocol::ServerMsg`]
//!   and of what the person does, returning the effects to carry out; unit-tested
//!   natively (not wired into [`client`] yet).
//! - [`logic`]: pure client logic (history merge, storage keys, backoff, unread,
//!   colours), unit-tested natively.
//! - [`account`]: the account endpoints (`/api`) and links that arrive by email.
//! - [`cache`]: what survives a browser restart, in localStorage (gloo-storage).
//! - [`client`]: the WebSocket connection and the [`client::Chat`] signals it feeds.
//! - [`components`]: what is on screen: header, welcome screen (guest name or
//!   account forms), sidebar (rooms, channels,
//!   people), the room in view, direct-message popups.
//!
//! `main.rs` only mounts [`App`].

pub mod account;
pub mod cache;
pub mod client;
pub mod components;
pub mod logic;
pub mod state;

use leptos::prelude::*;

use crate::client::Chat;
use crate::components::{Header, Popups, RoomView, Sidebar, Welcome};

/// The whole app: the welcome screen (a guest name, or an account) until someone is
/// there, then the chat.
#[component]
pub fn App() -> impl IntoView {
    let chat = Chat::boot();
    provide_context(chat);
    view! {
        <div class="app">
            <Header/>
            <Show when=move || chat.me.with(Option::is_some) fallback=|| view! { <Welcome/> }>
                <div class="layout" class=("drawer-open", move || chat.drawer_open.get())>
                    <Sidebar/>
                    <RoomView/>
                </div>
                <Popups/>
            </Show>
        </div>
    }
}
