//! Message text as it is shown: the blocks and inline formatting of
//! `natter_protocol::format` turned into elements and text nodes — never an HTML
//! string, so nothing a sender types can become markup. Links open in a new tab and
//! tell the other site nothing (no opener, no referrer) and vouch for nothing
//! (`nofollow`).

use leptos::prelude::*;
use natter_protocol::format::{self, Block, Inline};

/// The formatted text of a message.
pub fn formatted(text: &str) -> impl IntoView {
    format::parse(text)
        .into_iter()
        .map(|block| match block {
            Block::Paragraph(items) => view! { <p class="para">{inlines(items)}</p> }.into_any(),
            Block::Quote(items) => view! { <blockquote>{inlines(items)}</blockquote> }.into_any(),
            Block::Code { language, text } => view! {
                <pre class="code-block" data-language=(!language.is_empty()).then_some(language)><code>{text}</code></pre>
            }
            .into_any(),
        })
        .collect_view()
}

fn inlines(items: Vec<Inline>) -> Vec<AnyView> {
    items
        .into_iter()
        .map(|item| match item {
            Inline::Text(text) => text.into_any(),
            Inline::Emphasis(inner) => view! { <em>{inlines(inner)}</em> }.into_any(),
            Inline::Strong(inner) => view! { <strong>{inlines(inner)}</strong> }.into_any(),
            Inline::Code(code) => view! { <code>{code}</code> }.into_any(),
            Inline::Link { text, url } => view! {
                <a href=url target="_blank" rel="noopener noreferrer nofollow">{text}</a>
            }
            .into_any(),
        })
        .collect()
}
