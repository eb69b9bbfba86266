//! The `@mention` autocomplete of a composer: while the word at the cursor starts with
//! `@`, a list of names to mention (people who wrote in the room first, then everyone
//! online, then `@room`; see [`crate::state::ChatState::mention_suggestions`]). ↑/↓
//! choose, Enter or Tab writes `@Name ` in place of what was typed, Escape closes; a
//! click picks too. The text box stays focused throughout (a combobox with
//! `aria-activedescendant`), so a screen reader hears the chosen name.

use leptos::html;
use leptos::prelude::*;
use natter_protocol::RoomId;

use crate::chat::Chat;
use crate::logic;

/// One composer's autocomplete state. Cheap to copy.
#[derive(Clone, Copy)]
pub struct Mentioning {
    room: RoomId,
    /// The composer's text.
    draft: RwSignal<String>,
    /// The composer's text box (for the cursor).
    field: NodeRef<html::Textarea>,
    /// The `@` being completed: its byte in the text, and the name typed after it.
    typed: RwSignal<Option<(usize, String)>>,
    /// Which suggestion is chosen.
    chosen: RwSignal<usize>,
    /// The names offered.
    offered: Memo<Vec<String>>,
}

impl Mentioning {
    /// The autocomplete of the composer of `room` writing `draft` in `field`.
    pub fn new(room: RoomId, draft: RwSignal<String>, field: NodeRef<html::Textarea>) -> Self {
        let chat = expect_context::<Chat>();
        let typed = RwSignal::new(None::<(usize, String)>);
        let offered = Memo::new(move |_| {
            typed.with(|typed| {
                typed
                    .as_ref()
                    .map(|(_, query)| chat.mention_suggestions(room, query))
                    .unwrap_or_default()
            })
        });
        Mentioning {
            room,
            draft,
            field,
            typed,
            chosen: RwSignal::new(0),
            offered,
        }
    }

    /// Whether names are offered now.
    pub fn open(&self) -> bool {
        !self.offered.with(Vec::is_empty)
    }

    /// The list's element id.
    pub fn listbox_id(&self) -> String {
        format!("mentions-{}", self.room)
    }

    fn option_id(&self, index: usize) -> String {
        format!("mentions-{}-{index}", self.room)
    }

    /// The chosen option's element id, while the list is open.
    pub fn active_id(&self) -> Option<String> {
        self.open().then(|| self.option_id(self.chosen.get()))
    }

    /// Looks at the text before the cursor: is an `@name` being typed?
    pub fn follow_caret(&self) {
        let Some(field) = self.field.get_untracked() else {
            return;
        };
        let caret = field.selection_start().ok().flatten().unwrap_or(0) as usize;
        let typed = self.draft.with_untracked(|text| {
            let end = logic::byte_index_of_utf16(text, caret);
            logic::mention_query(&text[..end]).map(|(at, query)| (at, query.to_string()))
        });
        if typed != self.typed.get_untracked() {
            self.typed.set(typed);
            self.chosen.set(0);
        }
    }

    /// Closes the list.
    pub fn close(&self) {
        self.typed.set(None);
    }

    /// Handles a key pressed in the text box while names are offered; true when it was
    /// the list's (the caller then prevents its default).
    pub fn key(&self, ev: &leptos::ev::KeyboardEvent) -> bool {
        let count = self.offered.with_untracked(Vec::len);
        if count == 0 || ev.is_composing() {
            return false;
        }
        match ev.key().as_str() {
            "ArrowDown" => self.chosen.update(|c| *c = (*c + 1) % count),
            "ArrowUp" => self.chosen.update(|c| *c = (*c + count - 1) % count),
            "Enter" | "Tab" => {
                let chosen = self.chosen.get_untracked().min(count - 1);
                let name = self.offered.with_untracked(|names| names[chosen].clone());
                self.pick(&name);
            }
            "Escape" => self.close(),
            _ => return false,
        }
        true
    }

    /// Writes `@name ` in place of the `@` and what was typed after it.
    fn pick(&self, name: &str) {
        let Some((at, typed)) = self.typed.get_untracked() else {
            return;
        };
        let mut caret_utf16 = 0;
        self.draft.update(|text| {
            let end = (at + 1 + typed.len()).min(text.len());
            let written = format!("@{name} ");
            if text.is_char_boundary(at) && text.is_char_boundary(end) {
                text.replace_range(at..end, &written);
                caret_utf16 = text[..at + written.len()].encode_utf16().count();
            }
        });
        self.close();
        let field = self.field;
        // After the text box shows the new text: the cursor goes after the name.
        set_timeout(
            move || {
                if let Some(field) = field.get_untracked() {
                    let caret = caret_utf16 as u32;
                    let _ = field.set_selection_range(caret, caret);
                    let _ = field.focus();
                }
            },
            std::time::Duration::ZERO,
        );
    }
}

/// The list of names offered, above the text box.
#[component]
pub fn MentionPicker(mentioning: Mentioning) -> impl IntoView {
    view! {
        <Show when=move || mentioning.open()>
            <ul class="mention-picker" role="listbox" id=mentioning.listbox_id() aria-label="People to mention">
                {move || mentioning.offered.get().into_iter().enumerate().map(|(index, name)| {
                    let chosen = move || mentioning.chosen.get() == index;
                    let picked = name.clone();
                    view! {
                        <li role="option" id=mentioning.option_id(index)
                            class=("chosen", chosen) aria-selected=move || chosen().to_string()
                            // Before the text box loses the focus.
                            on:mousedown=move |ev| {
                                ev.prevent_default();
                                mentioning.pick(&picked);
                            }>
                            "@"{name}
                        </li>
                    }
                }).collect_view()}
            </ul>
        </Show>
    }
}
