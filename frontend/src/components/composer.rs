//! The box to write in, shared by the main pane and the popups: Enter sends,
//! Shift+Enter starts a new line, ↑ in an empty box edits my last message, a reply
//! being written shows what it answers (Escape drops it), the box grows with what is
//! written; files come by
//! the paperclip button, a paste or a drop (on the whole room or popup — see [`drop_files`]),
//! each with a progress bar and a cancel button until the server has it.
//!
//! Typing `@` offers names to mention (`mention_picker.rs`: ↑/↓ choose, Enter or Tab
//! takes one, Escape closes). While someone writes, the room is told they are typing at
//! most every [`TYPING_INTERVAL_MS`], and told they stopped when the box is cleared.

use leptos::html;
use leptos::prelude::*;
use natter_protocol::{validate, RoomId, TYPING_INTERVAL_MS};

use super::mention_picker::{MentionPicker, Mentioning};
use super::message_tools::quote_text;
use crate::chat::Chat;
use crate::upload::{files_of, size_label, UploadState, Uploads};

/// The box to write in. `uploads` are its files (the room or popup around it owns
/// them, so a drop anywhere on it lands here).
#[component]
pub fn Composer(
    room: RoomId,
    #[prop(into)] label: String,
    /// The files going with the next message.
    uploads: Uploads,
    /// Take the keyboard focus when shown (the main pane's, after joining or switching
    /// rooms: the next thing a person does is write).
    #[prop(optional)]
    autofocus: bool,
    /// The element id (the main pane's is the skip link's target).
    #[prop(optional, into)]
    id: Option<String>,
) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let draft = RwSignal::new(String::new());
    let field: NodeRef<html::Textarea> = NodeRef::new();
    let picker: NodeRef<html::Input> = NodeRef::new();
    Effect::new(move |_| {
        if let (true, Some(field)) = (autofocus, field.get()) {
            let _ = field.focus();
        }
    });
    let too_long = move || {
        draft
            .with(|d| d.chars().count() > validate::MAX_MESSAGE_CHARS)
            .then(|| {
                format!(
                    "Messages are at most {} characters.",
                    validate::MAX_MESSAGE_CHARS
                )
            })
    };
    let mentioning = Mentioning::new(room, draft, field);
    // (when "typing" was last said, whether "stopped" is still owed)
    let typing_said = StoredValue::new((f64::NEG_INFINITY, false));
    let pace_typing = move |text: &str| {
        let now = js_sys::Date::now();
        let (last, owed) = typing_said.get_value();
        if !text.trim().is_empty() {
            if now - last >= TYPING_INTERVAL_MS as f64 {
                chat.say_typing(room, true);
                typing_said.set_value((now, true));
            }
        } else if owed {
            chat.say_typing(room, false);
            typing_said.set_value((f64::NEG_INFINITY, false));
        }
    };
    let replying = move || chat.replying.with(|r| r.get(&room).cloned());
    let cancel_reply = move || {
        chat.replying.update(|r| {
            r.remove(&room);
        })
    };
    let send = move || {
        if uploads.busy() {
            return;
        }
        if uploads.has_failed() {
            // Sending without them would leave the person believing they went.
            uploads.notice.set(Some(
                "Remove the files that could not be uploaded, then send.".into(),
            ));
            return;
        }
        let files = uploads.attachments();
        if let Ok(text) = validate::message_with_files(&draft.get_untracked(), files.len()) {
            chat.post(room, text, files);
            draft.set(String::new());
            uploads.clear();
            mentioning.close();
            // Sending says "stopped" for me (the others clear me on the message).
            typing_said.set_value((f64::NEG_INFINITY, false));
        }
    };
    let on_key = move |ev: leptos::ev::KeyboardEvent| {
        // Enter sends; Shift+Enter is a new line; Enter that ends an IME composition
        // (Japanese, Chinese…) only confirms the characters.
        if mentioning.key(&ev) {
            ev.prevent_default();
        } else if ev.key() == "Enter" && !ev.shift_key() && !ev.is_composing() {
            ev.prevent_default();
            send();
        } else if ev.key() == "ArrowUp"
            && draft.with_untracked(String::is_empty)
            && chat.edit_last_mine(room)
        {
            // ↑ in an empty box edits my last message, as in most chats.
            ev.prevent_default();
        } else if ev.key() == "Escape" && replying().is_some() {
            cancel_reply();
        }
    };
    // A pasted picture (a screenshot) is uploaded; pasted text stays text.
    let on_paste = move |ev: leptos::ev::ClipboardEvent| {
        let files = files_of(ev.clipboard_data().and_then(|d| d.files()));
        if !files.is_empty() {
            ev.prevent_default();
            uploads.add(files);
        }
    };
    view! {
        <form class="composer" on:submit=move |ev: leptos::ev::SubmitEvent| {
            ev.prevent_default();
            send();
        }>
            <Show when=move || !uploads.is_empty()>
                <ul class="uploads" aria-label="Files to send">
                    // Keyed by the file alone: progress updates the row in place, so its
                    // Cancel button keeps the focus and takes the click.
                    <For each=move || uploads.items() key=|i| i.key children=move |item| {
                        view! { <UploadRow key=item.key name=item.name size=item.size uploads/> }
                    }/>
                </ul>
            </Show>
            {move || replying().map(|reply_to| {
                let name = chat.name_of(&reply_to.sender);
                view! {
                    <div class="replying">
                        <span class="reply-label">"Replying to "<strong>{name}</strong></span>
                        <span class="reply-text">{quote_text(&reply_to)}</span>
                        <button type="button" class="close" aria-label="Cancel reply"
                            on:click=move |_| cancel_reply()>"✕"</button>
                    </div>
                }
            })}
            <div class="composer-row">
                <input
                    type="file"
                    multiple
                    class="sr-only"
                    tabindex="-1"
                    aria-hidden="true"
                    node_ref=picker
                    on:change=move |ev| {
                        let input = event_target::<web_sys::HtmlInputElement>(&ev);
                        uploads.add(files_of(input.files()));
                        input.set_value("");
                    }
                />
                <button
                    type="button"
                    class="attach"
                    aria-label="Attach files"
                    title="Attach files (or paste or drop them here)"
                    on:click=move |_| {
                        if let Some(picker) = picker.get() {
                            picker.click();
                        }
                    }
                >
                    <svg class="icon" viewBox="0 0 24 24" width="20" height="20" aria-hidden="true">
                        <path d="M16.5 6.5l-7.8 7.8a2 2 0 0 0 2.8 2.8l8.1-8.1a4 4 0 0 0-5.7-5.7l-8.3 8.3a6 6 0 0 0 8.5 8.5l7-7"
                            fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round"/>
                    </svg>
                </button>
                <MentionPicker mentioning/>
                <textarea
                    id=id
                    data-room=room.0
                    node_ref=field
                    rows="1"
                    aria-label=label
                    placeholder="Write a message…"
                    title="Enter sends; Shift+Enter starts a new line; ↑ edits your last message"
                    autocomplete="off"
                    aria-autocomplete="list"
                    aria-controls=move || mentioning.open().then(|| mentioning.listbox_id())
                    aria-activedescendant=move || mentioning.active_id()
                    prop:value=move || draft.get()
                    on:input=move |ev| {
                        let text = event_target_value(&ev);
                        pace_typing(&text);
                        draft.set(text);
                        mentioning.follow_caret();
                    }
                    on:click=move |_| mentioning.follow_caret()
                    on:keydown=on_key
                    on:paste=on_paste
                ></textarea>
                <button type="submit" class="send" aria-label="Send" disabled=move || uploads.busy()>"➤"</button>
            </div>
            <span class="error" role="alert">{move || too_long().or_else(|| uploads.notice.get())}</span>
        </form>
    }
}

/// One file in the composer: name, size, progress or error, and a button to cancel
/// or remove it; its state is read from `uploads` as it changes.
#[component]
fn UploadRow(key: u64, name: String, size: u64, uploads: Uploads) -> impl IntoView {
    let state = move || uploads.state(key);
    let failed = move || matches!(state(), Some(UploadState::Failed(_)));
    let sending = move || match state() {
        Some(UploadState::Sending(done)) => Some(done),
        _ => None,
    };
    let status = move || match state() {
        Some(UploadState::Sending(done)) => format!("{}%", (done * 100.0).round() as u32),
        Some(UploadState::Done(_)) => "ready".to_string(),
        Some(UploadState::Failed(why)) => why,
        None => String::new(),
    };
    let label = {
        let name = name.clone();
        move || {
            if sending().is_some() {
                format!("Cancel {name}")
            } else {
                format!("Remove {name}")
            }
        }
    };
    let progress_label = format!("Uploading {name}");
    view! {
        <li class="upload" class=("failed", failed)>
            <span class="upload-name">{name.clone()}</span>
            <span class="upload-size">{size_label(size)}</span>
            {move || sending().map(|done| view! {
                <progress max="1" value=done aria-label=progress_label.clone()></progress>
            })}
            <span class="upload-status" role=move || failed().then_some("alert")>{status}</span>
            <button type="button" class="close" aria-label=label on:click=move |_| uploads.remove(key)>"✕"</button>
        </li>
    }
}

/// Handlers that take files dropped anywhere on a room or popup into `uploads`:
/// `dragover` (saying a drop is welcome) and `drop`.
pub fn drop_files(
    uploads: Uploads,
) -> (
    impl Fn(leptos::ev::DragEvent) + Copy,
    impl Fn(leptos::ev::DragEvent) + Copy,
) {
    let over = move |ev: leptos::ev::DragEvent| {
        if ev
            .data_transfer()
            .is_some_and(|d| d.types().includes(&"Files".into(), 0))
        {
            ev.prevent_default();
        }
    };
    let dropped = move |ev: leptos::ev::DragEvent| {
        let files = files_of(ev.data_transfer().and_then(|d| d.files()));
        if !files.is_empty() {
            ev.prevent_default();
            uploads.add(files);
        }
    };
    (over, dropped)
}
