//! The top bar: product name, drawer button (with the unread total), connection state, my name (click to
//! rename) and sign-out.

use leptos::prelude::*;
use natter_protocol::validate;

use crate::chat::Chat;
use crate::socket::Status;
use crate::state::form;

/// Product name, connection state and my name.
#[component]
pub fn Header() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let editing = RwSignal::new(false);
    let draft = RwSignal::new(String::new());
    let start_editing = move |_| {
        draft.set(
            chat.me
                .get_untracked()
                .map(|me| me.name)
                .unwrap_or_default(),
        );
        chat.set_error(form::RENAME, None);
        editing.set(true);
    };
    let local_error = move || validate::display_name(&draft.get()).err();
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if let Ok(name) = validate::display_name(&draft.get_untracked()) {
            chat.rename(name);
            editing.set(false);
        }
    };
    let has_me = move || chat.me.with(Option::is_some);
    view! {
        <header class="top">
            <Show when=has_me>
                <button
                    class="menu"
                    aria-label=move || match chat.total_unread() {
                        0 => "Menu".to_string(),
                        unread => format!("Menu, {unread} unread"),
                    }
                    aria-expanded=move || chat.drawer_open.get().to_string()
                    on:click=move |_| chat.toggle_drawer()
                >
                    "☰"
                    {move || match chat.total_unread() {
                        0 => None,
                        unread => Some(view! { <span class="badge" aria-hidden="true">{unread}</span> }),
                    }}
                </button>
            </Show>
            <h1>"natter"</h1>
            <span class="status" data-status=move || format!("{:?}", chat.status.get()).to_lowercase() role="status">
                <span class="dot" aria-hidden="true"></span>
                {move || chat.status.get().label()}
            </span>
            <div class="me-area">
                <Show when=move || has_me() && !editing.get()>
                    <button class="me" aria-label="your name" title="Change your name" on:click=start_editing>
                        {move || chat.me.get().map(|me| me.name)}
                    </button>
                </Show>
                <Show when=move || has_me() && editing.get()>
                    <form class="rename" on:submit=submit>
                        <input
                            aria-label="New name"
                            maxlength="32"
                            prop:value=move || draft.get()
                            on:input=move |ev| draft.set(event_target_value(&ev))
                            on:keydown=move |ev| if ev.key() == "Escape" { editing.set(false) }
                        />
                        <button type="submit" disabled=move || local_error().is_some()>"Save"</button>
                        <span class="error" role="alert">{local_error}</span>
                    </form>
                </Show>
                <span class="error" role="alert">{move || chat.error(form::RENAME)}</span>
                <Show when=move || has_me() && chat.status.get() != Status::Idle>
                    <button
                        class="quiet"
                        on:click=move |_| chat.sign_out()
                        title=move || match chat.account.get() {
                            Some(account) => format!("Signed in as {}: sign out on this device", account.email),
                            None => "Forget this name and its history in this browser".to_string(),
                        }
                    >
                        "Sign out"
                    </button>
                </Show>
            </div>
        </header>
    }
}
