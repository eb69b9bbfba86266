//! The small Markdown subset messages are written in, parsed into data — never into
//! HTML — so a client renders elements and text nodes and nothing a sender types can
//! become markup:
//!
//! - `*emphasis*`, `**strong**`, `` `code` ``;
//! - fenced code blocks (```` ``` ```` lines, an optional language after the opening
//!   one), shown as written;
//! - `> quote` lines;
//! - `[text](url)` links and bare `http://` / `https://` addresses. Only `http`,
//!   `https` and `mailto` links are links; anything else (`javascript:`, `data:`) stays
//!   text.
//!
//! Everything else is text, newlines included. Shared by the client (rendering) and,
//! as it needs it, the server.

/// A message's blocks, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Block {
    /// Lines of text (newlines kept inside the text).
    Paragraph(Vec<Inline>),
    /// Consecutive `>` lines.
    Quote(Vec<Inline>),
    /// A fenced code block, exactly as written between its fences.
    Code {
        /// What followed the opening fence (letters, digits, `+`, `#`, `-`; may be
        /// empty).
        language: String,
        /// The lines inside.
        text: String,
    },
}

/// Text with its inline formatting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inline {
    /// Plain text (may hold newlines).
    Text(String),
    /// `*…*`.
    Emphasis(Vec<Inline>),
    /// `**…**`.
    Strong(Vec<Inline>),
    /// `` `…` ``, as written.
    Code(String),
    /// A link: `[text](url)` or a bare address (then `text` is the address).
    Link {
        /// What is shown.
        text: String,
        /// Where it goes: always `http:`, `https:` or `mailto:`.
        url: String,
    },
}

/// How deep `*` and `**` may nest; deeper markers stay text.
const MAX_DEPTH: usize = 4;

/// Parses a message's text into blocks.
pub fn parse(text: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut paragraph: Vec<&str> = Vec::new();
    let mut quote: Vec<&str> = Vec::new();
    let mut lines = text.split('\n');
    let flush = |lines: &mut Vec<&str>, blocks: &mut Vec<Block>, as_quote: bool| {
        if lines.is_empty() {
            return;
        }
        let inlines = inline(&lines.join("\n"));
        lines.clear();
        blocks.push(if as_quote {
            Block::Quote(inlines)
        } else {
            Block::Paragraph(inlines)
        });
    };
    while let Some(line) = lines.next() {
        if let Some(language) = opening_fence(line) {
            flush(&mut paragraph, &mut blocks, false);
            flush(&mut quote, &mut blocks, true);
            let mut code = Vec::new();
            for inside in lines.by_ref() {
                if inside.trim() == "```" {
                    break;
                }
                code.push(inside);
            }
            blocks.push(Block::Code {
                language,
                text: code.join("\n"),
            });
        } else if let Some(quoted) = line.strip_prefix('>') {
            flush(&mut paragraph, &mut blocks, false);
            quote.push(quoted.strip_prefix(' ').unwrap_or(quoted));
        } else {
            flush(&mut quote, &mut blocks, true);
            paragraph.push(line);
        }
    }
    flush(&mut paragraph, &mut blocks, false);
    flush(&mut quote, &mut blocks, true);
    blocks
}

/// The language of a line that opens a code block (```` ```rust ````), if it is one.
fn opening_fence(line: &str) -> Option<String> {
    let rest = line.trim().strip_prefix("```")?;
    let valid = rest.len() <= 20
        && rest
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '#' | '-'));
    valid.then(|| rest.to_string())
}

/// Parses inline formatting.
pub fn inline(text: &str) -> Vec<Inline> {
    inline_at(text, 0)
}

fn inline_at(text: &str, depth: usize) -> Vec<Inline> {
    let mut out = Vec::new();
    let mut plain = String::new();
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if let Some((item, after)) = special(rest, depth) {
            if !plain.is_empty() {
                out.push(Inline::Text(std::mem::take(&mut plain)));
            }
            out.push(item);
            rest = after;
        } else {
            plain.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    if !plain.is_empty() {
        out.push(Inline::Text(plain));
    }
    out
}

/// The formatted item `rest` starts with, and what follows it.
fn special(rest: &str, depth: usize) -> Option<(Inline, &str)> {
    if let Some(after) = rest.strip_prefix('`') {
        let end = after.find('`')?;
        let code = &after[..end];
        return (!code.is_empty()).then(|| (Inline::Code(code.into()), &after[end + 1..]));
    }
    if depth < MAX_DEPTH {
        if let Some(after) = rest.strip_prefix("**") {
            let end = closing(after, "**")?;
            let inner = inline_at(&after[..end], depth + 1);
            return Some((Inline::Strong(inner), &after[end + 2..]));
        }
        if let Some(after) = rest.strip_prefix('*') {
            let end = closing(after, "*")?;
            let inner = inline_at(&after[..end], depth + 1);
            return Some((Inline::Emphasis(inner), &after[end + 1..]));
        }
    }
    if let Some(after) = rest.strip_prefix('[') {
        let (label, tail) = after.split_once("](")?;
        let (url, after_link) = tail.split_once(')')?;
        if label.is_empty() || label.contains(['[', ']', '\n']) || !safe_url(url) {
            return None;
        }
        return Some((
            Inline::Link {
                text: label.into(),
                url: url.into(),
            },
            after_link,
        ));
    }
    let lower = rest.get(..8).unwrap_or(rest).to_ascii_lowercase();
    if lower.starts_with("https://") || lower.starts_with("http://") {
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let address =
            rest[..end].trim_end_matches(['.', ',', '!', '?', ':', ';', ')', ']', '\'', '"', '*']);
        if address.ends_with("://") {
            return None;
        }
        return Some((
            Inline::Link {
                text: address.into(),
                url: address.into(),
            },
            &rest[address.len()..],
        ));
    }
    None
}

/// Where `marker` closes a span that starts right here: the span is not empty, does
/// not start or end with a space, and stays on one line.
fn closing(after: &str, marker: &str) -> Option<usize> {
    if after.starts_with([' ', '\n']) || after.starts_with(marker) {
        return None;
    }
    let end = after.find(marker)?;
    let inner = &after[..end];
    (!inner.is_empty() && !inner.ends_with(' ') && !inner.contains('\n')).then_some(end)
}

/// Whether a link may point there: `http:`, `https:` or `mailto:`, with nothing that
/// could break out of an attribute or hide another scheme.
pub fn safe_url(url: &str) -> bool {
    let lower = url.to_ascii_lowercase();
    let scheme_ok = ["https://", "http://", "mailto:"]
        .iter()
        .any(|scheme| lower.starts_with(scheme) && lower.len() > scheme.len());
    scheme_ok
        && !url
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '"' | '<' | '>' | '`'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use Inline::*;

    fn text(s: &str) -> Inline {
        Text(s.into())
    }

    #[test]
    fn plain_text_is_one_paragraph_with_its_newlines() {
        assert_eq!(
            parse("hello\nworld"),
            [Block::Paragraph(vec![text("hello\nworld")])]
        );
        assert_eq!(
            parse("2 * 3 * 4"),
            [Block::Paragraph(vec![text("2 * 3 * 4")])]
        );
    }

    #[test]
    fn emphasis_strong_and_code_nest_as_written() {
        assert_eq!(
            inline("a **bold *and soft* too** `x*y*z` end"),
            [
                text("a "),
                Strong(vec![
                    text("bold "),
                    Emphasis(vec![text("and soft")]),
                    text(" too")
                ]),
                text(" "),
                Code("x*y*z".into()),
                text(" end"),
            ]
        );
        // Unclosed or spaced markers are text.
        assert_eq!(inline("**nope"), [text("**nope")]);
        assert_eq!(inline("* not a list"), [text("* not a list")]);
        assert_eq!(inline("``"), [text("``")]);
    }

    #[test]
    fn quotes_and_fenced_code_are_blocks() {
        assert_eq!(
            parse("before\n> said\n> twice\n```rust\nlet x = *y;\n```\nafter"),
            [
                Block::Paragraph(vec![text("before")]),
                Block::Quote(vec![text("said\ntwice")]),
                Block::Code {
                    language: "rust".into(),
                    text: "let x = *y;".into()
                },
                Block::Paragraph(vec![text("after")]),
            ]
        );
        // An unclosed fence runs to the end; a fence line with junk is text.
        assert_eq!(
            parse("```\n<b>"),
            [Block::Code {
                language: String::new(),
                text: "<b>".into()
            }]
        );
        assert_eq!(
            parse("```<script>"),
            [Block::Paragraph(vec![text("```<script>")])]
        );
    }

    #[test]
    fn only_web_and_mail_links_are_links() {
        assert_eq!(
            inline("[docs](https://example.org/a) and [mail](mailto:a@b.c)"),
            [
                Link {
                    text: "docs".into(),
                    url: "https://example.org/a".into()
                },
                text(" and "),
                Link {
                    text: "mail".into(),
                    url: "mailto:a@b.c".into()
                },
            ]
        );
        for hostile in [
            "[x](javascript:alert(1))",
            "[x](JavaScript:alert(1))",
            "[x](data:text/html,<script>)",
            "[x](https://a.b\" onclick=\"alert(1))",
            "[x]( https://a.b)",
        ] {
            // No link but to a plain web address (the quote ends a bare one).
            for item in inline(hostile) {
                if let Link { url, .. } = item {
                    assert!(safe_url(&url) && !url.contains("alert"), "{hostile}: {url}");
                }
            }
        }
        assert_eq!(
            inline("see https://x.org/a. javascript:alert(1)"),
            [
                text("see "),
                Link {
                    text: "https://x.org/a".into(),
                    url: "https://x.org/a".into()
                },
                text(". javascript:alert(1)"),
            ]
        );
    }

    #[test]
    fn bare_addresses_lose_the_punctuation_around_them() {
        let link = |url: &str| Link {
            text: url.into(),
            url: url.into(),
        };
        assert_eq!(
            inline("see https://example.org/a?b=1. Or HTTP://x.io, ok"),
            [
                text("see "),
                link("https://example.org/a?b=1"),
                text(". Or "),
                link("HTTP://x.io"),
                text(", ok")
            ]
        );
        assert_eq!(
            inline("(http://a.b/c)"),
            [text("("), link("http://a.b/c"), text(")")]
        );
        assert_eq!(inline("just http:// here"), [text("just http:// here")]);
        assert_eq!(inline("example.org"), [text("example.org")]);
    }

    #[test]
    fn markup_is_text_everywhere() {
        let payload = "<img src=x onerror=alert(1)>";
        assert_eq!(parse(payload), [Block::Paragraph(vec![text(payload)])]);
        assert_eq!(inline(&format!("`{payload}`")), [Code(payload.into())]);
        assert_eq!(
            inline(&format!("**{payload}**")),
            [Strong(vec![text(payload)])]
        );
    }
}
