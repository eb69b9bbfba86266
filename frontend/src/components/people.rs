//! The people list: everyone seen, online first, each with a menu (message, block or
//! unblock), and the people I block, so someone blocked who is offline can still be
//! unblocked.

use leptos::prelude::*;
use natter_protocol::validate::name_key;
use natter_protocol::UserSummary;

use crate::chat::Chat;
use crate::colour::name_style;
use crate::state::Person;

/// Whether a `focusout` moved the focus out of the element listening (a menu closes
/// then, as a native one would).
pub(super) fn focus_left(ev: &leptos::ev::FocusEvent) -> bool {
    use wasm_bindgen::JsCast;
    let menu = ev
        .current_target()
        .and_then(|t| t.dyn_into::<web_sys::Node>().ok());
    let next = ev
        .related_target()
        .and_then(|t| t.dyn_into::<web_sys::Node>().ok());
    !matches!((menu, next), (Some(menu), Some(next)) if menu.contains(Some(&next)))
}

/// Who the list shows: online first, then by name. Someone offline whose name a person
/// online now has is left out: names are unique among people online, so the offline
/// one is a past identity (a guest who signed out and came back as someone new).
fn listed_people(people: &[Person]) -> Vec<Person> {
    let online: std::collections::HashSet<String> = people
        .iter()
        .filter(|p| p.online)
        .map(|p| name_key(&p.user.name))
        .collect();
    let mut listed: Vec<Person> = people
        .iter()
        .filter(|p| p.online || !online.contains(&name_key(&p.user.name)))
        .cloned()
        .collect();
    listed.sort_by(|a, b| {
        b.online
            .cmp(&a.online)
            .then_with(|| a.user.name.to_lowercase().cmp(&b.user.name.to_lowercase()))
    });
    listed
}

/// Everyone seen since the page loaded, and the people I block.
#[component]
pub fn People() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let people = move || chat.people.with(|people| listed_people(people));
    view! {
        <section>
            <h2>"People"</h2>
            <ul class="people">
                <For
                    each=people
                    key=|p| (p.user.id.clone(), p.user.name.clone(), p.online)
                    children=move |person| view! { <PersonRow person/> }
                />
            </ul>
        </section>
        <Show when=move || chat.blocked.with(|b| !b.is_empty())>
            <section>
                <h2>"Blocked"</h2>
                <ul class="people blocked-people">
                    <For
                        each=move || chat.blocked.get()
                        key=|u| (u.id.clone(), u.name.clone())
                        children=move |user| view! { <BlockedRow user/> }
                    />
                </ul>
            </section>
        </Show>
    }
}

/// One person: a click opens our direct room; `⋯` opens the menu.
#[component]
fn PersonRow(person: Person) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let Person { user, online } = person;
    let is_me = chat
        .me
        .with_untracked(|me| me.as_ref().is_some_and(|me| me.id == user.id));
    let blocked = {
        let id = user.id.clone();
        move || chat.blocks(&id)
    };
    let colour = name_style(&user.id);
    let name = user.name.clone();
    let state = if online { "online" } else { "offline" };
    let label = {
        let (name, blocked) = (name.clone(), blocked.clone());
        move || {
            let whose = if is_me {
                ", you"
            } else if blocked() {
                ", blocked"
            } else {
                ""
            };
            format!("{name} ({state}){whose}")
        }
    };
    let title = if is_me {
        "You".to_string()
    } else {
        format!("Message {name}")
    };
    let open_direct = {
        let id = user.id.clone();
        move |_| chat.open_direct(&id)
    };
    view! {
        <li class="person-row" class=("offline", !online)>
            <button
                class="person"
                disabled={
                    let blocked = blocked.clone();
                    move || is_me || blocked()
                }
                title=title
                aria-label=label
                on:click=open_direct
            >
                <span class="dot" class=("on", online) aria-hidden="true"></span>
                <span class="person-name" style=colour>{user.name.clone()}</span>
                <Show when=blocked.clone()>
                    <span class="tag">"blocked"</span>
                </Show>
            </button>
            {(!is_me).then(|| view! { <PersonMenu user/> })}
        </li>
    }
}

/// The `⋯` button and its menu: message, block or unblock. Closes on a choice, on
/// Escape and when focus leaves it.
#[component]
fn PersonMenu(user: UserSummary) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let open = RwSignal::new(false);
    let blocked = {
        let id = user.id.clone();
        move || chat.blocks(&id)
    };
    let name = user.name.clone();
    let close_when_focus_leaves = move |ev: leptos::ev::FocusEvent| {
        if focus_left(&ev) {
            open.set(false);
        }
    };
    let message = {
        let id = user.id.clone();
        move |_| {
            open.set(false);
            chat.open_direct(&id);
        }
    };
    let toggle_block = {
        let (id, blocked) = (user.id.clone(), blocked.clone());
        move |_| {
            open.set(false);
            if blocked() {
                chat.unblock(&id);
            } else {
                chat.block(&id);
            }
        }
    };
    view! {
        <div
            class="person-more"
            on:focusout=close_when_focus_leaves
            on:keydown=move |ev| {
                if ev.key() == "Escape" {
                    open.set(false);
                }
            }
        >
            <button
                class="more"
                aria-label=format!("More for {name}")
                aria-haspopup="menu"
                aria-expanded=move || open.get().to_string()
                on:click=move |_| open.update(|o| *o = !*o)
            >"⋯"</button>
            <Show when=move || open.get()>
                <div class="person-menu" role="menu">
                    <button role="menuitem" disabled=blocked.clone() on:click=message.clone()>"Message"</button>
                    <button role="menuitem" on:click=toggle_block.clone()>
                        {
                            let (blocked, name) = (blocked.clone(), name.clone());
                            move || if blocked() { format!("Unblock {name}") } else { format!("Block {name}") }
                        }
                    </button>
                </div>
            </Show>
        </div>
    }
}

/// Someone I block, with the way back.
#[component]
fn BlockedRow(user: UserSummary) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let name = user.name.clone();
    view! {
        <li class="person-row">
            <span class="person-name">{user.name.clone()}</span>
            <button class="unblock" aria-label=format!("Unblock {name}") on:click=move |_| chat.unblock(&user.id)>
                "Unblock"
            </button>
        </li>
    }
}

#[cfg(test)]
mod tests {
    use natter_protocol::UserId;

    use super::*;

    fn person(id: &str, name: &str, online: bool) -> Person {
        Person {
            user: UserSummary {
                id: UserId(id.into()),
                name: name.into(),
            },
            online,
        }
    }

    #[test]
    fn online_first_and_an_offline_namesake_of_someone_online_is_left_out() {
        let people = [
            person("old-mia", "Mia", false),
            person("bo", "bo", false),
            person("new-mia", "mia", true),
            person("al", "Al", true),
        ];
        let ids: Vec<String> = listed_people(&people)
            .into_iter()
            .map(|p| p.user.id.0)
            .collect();
        assert_eq!(ids, ["al", "new-mia", "bo"]);
    }
}
