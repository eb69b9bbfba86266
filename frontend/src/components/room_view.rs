//! The main pane: the current channel or code room.

use leptos::prelude::*;
use natter_protocol::{RoomId, RoomKind};

use crate::chat::Chat;
use crate::components::{drop_files, Composer, MessageList, TypingLine};
use crate::state::form;
use crate::upload::Uploads;

/// The main pane's message box: where the skip link leads.
pub const COMPOSER_ID: &str = "composer";

/// The room on screen, or a hint when there is none.
#[component]
pub fn RoomView() -> impl IntoView {
    let chat = expect_context::<Chat>();
    view! {
        <main class="room">
            {move || match chat.current.get() {
                Some(room) => view! { <RoomPane room/> }.into_any(),
                None => view! {
                    <p class="empty">"Join a channel or create a room from the list."</p>
                }.into_any(),
            }}
        </main>
    }
}

#[component]
fn RoomPane(room: RoomId) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let info = move || {
        chat.rooms
            .with(|rooms| rooms.iter().find(|r| r.id == room).cloned())
    };
    let title = move || chat.room_title(room);
    let code = move || match info().map(|r| r.kind) {
        Some(RoomKind::Code { code }) => Some(code),
        _ => None,
    };
    let ephemeral = move || info().is_some_and(|r| r.delete_when_empty);
    let uploads = Uploads::new();
    let (drag_over, dropped) = drop_files(uploads);
    view! {
        <div class="room-drop" on:dragover=drag_over on:drop=dropped>
        <div class="room-head">
            <h2 class="room-title">{title}</h2>
            {move || code().map(|code| view! {
                <span class="code">"Code: " <strong class="code-value" aria-label="Room code to share">{code}</strong></span>
            })}
            <Show when=ephemeral>
                <span class="tag" title="Deleted with its messages when the last member leaves">"deleted when empty"</span>
            </Show>
            <MuteButton room/>
            <button class="quiet leave" on:click=move |_| chat.leave(room)>"Leave"</button>
        </div>
        <MessageList room/>
        <TypingLine room/>
        <p class="error" role="alert">{move || chat.error(form::GENERAL)}</p>
        <Composer room label="Write a message" uploads autofocus=true id=COMPOSER_ID/>
        </div>
    }
}

/// Mutes or unmutes a room: no notifications and no plain unread badge for it
/// (mentions still count).
#[component]
pub fn MuteButton(room: RoomId) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let muted = move || chat.is_muted(room);
    view! {
        <button class="quiet mute" aria-pressed=move || muted().to_string()
            title="Muted rooms send no notifications and show no unread count; mentions still count"
            on:click=move |_| chat.toggle_mute(room)>
            {move || if muted() { "Unmute" } else { "Mute" }}
        </button>
    }
}
