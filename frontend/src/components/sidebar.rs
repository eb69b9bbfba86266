//! The sidebar (a drawer on narrow screens): my rooms, direct messages, all channels,
//! private rooms by code, and the people (`people.rs`).

use leptos::prelude::*;
use natter_protocol::{validate, RoomId};

use super::people::People;
use crate::chat::Chat;
use crate::state::form;

/// An unread badge, absent when there is nothing unread.
#[component]
pub fn UnreadBadge(room: RoomId) -> impl IntoView {
    let chat = expect_context::<Chat>();
    move || {
        let count = chat.unread(room);
        (count > 0).then(|| {
            view! { <span class="badge" aria-label=format!("{count} unread")>{count}</span> }
        })
    }
}

/// Everything to navigate by.
#[component]
pub fn Sidebar() -> impl IntoView {
    let chat = expect_context::<Chat>();
    view! {
        <nav class="sidebar" aria-label="Rooms and people">
            <section>
                <h3>"Your rooms"</h3>
                <ul class="room-list">
                    <For each=move || chat.room_ids(false) key=|id| *id children=move |room| view! {
                        <li>
                            <button
                                class="room-link"
                                class=("active", move || chat.current.get() == Some(room))
                                aria-current=move || (chat.current.get() == Some(room)).then_some("page")
                                on:click=move |_| chat.view(room)
                            >
                                <span class="room-name">{move || chat.room_title(room)}</span>
                                <UnreadBadge room/>
                            </button>
                        </li>
                    }/>
                </ul>
            </section>
            <section>
                <h3>"Direct messages"</h3>
                <Show when=move || chat.room_ids(true).is_empty()>
                    <p class="hint empty-state">"Click a person to talk privately."</p>
                </Show>
                <ul class="room-list">
                    <For each=move || chat.room_ids(true) key=|id| *id children=move |room| view! {
                        <li>
                            <button class="room-link" on:click=move |_| chat.show_popup(room)>
                                <span class="room-name">{move || chat.room_title(room)}</span>
                                <UnreadBadge room/>
                            </button>
                        </li>
                    }/>
                </ul>
            </section>
            <ChannelSection/>
            <CodeRoomSection/>
            <People/>
        </nav>
    }
}

/// The "delete when empty" option of a new room.
#[component]
fn DeleteWhenEmpty(checked: RwSignal<bool>) -> impl IntoView {
    view! {
        <label class="check">
            <input type="checkbox" prop:checked=move || checked.get()
                on:change=move |ev| checked.set(event_target_checked(&ev))/>
            "delete when empty"
        </label>
    }
}

/// All public channels, and the form to create one.
#[component]
fn ChannelSection() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let name = RwSignal::new(String::new());
    let delete_when_empty = RwSignal::new(false);
    let local_error = move || {
        let value = name.get();
        (!value.is_empty())
            .then(|| validate::channel_name(&value).err())
            .flatten()
    };
    let create = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if let Ok(valid) = validate::channel_name(&name.get_untracked()) {
            chat.create_channel(valid, delete_when_empty.get_untracked());
            name.set(String::new());
        }
    };
    view! {
        <section>
            <h3>"Channels"</h3>
            <ul class="room-list">
                <For each=move || chat.channels.get() key=|c| c.id children=move |channel| {
                    let label = format!("#{}", channel.name);
                    view! {
                        <li>
                            <button class="room-link" on:click=move |_| chat.join_channel(&channel)>{label}</button>
                        </li>
                    }
                }/>
            </ul>
            <form class="mini-form" on:submit=create>
                <input
                    aria-label="New channel name"
                    placeholder="new-channel"
                    maxlength="41"
                    prop:value=move || name.get()
                    on:input=move |ev| {
                        name.set(event_target_value(&ev));
                        chat.set_error(form::CHANNEL, None);
                    }
                />
                <DeleteWhenEmpty checked=delete_when_empty/>
                <button type="submit" disabled=move || local_error().is_some() || name.with(String::is_empty)>"Create channel"</button>
                <p class="error" role="alert">{move || local_error().or_else(|| chat.error(form::CHANNEL))}</p>
            </form>
        </section>
    }
}

/// Private rooms: create one (and get its code), or join one by code.
#[component]
fn CodeRoomSection() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let code = RwSignal::new(String::new());
    let delete_when_empty = RwSignal::new(false);
    let local_error = move || {
        let value = code.get();
        (value.len() >= validate::ROOM_CODE_LEN)
            .then(|| validate::room_code(&value).err())
            .flatten()
    };
    let join = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        match validate::room_code(&code.get_untracked()) {
            Ok(valid) => {
                chat.join_code(valid);
                code.set(String::new());
            }
            Err(err) => chat.set_error(form::CODE, Some(err)),
        }
    };
    view! {
        <section>
            <h3>"Private rooms"</h3>
            <div class="mini-form">
                <button on:click=move |_| chat.create_code_room(delete_when_empty.get_untracked())>"Create private room"</button>
                <DeleteWhenEmpty checked=delete_when_empty/>
            </div>
            <form class="mini-form" on:submit=join>
                <input
                    aria-label="Room code"
                    placeholder="12-letter code"
                    maxlength="12"
                    prop:value=move || code.get()
                    on:input=move |ev| {
                        code.set(event_target_value(&ev));
                        chat.set_error(form::CODE, None);
                    }
                />
                <button type="submit" disabled=move || code.with(String::is_empty)>"Join by code"</button>
                <p class="error" role="alert">{move || local_error().or_else(|| chat.error(form::CODE))}</p>
            </form>
        </section>
    }
}
