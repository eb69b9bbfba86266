//! First visit: ask for a display name; Enter registers.

use leptos::prelude::*;
use natter_protocol::validate;

use crate::chat::Chat;
use crate::socket::Status;
use crate::state::form;

/// The name form, with the shared validation rules checked as the person types and the
/// server's verdict (e.g. "taken") shown inline.
#[component]
pub fn NamePrompt() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let name = RwSignal::new(String::new());
    let local_error = move || {
        let value = name.get();
        if value.is_empty() {
            None
        } else {
            validate::display_name(&value).err()
        }
    };
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if let Ok(valid) = validate::display_name(&name.get_untracked()) {
            chat.start(valid);
        }
    };
    view! {
        <form on:submit=submit aria-label="Continue as guest">
                <h2>"Welcome to natter"</h2>
                <label for="name-input">"Pick a display name"</label>
                <input
                    id="name-input"
                    autofocus
                    autocomplete="nickname"
                    maxlength="32"
                    prop:value=move || name.get()
                    on:input=move |ev| {
                        name.set(event_target_value(&ev));
                        chat.set_error(form::HELLO, None);
                    }
                />
                <button type="submit" disabled=move || local_error().is_some() || name.with(String::is_empty)>
                    "Join"
                </button>
                <p class="error" role="alert">
                    {move || local_error().or_else(|| chat.error(form::HELLO))}
                </p>
                <Show when=move || chat.status.get() == Status::Reconnecting>
                    <p class="hint">"Cannot reach the server; retrying…"</p>
                </Show>
        </form>
    }
}
