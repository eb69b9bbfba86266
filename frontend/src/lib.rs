//! natter-web: the browser client, a Leptos CSR app compiled to WASM by trunk.
//!
//! # Layout
//! - [`logic`]: pure client logic (history merge, storage keys, backoff, unread,
//!   colours), unit-tested natively.
//! - [`client`]: the WebSocket connection and the [`client::Chat`] signals it feeds.
//! - [`components`]: what is on screen: header, name prompt, room view.
//!
//! `main.rs` only mounts [`App`].

pub mod client;
pub mod components;
pub mod logic;

use leptos::prelude::*;

use crate::client::Chat;
use crate::components::{Header, NamePrompt, RoomView};

/// The whole app: the name prompt until the server accepted a name, then the chat.
#[component]
pub fn App() -> impl IntoView {
    let chat = Chat::new();
    provide_context(chat);
    if let Some(name) = Chat::remembered_name() {
        chat.start(name);
    }
    view! {
        <div class="app">
            <Header/>
            <Show when=move || chat.me.with(Option::is_some) fallback=|| view! { <NamePrompt/> }>
                <RoomView/>
            </Show>
        </div>
    }
}
