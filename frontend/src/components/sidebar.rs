//! The sidebar (a drawer on narrow screens): my rooms, direct messages and the people
//! (`people.rs`); "+" opens the new-room dialog and "Browse channels" the channel
//! browser (`dialogs.rs`). At its top, once, the offer to turn on notifications.

use leptos::prelude::*;
use natter_protocol::RoomId;

use super::dialogs::{BrowseDialog, NewRoomDialog};
use super::people::People;
use crate::chat::Chat;

/// A room's badges: mentions of me ("@2", apart because they are for me), unread
/// messages (not for a muted room, which shows a muted mark instead); none when there
/// is nothing to read.
#[component]
pub fn UnreadBadge(room: RoomId) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let muted = move || chat.is_muted(room);
    let mentions = move || {
        let count = chat.mentions(room);
        (count > 0).then(|| {
            let label = if count == 1 {
                "1 mention".to_string()
            } else {
                format!("{count} mentions")
            };
            view! { <span class="badge mention" aria-label=label>"@"{count}</span> }
        })
    };
    let unread = move || {
        let count = chat.unread(room);
        (count > 0 && !muted()).then(|| {
            let shown = if count >= u64::from(natter_protocol::MAX_UNREAD_COUNTED) {
                format!("{}+", natter_protocol::MAX_UNREAD_COUNTED)
            } else {
                count.to_string()
            };
            view! { <span class="badge" aria-label=format!("{count} unread")>{shown}</span> }
        })
    };
    view! {
        {mentions}
        {unread}
        <Show when=muted>
            <span class="muted-mark" title="Muted" aria-label="muted">"🔕"</span>
        </Show>
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
            // Offered here, beside the rooms, where it asks without covering anything.
            <Show when=move || chat.notifications_offer.get()>
                <div class="offer" role="region" aria-label="Notifications">
                    <span>"Get a notification when someone mentions you or writes to you directly, while natter is in the background?"</span>
                    <button class="primary" on:click=move |_| crate::notify::allow(chat)>"Turn on"</button>
                    <button class="quiet" on:click=move |_| crate::notify::decline(chat)>"Not now"</button>
                </div>
            </Show>
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
