//! Browser notifications and the page title: how natter reaches someone who is not
//! looking at it.
//!
//! A message for me (direct, or mentioning me; see `state/attention.rs`) raises a
//! notification while the page is hidden, if the person allowed them. They are never
//! asked on page load: the first such message shows a small offer ("Turn on" / "Not
//! now") instead, and its answer is remembered, so the browser asks at most once and
//! only after a click. Clicking a notification brings the tab forward in that room.

use leptos::prelude::*;
use natter_protocol::RoomId;
use wasm_bindgen::prelude::*;
use web_sys::{Notification, NotificationOptions, NotificationPermission};

use crate::cache;
use crate::chat::Chat;

/// A message for me arrived in `room`: notify, or offer notifications once.
pub fn attention(chat: Chat, room: RoomId, title: &str, body: &str) {
    // Some browsers (iOS Safari tabs) have no Notification at all.
    let supported = web_sys::window()
        .is_some_and(|w| js_sys::Reflect::has(&w, &"Notification".into()).unwrap_or(false));
    if !supported {
        return;
    }
    match Notification::permission() {
        NotificationPermission::Granted if page_hidden() => show(chat, room, title, body),
        NotificationPermission::Default if !cache::notifications_offered() => {
            chat.notifications_offer.set(true);
        }
        _ => {}
    }
}

fn show(chat: Chat, room: RoomId, title: &str, body: &str) {
    let options = NotificationOptions::new();
    options.set_body(body);
    // One per room: a newer message replaces the older notification.
    options.set_tag(&format!("natter-room-{room}"));
    let Ok(notification) = Notification::new_with_options(title, &options) else {
        return;
    };
    let shown = notification.clone();
    let on_click = Closure::<dyn FnMut()>::new(move || {
        if let Some(window) = web_sys::window() {
            let _ = window.focus();
        }
        chat.view(room);
        shown.close();
    });
    notification.set_onclick(Some(on_click.as_ref().unchecked_ref()));
    // The notification owns its handler for as long as the browser keeps it.
    on_click.forget();
}

/// The person accepted the offer: the browser asks for permission (after their click).
pub fn allow(chat: Chat) {
    cache::note_notifications_offered();
    chat.notifications_offer.set(false);
    if let Ok(asked) = Notification::request_permission() {
        leptos::task::spawn_local(async move {
            let _ = wasm_bindgen_futures::JsFuture::from(asked).await;
        });
    }
}

/// The person declined the offer: it is not made again.
pub fn decline(chat: Chat) {
    cache::note_notifications_offered();
    chat.notifications_offer.set(false);
}

/// Whether the page is hidden (another tab in front, the window minimized).
pub fn page_hidden() -> bool {
    web_sys::window()
        .and_then(|w| w.document())
        .is_some_and(|d| d.hidden())
}

/// Keeps the page title saying how much is unread: `(3) natter`.
pub fn title_follows_unread(chat: Chat) {
    Effect::new(move |_| {
        let unread = chat.total_unread();
        let title = match unread {
            0 => "natter".to_string(),
            n => format!("({n}) natter"),
        };
        if let Some(document) = web_sys::window().and_then(|w| w.document()) {
            document.set_title(&title);
        }
    });
}
