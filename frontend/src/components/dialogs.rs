//! The sidebar's dialogs: a new room (create a channel, create a private room, join one
//! by code) and the channel browser (every channel with its member count).
//!
//! Both are native `<dialog>`s opened with `showModal()`: the browser traps focus in
//! them, Escape closes them, and focus returns to the button that opened them. Either
//! closes by itself once a room is joined, so a person lands in the room they asked for.

use leptos::html;
use leptos::prelude::*;
use natter_protocol::validate;

use crate::chat::Chat;
use crate::state::{form, DirectoryEntry};

/// A modal dialog shown while `open` is true; `title` names it for screen readers.
#[component]
fn Modal(open: RwSignal<bool>, #[prop(into)] title: String, children: Children) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let dialog: NodeRef<html::Dialog> = NodeRef::new();
    // Set when a room was joined while open: closing then leads to its message box
    // instead of back to the button that opened the dialog.
    let joined = StoredValue::new(false);
    Effect::new(move |_| {
        let Some(dialog) = dialog.get() else { return };
        match (open.get(), dialog.open()) {
            (true, false) => {
                joined.set_value(false);
                let _ = dialog.show_modal();
            }
            (false, true) => {
                dialog.close();
                if joined.get_value() {
                    crate::focus_main_composer();
                }
            }
            _ => {}
        }
    });
    // Joining a room (from this dialog or elsewhere) is the end of what it was for.
    Effect::watch(
        move || chat.current.get(),
        move |_, _, _| {
            joined.set_value(true);
            open.set(false);
        },
        false,
    );
    let heading = title.clone();
    view! {
        <dialog class="modal" node_ref=dialog aria-label=title on:close=move |_| open.set(false)>
            <div class="modal-head">
                <h2>{heading}</h2>
                <button class="close" aria-label="Close" on:click=move |_| open.set(false)>"✕"</button>
            </div>
            {children()}
        </dialog>
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

/// Create a channel, create a private room, or join one by its code.
#[component]
pub fn NewRoomDialog(open: RwSignal<bool>) -> impl IntoView {
    view! {
        <Modal open title="New room">
            <CreateChannelForm/>
            <CodeRoomForms/>
        </Modal>
    }
}

/// A new public channel: its name and whether it goes away when empty.
#[component]
fn CreateChannelForm() -> impl IntoView {
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
        <section class="dialog-part">
            <h3>"Create a channel"</h3>
            <p class="hint">"Anyone can find a channel and join it."</p>
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

/// Private rooms: create one (and get its code to share), or join one by code.
#[component]
fn CodeRoomForms() -> impl IntoView {
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
        <section class="dialog-part">
            <h3>"Create a private room"</h3>
            <p class="hint">"Only people you give its 12-letter code can join."</p>
            <div class="mini-form">
                <DeleteWhenEmpty checked=delete_when_empty/>
                <button on:click=move |_| chat.create_code_room(delete_when_empty.get_untracked())>"Create private room"</button>
            </div>
        </section>
        <section class="dialog-part">
            <h3>"Join a private room"</h3>
            <form class="mini-form" on:submit=join>
                <input
                    aria-label="Room code"
                    placeholder="12-letter code"
                    maxlength="12"
                    autocomplete="off"
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

/// Every public channel with its member count, busiest first, to find and join one.
/// The counts are asked for each time the browser opens.
#[component]
pub fn BrowseDialog(open: RwSignal<bool>) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let filter = RwSignal::new(String::new());
    Effect::watch(
        move || open.get(),
        move |open, _, _| {
            if *open {
                filter.set(String::new());
                chat.browse_channels();
            }
        },
        false,
    );
    // Sorted once per change, shared by the list and its empty-state check.
    let entries = Memo::new(move |_| filter.with(|f| chat.channel_directory(f)));
    view! {
        <Modal open title="Browse channels">
            <input
                type="search"
                class="filter"
                aria-label="Find a channel"
                placeholder="Find a channel"
                prop:value=move || filter.get()
                on:input=move |ev| filter.set(event_target_value(&ev))
            />
            <ul class="directory">
                <For
                    each=move || entries.get()
                    key=|e| (e.channel.id, e.members, e.joined)
                    children=move |entry| view! { <DirectoryRow entry dialog=open/> }
                />
            </ul>
            <Show when=move || entries.with(Vec::is_empty)>
                <p class="hint">{move || if filter.with(String::is_empty) {
                    "No channels yet: create one with + beside Your rooms."
                } else {
                    "No channel has that in its name."
                }}</p>
            </Show>
        </Modal>
    }
}

/// One channel of the browser: its name, members, and Join (or Open when I am in it).
/// Open closes the `dialog` at once; Join closes it when the server says I am in.
#[component]
fn DirectoryRow(entry: DirectoryEntry, dialog: RwSignal<bool>) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let DirectoryEntry {
        channel,
        members,
        joined,
    } = entry;
    let name = format!("#{}", channel.name);
    let count = match members {
        Some(1) => "1 member".to_string(),
        Some(n) => format!("{n} members"),
        None => "counting…".to_string(),
    };
    let (action, label) = if joined {
        ("Open", format!("Open {name}"))
    } else {
        ("Join", format!("Join {name}"))
    };
    view! {
        <li class="directory-row">
            <span class="room-name">{name}</span>
            <span class="members">{count}</span>
            <button class=("quiet", joined) aria-label=label on:click=move |_| {
                if joined {
                    dialog.set(false);
                }
                chat.join_channel(&channel);
            }>{action}</button>
        </li>
    }
}
