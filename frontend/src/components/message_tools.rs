//! What a person does to one message, and how its changes show: the tools (react,
//! reply, edit, delete — on hover or focus, or a long press on a phone), the emoji
//! picker, the reactions under it, the editor in its place, the deletion's
//! confirmation, and the quote of the message a reply answers.
//!
//! Everything acts through [`Chat`]'s actions; what the server then says (`changed`)
//! is what the list shows — nothing here changes a message on its own.

use leptos::html;
use leptos::prelude::*;
use natter_protocol::{validate, ChatMessage, Reaction, ReplyPreview, RoomId, Seq};

use crate::chat::Chat;

/// The buttons that act on a message: shown while the pointer is over it or focus is
/// in it (CSS), or after a long press on a touch screen (`shown`).
#[component]
pub fn MessageTools(message: ChatMessage, mine: bool, shown: RwSignal<bool>) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let room = message.room;
    let seq = message.seq;
    let picking = RwSignal::new(false);
    let reply_to = ReplyPreview::of(&message);
    let reply = move |_| {
        chat.replying.update(|r| {
            r.insert(room, reply_to.clone());
        });
        shown.set(false);
        crate::focus_composer_of(room);
    };
    view! {
        <div class="message-tools" class:shown=move || shown.get() role="toolbar" aria-label="Message actions">
            <button type="button" class="tool" title="React" aria-label="React"
                aria-expanded=move || picking.get().to_string()
                on:click=move |_| picking.update(|p| *p = !*p)>"☺+"</button>
            <button type="button" class="tool" title="Reply" aria-label="Reply" on:click=reply>"↩"</button>
            {mine.then(|| view! {
                <button type="button" class="tool" title="Edit" aria-label="Edit"
                    on:click=move |_| {
                        shown.set(false);
                        chat.editing.set(Some((room, seq)));
                    }>"✎"</button>
                <button type="button" class="tool" title="Delete" aria-label="Delete"
                    on:click=move |_| {
                        shown.set(false);
                        chat.confirm_delete.set(Some((room, seq)));
                    }>"🗑"</button>
            })}
            <Show when=move || picking.get()>
                <EmojiPicker room seq done=move || { picking.set(false); shown.set(false); }/>
            </Show>
        </div>
    }
}

/// A small grid of emoji, the person's most used first; Escape closes it.
#[component]
fn EmojiPicker(
    room: RoomId,
    seq: Seq,
    done: impl Fn() + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let first: NodeRef<html::Div> = NodeRef::new();
    Effect::new(move |_| {
        // Focus the first emoji, so the keyboard can pick at once.
        if let Some(grid) = first.get() {
            if let Ok(Some(button)) = grid.query_selector("button") {
                if let Ok(button) = wasm_bindgen::JsCast::dyn_into::<web_sys::HtmlElement>(button) {
                    let _ = button.focus();
                }
            }
        }
    });
    let emoji = crate::cache::frequent_emoji();
    view! {
        <div class="emoji-picker" role="group" aria-label="Pick a reaction" node_ref=first
            on:keydown=move |ev: leptos::ev::KeyboardEvent| if ev.key() == "Escape" { done() }>
            {emoji.into_iter().map(|e| {
                let label = format!("React with {e}");
                let chosen = e.clone();
                view! {
                    <button type="button" class="emoji" aria-label=label
                        on:click=move |_| {
                            chat.toggle_reaction(room, seq, chosen.clone());
                            done();
                        }>{e}</button>
                }
            }).collect_view()}
        </div>
    }
}

/// The reactions under a message: one button per emoji with its count, pressed when
/// one is mine (clicking adds or takes back mine); hovering names who reacted.
#[component]
pub fn ReactionRow(room: RoomId, seq: Seq, reactions: Vec<Reaction>) -> impl IntoView {
    let chat = expect_context::<Chat>();
    view! {
        <div class="reactions">
            {reactions.into_iter().map(|reaction| {
                let names: Vec<String> = reaction.users.iter().map(|u| chat.name_of(u)).collect();
                let who = who_reacted(&names, reaction.count);
                let label = format!("{} {}: {who}", reaction.emoji, reaction.count);
                let emoji = reaction.emoji.clone();
                view! {
                    <button type="button" class="reaction" class:mine=reaction.me
                        aria-pressed=reaction.me.to_string() title=who aria-label=label
                        on:click=move |_| chat.toggle_reaction(room, seq, emoji.clone())>
                        <span aria-hidden="true">{reaction.emoji}</span>
                        <span class="count" aria-hidden="true">{reaction.count}</span>
                    </button>
                }
            }).collect_view()}
        </div>
    }
}

/// "Ann", "Ann and Bo", "Ann, Bo and 3 others": who reacted, for the tooltip.
fn who_reacted(names: &[String], count: u32) -> String {
    let others = (count as usize).saturating_sub(names.len());
    match (names, others) {
        ([], _) => format!("{count} people"),
        ([one], 0) => one.clone(),
        (names, 0) => {
            let (last, rest) = names
                .split_last()
                .map_or((&names[0], &[][..]), |(l, r)| (l, r));
            format!("{} and {last}", rest.join(", "))
        }
        (names, others) => format!(
            "{} and {others} other{}",
            names.join(", "),
            if others == 1 { "" } else { "s" }
        ),
    }
}

/// My message's text in a box, in its place: Enter saves, Escape (or Cancel) leaves
/// it as it was.
#[component]
pub fn InlineEditor(room: RoomId, seq: Seq, text: String) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let draft = RwSignal::new(text.clone());

    let field: NodeRef<html::Textarea> = NodeRef::new();
    Effect::new(move |_| {
        if let Some(field) = field.get() {
            let _ = field.focus();
            let end = field.value().len() as u32;
            let _ = field.set_selection_range(end, end);
        }
    });
    let stop = move || {
        chat.editing.set(None);
        crate::focus_composer_of(room);
    };
    let original = StoredValue::new(text);
    let save = move || {
        if let Ok(new_text) = validate::message_text(&draft.get_untracked()) {
            if original.with_value(|t| *t != new_text) {
                chat.edit_message(room, seq, new_text);
            }
            stop();
        }
    };
    let invalid = move || validate::message_text(&draft.get()).err();
    view! {
        <form class="editor" on:submit=move |ev: leptos::ev::SubmitEvent| { ev.prevent_default(); save(); }>
            <textarea node_ref=field rows="2" aria-label="Edit message"
                prop:value=move || draft.get()
                on:input=move |ev| draft.set(event_target_value(&ev))
                on:keydown=move |ev: leptos::ev::KeyboardEvent| {
                    if ev.key() == "Escape" {
                        ev.prevent_default();
                        stop();
                    } else if ev.key() == "Enter" && !ev.shift_key() && !ev.is_composing() {
                        ev.prevent_default();
                        save();
                    }
                }></textarea>
            <div class="editor-actions">
                <span class="hint">"Enter saves · Escape cancels"</span>
                <button type="button" on:click=move |_| stop()>"Cancel"</button>
                <button type="submit" class="primary" disabled=move || invalid().is_some()>"Save"</button>
            </div>
        </form>
    }
}

/// Asks before deleting my message; Delete is focused, Escape or Cancel keeps it.
#[component]
pub fn DeleteConfirm(room: RoomId, seq: Seq) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let confirm: NodeRef<html::Button> = NodeRef::new();
    Effect::new(move |_| {
        if let Some(button) = confirm.get() {
            let _ = button.focus();
        }
    });
    let cancel = move || chat.confirm_delete.set(None);
    view! {
        <div class="confirm-delete" role="alertdialog" aria-label="Delete this message?"
            aria-describedby=format!("delete-{room}-{seq}")
            on:keydown=move |ev: leptos::ev::KeyboardEvent| if ev.key() == "Escape" { cancel() }>
            <p id=format!("delete-{room}-{seq}")>"Delete this message for everyone? This cannot be undone."</p>
            <button type="button" class="danger" node_ref=confirm on:click=move |_| {
                chat.delete_message(room, seq);
                cancel();
            }>"Delete"</button>
            <button type="button" on:click=move |_| cancel()>"Cancel"</button>
        </div>
    }
}

/// The quote of the message a reply answers; clicking it shows the original (paging
/// back to it if needed).
#[component]
pub fn ReplyQuote(room: RoomId, reply_to: ReplyPreview) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let seq = reply_to.seq;
    let name = chat.name_of(&reply_to.sender);
    let quoted = quote_text(&reply_to);
    view! {
        <button type="button" class="reply-quote" title="Show the original message"
            on:click=move |_| chat.jump_to(room, seq)>
            <span class="sr-only">"In reply to "</span>
            <span class="reply-name">{name}</span>
            <span class="reply-text" class:deleted=reply_to.deleted>{quoted}</span>
        </button>
    }
}

/// The one line a quote shows: the original's first line, or what became of it.
pub fn quote_text(reply_to: &ReplyPreview) -> String {
    if reply_to.deleted {
        "Original message deleted".into()
    } else if reply_to.text.is_empty() {
        "A file".into()
    } else {
        reply_to.text.lines().next().unwrap_or_default().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn who_reacted_names_the_listed_and_counts_the_rest() {
        let names: Vec<String> = ["Ann", "Bo", "Cy"].iter().map(|s| s.to_string()).collect();
        assert_eq!(who_reacted(&names[..1], 1), "Ann");
        assert_eq!(who_reacted(&names[..2], 2), "Ann and Bo");
        assert_eq!(who_reacted(&names, 3), "Ann, Bo and Cy");
        assert_eq!(who_reacted(&names, 4), "Ann, Bo, Cy and 1 other");
        assert_eq!(who_reacted(&names, 13), "Ann, Bo, Cy and 10 others");
        assert_eq!(who_reacted(&[], 2), "2 people");
    }

    #[test]
    fn a_quote_says_what_became_of_its_original() {
        let preview = |text: &str, deleted| ReplyPreview {
            seq: 1,
            sender: natter_protocol::UserSummary {
                id: natter_protocol::UserId("u".into()),
                name: "Ann".into(),
            },
            text: text.into(),
            deleted,
        };
        assert_eq!(quote_text(&preview("first\nsecond", false)), "first");
        assert_eq!(quote_text(&preview("", false)), "A file");
        assert_eq!(quote_text(&preview("", true)), "Original message deleted");
    }
}
