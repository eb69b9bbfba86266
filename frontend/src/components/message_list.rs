//! A room's messages; shared by the main pane and the popups (the box to write in is
//! `composer.rs`).
//! The list is laid out by [`crate::conversation`]: day separators, messages grouped
//! by sender, runs of join/leave notices as one line.
//!
//! The list takes keyboard focus (to scroll with the arrow keys) and is not a live
//! region: a separate, visually hidden one announces each message that arrives live,
//! so a screen reader never reads out a page of history.
//!
//! The list sticks to the bottom on load and on new messages unless the reader has
//! scrolled up — then a "new messages" marker appears instead. Scrolling to the top
//! loads the previous page, keeping the reader's place. A room opened with something
//! unread draws a "new messages" line above the first message after where the reader
//! stopped; a message that mentions me stands out, and so do the mentions in it.

use leptos::html;
use leptos::prelude::*;
use natter_protocol::{ChatMessage, MessageKind, RoomId, Seq};

use super::attachments::AttachmentList;
use super::formatted::formatted;
use super::message_tools::{DeleteConfirm, InlineEditor, MessageTools, ReactionRow, ReplyQuote};
use crate::chat::Chat;
use crate::colour::name_style;
use crate::conversation::{self, Row};

/// Pixels from the bottom that still count as "at the bottom".
const STICK_SLACK: i32 = 40;
/// Pixels from the top at which the previous page is requested.
const LOAD_OLDER_AT: i32 = 60;

/// The messages of `room`, oldest first, with pending sends greyed at the end.
#[component]
pub fn MessageList(room: RoomId) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let list: NodeRef<html::Ol> = NodeRef::new();
    // Messages of people I block are not shown (the server still sends them: the
    // room's order and unread counts need every seq).
    let messages = Memo::new(move |_| {
        chat.blocked.with(|blocked| {
            chat.history.with(|h| {
                h.get(&room).map_or_else(Vec::new, |h| {
                    h.messages
                        .iter()
                        .filter(|m| !blocked.iter().any(|b| b.id == m.sender.id))
                        .cloned()
                        .collect()
                })
            })
        })
    });
    // Days, groups and collapsed notices, laid out once per change of the messages.
    let rows = Memo::new(move |_| messages.with(|m| conversation::rows(m, local_day)));
    // Where the reader stopped when the room was opened: the first message by someone
    // else after it gets the "new messages" line.
    let first_new = Memo::new(move |_| {
        let since = chat.new_since(room)?;
        let me = chat
            .me
            .with_untracked(|me| me.as_ref().map(|m| m.id.clone()));
        messages.with(|m| {
            m.iter()
                .find(|m| {
                    m.seq > since
                        && m.kind == MessageKind::Text
                        && Some(&m.sender.id) != me.as_ref()
                })
                .map(|m| m.seq)
        })
    });
    let pending = move || {
        chat.pending.with(|p| {
            p.iter()
                .filter(|p| p.room == room)
                .cloned()
                .collect::<Vec<_>>()
        })
    };
    let more_before = move || {
        chat.history
            .with(|h| h.get(&room).is_some_and(|h| h.more_before))
    };
    let loading = move || {
        chat.history
            .with(|h| h.get(&room).is_some_and(|h| h.loading_older))
    };
    // Where the reader is: at the bottom (follow new messages) or reading back.
    let stuck = StoredValue::new(true);
    let unseen = RwSignal::new(false);
    // (first seq, last seq, scroll height) after the previous render.
    let previous = StoredValue::new((0u64, 0u64, 0i32));
    // What a screen reader says: the newest message that arrived live, never the
    // history loaded on joining or paging back (the list itself is not a live region).
    let announcement = RwSignal::new(String::new());
    let my_id = move || {
        chat.me
            .with_untracked(|me| me.as_ref().map(|m| m.id.clone()))
    };

    Effect::new(move |_| {
        let (first, last) = messages.with(|m| {
            (
                m.first().map_or(0, |m| m.seq),
                m.last().map_or(0, |m| m.seq),
            )
        });
        let pending_count = pending().len();
        let Some(el) = list.get() else { return };
        let (prev_first, prev_last, prev_height) = previous.get_value();
        let height = el.scroll_height();
        if prev_first != 0 && first < prev_first && last == prev_last {
            // An older page was prepended: keep the same message under the reader's eyes.
            el.set_scroll_top(el.scroll_top() + height - prev_height);
        } else if stuck.get_value() {
            el.set_scroll_top(height);
        } else if last > prev_last || pending_count > 0 {
            unseen.set(true);
        }
        if prev_last != 0 && last > prev_last {
            let newest = messages.with(|m| m.last().cloned());
            if let Some(said) = newest
                .filter(|m| m.kind == MessageKind::Text && Some(&m.sender.id) != my_id().as_ref())
            {
                let name = untrack(|| chat.name_of(&said.sender));
                announcement.set(format!("{name}: {}", said.text));
            }
        }
        previous.set_value((first, last, el.scroll_height()));
    });

    // A reply's quote was clicked: show the original once it is held (paging back
    // until it is), briefly highlighted.
    Effect::new(move |_| {
        let Some((target_room, seq)) = chat.jump.get() else {
            return;
        };
        if target_room != room {
            return;
        }
        let held = messages.with(|m| m.iter().any(|m| m.seq == seq));
        if held {
            chat.jump.set(None);
            let element = web_sys::window()
                .and_then(|w| w.document())
                .and_then(|d| d.get_element_by_id(&message_anchor(room, seq)));
            if let Some(element) = element {
                stuck.set_value(false);
                element.scroll_into_view();
                let _ = element.class_list().add_1("flash");
                set_timeout(
                    move || {
                        let _ = element.class_list().remove_1("flash");
                    },
                    std::time::Duration::from_millis(1500),
                );
            }
        } else if !loading() {
            if more_before() {
                chat.load_older(room);
            } else {
                // Not in this room's history at all (a deleted room's reply): give up.
                chat.jump.set(None);
            }
        }
    });

    let on_scroll = move |_| {
        let Some(el) = list.get_untracked() else {
            return;
        };
        let at_bottom = el.scroll_height() - el.scroll_top() - el.client_height() <= STICK_SLACK;
        stuck.set_value(at_bottom);
        if at_bottom {
            unseen.set(false);
        }
        if el.scroll_top() <= LOAD_OLDER_AT {
            chat.load_older(room);
        }
        previous.update_value(|p| p.2 = el.scroll_height());
    };
    let jump_to_bottom = move |_| {
        if let Some(el) = list.get_untracked() {
            el.set_scroll_top(el.scroll_height());
        }
        stuck.set_value(true);
        unseen.set(false);
    };

    view! {
        <div class="message-area">
            // Focusable, so a keyboard can scroll back through it.
            <ol class="messages" node_ref=list on:scroll=on_scroll tabindex="0"
                aria-label=move || format!("Messages in {}", chat.room_title(room))>
                <li class="history-edge">
                    {move || if loading() {
                        "Loading older messages…"
                    } else if more_before() {
                        "Scroll up for older messages"
                    } else {
                        "This is the beginning of the room."
                    }}
                </li>
                <For each=move || rows.get() key=Row::key children=move |row| view! { <RowView row first_new/> }/>
                <For each=pending key=|p| p.client_id.clone() children=move |p| view! {
                    <li class="message pending" title="Sending…">
                        <time>"…"</time>
                        <div class="body">
                            <div class="text">{formatted(&p.text, &[], None)}</div>
                            {(!p.attachments.is_empty()).then(|| {
                                let files = p.attachments.clone();
                                view! { <AttachmentList files/> }
                            })}
                        </div>
                    </li>
                }/>
            </ol>
            <Show when=move || unseen.get()>
                <button class="new-marker" on:click=jump_to_bottom>"New messages ↓"</button>
            </Show>
            <p class="sr-only" aria-live="polite">{move || announcement.get()}</p>
        </div>
    }
}

/// One row of the list: a day, a message, or a run of notices.
#[component]
fn RowView(row: Row, first_new: Memo<Option<Seq>>) -> impl IntoView {
    let chat = expect_context::<Chat>();
    match row {
        Row::Day { ts, .. } => view! {
            <li class="day"><span>{day_label(ts)}</span></li>
        }
        .into_any(),
        Row::Message {
            message,
            starts_group,
        } => view! { <MessageLine message=*message starts_group first_new/> }.into_any(),
        Row::Notices {
            ts, joined, left, ..
        } => view! {
            <li class="notice">
                <time title=full_time(ts)>{local_time(ts)}</time>
                <span>{move || conversation::notice_text(&joined, &left, |u| chat.name_of(u))}</span>
            </li>
        }
        .into_any(),
    }
}

/// One message — always as text, never HTML. The first of a group shows an avatar
/// (initials on the person's colour), the sender's current name and the time; the
/// others show their time on hover, and name the sender for screen readers only.
/// Around the text: the quote of what it answers, "(edited)", its reactions, and the
/// tools to act on it (or, being edited, the editor in its place).
#[component]
fn MessageLine(
    message: ChatMessage,
    starts_group: bool,
    /// The first message after where the reader stopped: a "new messages" line above.
    first_new: Memo<Option<Seq>>,
) -> impl IntoView {
    let time = local_time(message.ts);
    let time_title = full_time(message.ts);
    let chat = expect_context::<Chat>();
    let colour = name_style(&message.sender.id);
    let sender = message.sender.clone();
    let name = move || chat.name_of(&sender);
    let room = message.room;
    let seq = message.seq;
    let mine = chat
        .me
        .with_untracked(|me| me.as_ref().is_some_and(|m| m.id == message.sender.id));
    let tools_shown = RwSignal::new(false);
    let editing = move || chat.editing.get() == Some((room, seq));
    let confirming = move || chat.confirm_delete.get() == Some((room, seq));
    let body = if message.deleted {
        view! { <div class="text deleted">"Message deleted"</div> }.into_any()
    } else {
        let text = message.text.clone();
        let mentions = message.mentions.clone();
        let me = chat
            .me
            .with_untracked(|me| me.as_ref().map(|m| m.id.clone()));
        let edited_title = message
            .edited_at
            .map(|at| format!("Edited {}", full_time(at)));
        let shown = move || {
            let edited = edited_title.clone().map(|title| {
                view! {
                    <span class="edited" title=title>" (edited)"</span>
                }
            });
            view! { <div class="text">{formatted(&text, &mentions, me.as_ref())}{edited}</div> }
        };
        let text = message.text.clone();
        let files = (!message.attachments.is_empty()).then(|| {
            let files = message.attachments.clone();
            view! { <AttachmentList files/> }
        });
        let reactions = (!message.reactions.is_empty()).then(|| {
            let reactions = message.reactions.clone();
            view! { <ReactionRow room seq reactions/> }
        });
        let tools = view! { <MessageTools message=message.clone() mine shown=tools_shown/> };
        view! {
            {message.reply_to.clone().map(|reply_to| view! { <ReplyQuote room reply_to/> })}
            <Show when=editing fallback=shown>
                <InlineEditor room seq text=text.clone()/>
            </Show>
            {files}
            {reactions}
            <Show when=confirming>
                <DeleteConfirm room seq/>
            </Show>
            {tools}
        }
        .into_any()
    };
    // A long press (a phone has no hover) shows the tools.
    let press = StoredValue::new(None::<leptos::leptos_dom::helpers::TimeoutHandle>);
    let cancel_press = move || {
        if let Some(handle) = press.get_value() {
            handle.clear();
            press.set_value(None);
        }
    };
    let on_pointer_down = move |ev: leptos::ev::PointerEvent| {
        if ev.pointer_type() == "touch" {
            cancel_press();
            let handle = set_timeout_with_handle(move || tools_shown.set(true), LONG_PRESS);
            press.set_value(handle.ok());
        }
    };
    let class = if starts_group {
        "message first"
    } else {
        "message"
    };
    let for_me = chat
        .me
        .with_untracked(|me| me.as_ref().is_some_and(|me| message.mentions(&me.id)));
    let first_unread = move || first_new.get() == Some(seq);
    view! {
        <li class=class class=("mentions-me", for_me) class=("first-unread", first_unread)
            id=message_anchor(room, seq) data-seq=seq
            on:pointerdown=on_pointer_down on:pointerup=move |_| cancel_press()
            on:pointermove=move |_| cancel_press() on:pointercancel=move |_| cancel_press()>
            {if starts_group {
                view! {
                    <span class="avatar" aria-hidden="true" style=colour.clone()>
                        {
                            let name = name.clone();
                            move || conversation::initials(&name())
                        }
                    </span>
                }.into_any()
            } else {
                view! { <time class="gutter-time" title=time_title.clone()>{time.clone()}</time> }.into_any()
            }}
            <div class="body">
                {if starts_group {
                    view! {
                        <div class="head">
                            <span class="sender" style=colour>{name}</span>
                            <time title=time_title>{time}</time>
                        </div>
                    }.into_any()
                } else {
                    view! { <span class="sender sr-only" style=colour>{name}</span> }.into_any()
                }}
                {body}
            </div>
        </li>
    }
}

/// Who is typing in `room`, under its messages ("Ann is typing…"); announced politely.
#[component]
pub fn TypingLine(room: RoomId) -> impl IntoView {
    let chat = expect_context::<Chat>();
    view! {
        <p class="typing" aria-live="polite">{move || chat.typing_line(room)}</p>
    }
}

/// How long a finger rests on a message before its tools show.
const LONG_PRESS: std::time::Duration = std::time::Duration::from_millis(500);

/// The element id of a message, to scroll to it.
fn message_anchor(room: RoomId, seq: natter_protocol::Seq) -> String {
    format!("message-{room}-{seq}")
}

/// The local day of a time: days since the epoch in the browser's time zone.
fn local_day(ts: i64) -> i64 {
    let date = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(ts as f64));
    let offset_ms = (date.get_timezone_offset() * 60_000.0) as i64;
    ts.saturating_sub(offset_ms).div_euclid(24 * 3600 * 1000)
}

/// "Today", "Yesterday", or the date in the browser's locale.
fn day_label(ts: i64) -> String {
    let today = local_day(js_sys::Date::now() as i64);
    match today - local_day(ts) {
        0 => "Today".into(),
        1 => "Yesterday".into(),
        _ => {
            let date = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(ts as f64));
            String::from(date.to_locale_date_string("default", &wasm_bindgen::JsValue::UNDEFINED))
        }
    }
}

/// "HH:MM" in the browser's time zone.
fn local_time(ts: i64) -> String {
    let date = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(ts as f64));
    format!("{:02}:{:02}", date.get_hours(), date.get_minutes())
}

/// Date and time in the browser's locale, for the tooltip.
fn full_time(ts: i64) -> String {
    let date = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(ts as f64));
    String::from(date.to_locale_string("default", &wasm_bindgen::JsValue::UNDEFINED))
}
