//! Message text as it is shown: the blocks and inline formatting of
//! `natter_protocol::format` turned into elements and text nodes — never an HTML
//! string, so nothing a sender types can become markup. Links open in a new tab and
//! tell the other site nothing (no opener, no referrer) and vouch for nothing
//! (`nofollow`). Mentions the server resolved are shown apart, mine (and `@room`)
//! more so.

use leptos::prelude::*;
use natter_protocol::format::{self, Block, Inline};
use natter_protocol::mention::{self, Piece};
use natter_protocol::{Mention, UserId};

/// The formatted text of a message, with its `mentions` highlighted (those of `me`
/// the most).
pub fn formatted(text: &str, mentions: &[Mention], me: Option<&UserId>) -> impl IntoView {
    let marks = Marks { mentions, me };
    format::parse(text)
        .into_iter()
        .map(|block| match block {
            Block::Paragraph(items) => {
                view! { <p class="para">{marks.inlines(items)}</p> }.into_any()
            }
            Block::Quote(items) => {
                view! { <blockquote>{marks.inlines(items)}</blockquote> }.into_any()
            }
            Block::Code { language, text } => view! {
                <pre class="code-block" data-language=(!language.is_empty()).then_some(language)><code>{text}</code></pre>
            }
            .into_any(),
        })
        .collect_view()
}

/// What plain text is searched for: a message's mentions, and who is reading.
#[derive(Clone, Copy)]
struct Marks<'a> {
    mentions: &'a [Mention],
    me: Option<&'a UserId>,
}

impl Marks<'_> {
    fn inlines(self, items: Vec<Inline>) -> Vec<AnyView> {
        items.into_iter().map(|item| self.inline(item)).collect()
    }

    /// Plain text with its mentions as highlighted spans.
    fn text(self, text: String) -> AnyView {
        if self.mentions.is_empty() || !text.contains('@') {
            return text.into_any();
        }
        mention::split(&text, self.mentions)
            .into_iter()
            .map(|piece| match piece {
                Piece::Text(text) => text.to_string().into_any(),
                Piece::Mention(written, mention) => {
                    let mine = mention.user.as_ref().is_none_or(|u| Some(u) == self.me);
                    view! {
                        <span class="mention" class=("for-me", mine)>{written.to_string()}</span>
                    }
                    .into_any()
                }
            })
            .collect_view()
            .into_any()
    }

    fn inline(self, item: Inline) -> AnyView {
        match item {
            Inline::Text(text) => self.text(text),
            Inline::Emphasis(inner) => view! { <em>{self.inlines(inner)}</em> }.into_any(),
            Inline::Strong(inner) => view! { <strong>{self.inlines(inner)}</strong> }.into_any(),
            Inline::Code(code) => view! { <code>{code}</code> }.into_any(),
            Inline::Link { text, url } => view! {
                <a href=url target="_blank" rel="noopener noreferrer nofollow">{text}</a>
            }
            .into_any(),
        }
    }
}
