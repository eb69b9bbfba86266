//! The top bar: product name, connection state, and who I am.

use leptos::prelude::*;

use crate::client::{Chat, Status};

/// Product name, connection state and my name.
#[component]
pub fn Header() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let status = move || match chat.status.get() {
        Status::Idle => "",
        Status::Connecting => "connecting…",
        Status::Online => "online",
        Status::Reconnecting => "reconnecting…",
    };
    view! {
        <header class="top">
            <h1>"natter"</h1>
            <span class="status" data-status=move || format!("{:?}", chat.status.get()).to_lowercase() role="status">
                {status}
            </span>
            <span class="me" aria-label="your name">{move || chat.me.get().map(|me| me.name)}</span>
        </header>
    }
}
