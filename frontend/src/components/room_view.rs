//! The current room: its messages and the composer.

use leptos::prelude::*;
use natter_protocol::{validate, ChatMessage, MessageKind, RoomKind};

use crate::client::Chat;
use crate::logic::name_hue;

/// Messages of the current room, oldest first, and a box to write in.
#[component]
pub fn RoomView() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let title = move || {
        let current = chat.current.get()?;
        chat.rooms.with(|rooms| {
            rooms
                .iter()
                .find(|r| r.id == current)
                .map(|room| match &room.kind {
                    RoomKind::Channel { name } => format!("#{name}"),
                    RoomKind::Code { code } => format!("Room {code}"),
                    RoomKind::Direct { members } => members
                        .iter()
                        .map(|m| m.name.as_str())
                        .collect::<Vec<_>>()
                        .join(" · "),
                })
        })
    };
    let messages = move || {
        let current = chat.current.get();
        chat.history.with(|h| {
            current
                .and_then(|room| h.get(&room).cloned())
                .unwrap_or_default()
        })
    };
    let draft = RwSignal::new(String::new());
    let send = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if let Ok(text) = validate::message_text(&draft.get_untracked()) {
            chat.post(text);
            draft.set(String::new());
        }
    };
    view! {
        <main class="room">
            <h2 class="room-title">{title}</h2>
            <ol class="messages" aria-label="messages" aria-live="polite">
                <For each=messages key=|m| m.seq children=move |m| view! { <MessageLine message=m/> }/>
            </ol>
            <p class="error" role="alert">{move || chat.notice.get()}</p>
            <form class="composer" on:submit=send>
                <input
                    aria-label="Write a message"
                    placeholder="Write a message, Enter sends"
                    autocomplete="off"
                    prop:value=move || draft.get()
                    on:input=move |ev| draft.set(event_target_value(&ev))
                />
            </form>
        </main>
    }
}

/// One message: local time, sender in their colour, text (always as text, never HTML).
#[component]
fn MessageLine(message: ChatMessage) -> impl IntoView {
    let time = local_time(message.ts);
    let hue = name_hue(&message.sender.name);
    let name = message.sender.name.clone();
    match message.kind {
        MessageKind::Text => view! {
            <li class="message" data-seq=message.seq>
                <time>{time}</time>
                <span class="sender" style=format!("color: hsl({hue}, 65%, 35%)")>{name}</span>
                <span class="text">{message.text}</span>
            </li>
        }
        .into_any(),
        MessageKind::Join | MessageKind::Leave => {
            let verb = if message.kind == MessageKind::Join {
                "joined"
            } else {
                "left"
            };
            view! {
                <li class="notice" data-seq=message.seq>
                    <time>{time}</time>
                    <span>{format!("{name} {verb}")}</span>
                </li>
            }
            .into_any()
        }
    }
}

/// "HH:MM" in the browser's time zone.
fn local_time(ts: i64) -> String {
    let date = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(ts as f64));
    format!("{:02}:{:02}", date.get_hours(), date.get_minutes())
}
