//! Direct-message popups: one small window per conversation, docked at the bottom
//! right beside the room (never over its composer); on a phone, a full-screen
//! conversation with a back arrow. Each can be folded to its title bar or closed; a new
//! message in a closed one opens it again, and a folded one shows its unread count.

use leptos::prelude::*;
use natter_protocol::RoomId;

use crate::chat::Chat;
use crate::components::sidebar::UnreadBadge;
use crate::components::{drop_files, Composer, MessageList, MuteButton, TypingLine};
use crate::upload::Uploads;

/// All open popups.
#[component]
pub fn Popups() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let rooms = move || {
        chat.popups
            .with(|p| p.iter().map(|p| p.room).collect::<Vec<_>>())
    };
    view! {
        <div class="popups">
            <For each=rooms key=|room| *room children=move |room| view! { <Popup room/> }/>
        </div>
    }
}

#[component]
fn Popup(room: RoomId) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let peer = move || chat.room_title(room);
    let minimized = move || {
        chat.popups
            .with(|p| p.iter().any(|p| p.room == room && p.minimized))
    };
    let uploads = Uploads::new();
    let (drag_over, dropped) = drop_files(uploads);
    view! {
        <section class="popup" class=("minimized", minimized) aria-label=move || format!("Direct messages with {}", peer())
            on:dragover=drag_over on:drop=dropped>
            <header class="popup-head">
                // On a phone the conversation fills the screen: back folds it away (its
                // unread count then shows in the list and on ☰).
                <button class="back" aria-label="Back" on:click=move |_| chat.toggle_popup(room)>"←"</button>
                <button
                    class="popup-title"
                    aria-expanded=move || (!minimized()).to_string()
                    title=move || if minimized() { "Open" } else { "Minimize" }
                    on:click=move |_| chat.toggle_popup(room)
                >
                    {peer}
                    <UnreadBadge room/>
                </button>
                <MuteButton room/>
                <button class="close" aria-label="Close" on:click=move |_| chat.close_popup(room)>"✕"</button>
            </header>
            <Show when=move || !minimized()>
                <MessageList room/>
                <TypingLine room/>
                <Composer room label=format!("Message {}", peer()) uploads/>
            </Show>
        </section>
    }
}
