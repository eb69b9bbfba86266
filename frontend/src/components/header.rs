//! The top bar: product name, drawer button (with the unread total), connection state,
//! and my name, whose menu renames me or signs me out (a guest is warned first).

use leptos::prelude::*;
use natter_protocol::validate;

use crate::chat::Chat;
use crate::state::form;

/// Product name, connection state and my name.
#[component]
pub fn Header() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let editing = RwSignal::new(false);
    let draft = RwSignal::new(String::new());
    let start_editing = move || {
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
                    <MeMenu on_rename=start_editing/>
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
                        <button type="button" class="quiet" on:click=move |_| editing.set(false)>"Cancel"</button>
                        <span class="error" role="alert">{local_error}</span>
                    </form>
                </Show>
                <span class="error" role="alert">{move || chat.error(form::RENAME)}</span>
            </div>
        </header>
    }
}

/// My name, opening a menu: change it, or sign out. A guest signing out is warned
/// first — the name and the history in this browser are forgotten for good.
#[component]
fn MeMenu(on_rename: impl Fn() + Copy + Send + Sync + 'static) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let open = RwSignal::new(false);
    let confirming = RwSignal::new(false);
    let close = move || {
        open.set(false);
        confirming.set(false);
    };
    let name = move || chat.me.get().map(|me| me.name).unwrap_or_default();
    let confirm_button: NodeRef<leptos::html::Button> = NodeRef::new();
    Effect::new(move |_| {
        if let Some(button) = confirm_button.get() {
            let _ = button.focus();
        }
    });
    let sign_out = move |_| {
        if chat.account.get_untracked().is_some() {
            close();
            chat.sign_out();
        } else {
            confirming.set(true);
        }
    };
    view! {
        <div
            class="me-menu"
            on:focusout=move |ev| if super::people::focus_left(&ev) { close() }
            on:keydown=move |ev| if ev.key() == "Escape" { close() }
        >
            <button
                class="me"
                aria-label=move || format!("{}, your name", name())
                aria-haspopup="menu"
                aria-expanded=move || open.get().to_string()
                on:click=move |_| if open.get_untracked() { close() } else { open.set(true) }
            >
                {name}
            </button>
            <Show when=move || open.get()>
                <div class="menu-list" role="menu">
                    <button role="menuitem" on:click=move |_| { close(); on_rename(); }>"Change name"</button>
                    <button role="menuitem" on:click=sign_out title=move || match chat.account.get() {
                        Some(account) => format!("Signed in as {}: sign out on this device", account.email),
                        None => "Forget this name and its history in this browser".to_string(),
                    }>"Sign out"</button>
                </div>
            </Show>
            // Beside the menu rather than instead of it: the focused item stays, and the
            // focus moves on to the confirmation.
            <Show when=move || confirming.get()>
                <div class="menu-list confirm" role="alertdialog" aria-label="Sign out?" aria-describedby="sign-out-warning">
                    <p id="sign-out-warning">
                        "You are a guest: signing out forgets your name and your history in this browser, "
                        "and nobody can come back as you. Your name is free for anyone at once."
                    </p>
                    <div class="actions">
                        <button class="danger" node_ref=confirm_button on:click=move |_| { close(); chat.sign_out(); }>"Sign out and forget"</button>
                        <button class="quiet" on:click=move |_| close()>"Cancel"</button>
                    </div>
                </div>
            </Show>
        </div>
    }
}
