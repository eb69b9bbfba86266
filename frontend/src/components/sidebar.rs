//! The sidebar (a drawer on narrow screens): my rooms, direct messages and the people
//! (`people.rs`); "+" opens the new-room dialog and "Browse channels" the channel
//! browser (`dialogs.rs`).

use leptos::prelude::*;
use natter_protocol::RoomId;

use super::dialogs::{BrowseDialog, NewRoomDialog};
use super::people::People;
use crate::chat::Chat;

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

/// Everything to navigate by: my rooms (with "+" for a new one and the channel
/// browser), direct messages, and people.
#[component]
pub fn Sidebar() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let new_room = RwSignal::new(false);
    let browsing = RwSignal::new(false);
    view! {
        <nav class="sidebar" aria-label="Rooms and people">
            <section>
                <div class="section-head">
                    <h2>"Your rooms"</h2>
                    <button class="icon" aria-label="New room" title="Create a channel or a private room, or join one by code"
                        aria-haspopup="dialog" on:click=move |_| new_room.set(true)>"+"</button>
                </div>
                <Show when=move || chat.room_ids(false).is_empty()>
                    <p class="hint empty-state">"Browse the channels to join one, or create a room with +."</p>
                </Show>
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
                <button class="quiet browse" aria-haspopup="dialog" on:click=move |_| browsing.set(true)>
                    {move || format!("Browse channels ({})", chat.channels.with(Vec::len))}
                </button>
            </section>
            <section>
                <h2>"Direct messages"</h2>
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
            <People/>
        </nav>
        // Outside the nav: on a phone the drawer is hidden while its dialog may be open.
        <NewRoomDialog open=new_room/>
        <BrowseDialog open=browsing/>
    }
}
